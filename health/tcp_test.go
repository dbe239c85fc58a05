package health

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anycastd/anycastd/config"
)

// bannerServer accepts connections on ln and hands each to serve, until ln
// is closed; stop closes it and waits for the connections.
func bannerServer(t *testing.T, ln net.Listener, serve func(net.Conn)) (addr string) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// smtpish greets, then answers "PING" with "+PONG" and anything else with
// "-ERR", one line at a time.
func smtpish(c net.Conn) {
	c.Write([]byte("220 ready\r\n"))
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.TrimSpace(line) == "PING" {
			c.Write([]byte("+PONG\r\n"))
		} else {
			c.Write([]byte("-ERR\r\n"))
		}
	}
}

func tcpCheck(t *testing.T, c config.TCPCheck) Checker {
	t.Helper()
	return mustChecker(t, config.Check{Type: config.CheckTCP, TCP: &c})
}

func TestTCPCheckerBanner(t *testing.T) {
	addr := bannerServer(t, listen(t), smtpish)
	remote := make(chan string, 1)
	srcAddr := bannerServer(t, listen(t), func(c net.Conn) {
		remote <- c.RemoteAddr().String()
		c.Write([]byte("hello\n"))
	})
	closer := bannerServer(t, listen(t), func(c net.Conn) { c.Write([]byte("22")) })
	silent := bannerServer(t, listen(t), func(c net.Conn) { c.Read(make([]byte, 1)) })

	for _, tc := range []struct {
		name string
		c    config.TCPCheck
		want string
	}{
		{"banner", config.TCPCheck{Address: addr, Expect: "220 "}, ""},
		{"wrong banner", config.TCPCheck{Address: addr, Expect: "SSH-2.0"}, `reply "220 rea" does not start with "SSH-2.0"`},
		{"send and expect", config.TCPCheck{Address: addr, Send: "PING\r\n", Expect: "220 ready\r\n+PONG"}, ""},
		{"wrong reply", config.TCPCheck{Address: addr, Send: "QUIT\r\n", Expect: "220 ready\r\n+PONG"},
			`reply "220 ready\r\n-ERR\r" does not start with "220 ready\r\n+PONG"`},
		{"send only", config.TCPCheck{Address: addr, Send: "PING\r\n"}, ""},
		{"closed early", config.TCPCheck{Address: closer, Expect: "220"}, `reply "22" ended before "220"`},
		{"source address", config.TCPCheck{Address: srcAddr, Expect: "hello",
			SourceAddress: netip.MustParseAddr("127.0.0.3")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCheck(t, tcpCheck(t, tc.c), tc.want) })
	}
	if got := <-remote; !strings.HasPrefix(got, "127.0.0.3:") {
		t.Errorf("connection came from %s, want 127.0.0.3", got)
	}

	t.Run("silent server", func(t *testing.T) {
		start := time.Now()
		err := checkWithin(t, tcpCheck(t, config.TCPCheck{Address: silent, Expect: "220"}), 100*time.Millisecond)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("err = %v, want a timeout", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Check took %v after a 100ms deadline", d)
		}
	})
}

func TestTCPCheckerTLS(t *testing.T) {
	pki := newTestPKI(t)
	ln := listen(t)
	addr := bannerServer(t, tls.NewListener(ln, pki.serverConfig(false)), smtpish)
	mtlsAddr := bannerServer(t, tls.NewListener(listen(t), pki.serverConfig(true)), smtpish)

	// Keys formatted with the address, the CA file, the client certificate
	// and key files.
	for _, tc := range []struct {
		name string
		addr string
		keys string
		want string
	}{
		{"handshake", addr, "tls = true\nca_file = %[2]q", ""},
		{"banner over tls", addr, "send = \"PING\\n\"\nexpect = \"220 ready\\r\\n+PONG\"\ntls = true\nca_file = %[2]q\ntls_server_name = 'web.internal'", ""},
		{"unknown authority", addr, "tls = true", "~certificate signed by unknown authority"},
		{"insecure", addr, "tls = true\ninsecure_skip_verify = true", ""},
		// The server gives up on a ClientHello that is not one.
		{"plaintext against tls", addr, "send = \"PING\\n\"\nexpect = '220'", `~"220"`},
		{"client certificate", mtlsAddr, "expect = '220'\ntls = true\nca_file = %[2]q\ncert_file = %[3]q\nkey_file = %[4]q", ""},
		{"no client certificate", mtlsAddr, "expect = '220'\ntls = true\nca_file = %[2]q", "~certificate required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := parseCheck(t, "type = 'tcp'\naddress = %[1]q\n"+tc.keys, tc.addr, pki.caFile, pki.clientCert, pki.clientKey)
			if c.TCP.TLS != nil && c.TCP.TLS.ServerName == "" {
				t.Fatal("config left the server name empty")
			}
			wantCheck(t, mustChecker(t, c), tc.want)
		})
	}
}
