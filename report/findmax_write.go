package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/scenarios"
)

// Chart ids of the find-max section of report.html, drawn only when the
// run had a find-max phase.
const (
	ChartFindMax           = "chart-find-max"            // e2e latency against the step rate, with the SLO
	ChartFindMaxThroughput = "chart-find-max-throughput" // achieved against target rate
)

// FindMaxCharts are the charts of the find-max section, by id.
var FindMaxCharts = []string{ChartFindMax, ChartFindMaxThroughput}

// outcomeLabel names an outcome for people.
func outcomeLabel(o string) string {
	switch o {
	case scenarios.SearchConverged:
		return "converged"
	case scenarios.SearchCeiling:
		return "reached the search's max"
	case scenarios.SearchNeverMet:
		return "never met the SLO"
	case scenarios.SearchStepLimit:
		return "step limit"
	case scenarios.SearchTimeBound:
		return "time bound reached"
	case scenarios.SearchInterrupted:
		return "interrupted"
	}
	return o
}

// FormatRate formats a rate in messages per second for people: whole
// messages with digit groups (12,500), one decimal below 100 (2.5).
func FormatRate(perSecond float64) string { return stepRate(perSecond) }

// stepRate is FormatRate.
func stepRate(v float64) string {
	if v < 100 {
		return formatRate(v)
	}
	return GroupInt(int64(math.Round(v)))
}

func factorText(f float64) string { return strconv.FormatFloat(f, 'g', 4, 64) + "x" }

func percentText(f float64) string { return strconv.FormatFloat(f*100, 'g', 4, 64) + "%" }

// searchText describes the search as configured.
func searchText(f *FindMaxResult) string {
	s := fmt.Sprintf("%s steps of %s from %s/s to %s/s, bisecting to %s; ", factorText(f.StepFactor), formatSeconds(f.HoldS),
		stepRate(f.StartRate), stepRate(f.MaxRate), percentText(f.Precision))
	if len(f.SLO) > 0 {
		s += "slo " + strings.Join(f.SLO, ", ") + "; "
	}
	if f.Backlog == scenarios.BacklogMustDrain {
		s += "the backlog must not keep growing"
	} else {
		s += "backlog ignored"
	}
	return s
}

// kneeText explains the knee figure.
func kneeText(f *FindMaxResult) string {
	if f.KneeRate == nil {
		return "-"
	}
	return fmt.Sprintf("%s/s (e2e p99 stays within %s: 2× the %s at the lowest rate, at least +1ms)",
		stepRate(*f.KneeRate), FormatMicros(*f.KneeLimitUS), FormatMicros(*f.BaseP99US))
}

// writeFindMaxText writes the find-max section of the text summary.
func writeFindMaxText(w io.Writer, r *Results) {
	f := r.FindMax
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	name := "find-max"
	if f.Name != "" && f.Name != name {
		name += " (" + f.Name + ")"
	}
	p("\n%s\n", name)
	p("  %-11s %s\n", "search", searchText(f))
	p("  %-11s at most %d steps of %s + up to %s settling: %s; ran %s\n", "bound", f.MaxSteps,
		formatSeconds(f.HoldS), formatSeconds(f.SettleS), formatSeconds(f.TimeBoundS), formatSeconds(f.EndS-f.StartS))
	p("  %-11s %s: %s\n", "outcome", outcomeLabel(f.Outcome), f.Message)
	sustained := "none"
	if f.SustainedRate != nil {
		sustained = stepRate(*f.SustainedRate) + "/s"
	}
	p("  %-11s %s\n", "sustained", sustained)
	p("  %-11s %s\n", "knee", kneeText(f))
	p("  %s\n", r.HeadroomLine()) // verbatim, so it can be quoted
	if len(f.Steps) == 0 {
		return
	}
	p("\n  %4s %-6s %9s %10s %8s %8s %8s %8s %15s %6s %5s  %s\n", "step", "kind", "rate/s", "achieved/s",
		"e2e p50", "p99", "p99.9", "pub p99", "backlog", "lost", "dup", "verdict")
	for _, s := range f.Steps {
		lat := func(l accounting.LatencySummary, v int64) string {
			if l.Count == 0 {
				return "-"
			}
			return FormatMicros(v)
		}
		mark := "✓"
		if !s.OK {
			mark = "✗"
		}
		p("  %4d %-6s %9s %10s %8s %8s %8s %8s %15s %6s %5s  %s %s\n", s.Step, s.Kind, stepRate(s.Rate), stepRate(s.AchievedRate),
			lat(s.LatencyUS.E2E, s.LatencyUS.E2E.P50), lat(s.LatencyUS.E2E, s.LatencyUS.E2E.P99), lat(s.LatencyUS.E2E, s.LatencyUS.E2E.P999),
			lat(s.LatencyUS.Publish, s.LatencyUS.Publish.P99), GroupInt(s.BacklogStart)+"→"+GroupInt(s.BacklogEnd),
			GroupInt(s.Lost), GroupInt(s.Duplicates), mark, s.Why)
	}
}

