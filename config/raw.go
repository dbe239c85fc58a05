package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"
)

// The raw* types mirror the TOML schema. Every value is kept as decoded by
// BurntSushi/toml (string, int64, float64, bool, []any, map[string]any, or a
// date/time) so that a value of the wrong type becomes a Problem naming its
// key rather than aborting the decoding. Tables are pointers (nil: absent)
// and arrays of tables are slices.
//
// The tags are the schema: a key without a field is an unknown key. Keys are
// matched exactly (toml.Decode into a struct would also accept "ASN" for
// "asn", and stop at the first value of the wrong type).

// pos locates a table in the source.
type pos struct {
	Node *node    // in the lineIndex (nil if unknown)
	At   position // of the header
}

type rawFile struct {
	BGP       *rawBGP       `toml:"bgp"`
	Interface *rawInterface `toml:"interface"`
	API       *rawAPI       `toml:"api"`
	Metrics   *rawMetrics   `toml:"metrics"`
	Log       *rawLog       `toml:"log"`
	Node      *rawNode      `toml:"node"`
	Fleet     *rawFleet     `toml:"fleet"`
	Checks    []*rawCheck   `toml:"check"`
	VIPs      []*rawVIP     `toml:"vip"`
}

type rawBGP struct {
	Pos                 pos `toml:"-"`
	ASN                 any `toml:"asn"`
	RouterID            any `toml:"router_id"`
	ListenPort          any `toml:"listen_port"`
	ListenAddresses     any `toml:"listen_addresses"`
	GracefulRestart     any `toml:"graceful_restart"`
	GracefulRestartTime any `toml:"graceful_restart_time"`

	Peers []*rawPeer `toml:"peer"`
}

type rawPeer struct {
	Pos               pos `toml:"-"`
	Address           any `toml:"address"`
	Port              any `toml:"port"`
	ASN               any `toml:"asn"`
	Description       any `toml:"description"`
	HoldTime          any `toml:"hold_time"`
	KeepaliveInterval any `toml:"keepalive_interval"`
	ConnectRetry      any `toml:"connect_retry"`
	Password          any `toml:"password"`
	MultihopTTL       any `toml:"multihop_ttl"`
	TTLSecurityHops   any `toml:"ttl_security_hops"`
	Passive           any `toml:"passive"`
	LocalAddress      any `toml:"local_address"`
	Families          any `toml:"families"`
	NextHopIPv4       any `toml:"next_hop_ipv4"`
	NextHopIPv6       any `toml:"next_hop_ipv6"`
	MaxReceived       any `toml:"max_received_prefixes"`
	MaxReceivedRetry  any `toml:"max_received_prefixes_restart"`
	Communities       any `toml:"communities"`
	LargeCommunities  any `toml:"large_communities"`

	BFD *rawBFD `toml:"bfd"`
}

// rawBFD is [bgp.peer.bfd].
type rawBFD struct {
	Pos        pos `toml:"-"`
	MinTx      any `toml:"min_tx"`
	MinRx      any `toml:"min_rx"`
	Multiplier any `toml:"multiplier"`
}

type rawInterface struct {
	Pos      pos `toml:"-"`
	Name     any `toml:"name"`
	Manage   any `toml:"manage"`
	StateDir any `toml:"state_dir"`
	Method   any `toml:"method"`
}

// rawListen is a listen key of [api] or [metrics].
type rawListen struct {
	Pos    pos `toml:"-"`
	Listen any `toml:"listen"`
}

// rawAPI is [api].
type rawAPI struct {
	Pos          pos `toml:"-"`
	Listen       any `toml:"listen"`
	Group        any `toml:"group"`
	TCPListen    any `toml:"tcp_listen"`
	TLSCertFile  any `toml:"tls_cert_file"`
	TLSKeyFile   any `toml:"tls_key_file"`
	ClientCAFile any `toml:"client_ca_file"`
}

// rawMetrics is [metrics].
type rawMetrics struct {
	Pos            pos `toml:"-"`
	Listen         any `toml:"listen"`
	GoBGPCollector any `toml:"gobgp_collector"`
	// CheckDurationHistogram is check_duration_histogram.
	CheckDurationHistogram any `toml:"check_duration_histogram"`
}

type rawLog struct {
	Pos    pos `toml:"-"`
	Format any `toml:"format"`
	Level  any `toml:"level"`
}

