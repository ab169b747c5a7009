package drivertest

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/scenarios"
)

// DecodeOptions runs kind's Options decoder on the options block src, as a
// scenario file named test.yaml would hand it over at driver.<kind>. A nil
// src is the bare `driver: <kind>`. It returns the decoded options and every
// problem found.
func DecodeOptions(t testing.TB, kind drivers.Kind, src *string) (any, scenarios.Problems) {
	t.Helper()
	d := scenarios.NewDecoder("test.yaml")
	field := "driver." + kind.Name
	if src == nil {
		return kind.Options(d, nil, field), d.Problems()
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(*src), &doc); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	return kind.Options(d, doc.Content[0], field), d.Problems()
}

// CheckProblems compares problems with want, in order. A wanted problem is
// its exact text ("file:line:col: field: message"), or "~" followed by a
// part of it for messages that list things that may grow.
func CheckProblems(t testing.TB, got scenarios.Problems, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(got), len(want), got)
	}
	for i, p := range got {
		g, w := p.Error(), want[i]
		if sub, ok := strings.CutPrefix(w, "~"); ok {
			if !strings.Contains(g, sub) {
				t.Errorf("problem %d = %q, want it to contain %q", i, g, sub)
			}
		} else if g != w {
			t.Errorf("problem %d = %q\n                 want %q", i, g, w)
		}
	}
}
