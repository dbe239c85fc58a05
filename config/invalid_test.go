package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// invalidFiles maps each testdata/invalid-*.toml file to the exact text of
// the error Load returns for it.
var invalidFiles = []struct {
	file string
	want string
}{
	{"invalid-address-keys.toml", `interface: state_dir: "run/anycastd" must be an absolute path (line 11)
vip "web": remove_on_withdraw: expected a boolean, got string "yes" (line 22)
vip "web": on_address_lost: "ignore" is not one of restore, withdraw (line 23)
vip "dns": on_address_lost: expected a string, got boolean true (line 29)`},
	{"invalid-fleet.toml", `fleet: etcd_endpoints: mixes http:// and https://: one etcd cluster speaks one of them (line 11)
fleet: etcd_endpoints: "198.18.100.1:2379" must start with http:// or https:// (line 11)
fleet: etcd_endpoints: "http://198.18.100.2" must be scheme://host:port, nothing more (etcd's client port is usually 2379) (line 11)
fleet: etcd_endpoints: "https://198.18.100.3:2379/v3" must be scheme://host:port, nothing more (etcd's client port is usually 2379) (line 11)
fleet: etcd_endpoints: "http://198.18.100.4:2379" is listed twice (line 11)
fleet: site: "ams 1" must be 1 to 63 letters, digits, '.', '_' or '-' (line 12)
fleet: node: "" must be 1 to 63 letters, digits, '.', '_' or '-' (line 13)
fleet: key_prefix: "anycastd" must start and end with "/", e.g. "/anycastd/" (line 14)
fleet: on_coordinator_lost: "withdraw" is not one of hold, local (line 15)
fleet: max_drained: -1 is out of range 0..1000 (line 16)
fleet: lease_ttl: 1s must be whole seconds within 2s..5m (line 17)
fleet: timeout: 1m0s is outside 100ms..30s (line 18)
fleet: cert_file: requires key_file (line 19)
vip "web": min_sites: -1 is out of range 0..1000 (line 30)`},
	{"invalid-min-sites.toml", `vip "web": min_sites: needs a [fleet] table (the sites count each other through etcd) (line 20)`},
	{"invalid-interface-method.toml", `interface: method: "route" is not one of address, local-route (line 11)`},
	{"invalid-drain-degrade.toml", `node: drain_time: -1s must not be negative (line 10)
node: maintenance_file: "maintenance" must be an absolute path (line 11)
vip "web": on_failure: "degrade" needs a [vip.degraded] table with the degraded attributes (line 27)
vip "web": hold_down: 0s must be positive (line 28)
vip "dns": on_failure: "pull" is not one of withdraw, degrade (line 34)
vip "dns".degraded: prepend: 11 is out of range 0..10 (line 37)
vip "dns".degraded: min_passing: 2 must be below require (2): it is the lower threshold for a degraded announcement (line 38)`},
	{"invalid-addresses.toml", `bgp.peer "198.18.1.1": next_hop_ipv4: 0.0.0.0 is the unspecified address, not a usable next hop (line 8)
bgp.peer "2001:db8::1": next_hop_ipv6: :: is the unspecified address, not a usable next hop (line 13)
bgp.peer "198.18.2.1": next_hop_ipv4: 224.0.0.5 is multicast, not a usable next hop (line 18)
bgp.peer "255.255.255.255": address: 255.255.255.255 is the broadcast address, not a unicast address (line 21)
bgp.peer "fe80::1": address: fe80::1 is link-local: add the interface it is on, e.g. "fe80::1%eth0" (line 25)
bgp.peer "2001:db8::2": next_hop_ipv6: ff02::1 is multicast, not a usable next hop (line 31)
vip "web": prefixes: "0.0.0.0/32" is the unspecified address: it cannot be a VIP (line 45)
vip "web": prefixes: "::/128" is the unspecified address: it cannot be a VIP (line 45)
vip "web": prefixes: "224.0.0.1/32" is multicast: it cannot be a VIP (line 45)
vip "web": prefixes: "ff02::1/128" is multicast: it cannot be a VIP (line 45)
vip "web": prefixes: "255.255.255.255/32" is the broadcast address: it cannot be a VIP (line 45)
vip "web": prefixes: "127.0.0.1/32" is loopback: it cannot be a VIP (line 45)
vip "web": prefixes: "::1/128" is loopback: it cannot be a VIP (line 45)
vip "web": prefixes: "169.254.1.1/32" is link-local: it cannot be a VIP (line 45)
vip "web": prefixes: "fe80::2/128" is link-local: it cannot be a VIP (line 45)
vip "web": prefixes: "198.18.1.1/32" is the address of bgp.peer "198.18.1.1" on line 5 (line 45)
vip "web": prefixes: "2001:db8::1/128" is the address of bgp.peer "2001:db8::1" on line 10 (line 45)
vip "default": prefixes: "0.0.0.0/0" is a default route; set allow_default_route = true to announce it (line 50)
vip "default": prefixes: "::/0" is a default route; set allow_default_route = true to announce it (line 50)
vip "default": prefixes: "224.0.0.0/4" is multicast: it cannot be a VIP (line 50)`},
	{"invalid-check-type.toml", `check "web": type "icmp" is not one of tcp, http, https, dns, grpc, exec, process, listen, ttl (line 11)
check "db": type is required (line 13)`},
	{"invalid-check-timing.toml", `check "a": fast_interval 2s must not be above interval 1s (line 14)
check "b": timeout 300ms must be below fast_interval 200ms (line 21)
check "c": fast_interval: 1ms is below the minimum of 10ms (line 27)
check "d": fast_interval: expected a string, got integer 1 (line 33)`},
	{"invalid-check-wrong-keys.toml", `check "dns": key "url" does not apply to type "dns" (line 13)
check "dns": key "tls" does not apply to type "dns" (line 14)
check "dns": key "service" does not apply to type "dns" (line 15)
check "tcp": key "query_type" does not apply to type "tcp" (line 21)
check "tcp": key "shell" does not apply to type "tcp" (line 22)
check "tcp": ca_file: requires tls = true (line 23)
check "web": tls_server_name: requires an https url (line 29)
check "web": key "send" does not apply to type "http" (line 30)
check "script": key "source_address" does not apply to type "exec" (line 36)
check "script": key "headers" does not apply to type "exec" (line 37)`},
	{"invalid-dns-check.toml", `check "a": server: "localhost" must be host:port or an IP address (line 12)
check "a": protocol: "doh" is not one of udp, tcp (line 13)
check "a": query_name: "exa mple.net" is not a valid domain name (line 14)
check "a": query_type: "AXFR" is not one of A, AAAA, CAA, CNAME, DNSKEY, DS, HTTPS, MX, NAPTR, NS, PTR, SOA, SRV, SVCB, TLSA, TXT (line 15)
check "a": expect_rcode: "OK" is not one of NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED, YXDOMAIN, YXRRSET, NXRRSET, NOTAUTH, NOTZONE (line 16)
check "a": expect_answer: element 3 must not be empty (line 17)
check "a": expect_answer: element 4: expected a string, got integer 5 (line 17)
check "b": query_name is required (line 19)
check "b": expect_answer: "203.0.113.1" is not an IPv6 address (query_type AAAA) (line 23)
check "c": query_name: "a..b" is not a valid domain name (line 28)
check "c": expect_answer: must not be empty (line 29)`},
	{"invalid-exec-check.toml", `check "a": command: expected a string with shell = true, got array (line 13)
check "a": env: "A=B" is not a valid variable name (line 14)
check "a": env: "N": expected a string, got integer 1 (line 14)
check "a": dir: "testdata/nope" does not exist (line 15)
check "b": command: expected an array of strings, got string "/bin/true --fast" (set shell = true to run it with /bin/sh -c) (line 20)
check "b": dir: "testdata/valid-minimal.toml" is not a directory (line 21)
check "c": command: must not be empty (line 27)
check "c": env: expected a table of strings, got string "A=b" (line 28)
check "d": shell: expected a boolean, got string "yes" (line 33)`},
	{"invalid-grpc-check.toml", `check "a": address: "127.0.0.1" must be host:port with a port in 1..65535 (line 12)
check "a": service: expected a string, got integer 1 (line 13)
check "a": tls_server_name: requires tls = true (line 14)
check "a": insecure_skip_verify: requires tls = true (line 15)
check "b": address is required (line 17)`},
	{"invalid-https-check.toml", `check "a": url: "http://127.0.0.1/healthz" must use https for type "https" (line 12)
check "b": expect_body: must not be empty (line 18)
check "b": expect_body_regex: "(up" is not a valid regular expression: error parsing regexp: missing closing ): ` + "`(up`" + ` (line 19)
check "b": host: "a b" is not a valid host (line 20)
check "b": headers: "Host": set the host key instead (line 21)
check "b": headers: "X Bad" is not a valid header name (line 21)
check "b": headers: "X-Crlf": the value must not contain line breaks or NUL (line 21)
check "b": headers: "X-Num": expected a string, got integer 1 (line 21)
check "b": headers: "X-Dup" and "x-dup" are the same header (line 21)
check "b": follow_redirects: expected a boolean, got string "no" (line 22)
check "b": max_body_bytes: 0 is out of range 1..67108864 (line 23)
check "b": ca_file: requires an https url (line 24)
check "c": headers: expected a table of strings, got string "X-A: b" (line 30)
check "c": max_body_bytes: 67108865 is out of range 1..67108864 (line 31)`},
	{"invalid-tcp-check.toml", `check "a": send: must not be empty (line 13)
check "a": expect: expected a string, got integer 220 (line 14)
check "a": tls: expected a boolean, got string "yes" (line 15)
check "a": source_address: "localhost" is not an IP address (line 16)
check "b": tls_server_name: "bad name" is not a valid server name (line 23)
check "b": insecure_skip_verify: expected a boolean, got string "true" (line 24)
check "b": cert_file: requires key_file (line 25)
check "c": source_address: 127.0.0.1 is IPv4 but address ::1 is IPv6 (line 31)
check "d": source_address: ::1 is IPv6 but url host 127.0.0.1 is IPv4 (line 37)`},
	{"invalid-process-check.toml", `check "a": pid_file or unit is required (line 9)
check "b": set pid_file or unit, not both (line 17)
check "c": pid_file: "run/c.pid" must be an absolute path (line 22)
check "c": key "address" does not apply to type "process" (line 23)
check "d": pid_file: "/tmp" is a directory (line 28)
check "e": unit: "nginx.socket" is not a service unit (only a service has a main process) (line 33)
check "f": unit: "bad unit" is not a valid unit name (line 38)
check "g": unit: expected a string, got integer 1 (line 43)
check "h": key "pid_file" does not apply to type "tcp" (line 49)`},
	{"invalid-listen-check.toml", `check "a": address is required (line 9)
check "a": protocol: "sctp" is not one of tcp, udp (line 12)
check "b": address: "localhost:80" must be IP:port, [IPv6]:port or a port, with a port in 1..65535 (line 17)
check "c": address: "0" must be IP:port, [IPv6]:port or a port, with a port in 1..65535 (line 22)
check "d": address: expected a string, got integer 80 (line 27)
check "d": key "url" does not apply to type "listen" (line 28)
check "e": address: "[fe80::1%eth0]:80" must be IP:port, [IPv6]:port or a port, with a port in 1..65535 (line 33)`},
	{"invalid-ttl-check.toml", `check "a": ttl is required (line 9)
check "b": ttl: 1ms is below the minimum of 10ms (line 16)
check "c": ttl: expected a string, got integer 30 (line 21)
check "d": ttl: invalid duration "soon" (line 26)
check "d": key "command" does not apply to type "ttl" (line 27)
check "e": key "ttl" does not apply to type "http" (line 33)`},
	{"invalid-tls-files.toml", `check "a": ca_file: "testdata/tls/nope.pem" does not exist (line 13)
check "a": cert_file: "testdata/tls/client.pem" and key_file "testdata/tls/other-key.pem": tls: private key does not match public key (line 14)
check "b": ca_file: no PEM certificate in "testdata/valid-minimal.toml" (line 22)
check "b": key_file: requires cert_file (line 23)
check "c": ca_file: "testdata/tls" is not a regular file (line 30)
check "c": cert_file: must not be empty (line 31)
check "c": key_file: "testdata/tls/missing-key.pem" does not exist (line 32)`},
	{"invalid-community.toml", `vip "web": communities: "65536:1" is not a valid community (want ASN:value with each part in 0..65535, or graceful-shutdown, no-export, no-advertise, blackhole) (line 18)
vip "web": communities: "65535:65281" is listed twice (line 18)
vip "web": communities: "NO_EXPORT" is not a valid community (want ASN:value with each part in 0..65535, or graceful-shutdown, no-export, no-advertise, blackhole) (line 18)
vip "web": communities: element 6: expected a string, got integer 100 (line 18)`},
	{"invalid-vip-peers.toml", `bgp.peer "198.18.1.1": communities: "65001:7" is listed twice (line 8)
bgp.peer "198.18.1.1": large_communities: "65001:1" is not a valid large community (want global:local1:local2 with each part in 0..4294967295) (line 9)
vip "web": peers: 198.18.1.9 is not the address of a [[bgp.peer]] (line 24)
vip "web": peers: "peer-1" is not an IP address (line 24)
vip "web": peers: "198.18.1.1" is listed twice (line 24)
vip "v6": peers: none of them carries ipv6, so 2001:db8:42::2/128 would be sent nowhere (line 30)
vip "none": peers: must not be empty; leave it out to send the VIP to every peer (line 36)`},
	{"invalid-duplicate-names.toml", `bgp.peer[2]: address: "198.18.1.01" is not an IP address (line 10)
bgp.peer "198.18.1.1": address: 198.18.1.1 is already used by the bgp.peer on line 5 (line 14)
check "web": name: "web" is already used by the check on line 17 (line 23)
check[3]: name: "we b" must only contain letters, digits, '_', '.' and '-' (line 28)
vip "web": name: "web" is already used by the vip on line 32 (line 38)`},
	{"invalid-duration.toml", `bgp.peer "198.18.1.1": hold_time: invalid duration "9" (line 8)
bgp.peer "198.18.1.1": connect_retry: expected a string, got integer 5 (line 9)
check "web": interval: invalid duration "1x" (line 15)`},
	{"invalid-empty.toml", `bgp: table is required`},
	{"invalid-family-no-peer.toml", `vip "web": prefixes: "2001:db8::1/128" is IPv6 but no bgp.peer carries ipv6 (line 16)
vip[2]: name is required (line 19)
vip[2]: prefixes is required (line 19)`},
	{"invalid-http-check.toml", `check "a": url: "http:///healthz" has no host (line 12)
check "a": method: "get" is not an uppercase HTTP method such as GET (line 13)
check "a": expect_status: 99 is not a status code in 100..599 (line 14)
check "a": expect_status: "300-200" is not a range: 300 is above 200 (line 14)
check "a": expect_status: "2xx" is not a status code or range such as "200-299" in 100..599 (line 14)
check "a": expect_status: element 4: expected a status code or range, got boolean true (line 14)
check "b": url is required (line 16)
check "b": expect_status: must not be empty (line 19)
check "c": address: "127.0.0.1" must be host:port with a port in 1..65535 (line 24)
check "d": command: the program (first element) must not be empty (line 29)
check "e": command: must not be empty (line 34)
check "f": address is required (line 36)`},
	{"invalid-ipv6-over-ipv4.toml", `bgp.peer "198.18.1.1": next_hop_ipv6 is required to carry ipv6 over an IPv4 session (line 8)`},
	{"invalid-large-community.toml", `vip "web": large_communities: "65001:1" is not a valid large community (want global:local1:local2 with each part in 0..4294967295) (line 19)
vip "web": large_communities: "65001:1:4294967296" is not a valid large community (want global:local1:local2 with each part in 0..4294967295) (line 20)
vip "web": large_communities: "65001:-1:2" is not a valid large community (want global:local1:local2 with each part in 0..4294967295) (line 21)`},
	{"invalid-missing-asn.toml", `bgp: asn is required (line 1)
bgp.peer "198.18.1.1": asn is required (line 4)`},
	{"invalid-multiple.toml", `bgp: asn: 0 is out of range 1..4294967295 (line 2)
bgp: listen_port: 70000 is out of range 0..65535 (line 4)
bgp.peer "198.18.1.1": asn: 23456 is AS_TRANS (RFC 6793) and cannot be used (line 8)
bgp.peer "198.18.1.1": hold_time: 2s is below the minimum of 3s (line 9)
check "web": url: "ftp://127.0.0.1/" must use http or https (line 14)
check "web": timeout 1s must be below interval 1s (line 15)
vip "web": prefixes: "2001:db8::1/128" is IPv6 but no bgp.peer carries ipv6 (line 19)
vip "web": check "db" is not defined (line 20)
vip "web": prepend: 11 is out of range 0..10 (line 21)`},
	{"invalid-non-host-prefix.toml", `vip "web": prefixes: "203.0.113.0/24" is not a host route; set allow_aggregate = true to announce it (line 17)
vip "web": prefixes: "203.0.113.42/24" has host bits set; did you mean "203.0.113.0/24"? (line 18)
vip "web": prefixes: "203.0.113.300" is not a prefix or an IP address (line 19)`},
	{"invalid-peer.toml", `bgp: listen_addresses: "localhost" is not an IP address (line 4)
bgp: listen_addresses: "0.0.0.0" is listed twice (line 4)
bgp.peer "198.18.1.1": port: 0 is out of range 1..65535 (line 9)
bgp.peer "198.18.1.1": hold_time: 70000s is above the maximum of 65535s (line 10)
bgp.peer "198.18.1.1": connect_retry: 1.5s is not a whole number of seconds (line 12)
bgp.peer "198.18.1.1": password: too long (82 bytes, the maximum is 80) (line 13)
bgp.peer "198.18.1.1": multihop_ttl: 256 is out of range 0..255 (line 14)
bgp.peer "198.18.1.1": local_address: 2001:db8::2 is IPv6 but address 198.18.1.1 is IPv4 (line 15)
bgp.peer "198.18.1.1": families: "ipv4" is listed twice (line 16)
bgp.peer "198.18.1.1": families: "vpnv4" is not one of ipv4, ipv6 (line 16)
bgp.peer "198.18.1.1": next_hop_ipv4: 2001:db8::2 is not an IPv4 address (line 17)
bgp.peer "198.18.1.1": next_hop_ipv6: 198.18.1.2 is not an IPv6 address (line 18)
bgp.peer[2]: address: "198.18.1.300" is not an IP address (line 21)
bgp.peer[2]: keepalive_interval 9s must be below hold_time 9s (line 24)
bgp.peer[3]: address is required (line 26)
bgp.peer[3]: hold_time: 2s is below the minimum of 3s (line 28)
bgp.peer[3]: keepalive_interval: must be positive, got 0s (line 29)
bgp.peer[3]: families: must not be empty (line 30)`},
	{"invalid-peer-session.toml", `bgp.peer "198.18.1.1": ttl_security_hops and multihop_ttl are mutually exclusive (GTSM sends with TTL 255): set one of them (line 9)
bgp.peer "198.18.2.1": ttl_security_hops: 255 is out of range 0..254 (line 14)
bgp.peer "198.18.3.1": ttl_security_hops: expected an integer, got boolean true (line 19)`},
	{"invalid-prefix-two-vips.toml", `vip "api": prefixes: "203.0.113.42/32" is already announced by vip "web" (line 21)
vip "api": prefixes: "203.0.113.43/32" is listed twice (line 21)`},
	{"invalid-require.toml", `vip "web": require: 3 is out of range 1..2 (the number of checks) (line 23)
vip "db": require: "most" is not "all", "any" or a number (line 29)
vip "none": require: 0 is out of range 1..1 (the number of checks) (line 35)`},
	{"invalid-router-id.toml", `bgp: router_id: "2001:db8::2" is not an IPv4 address (line 3)`},
	{"invalid-sections.toml", `bgp: router_id: 0.0.0.0 is not a valid router ID (line 3)
interface: name: "a-very-long-interface-name" is not a valid interface name (1..15 bytes, no '/', ':' or whitespace) (line 10)
api: listen: "/run/anycastd.sock" must be unix:///path or host:port (line 13)
metrics: listen: "unix:///run/metrics.sock" must be host:port (line 16)
log: format: "xml" is not one of text, json (line 19)
log: level: "trace" is not one of debug, info, warn, error (line 20)`},
	{"invalid-shape.toml", `bgp: expected a table, got integer 1 (line 1)
log: expected a table, got array (line 2)
check[2]: expected a table, got integer 2 (line 3)
vip: expected an array of tables ([[vip]]), got table (line 5)`},
	{"invalid-syntax.toml", `syntax error: expected end of table array name delimiter ']', but got '\n' instead (line 5)`},
	{"invalid-syntax-eol.toml", `syntax error: expected '.' or ']' to end table name, but got '\n' instead (line 11)`},
	{"invalid-timeout-interval.toml", `check "web": timeout 2s must be below interval 1s (line 14)
check "fast": interval: 5ms is below the minimum of 10ms (line 20)
check "fast": timeout: must be positive, got 0s (line 21)
check "fast": rise: 0 is out of range 1..100 (line 22)
check "fast": fall: 101 is out of range 1..100 (line 23)`},
	{"invalid-undefined-check.toml", `vip "web": check "db" is not defined (line 19)
vip "web": checks: "web" is listed twice (line 20)`},
	{"invalid-unknown-key.toml", `unknown key "bgp.ASN" (line 4)
unknown key "bgp.peer.hodl_time" (line 13)
unknown key "loging" (line 15)
unknown key "vip.health" (line 22)`},
	{"invalid-graceful-restart.toml", `bgp: graceful_restart_time: 4096s is out of range 1s..4095s (RFC 4724 §3: 12 bits of seconds) (line 7)`},
	{"invalid-graceful-restart-2.toml", `bgp: graceful_restart_time: 1.5s is not a whole number of seconds (line 5)`},
	{"invalid-graceful-restart-3.toml", `bgp: graceful_restart_time: expected a string, got integer 120 (line 4)`},
	{"invalid-value-type.toml", `bgp: asn: expected an integer, got string "abc" (line 2)
bgp: router_id: expected a string, got integer 198 (line 3)
bgp: listen_port: expected an integer, got float 179.0 (line 4)
bgp: listen_addresses: expected an array of strings, got string "::" (line 5)
bgp: graceful_restart: expected a boolean, got string "yes" (line 6)
bgp.peer "198.18.1.1": families: element 2: expected a string, got integer 6 (line 11)
bgp.peer "198.18.1.1": passive: expected a boolean, got integer 1 (line 12)
interface: name: expected a string, got array (line 15)
interface: manage: expected a boolean, got datetime (line 16)
check "web": rise: expected an integer, got string "3" (line 22)
vip "web": prefixes: expected an array of strings, got string "203.0.113.42/32" (line 26)
vip "web": require: expected "all", "any" or an integer, got float 1.5 (line 28)
vip "web": med: -1 is out of range 0..4294967295 (line 29)
vip "web": local_pref: expected an integer, got table (line 30)`},
	{"invalid-wrong-type-key.toml", `check "web": key "command" does not apply to type "http" (line 13)
check "web": key "address" does not apply to type "http" (line 14)
check "script": key "method" does not apply to type "exec" (line 20)`},
}

