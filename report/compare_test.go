package report

import (
	"bytes"
	"strings"
	"testing"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/spate-dev/spate/accounting"
)

func TestParseTolerance(t *testing.T) {
	for _, c := range []struct {
		in       string
		relative bool
		limit    float64
	}{
		{"e2e.p99=10%", true, 0.10},
		{" e2e.p99 = 5ms ", false, 5000},
		{"e2e.max=0", false, 0},
		{"lost=0", false, 0},
		{"duplicates.ratio=0.001", false, 0.001},
		{"achieved_rate=2.5%", true, 0.025},
		{"publish.p9999=1s", false, 1e6},
	} {
		tol, err := ParseTolerance(c.in)
		if err != nil || tol.Relative != c.relative || tol.Limit != c.limit {
			t.Errorf("ParseTolerance(%q) = %+v, %v", c.in, tol, err)
		}
	}
	for _, bad := range []string{"", "e2e.p99", "=10%", "e2e.p99=", "e2e.p99=5", "e2e.p99=-1ms", "e2e.p100=1ms",
		"latency=10%", "lost=-1", "lost=ten", "lost=-5%", "e2e.p99=10"} {
		if _, err := ParseTolerance(bad); err == nil {
			t.Errorf("ParseTolerance(%q): no error", bad)
		}
	}
}

func mustTolerances(t *testing.T, specs ...string) []Tolerance {
	t.Helper()
	var out []Tolerance
	for _, s := range specs {
		tol, err := ParseTolerance(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tol)
	}
	return out
}

func TestCompareEqual(t *testing.T) {
	base, run := testResults(t), testResults(t)
	c, err := Compare(base, run, "a", "b", mustTolerances(t, "e2e.p99=0%", "lost=0", "achieved_rate=0%", "duplicates.ratio=0"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Regressions) != 0 || len(c.Warnings) != 0 {
		t.Errorf("equal runs: regressions %v, warnings %v", c.Regressions, c.Warnings)
	}
	var b bytes.Buffer
	if err := WriteComparison(&b, c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "result  PASS: 4 of 4 tolerances held") {
		t.Errorf("comparison:\n%s", b.String())
	}
}

// TestCompareRegressions: a run with higher latency, more loss and a lower
// rate regresses on exactly the metrics whose tolerances it exceeds, in
// each metric's own direction.
func TestCompareRegressions(t *testing.T) {
	base := chartResults(t)
	run := chartResults(t)
	// Make the run worse: every e2e value doubled (p99 +100%), 5 more lost,
	// 10% lower achieved rate; and better on publish latency.
	h, _ := run.Histogram(accounting.E2E)
	worse := accounting.NewHistogram()
	for _, b := range h.Distribution() {
		if b.Count > 0 {
			worse.RecordValues(b.To*2, b.Count)
		}
	}
	run.hists[accounting.E2E] = worse
	run.Counts.Lost += 5
	run.Rate.AchievedMean *= 0.9
	run.RunID = "00000000feedface"

	c, err := Compare(base, run, "base", "run", mustTolerances(t,
		"e2e.p99=50%",       // +100%: regression
		"e2e.p50=150%",      // +100%: within
		"lost=3",            // +5: regression
		"achieved_rate=5%",  // −10%: regression (down is worse)
		"sent_rate=0%",      // unchanged
		"publish.p99=0%",    // unchanged
		"duplicates=0",      // unchanged
		"service.p9999=1ms", // not in the default list: added
	))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range c.Regressions {
		got = append(got, m.Metric)
	}
	if strings.Join(got, ",") != "e2e.p99,achieved_rate,lost" {
		t.Errorf("regressions %v, want e2e.p99, achieved_rate, lost", got)
	}
	var b bytes.Buffer
	if err := WriteComparison(&b, c); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"result  REGRESSION: e2e.p99, achieved_rate, lost", "service.p9999", "✗ 100.00% worse, more than 50.00%", "✗ 5 worse, more than 3"} {
		if !strings.Contains(out, want) {
			t.Errorf("comparison lacks %q:\n%s", want, out)
		}
	}
	golden(t, "compare.golden", b.Bytes())

	// A better run does not regress even with zero tolerances.
	c, _ = Compare(run, base, "run", "base", mustTolerances(t, "e2e.p99=0%", "lost=0", "achieved_rate=0%"))
	if len(c.Regressions) != 0 {
		t.Errorf("an improvement regressed: %+v", c.Regressions)
	}

	// Undefined in the run (nothing received) regresses; undefined in the
	// baseline is not checked.
	empty := &Results{SchemaVersion: SchemaVersion, Histograms: map[string]string{}}
	empty.hists = map[string]*hdr.Histogram{accounting.E2E: accounting.NewHistogram(), accounting.Service: accounting.NewHistogram(), accounting.Publish: accounting.NewHistogram()}
	c, _ = Compare(base, empty, "base", "empty", mustTolerances(t, "e2e.p99=10%"))
	if len(c.Regressions) != 1 || c.Regressions[0].Note != "undefined in the run" {
		t.Errorf("undefined in the run: %+v", c.Regressions)
	}
	c, _ = Compare(empty, base, "empty", "base", mustTolerances(t, "e2e.p99=10%"))
	if len(c.Regressions) != 0 {
		t.Errorf("undefined in the baseline: %+v", c.Regressions)
	}
	if _, err := Compare(base, run, "a", "b", mustTolerances(t, "lost=0", "lost=1")); err == nil {
		t.Error("two tolerances for one metric: no error")
	}
}
