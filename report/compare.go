package report

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/spate-dev/spate/scenarios"
)

// Tolerance bounds how much worse a metric may get from a baseline run to
// a new run before Compare calls it a regression. It is written
// METRIC=LIMIT, METRIC being a threshold metric name (e2e.p99, lost,
// duplicates.ratio, achieved_rate, ...):
//
//	e2e.p99=10%          at most 10% worse than the baseline (relative)
//	e2e.p99=5ms          at most 5 ms worse (absolute, latencies need a unit)
//	lost=0               no more lost messages than the baseline
//	duplicates.ratio=0.001  at most 0.1 percentage points more (absolute)
//
// A limit ending in % is always relative to the baseline's value; any
// other is absolute, in the metric's unit. Which way is worse depends on
// the metric (see WorseWhenHigher).
type Tolerance struct {
	Metric   string
	Relative bool    // Limit is a fraction of the baseline value
	Limit    float64 // a fraction, or an absolute amount (µs for latencies)
	Text     string  // as written
}

// ParseTolerance parses METRIC=LIMIT.
func ParseTolerance(s string) (Tolerance, error) {
	metric, limit, ok := strings.Cut(strings.TrimSpace(s), "=")
	metric, limit = strings.TrimSpace(metric), strings.TrimSpace(limit)
	t := Tolerance{Metric: metric, Text: s}
	if !ok || metric == "" || limit == "" {
		return t, fmt.Errorf("%q: want METRIC=LIMIT, e.g. e2e.p99=10%% or lost=0", s)
	}
	typ, known := scenarios.LookupMetric(metric)
	if !known {
		return t, fmt.Errorf("%q: unknown metric %q; use a threshold metric name such as e2e.p99, lost, duplicates.ratio or achieved_rate", s, metric)
	}
	if p, isPct := strings.CutSuffix(limit, "%"); isPct {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return t, fmt.Errorf("%q: %q is not a percentage of at least 0", s, limit)
		}
		t.Relative, t.Limit = true, v/100
		return t, nil
	}
	if typ == scenarios.Latency {
		if v, err := strconv.ParseFloat(limit, 64); err == nil && v == 0 {
			return t, nil // 0 needs no unit
		}
		d, err := scenarios.ParseDuration(limit)
		if err != nil || d < 0 {
			return t, fmt.Errorf("%q: %s is a latency; give a duration (5ms) or a percentage (10%%), not %q", s, metric, limit)
		}
		t.Limit = float64(d.Nanoseconds()) / 1e3
		return t, nil
	}
	v, err := strconv.ParseFloat(limit, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return t, fmt.Errorf("%q: %q is not a number of at least 0 or a percentage (10%%)", s, limit)
	}
	t.Limit = v
	return t, nil
}

// WorseWhenHigher reports which way a metric gets worse: up for latencies,
// losses, duplicates, reordering, failures and their ratios; down for
// rates, headroom and the sent, acked and received counts.
func WorseWhenHigher(metric string) bool {
	if slices.Contains(scenarios.RateMetrics, metric) || slices.Contains(scenarios.CapacityMetrics, metric) {
		return false
	}
	switch metric {
	case "sent", "acked", "received":
		return false
	}
	return true
}

// CompareMetrics are the figures Compare always shows, in order; metrics
// that tolerances name are added after them.
var CompareMetrics = []string{
	"e2e.p50", "e2e.p90", "e2e.p99", "e2e.p999", "e2e.max",
	"service.p50", "service.p99", "service.p999", "service.max",
	"publish.p50", "publish.p99", "publish.p999", "publish.max",
	"target_rate", "achieved_rate", "sent_rate", "acked_rate",
	"sent", "acked", "received", "lost", "duplicates", "reordered", "failed",
	"unconfirmed", "unsent", "unconfirmed_delivered", "redelivered", "dead_lettered",
	"lost.ratio", "duplicates.ratio", "reordered.ratio",
}

// optionalCounts are left out of a comparison when both runs have none.
var optionalCounts = []string{"unconfirmed", "unsent", "unconfirmed_delivered", "redelivered", "dead_lettered"}