type rawCheck struct {
	Pos          pos `toml:"-"`
	Name         any `toml:"name"`
	Type         any `toml:"type"`
	Interval     any `toml:"interval"`
	FastInterval any `toml:"fast_interval"`
	Timeout      any `toml:"timeout"`
	Rise         any `toml:"rise"`
	Fall         any `toml:"fall"`
	// Type-specific keys: the types each applies to are in checkKeyTypes
	// (validate_check.go).
	Address            any `toml:"address"`
	Send               any `toml:"send"`
	Expect             any `toml:"expect"`
	TLS                any `toml:"tls"`
	SourceAddress      any `toml:"source_address"`
	TLSServerName      any `toml:"tls_server_name"`
	CAFile             any `toml:"ca_file"`
	CertFile           any `toml:"cert_file"`
	KeyFile            any `toml:"key_file"`
	InsecureSkipVerify any `toml:"insecure_skip_verify"`
	URL                any `toml:"url"`
	Method             any `toml:"method"`
	ExpectStatus       any `toml:"expect_status"`
	ExpectBody         any `toml:"expect_body"`
	ExpectBodyRegex    any `toml:"expect_body_regex"`
	Host               any `toml:"host"`
	Headers            any `toml:"headers"`
	FollowRedirects    any `toml:"follow_redirects"`
	MaxBodyBytes       any `toml:"max_body_bytes"`
	Server             any `toml:"server"`
	Protocol           any `toml:"protocol"`
	QueryName          any `toml:"query_name"`
	QueryType          any `toml:"query_type"`
	ExpectRcode        any `toml:"expect_rcode"`
	ExpectAnswer       any `toml:"expect_answer"`
	Service            any `toml:"service"`
	Command            any `toml:"command"`
	Shell              any `toml:"shell"`
	Env                any `toml:"env"`
	Dir                any `toml:"dir"`
	PIDFile            any `toml:"pid_file"`
	Unit               any `toml:"unit"`
	TTL                any `toml:"ttl"`
}

type rawVIP struct {
	Pos              pos `toml:"-"`
	Name             any `toml:"name"`
	Prefixes         any `toml:"prefixes"`
	Checks           any `toml:"checks"`
	Require          any `toml:"require"`
	Communities      any `toml:"communities"`
	LargeCommunities any `toml:"large_communities"`
	MED              any `toml:"med"`
	LocalPref        any `toml:"local_pref"`
	Prepend          any `toml:"prepend"`
	AllowAggregate   any `toml:"allow_aggregate"`
	AllowDefault     any `toml:"allow_default_route"`
	RemoveOnWithdraw any `toml:"remove_on_withdraw"`
	OnAddressLost    any `toml:"on_address_lost"`
	DrainTime        any `toml:"drain_time"`
	MaintenanceFile  any `toml:"maintenance_file"`
	OnFailure        any `toml:"on_failure"`
	MaxFlaps         any `toml:"max_flaps"`
	FlapWindow       any `toml:"flap_window"`
	HoldDown         any `toml:"hold_down"`
	Peers            any `toml:"peers"`
	MinSites         any `toml:"min_sites"`

	Degraded *rawDegraded `toml:"degraded"`
}

type rawDegraded struct {
	Pos              pos `toml:"-"`
	Prepend          any `toml:"prepend"`
	MED              any `toml:"med"`
	Communities      any `toml:"communities"`
	LargeCommunities any `toml:"large_communities"`
	MinPassing       any `toml:"min_passing"`
}

// rawFleet is [fleet].
type rawFleet struct {
	Pos               pos `toml:"-"`
	EtcdEndpoints     any `toml:"etcd_endpoints"`
	Site              any `toml:"site"`
	Node              any `toml:"node"`
	KeyPrefix         any `toml:"key_prefix"`
	CAFile            any `toml:"ca_file"`
	CertFile          any `toml:"cert_file"`
	KeyFile           any `toml:"key_file"`
	OnCoordinatorLost any `toml:"on_coordinator_lost"`
	MaxDrained        any `toml:"max_drained"`
	LeaseTTL          any `toml:"lease_ttl"`
	Timeout           any `toml:"timeout"`
}

type rawNode struct {
	Pos             pos `toml:"-"`
	DrainTime       any `toml:"drain_time"`
	MaintenanceFile any `toml:"maintenance_file"`
	StartupDelay    any `toml:"startup_delay"`
}

var posType = reflect.TypeFor[pos]()

