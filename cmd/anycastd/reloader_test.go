package main

import (
	"testing"
	"time"
)

// Reloads run one at a time beside the caller, and requests during one
// become a single reload after it.
func TestReloader(t *testing.T) {
	started := make(chan struct{}, 10)
	release := make(chan struct{})
	r := newReloader(func() {
		started <- struct{}{}
		<-release
	})
	waitStart := func() {
		t.Helper()
		select {
		case <-started:
		case <-time.After(30 * time.Second):
			t.Fatal("no reload started")
		}
	}
	if !r.request() {
		t.Fatal("the first request did not start a reload")
	}
	waitStart()
	// The caller is free while the reload runs: further requests return at
	// once and are coalesced.
	for range 3 {
		if r.request() {
			t.Fatal("a request during a reload started another one")
		}
	}
	release <- struct{}{}
	<-r.done
	if !r.finished() {
		t.Fatal("the requests made during the reload did not start one after it")
	}
	waitStart()
	release <- struct{}{}
	<-r.done
	if r.finished() {
		t.Fatal("a reload started with no request pending")
	}
	select {
	case <-started:
		t.Fatal("a third reload ran")
	default:
	}
	if !r.request() {
		t.Fatal("a request after the reloads did not start one")
	}
	waitStart()
	release <- struct{}{}
	<-r.done
	r.finished()
}
