package migrate

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// dump renders statements as "line:word word {…}" for comparison.
func dump(ss []*Stmt) string {
	var b strings.Builder
	var walk func([]*Stmt)
	walk = func(ss []*Stmt) {
		for i, s := range ss {
			if i > 0 {
				b.WriteString(" ")
			}
			b.WriteString(itoa(s.Line) + ":")
			for j, w := range s.Words {
				if j > 0 {
					b.WriteString(" ")
				}
				if w.Quoted {
					b.WriteString("'" + w.Text + "'")
				} else {
					b.WriteString(w.Text)
				}
			}
			if s.HasBlock {
				b.WriteString("{")
				walk(s.Block)
				b.WriteString("}")
			}
			b.WriteString(";")
		}
	}
	walk(ss)
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestParseBlocks(t *testing.T) {
	for _, tc := range []struct {
		name string
		sx   syntax
		in   string
		want string
	}{
		{"exabgp", syntax{semicolons: true},
			"neighbor 198.18.1.1 { # core\n  local-as 65001;\n  md5-password \"a b;c\";\n  family { ipv4 unicast; }\n}\n",
			"1:neighbor 198.18.1.1{2:local-as 65001; 3:md5-password 'a b;c'; 4:family{4:ipv4 unicast;};};"},
		{"bird", syntax{semicolons: true, blockComments: true},
			"protocol bgp a /* x\n y */ {\n  local as 1; ipv4 { import none; };\n}",
			"1:protocol bgp a{3:local as 1; 3:ipv4{3:import none;};};"},
		{"keepalived", syntax{bang: true},
			"! comment\nvrrp_script chk\n{\n  script \"pidof x\"\n  weight -2 # w\n}\nvirtual_ipaddress { 203.0.113.1 }\n",
			"2:vrrp_script chk{4:script 'pidof x'; 5:weight -2;}; 7:virtual_ipaddress{7:203.0.113.1;};"},
		{"keepalived url fragment", syntax{bang: true},
			"url {\n path /a#b\n}\n",
			"1:url{2:path /a#b;};"},
		{"last statement without semicolon", syntax{semicolons: true},
			"a { b c }", "1:a{1:b c;};"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ss, err := parseBlocks("f", []byte(tc.in), tc.sx)
			if err != nil {
				t.Fatal(err)
			}
			if got := dump(ss); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestParseBlocksRaw(t *testing.T) {
	ss, err := parseBlocks("f", []byte(`process p { run a --cmd "curl -s x" --ip 1.2.3.4; }`), syntax{semicolons: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ss[0].Block[0].Raw, `run a --cmd "curl -s x" --ip 1.2.3.4`; got != want {
		t.Errorf("Raw = %q, want %q", got, want)
	}
}

func TestParseBlocksErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		sx   syntax
		line int
		msg  string
	}{
		{"a {\n b;\n", syntax{semicolons: true}, 1, "not closed"},
		{"a;\n}\n", syntax{semicolons: true}, 2, "without a matching"},
		{"a \"x\n", syntax{bang: true}, 1, "end of the line"},
		{"a;\nb \"x;\n", syntax{semicolons: true}, 2, "end of the file"},
		{"/* x\n", syntax{semicolons: true, blockComments: true}, 1, "not closed"},
		{"a;\nb\x00;", syntax{semicolons: true}, 2, "NUL"},
		{"a;\nb \xff;", syntax{semicolons: true}, 2, "UTF-8"},
		{strings.Repeat("a {", 40), syntax{semicolons: true}, 1, "nested"},
	} {
		_, err := parseBlocks("f.conf", []byte(tc.in), tc.sx)
		var se *SyntaxError
		if !errors.As(err, &se) || se.Line != tc.line || !strings.Contains(se.Msg, tc.msg) || se.File != "f.conf" {
			t.Errorf("%q: got %v, want line %d with %q", tc.in, err, tc.line, tc.msg)
		}
	}
}

func FuzzParseBlocks(f *testing.F) {
	f.Add([]byte("neighbor 1.2.3.4 { local-as 1; family { ipv4 unicast; } }"), true)
	f.Add([]byte("vrrp_instance v {\n virtual_ipaddress {\n 1.2.3.4/24 dev eth0\n }\n}\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, semicolons bool) {
		ss, err := parseBlocks("f", data, syntax{semicolons: semicolons, bang: !semicolons, blockComments: semicolons})
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		var walk func([]*Stmt, int)
		walk = func(ss []*Stmt, depth int) {
			if depth > maxDepth+1 {
				t.Fatal("too deep")
			}
			for _, s := range ss {
				if s.Line < 1 || (len(s.Words) == 0 && !s.HasBlock) {
					t.Fatalf("bad statement %+v", s)
				}
				walk(s.Block, depth+1)
			}
		}
		walk(ss, 0)
	})
}
