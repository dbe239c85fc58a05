package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestVIPPeersAndPeerCommunitiesParse(t *testing.T) {
	cfg := mustParse(t, strings.Replace(diffBase, `communities = ["65001:100"]`,
		`communities = ["65001:100"]`+"\n"+`peers = ["198.18.1.5"]`, 1)+`
[[bgp.peer]]
address = "198.18.1.9"
asn = 65001
communities = ["65001:7", "no-export"]
large_communities = ["65001:7:7"]
`)
	web, old := cfg.VIPs[0], cfg.VIPs[1]
	if want := []netip.Addr{netip.MustParseAddr("198.18.1.5")}; !slices.Equal(web.Peers, want) {
		t.Errorf("web peers %v, want %v", web.Peers, want)
	}
	p1, p5, p9 := cfg.BGP.Peers[0], cfg.BGP.Peers[1], cfg.BGP.Peers[2]
	if web.SentTo(p1) || !web.SentTo(p5) || web.SentTo(p9) {
		t.Errorf("web is sent to 198.18.1.1 %v, .5 %v, .9 %v; want only .5", web.SentTo(p1), web.SentTo(p5), web.SentTo(p9))
	}
	if !old.SentTo(p1) || !old.SentTo(p9) {
		t.Error("a VIP without peers is not sent to every peer")
	}
	if want := []Community{65001<<16 | 7, CommunityNoExport}; !slices.Equal(p9.Communities, want) {
		t.Errorf("peer communities %v, want %v", p9.Communities, want)
	}
	if want := []LargeCommunity{{65001, 7, 7}}; !slices.Equal(p9.LargeCommunities, want) {
		t.Errorf("peer large communities %v, want %v", p9.LargeCommunities, want)
	}
}

// A reload may change vip.peers and a peer's communities: no refusal, no
// session reset, and the diff says which sessions lose or get the VIP.
func TestCompareVIPPeersAndPeerCommunities(t *testing.T) {
	old := mustParse(t, diffBase)
	edited := strings.NewReplacer(
		`communities = ["65001:100"]`, `communities = ["65001:100"]`+"\n"+`peers = ["198.18.1.5"]`,
		"address = \"198.18.1.1\"\nasn = 65000\n", "address = \"198.18.1.1\"\nasn = 65000\ncommunities = [\"65001:1\"]\n",
	).Replace(diffBase)
	d := Compare(old, mustParse(t, edited))
	want := `~ bgp.peer "198.18.1.1": communities [] -> [65001:1]: routes are sent to this peer again with them (no session reset)
~ vip "web": peers [] -> [198.18.1.5]: withdrawn from every other peer (only those sessions get an UPDATE; no session reset)`
	if got := d.String(); got != want || len(d.Refused()) > 0 {
		t.Errorf("Compare:\n%s\nwant:\n%s", got, want)
	}

	back := Compare(mustParse(t, edited), old)
	want = `~ bgp.peer "198.18.1.1": communities [65001:1] -> []: routes are sent to this peer again with them (no session reset)
~ vip "web": peers [198.18.1.5] -> []: no longer restricted: sent to every peer (only those sessions get an UPDATE; no session reset)`
	if got := back.String(); got != want {
		t.Errorf("Compare back:\n%s\nwant:\n%s", got, want)
	}

	both := strings.Replace(edited, `peers = ["198.18.1.5"]`, `peers = ["198.18.1.1"]`+"\n"+`med = 5`, 1)
	want = `~ vip "web": med - -> 5, peers [198.18.1.5] -> [198.18.1.1]: an announced route is replaced in place (one UPDATE, no withdrawal); withdrawn from 198.18.1.5, now sent to 198.18.1.1 (only those sessions get an UPDATE; no session reset)`
	if got := Compare(mustParse(t, edited), mustParse(t, both)).String(); got != want {
		t.Errorf("Compare with med:\n%s\nwant:\n%s", got, want)
	}
}