// ComparedMetric is one metric of a comparison.
type ComparedMetric struct {
	Metric        string
	Base, Run     float64
	BaseOK, RunOK bool // defined in each run
	// Worse is true when the run is worse than the baseline in the
	// metric's direction.
	Worse      bool
	Tolerance  *Tolerance
	Regression bool
	Note       string // why a regression, or why it could not be checked
}

// Change is the run's value minus the baseline's.
func (m ComparedMetric) Change() float64 { return m.Run - m.Base }

// Comparison is a baseline and a run side by side.
type Comparison struct {
	BaseLabel, RunLabel string
	Base, Run           *Results
	Metrics             []ComparedMetric
	Regressions         []ComparedMetric
	// Warnings note differences that make the comparison doubtful: another
	// scenario, another driver, another target rate.
	Warnings []string
}

// Compare compares run with base metric by metric and checks each
// tolerance. A metric undefined in the baseline cannot regress; one defined
// in the baseline and undefined in the run (nothing received, say) is a
// regression when a tolerance names it. Labels name the runs in the output
// (their directories, say).
func Compare(base, run *Results, baseLabel, runLabel string, tols []Tolerance) (*Comparison, error) {
	c := &Comparison{BaseLabel: baseLabel, RunLabel: runLabel, Base: base, Run: run}
	names := slices.Clone(CompareMetrics)
	byMetric := map[string]*Tolerance{}
	for i := range tols {
		t := &tols[i]
		if _, dup := byMetric[t.Metric]; dup {
			return nil, fmt.Errorf("%s has two tolerances", t.Metric)
		}
		byMetric[t.Metric] = t
		if !slices.Contains(names, t.Metric) {
			names = append(names, t.Metric)
		}
	}
	for _, name := range names {
		m := ComparedMetric{Metric: name, Tolerance: byMetric[name]}
		var err error
		if m.Base, m.BaseOK, err = base.Metric(name); err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
		if m.Run, m.RunOK, err = run.Metric(name); err != nil {
			return nil, fmt.Errorf("run: %w", err)
		}
		worse := m.Run - m.Base
		if !WorseWhenHigher(name) {
			worse = -worse
		}
		m.Worse = m.BaseOK && m.RunOK && worse > 0
		if t := m.Tolerance; t != nil {
			switch {
			case !m.BaseOK:
				m.Note = "undefined in the baseline: not checked"
			case !m.RunOK:
				m.Regression, m.Note = true, "undefined in the run"
			case worse <= 0:
			case t.Relative && m.Base == 0:
				m.Regression, m.Note = true, "worse than a baseline of 0"
			case t.Relative && worse/math.Abs(m.Base) > t.Limit*(1+1e-12):
				m.Regression = true
				m.Note = fmt.Sprintf("%s worse, more than %s", formatPercent(worse/math.Abs(m.Base)), formatPercent(t.Limit))
			case !t.Relative && worse > t.Limit*(1+1e-12):
				m.Regression = true
				m.Note = fmt.Sprintf("%s worse, more than %s", formatMetricAbs(name, worse), formatMetricAbs(name, t.Limit))
			}
		}
		// The rarer counts are shown only when either run has some.
		if m.Tolerance == nil && m.Base == 0 && m.Run == 0 && slices.Contains(optionalCounts, name) {
			continue
		}
		c.Metrics = append(c.Metrics, m)
		if m.Regression {
			c.Regressions = append(c.Regressions, m)
		}
	}
	if base.Scenario != run.Scenario {
		c.Warnings = append(c.Warnings, fmt.Sprintf("different scenarios: %q and %q", base.Scenario, run.Scenario))
	}
	if base.ProduceOnly != run.ProduceOnly {
		c.Warnings = append(c.Warnings, "one run is produce-only (no consumers): its delivery figures are not measured")
	}
	if base.Driver != run.Driver {
		c.Warnings = append(c.Warnings, fmt.Sprintf("different drivers: %s and %s", base.Driver, run.Driver))
	}
	if bt, rt := base.Rate.TargetMean, run.Rate.TargetMean; bt != nil && rt != nil && math.Abs(*bt-*rt) > 0.01*math.Max(*bt, 1) {
		c.Warnings = append(c.Warnings, fmt.Sprintf("different target rates: %s/s and %s/s", formatRate(*bt), formatRate(*rt)))
	}
	for _, r := range []*Results{base, run} {
		if r.Interrupted || r.Error != "" {
			c.Warnings = append(c.Warnings, fmt.Sprintf("run %s did not complete (interrupted or failed)", r.RunID))
		}
	}
	return c, nil
}

