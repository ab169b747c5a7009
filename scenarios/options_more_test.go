package scenarios

import (
	"strings"
	"testing"

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
