package scenarios

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// TestOptionRefinements: Refusing refuses a spelling before the row's own
// decoding, OptionalStrOpt refuses an empty value in a scenario but
// accepts "" made in Go, and WithValues is what the docs show.
func TestOptionRefinements(t *testing.T) {
	type opts struct {
		Mode  string
		Group string
	}
	table := OptionsTable[opts]{
		Defaults: func() opts { return opts{Mode: "fast"} },
		Opts: []Opt[opts]{
			EnumOpt("mode", func(o *opts) *string { return &o.Mode }, []string{"fast", "slow"}, "how").Refusing(func(v string) string {
				if v == "1" {
					return "write the mode by name"
				}
				return ""
			}),
			OptionalStrOpt("group", func(o *opts) *string { return &o.Group }, "leave it out", "the group").WithValues("group name"),
		},
	}
	for src, want := range map[string]string{
		"mode: 1":    "t.yaml:1:7: x.mode: write the mode by name",
		"mode: fst":  `t.yaml:1:7: x.mode: unknown value "fst" (did you mean "fast"?); valid: fast, slow`,
		"group: ''":  "t.yaml:1:8: x.group: must not be empty; leave it out",
		"mode: slow": "",
	} {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			t.Fatal(err)
		}
		d := NewDecoder("t.yaml")
		got := table.Decode(d, doc.Content[0], "x")
		var msgs []string
		for _, p := range d.Problems() {
			msgs = append(msgs, p.Error())
		}
		if strings.Join(msgs, "\n") != want {
			t.Errorf("%s: problems %q, want %q", src, msgs, want)
		}
		if want == "" && got.Mode != "slow" {
			t.Errorf("%s: mode %q", src, got.Mode)
		}
	}
	if ps := table.Check(&opts{Mode: "fast"}); len(ps) != 0 {
		t.Errorf("Check of an empty group made in Go: %v", ps)
	}
	if md := table.Markdown(); !strings.Contains(md, "| `group` | group name | `` | the group |") {
		t.Errorf("Markdown:\n%s", md)
	}
}

// TestFillZero: a zero field the row refuses takes its default (inside a
// block too, from the block's own defaults), a zero the row takes (a bool,
// a 0s duration) stays, a non-zero bad value stays for Check to report,
// and rows of an absent block are left alone.
func TestFillZero(t *testing.T) {
	type block struct{ Size int }
	type opts struct {
		Count  int
		Linger time.Duration
		On     bool
		Mode   string
		Block  *block
	}
	table := OptionsTable[opts]{
		Defaults: func() opts { return opts{Count: 3, Linger: time.Second, On: true, Mode: "fast"} },
		Opts: []Opt[opts]{
			IntOpt("count", func(o *opts) *int { return &o.Count }, 1, 10, "how many"),
			DurOpt("linger", func(o *opts) *time.Duration { return &o.Linger }, 0, time.Minute, "wait"),
			BoolOpt("on", func(o *opts) *bool { return &o.On }, "on"),
			EnumOpt("mode", func(o *opts) *string { return &o.Mode }, []string{"fast", "slow"}, "how"),
			BlockOpt("block", func(o *opts) { o.Block = &block{Size: 7} }, func(o *opts) bool { return o.Block != nil }, "a block"),
			IntOpt("block.size", func(o *opts) *int { return &o.Block.Size }, 1, 0, "its size"),
		},
	}
	o := opts{Block: &block{}}
	table.FillZero(&o)
	if want := (opts{Count: 3, Mode: "fast", Block: &block{Size: 7}}); o.Count != want.Count || o.Linger != 0 || o.On || o.Mode != want.Mode || o.Block.Size != 7 {
		t.Errorf("filled %+v (block %+v), want %+v (block %+v)", o, *o.Block, want, *want.Block)
	}
	bad := opts{Count: -1}
	table.FillZero(&bad)
	if bad.Count != -1 || bad.Block != nil || bad.Mode != "fast" {
		t.Errorf("filled %+v: want count -1 kept for Check, mode filled, no block", bad)
	}
	if got := table.Check(&bad); len(got) != 1 || !strings.HasPrefix(got[0], "count: ") {
		t.Errorf("Check after FillZero: %q, want the count's problem only", got)
	}
}