// writeFindMaxHTML writes the find-max section of report.html.
func writeFindMaxHTML(p func(string, ...any), r *Results) {
	f := r.FindMax
	p("<section class=\"findmax\">\n<h2>Capacity search (find-max%s)</h2>\n", esc(nameSuffix(f.Name)))
	p("<p class=\"muted small\">%s. At most %d steps of %s plus up to %s of settling each: the search ends within %s; it took %s.</p>\n",
		esc(searchText(f)), f.MaxSteps, esc(formatSeconds(f.HoldS)), esc(formatSeconds(f.SettleS)), esc(formatSeconds(f.TimeBoundS)), esc(formatSeconds(f.EndS-f.StartS)))
	sustained, sclass := "none", "bad"
	if f.SustainedRate != nil {
		sustained, sclass = stepRate(*f.SustainedRate)+"/s", "good"
	}
	knee := "–"
	if f.KneeRate != nil {
		knee = stepRate(*f.KneeRate) + "/s"
	}
	headroom, hclass, hnote := "–", "", "no --peak given"
	if f.Headroom != nil {
		headroom, hnote = factor(*f.Headroom), "over a peak of "+stepRate(*f.PeakRate)+"/s"
	} else if f.PeakRate != nil {
		hnote = "peak " + stepRate(*f.PeakRate) + "/s"
	}
	for _, t := range r.Thresholds {
		if th, err := scenarios.ParseThreshold(t.Expr); err == nil && slices.Contains(th.Metrics(), "headroom") {
			hclass = badIf(!t.OK)
			if t.OK {
				hnote += "; meets " + t.Expr
			} else {
				hnote += "; does not meet " + t.Expr
			}
		}
	}
	p("<div class=\"cards\">\n")
	card := func(class, label, value, note string) {
		p("<div class=\"card %s\"><div class=\"label\">%s</div><div class=\"value\">%s</div><div class=\"note\">%s</div></div>\n",
			class, esc(label), esc(value), esc(note))
	}
	card(sclass, "sustained", sustained, outcomeLabel(f.Outcome))
	card("", "knee", knee, "e2e p99 within 2× of the lowest rate's")
	card(hclass, "headroom", headroom, hnote)
	card("", "steps", strconv.Itoa(len(f.Steps)), fmt.Sprintf("of at most %d", f.MaxSteps))
	p("</div>\n<p class=\"outcome\">%s</p>\n", esc(f.Message))
	if line := r.HeadroomLine(); line != "" {
		p("<p class=\"muted small\"><code>%s</code></p>\n", esc(line))
	}
	for _, c := range findMaxCharts(f) {
		p("<figure>%s</figure>\n", c.SVG())
	}
	p("<p class=\"muted small\">Each step holds one rate; its latencies are those of the messages it sent, however late they arrived. Between steps nothing is sent until the backlog has drained (at most the settle time), so one step's backlog does not spill into the next. The knee is the highest step rate whose e2e p99 is within twice the p99 at the lowest rate (or that plus 1 ms): beyond it latency has turned up.</p>\n")
	p("<div class=\"scroll\">\n<table class=\"steps num\">\n<thead><tr><th>step</th><th class=\"left\">kind</th><th>rate/s</th><th>achieved/s</th><th>e2e p50</th><th>e2e p99</th><th>e2e p99.9</th><th>publish p99</th><th>backlog start → end</th><th>lost</th><th>duplicates</th><th class=\"left\">verdict</th></tr></thead>\n<tbody>\n")
	for _, s := range f.Steps {
		lat := func(l accounting.LatencySummary, v int64) string {
			if l.Count == 0 {
				return "–"
			}
			return FormatMicros(v)
		}
		mark, class := "✓", "ok"
		if !s.OK {
			mark, class = "✗", "bad"
		}
		p("<tr class=\"%s\"><td>%d</td><td class=\"left\">%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s → %s</td><td>%s</td><td>%s</td><td class=\"left\"><span class=\"mark\">%s</span> %s</td></tr>\n",
			class, s.Step, s.Kind, stepRate(s.Rate), stepRate(s.AchievedRate),
			lat(s.LatencyUS.E2E, s.LatencyUS.E2E.P50), lat(s.LatencyUS.E2E, s.LatencyUS.E2E.P99), lat(s.LatencyUS.E2E, s.LatencyUS.E2E.P999),
			lat(s.LatencyUS.Publish, s.LatencyUS.Publish.P99), GroupInt(s.BacklogStart), GroupInt(s.BacklogEnd),
			GroupInt(s.Lost), GroupInt(s.Duplicates), mark, esc(s.Why))
	}
	p("</tbody>\n</table>\n</div>\n</section>\n")
}