// formatMetricAbs formats an amount of metric name (a difference).
func formatMetricAbs(name string, v float64) string {
	if strings.HasSuffix(name, ".ratio") {
		return strconv.FormatFloat(v*100, 'g', 2, 64) + " pp" // percentage points
	}
	return formatMetric(name, v)
}

// WriteComparison writes the comparison as a table: each metric's baseline
// and run values, the change, the tolerance and whether it held, then the
// regressions.
func WriteComparison(w io.Writer, c *Comparison) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	run := func(label string, r *Results) {
		p("  %-9s %s: %s, run %s", label, c.label(r), r.Scenario, r.RunID)
		if !r.StartedAt.IsZero() {
			p(", %s", r.StartedAt.UTC().Format("2006-01-02 15:04 UTC"))
		}
		p(", verdict %s\n", strings.ToUpper(r.Verdict))
	}
	p("compare\n")
	run("baseline", c.Base)
	run("run", c.Run)
	for _, warn := range c.Warnings {
		p("  warning: %s\n", warn)
	}
	p("\n%-24s %14s %14s %14s %10s\n", "metric", "baseline", "run", "change", "tolerance")
	for _, m := range c.Metrics {
		bv, rv := "-", "-"
		if m.BaseOK {
			bv = formatMetric(m.Metric, m.Base)
		}
		if m.RunOK {
			rv = formatMetric(m.Metric, m.Run)
		}
		change := "-"
		if m.BaseOK && m.RunOK {
			change = formatChange(m)
		}
		tol, mark := "", ""
		if m.Tolerance != nil {
			tol = strings.TrimSpace(m.Tolerance.Text[strings.Index(m.Tolerance.Text, "=")+1:])
			mark = "✓"
			if m.Regression {
				mark = "✗ " + m.Note
			} else if m.Note != "" {
				mark = "? " + m.Note
			}
		}
		p("%s\n", strings.TrimRight(fmt.Sprintf("%-24s %14s %14s %14s %10s  %s", m.Metric, bv, rv, change, tol, mark), " "))
	}
	p("\n")
	if len(c.Regressions) == 0 {
		checked := 0
		for _, m := range c.Metrics {
			if m.Tolerance != nil {
				checked++
			}
		}
		if checked == 0 {
			p("result  no tolerances given (--max-regression METRIC=LIMIT): nothing checked\n")
		} else {
			p("result  PASS: %d of %d tolerances held\n", checked, checked)
		}
	} else {
		var names []string
		for _, m := range c.Regressions {
			names = append(names, m.Metric)
		}
		p("result  REGRESSION: %s\n", strings.Join(names, ", "))
	}
	return bw.Flush()
}

func (c *Comparison) label(r *Results) string {
	if r == c.Base {
		return c.BaseLabel
	}
	return c.RunLabel
}

// formatChange formats the change of m: relative for most metrics,
// absolute for counts and when the baseline is 0.
func formatChange(m ComparedMetric) string {
	d := m.Change()
	if d == 0 {
		return "0"
	}
	sign := "+"
	if d < 0 {
		sign = "-"
	}
	abs := math.Abs(d)
	if m.Base == 0 || strings.HasSuffix(m.Metric, ".ratio") {
		return sign + formatMetricAbs(m.Metric, abs)
	}
	rel := abs / math.Abs(m.Base)
	typ, _ := scenarios.LookupMetric(m.Metric)
	if typ == scenarios.Latency {
		return sign + strconv.FormatFloat(rel*100, 'f', 1, 64) + "%"
	}
	if slices.Contains(scenarios.RateMetrics, m.Metric) {
		return sign + strconv.FormatFloat(rel*100, 'f', 1, 64) + "%"
	}
	return sign + formatMetric(m.Metric, abs) + " (" + sign + strconv.FormatFloat(rel*100, 'f', 1, 64) + "%)"
}
