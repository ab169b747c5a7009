package scenarios

import (
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type color string

type valueOpts struct {
	Color color
	Count int // 0: the default
	Names []string
	Other int
}

var valueTable = OptionsTable[valueOpts]{
	Defaults: func() valueOpts { return valueOpts{Color: "red"} },
	Opts: []Opt[valueOpts]{
		NamedEnumOpt("color", "color", func(o *valueOpts) *color { return &o.Color }, []color{"red", "blue"}, "a color"),
		ValueOpt("count", "≥ 1", func(o *valueOpts) *int { return &o.Count }, func(v int) string {
			if v < 1 {
				return "must be at least 1 (leave it out for the default)"
			}
			return ""
		}, "a count").Optional(func(o *valueOpts) bool { return o.Count == 0 }).WithDefault("3"),
		ValueOpt[valueOpts, []string]("names", "list", func(o *valueOpts) *[]string { return &o.Names }, nil, "names"),
		IntOpt("other", func(o *valueOpts) *int { return &o.Other }, 0, 9, "another").WithValues("a digit"),
	},
}

// TestValueOpts: ValueOpt and NamedEnumOpt decode with the driver's own
// wording at the value's position; Optional lets Check pass the zero a Go
// caller leaves for a default but not a scenario's 0; ReportAt puts a rule
// between options at its option, once.
func TestValueOpts(t *testing.T) {
	decode := func(src string) (valueOpts, []string) {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			t.Fatal(err)
		}
		d := NewDecoder("t.yaml")
		n := doc.Content[0]
		o := valueTable.Decode(d, n, "x")
		if o.Other == 5 { // a rule between options, for ReportAt
			ReportAt(d, n, "x", "color", "clashes with other: 5")
			ReportAt(d, n, "x", "count", "clashes with other: 5")
		}
		var got []string
		for _, p := range d.Problems() {
			got = append(got, p.Error())
		}
		return o, got
	}
	o, ps := decode("{color: blue, count: 2, names: [a, b]}")
	if want := (valueOpts{Color: "blue", Count: 2, Names: []string{"a", "b"}}); len(ps) > 0 || !reflect.DeepEqual(o, want) {
		t.Errorf("decoded %+v, %v; want %+v", o, ps, want)
	}
	_, ps = decode("{color: green, count: 0}")
	want := []string{
		`t.yaml:1:9: x.color: unknown color "green"; valid: red, blue`,
		"t.yaml:1:23: x.count: must be at least 1 (leave it out for the default)",
	}
	if strings.Join(ps, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant\n%s", strings.Join(ps, "\n"), strings.Join(want, "\n"))
	}
	// The rule is reported at color's value, not at count (which did not
	// decode), nor at other.
	_, ps = decode("{color: blue, count: -1, other: 5}")
	want = []string{
		"t.yaml:1:9: x.color: clashes with other: 5",
		"t.yaml:1:22: x.count: must be at least 1 (leave it out for the default)",
	}
	if strings.Join(ps, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant\n%s", strings.Join(ps, "\n"), strings.Join(want, "\n"))
	}
	if got := valueTable.Check(&valueOpts{Color: "red"}); len(got) > 0 {
		t.Errorf("Check of a zero count: %v, want none", got)
	}
	if got, want := valueTable.Check(&valueOpts{Color: "green", Count: -1}), []string{
		`color: unknown color "green"; valid: red, blue`,
		"count: must be at least 1 (leave it out for the default)",
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("Check: %q, want %q", got, want)
	}
	if md := valueTable.Markdown(); !strings.Contains(md, "| `color` | `red`, `blue` | `red` | a color |") ||
		!strings.Contains(md, "| `count` | ≥ 1 | 3 | a count |") || !strings.Contains(md, "| `other` | a digit | `0` | another |") {
		t.Errorf("markdown:\n%s", md)
	}
}