func TestLoadInvalid(t *testing.T) {
	for _, tt := range invalidFiles {
		t.Run(tt.file, func(t *testing.T) {
			cfg, err := Load(filepath.Join("testdata", tt.file))
			if err == nil {
				t.Fatalf("Load succeeded, want error:\n%s\ngot config: %+v", tt.want, cfg)
			}
			if cfg != nil {
				t.Errorf("Load returned a config along with the error")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error is a %T, want *Error: %v", err, err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("wrong error\n got:\n%s\nwant:\n%s", got, tt.want)
			}
			if n := strings.Count(tt.want, "\n") + 1; len(e.Problems) != n {
				t.Errorf("got %d problems, want %d", len(e.Problems), n)
			}
		})
	}
}

// Every invalid-*.toml file must have an entry in invalidFiles, and the
// other way round.
func TestInvalidFilesCovered(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.toml")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, tt := range invalidFiles {
		listed[tt.file] = true
	}
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			t.Errorf("%s has no entry in invalidFiles", f)
		}
		delete(listed, filepath.Base(f))
	}
	for f := range listed {
		t.Errorf("invalidFiles lists %s, which does not exist", f)
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{Path: `vip "web"`, Line: 41, Msg: `check "db" is not defined`}, `vip "web": check "db" is not defined (line 41)`},
		{Problem{Path: "bgp", Msg: "table is required"}, "bgp: table is required"},
		{Problem{Line: 7, Msg: `unknown key "bgp.peer.hodl_time"`}, `unknown key "bgp.peer.hodl_time" (line 7)`},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
	e := &Error{Problems: []Problem{tests[0].p, tests[1].p}}
	if got, want := e.Error(), tests[0].want+"\n"+tests[1].want; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// Each file in testdata is valid or invalid as its name says, whatever the
// line endings.
func TestCRLF(t *testing.T) {
	for _, tt := range invalidFiles {
		data, err := os.ReadFile(filepath.Join("testdata", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		crlf := strings.ReplaceAll(string(data), "\n", "\r\n")
		_, err = Parse([]byte(crlf))
		if err == nil {
			t.Errorf("%s with CRLF line ends: no error", tt.file)
			continue
		}
		if got := err.Error(); got != tt.want && !strings.HasPrefix(tt.want, "syntax error") {
			t.Errorf("%s with CRLF line ends:\n got:\n%s\nwant:\n%s", tt.file, got, tt.want)
		}
	}
}
