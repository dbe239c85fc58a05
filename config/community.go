package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Well-known communities (RFC 1997, RFC 7999, RFC 8326) accepted by name.
const (
	CommunityGracefulShutdown Community = 0xFFFF0000
	CommunityBlackhole        Community = 0xFFFF029A
	CommunityNoExport         Community = 0xFFFFFF01
	CommunityNoAdvertise      Community = 0xFFFFFF02
)

var wellKnownCommunities = map[string]Community{
	"graceful-shutdown": CommunityGracefulShutdown,
	"no-export":         CommunityNoExport,
	"no-advertise":      CommunityNoAdvertise,
	"blackhole":         CommunityBlackhole,
}

// ParseCommunity parses "ASN:value", each part in 0..65535, or one of the
// names graceful-shutdown, no-export, no-advertise, blackhole.
func ParseCommunity(s string) (Community, error) {
	if c, ok := wellKnownCommunities[s]; ok {
		return c, nil
	}
	hi, lo, ok := strings.Cut(s, ":")
	if ok {
		a, err1 := strconv.ParseUint(hi, 10, 16)
		b, err2 := strconv.ParseUint(lo, 10, 16)
		if err1 == nil && err2 == nil {
			return Community(a<<16 | b), nil
		}
	}
	return 0, fmt.Errorf("%q is not a valid community (want ASN:value with each part in 0..65535, or graceful-shutdown, no-export, no-advertise, blackhole)", s)
}

// String formats c as "ASN:value", e.g. "65001:100".
func (c Community) String() string {
	return strconv.FormatUint(uint64(c>>16), 10) + ":" + strconv.FormatUint(uint64(c&0xFFFF), 10)
}

// ParseLargeCommunity parses "global:local1:local2", each part in
// 0..4294967295.
func ParseLargeCommunity(s string) (LargeCommunity, error) {
	parts := strings.Split(s, ":")
	if len(parts) == 3 {
		var v [3]uint32
		ok := true
		for i, p := range parts {
			n, err := strconv.ParseUint(p, 10, 32)
			ok = ok && err == nil
			v[i] = uint32(n)
		}
		if ok {
			return LargeCommunity{Global: v[0], Local1: v[1], Local2: v[2]}, nil
		}
	}
	return LargeCommunity{}, fmt.Errorf("%q is not a valid large community (want global:local1:local2 with each part in 0..4294967295)", s)
}

// String formats l as "global:local1:local2", e.g. "65001:1:2".
func (l LargeCommunity) String() string {
	return fmt.Sprintf("%d:%d:%d", l.Global, l.Local1, l.Local2)
}