// rawKeys are a raw* type's TOML keys: by field index (tags, "" for a
// field without one) and the field index of each key (index).
type rawKeys struct {
	tags  []string
	index map[string]int
}

// keyCache holds each raw* type's rawKeys, read once per type (10,000
// [[vip]] tables share one).
var keyCache sync.Map // reflect.Type → *rawKeys

func rawFields(t reflect.Type) *rawKeys {
	if k, ok := keyCache.Load(t); ok {
		return k.(*rawKeys)
	}
	k := &rawKeys{tags: make([]string, t.NumField()), index: map[string]int{}}
	for i := range t.NumField() {
		if tag := t.Field(i).Tag.Get("toml"); tag != "" && tag != "-" {
			k.tags[i] = tag
			k.index[tag] = i
		}
	}
	keyCache.Store(t, k)
	return k
}

// fill copies the table m into the struct dst (a raw* type), reporting
// unknown keys and tables of the wrong shape. name is the table's TOML key
// (for messages) and n its lineIndex node.
func (c *collector) fill(m map[string]any, dst reflect.Value, name toml.Key, n *node) {
	fields := rawFields(dst.Type()).index
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := m[k]
		kname := append(slices.Clip(name), k)
		kn := n.key(k)
		i, ok := fields[k]
		if !ok {
			c.add("", lineOrParent(kn, n), "unknown key %q", kname.String())
			continue
		}
		f := dst.Field(i)
		switch f.Kind() {
		case reflect.Interface:
			f.Set(reflect.ValueOf(v))
		case reflect.Pointer:
			tm, ok := v.(map[string]any)
			if !ok {
				c.failed[kname.String()] = true
				c.add(kname.String(), lineOrParent(kn, n), "expected a table, got %s", describe(v))
				continue
			}
			f.Set(c.table(tm, f.Type().Elem(), kname, kn))
		case reflect.Slice:
			elems, ok := tableArray(v)
			if !ok {
				c.failed[kname.String()] = true
				c.add(kname.String(), lineOrParent(kn, n), "expected an array of tables ([[%s]]), got %s", kname, describe(v))
				continue
			}
			out := reflect.MakeSlice(f.Type(), 0, len(elems))
			for j, e := range elems {
				en := kn.elem(j)
				tm, ok := e.(map[string]any)
				if !ok {
					c.add(fmt.Sprintf("%s[%d]", kname, j+1), lineOrParent(en, kn), "expected a table, got %s", describe(e))
					continue
				}
				out = reflect.Append(out, c.table(tm, f.Type().Elem().Elem(), kname, en))
			}
			f.Set(out)
		}
	}
}

// table decodes m into a new *T, T being a raw* type with a pos field.
func (c *collector) table(m map[string]any, t reflect.Type, name toml.Key, n *node) reflect.Value {
	v := reflect.New(t)
	for i := range t.NumField() {
		if t.Field(i).Type == posType {
			v.Elem().Field(i).Set(reflect.ValueOf(pos{Node: n, At: n.pos()}))
		}
	}
	c.fill(m, v.Elem(), name, n)
	return v
}

// lineOrParent returns the position of n, else that of parent.
func lineOrParent(n, parent *node) position {
	if at := n.pos(); at.line > 0 {
		return at
	}
	return parent.pos()
}

// tableArray returns the elements of an array of tables or of an inline array.
func tableArray(v any) ([]any, bool) {
	switch v := v.(type) {
	case []map[string]any:
		out := make([]any, len(v))
		for i, m := range v {
			out[i] = m
		}
		return out, true
	case []any:
		return v, true
	}
	return nil, false
}

// describe names the TOML type of a decoded value, with the value itself for
// scalars: `string "abc"`, "integer 5", "array".
func describe(v any) string {
	switch v := v.(type) {
	case string:
		if len(v) > 64 {
			return fmt.Sprintf("string %q...", v[:64])
		}
		return fmt.Sprintf("string %q", v)
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		f := strconv.FormatFloat(v, 'g', -1, 64)
		if !strings.ContainsAny(f, ".eIN") {
			f += ".0" // as written in TOML: 179.0
		}
		return "float " + f
	case bool:
		return fmt.Sprintf("boolean %t", v)
	case []any, []map[string]any:
		return "array"
	case map[string]any:
		return "table"
	case time.Time:
		return "datetime"
	}
	return fmt.Sprintf("%T", v)
}