func nameSuffix(name string) string {
	if name == "" || name == "find-max" {
		return ""
	}
	return ": " + name
}

// findMaxCharts draws the steps: e2e latency against the step rate, with
// the SLO's e2e limits and the sustained and knee rates marked; and the
// achieved rate against the target.
func findMaxCharts(f *FindMaxResult) []Chart {
	steps := slices.Clone(f.Steps)
	slices.SortStableFunc(steps, func(a, b FindMaxStep) int {
		switch {
		case a.Rate < b.Rate:
			return -1
		case a.Rate > b.Rate:
			return 1
		}
		return 0
	})
	var p50, p99, p999, failed, target, achieved []Point
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range steps {
		lo, hi = math.Min(lo, s.Rate), math.Max(hi, s.Rate)
		target = append(target, Point{s.Rate, s.Rate})
		achieved = append(achieved, Point{s.Rate, s.AchievedRate})
		if s.LatencyUS.E2E.Count == 0 {
			continue
		}
		e := s.LatencyUS.E2E
		p50 = append(p50, Point{s.Rate, float64(e.P50)})
		p99 = append(p99, Point{s.Rate, float64(e.P99)})
		p999 = append(p999, Point{s.Rate, float64(e.P999)})
		if !s.OK {
			failed = append(failed, Point{s.Rate, float64(e.P99)})
		}
	}
	xlog := len(steps) > 0 && hi/lo >= 10
	rateLabel := "step rate (messages per second)"
	if xlog {
		rateLabel = "step rate (messages per second, log scale)"
	}
	lat := Chart{
		ID: ChartFindMax, Title: "End-to-end latency by step rate", XLabel: rateLabel, YLabel: "e2e latency (log scale)",
		XLog: xlog, YLog: true, YFormat: tickMicros, Empty: "no step received any message",
		Series: []Series{
			{Name: "p50", Color: Palette[0], Points: p50, Markers: true},
			{Name: "p99", Color: Palette[1], Points: p99, Markers: true, Width: 2.5},
			{Name: "p99.9", Color: Palette[3], Points: p999, Markers: true},
		},
	}
	if len(failed) > 0 {
		lat.Series = append(lat.Series, Series{Name: "failed step", Color: "#b3261e", Points: failed, Markers: true, NoLine: true})
	}
	if len(steps) > 0 {
		for _, expr := range f.SLO {
			th, err := scenarios.ParseThreshold(expr)
			if err != nil {
				continue
			}
			metric, limit := th.Left.Metric, th.Right
			if metric == "" {
				metric, limit = th.Right.Metric, th.Left
			}
			if !strings.HasPrefix(metric, accounting.E2E+".") || limit.Metric != "" {
				continue
			}
			lat.Series = append(lat.Series, Series{Name: "SLO " + expr, Color: "#b3261e", Dashed: true, Width: 1.5,
				Points: []Point{{lo, limit.Coef}, {hi, limit.Coef}}})
		}
	}
	var marks []Window
	if f.SustainedRate != nil {
		marks = append(marks, Window{From: *f.SustainedRate, To: *f.SustainedRate, Label: "sustained " + compactNumber(*f.SustainedRate) + "/s"})
	}
	if f.KneeRate != nil && (f.SustainedRate == nil || *f.KneeRate != *f.SustainedRate) {
		marks = append(marks, Window{From: *f.KneeRate, To: *f.KneeRate, Label: "knee " + compactNumber(*f.KneeRate) + "/s"})
	}
	lat.Windows = marks
	thr := Chart{
		ID: ChartFindMaxThroughput, Title: "Achieved rate by step rate", XLabel: rateLabel, YLabel: "messages per second",
		XLog: xlog, Empty: "no steps ran", Windows: marks,
		Series: []Series{
			{Name: "target", Color: "#333", Dashed: true, Width: 1.5, Points: target},
			{Name: "achieved (received)", Color: Palette[2], Points: achieved, Markers: true},
		},
	}
	return []Chart{lat, thr}
}
