package report

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/spate-dev/spate/accounting"
)

// Chart ids in report.html, one per chart, in page order.
const (
	ChartThroughput = "chart-throughput"
	ChartBacklog    = "chart-backlog"
	ChartE2E        = "chart-e2e"
	ChartPublish    = "chart-publish"
	ChartSpectrum   = "chart-spectrum"
)

// HTMLCharts are the charts WriteHTML draws, by id.
var HTMLCharts = []string{ChartThroughput, ChartBacklog, ChartE2E, ChartPublish, ChartSpectrum}

// WriteHTML writes r as one self-contained HTML page: a header with the
// verdict, scenario, driver, run id and duration; the thresholds; the
// message counts and latencies; charts drawn as inline SVG (throughput,
// backlog, e2e and publish latency over time with the chaos windows
// shaded, and the percentile spectrum of the whole run); and the faults
// with what each did to the traffic. It loads nothing from the network
// and runs no script. The output is deterministic.
func WriteHTML(w io.Writer, r *Results) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }

	verdict := strings.ToUpper(r.Verdict)
	if verdict == "" {
		verdict = "NOT EVALUATED"
	}
	title := "spate: " + r.Scenario + " — " + verdict
	p("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	p("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
	p("<title>%s</title>\n<style>%s</style>\n</head>\n<body>\n<main>\n", esc(title), htmlCSS)

	// Header.
	vclass := "fail"
	if r.Verdict == Pass {
		vclass = "pass"
	}
	failed := 0
	for _, t := range r.Thresholds {
		if !t.OK {
			failed++
		}
	}
	var why []string
	if failed > 0 {
		why = append(why, fmt.Sprintf("%d of %d thresholds failed", failed, len(r.Thresholds)))
	} else if len(r.Thresholds) == 0 {
		why = append(why, "no thresholds set")
	} else if r.Verdict == Pass {
		why = append(why, fmt.Sprintf("all %d thresholds held", len(r.Thresholds)))
	}
	if r.Interrupted {
		why = append(why, "interrupted")
	}
	if r.Incomplete {
		why = append(why, "incomplete")
	}
	if r.Error != "" {
		why = append(why, "runtime error")
	}
	p("<header>\n<div class=\"verdict %s\">%s<div class=\"why\">%s</div></div>\n<div class=\"head\">\n<h1>%s</h1>\n",
		vclass, esc(verdict), esc(strings.Join(why, "; ")), esc(r.Scenario))
	if cl := r.Claim; cl != nil {
		cclass := "bad"
		if cl.Held {
			cclass = "good"
		}
		p("<p class=\"claim %s\"><strong>Claim:</strong> %s</p>\n", cclass, esc(cl.Statement))
	}
	if r.Description != "" {
		p("<p class=\"desc\">%s</p>\n", esc(r.Description))
	}
	p("<dl class=\"meta\">")
	meta := func(k, v string) { p("<div><dt>%s</dt><dd>%s</dd></div>", esc(k), esc(v)) }
	meta("driver", r.Driver)
	if pl := r.Pipeline; pl != nil {
		meta("pipeline", pl.Input+" → "+pl.processorText()+" → "+pl.Output)
	}
	meta("run", r.RunID)
	if !r.StartedAt.IsZero() {
		meta("started", r.StartedAt.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	meta("duration", fmt.Sprintf("%s (traffic %s + drain %s)", formatSeconds(r.DurationS), formatSeconds(r.TrafficS), formatSeconds(r.DrainS)))
	meta("producers / consumers", fmt.Sprintf("%d / %d", r.Producers, r.Consumers))
	if r.File != "" {
		meta("file", r.File)
	}
	p("</dl>\n</div>\n</header>\n")
	if r.Interrupted {
		p("<p class=\"alert\">Interrupted: the traffic stopped early and the drain was cut short, so this run cannot pass.</p>\n")
	}
	if r.Error != "" {
		p("<p class=\"alert\">Runtime error: %s</p>\n", esc(r.Error))
	}
	if r.Incomplete {
		p("<p class=\"alert\">Incomplete: %s</p>\n", esc(r.incompleteText()))
	}
	if sr := r.Shards; sr != nil {
		writeShardsHTML(p, sr)
	}

	// At a glance.
	c := r.Counts
	p("<section class=\"cards\">\n")
	card := func(label, value, note, class string) {
		p("<div class=\"card %s\"><div class=\"label\">%s</div><div class=\"value\">%s</div><div class=\"note\">%s</div></div>\n",
			class, esc(label), esc(value), esc(note))
	}
	tclass := "good"
	if failed > 0 {
		tclass = "bad"
	}
	card("thresholds", fmt.Sprintf("%d / %d", len(r.Thresholds)-failed, len(r.Thresholds)), "held", tclass)
	if r.ProduceOnly {
		if l := r.LatencyUS.Publish; l.Count > 0 {
			card("publish p99", FormatMicros(l.P99), "max "+FormatMicros(l.Max), "")
		} else {
			card("publish p99", "–", "nothing confirmed", "")
		}
		card("acked rate", formatRate(r.Rate.AckedMean)+"/s", "confirmed per second", "")
		card("failed", GroupInt(c.Failed), pctOf(c.Failed, c.Sent, "sent"), badIf(c.Failed > 0))
		card("deliveries", "–", NotMeasured+": a produce-only run", "")
	} else if l := r.LatencyUS.E2E; l.Count > 0 {
		card("e2e p99", FormatMicros(l.P99), "max "+FormatMicros(l.Max), "")
	} else {
		card("e2e p99", "–", "nothing received", "")
	}
	if !r.ProduceOnly {
		note := "received per second"
		if t := r.Rate.TargetMean; t != nil && *t > 0 {
			note = formatPercent(r.Rate.AchievedMean / *t) + " of target " + formatRate(*t) + "/s"
		}
		card("achieved rate", formatRate(r.Rate.AchievedMean)+"/s", note, "")
		owed := "acked"
		if r.Subs() > 1 {
			owed = fmt.Sprintf("acked × %d subscriptions", r.Subs())
		}
		card("lost", GroupInt(c.Lost), pctOf(c.Lost, c.Acked*int64(r.Subs()), owed), badIf(c.Lost > 0))
		card("duplicates", GroupInt(c.Duplicates), pctOf(c.Duplicates, c.Received, "received"), badIf(c.Duplicates > 0))
		card("reordered", GroupInt(c.Reordered), pctOf(c.Reordered, c.Received, "received"), badIf(c.Reordered > 0))
	}
	if c.Aborted > 0 || c.AbortedReads > 0 {
		card("aborted reads", GroupInt(c.AbortedReads), "of "+GroupInt(c.Aborted)+" aborted", badIf(c.AbortedReads > 0))
	}
	if pl := r.Pipeline; pl != nil && pl.LatencyUS.Count > 0 {
		card("pipeline p99", FormatMicros(pl.LatencyUS.P99), "output receive − input ack", "")
	}
	p("</section>\n")

	// Thresholds.
	p("<section>\n<h2>Thresholds</h2>\n")
	if len(r.Thresholds) == 0 {
		p("<p class=\"muted\">The scenario sets no thresholds.</p>\n")
	} else {
		p("<table class=\"thresholds\">\n<thead><tr><th></th><th>threshold</th><th>measured</th><th>limit</th></tr></thead>\n<tbody>\n")
		for _, t := range r.Thresholds {
			mark, class := "✓", "ok"
			if !t.OK {
				mark, class = "✗", "bad"
			}
			mv, lv := "–", "–"
			if t.Error != "" {
				mv = t.Error
			} else if v, l := thresholdFigures(t); v != "" {
				mv = v
				if l != "" {
					lv = l
				}
			}
			p("<tr class=\"%s\"><td class=\"mark\">%s</td><td><code>%s</code></td><td>%s</td><td>%s</td></tr>\n", class, mark, esc(t.Expr), esc(mv), esc(lv))
		}
		p("</tbody>\n</table>\n")
	}
	p("</section>\n")

	if r.FindMax != nil {
		writeFindMaxHTML(p, r)
	}

	// Counts and latencies side by side.
	p("<section class=\"two\">\n<div>\n<h2>Messages</h2>\n<table class=\"num\">\n<tbody>\n")
	row := func(name string, n, of int64, what string) {
		p("<tr><th>%s</th><td>%s</td><td class=\"muted\">%s</td></tr>\n", esc(name), GroupInt(n), esc(pctOf(n, of, what)))
	}
	row("sent", c.Sent, 0, "")
	row("acked", c.Acked, c.Sent, "sent")
	if r.ProduceOnly {
		for _, name := range []string{"received", "lost", "duplicates", "reordered"} {
			p("<tr><th>%s</th><td colspan=\"2\" class=\"muted\">%s</td></tr>\n", name, NotMeasured)
		}
	} else {
		row("received", c.Received, c.Sent, "sent")
		row("lost", c.Lost, c.Acked, "acked")
		row("duplicates", c.Duplicates, c.Received, "received")
		row("reordered", c.Reordered, c.Received, "received")
	}
	row("unconfirmed", c.Unconfirmed, c.Sent, "sent")
	for _, x := range []struct {
		name  string
		n, of int64
		what  string
	}{
		{"failed", c.Failed, c.Sent, "sent"}, {"unsent", c.Unsent, c.Sent + c.Unsent, "scheduled"},
		{"unconfirmed_delivered", c.UnconfirmedDelivered, c.Received, "received"},
		{"redelivered", c.Redelivered, c.Received + c.Duplicates, "deliveries"},
		{"dead_lettered", c.DeadLettered, c.Received, "received"},
		{"aborted", c.Aborted, c.Sent, "sent"}, {"aborted_reads", c.AbortedReads, c.Aborted, "aborted"},
		{"aborted_visible", c.AbortedVisible, c.Aborted, "aborted"},
		{"foreign", c.Foreign, 0, ""}, {"malformed", c.Malformed, 0, ""},
		{"clamped_latencies", c.Clamped, 0, ""}, {"negative_latencies", c.Negative, 0, ""},
	} {
		if x.n != 0 {
			row(x.name, x.n, x.of, x.what)
		}
	}
	p("</tbody>\n</table>\n</div>\n<div>\n<h2>Latency</h2>\n<table class=\"num\">\n")
	p("<thead><tr><th></th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr></thead>\n<tbody>\n")
	for _, kind := range accounting.Kinds {
		l := r.LatencyUS.Get(kind)
		if r.ProduceOnly && kind != accounting.Publish {
			p("<tr><th>%s</th><td colspan=\"6\" class=\"muted\">%s</td></tr>\n", kind, NotMeasured)
			continue
		}
		if l.Count == 0 {
			p("<tr><th>%s</th><td>0</td><td>–</td><td>–</td><td>–</td><td>–</td><td>–</td></tr>\n", kind)
			continue
		}
		p("<tr><th>%s</th><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", kind, GroupInt(l.Count),
			FormatMicros(l.P50), FormatMicros(l.P90), FormatMicros(l.P99), FormatMicros(l.P999), FormatMicros(l.Max))
	}
	if pl := r.Pipeline; pl != nil {
		if l := pl.LatencyUS; l.Count == 0 {
			p("<tr><th>pipeline</th><td>0</td><td>–</td><td>–</td><td>–</td><td>–</td><td>–</td></tr>\n")
		} else {
			p("<tr><th>pipeline</th><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", GroupInt(l.Count),
				FormatMicros(l.P50), FormatMicros(l.P90), FormatMicros(l.P99), FormatMicros(l.P999), FormatMicros(l.Max))
		}
	}
	p("</tbody>\n</table>\n<p class=\"muted small\">e2e: receive − intended send time; service: receive − actual send time; publish: confirmation − actual send time.")
	if pl := r.Pipeline; pl != nil {
		p(" pipeline: output receive − input confirmation, the time added between %s and %s by the %s.", esc(pl.Input), esc(pl.Output), esc(pl.processorText()))
	}
	p("</p>\n")
	p("<h2>Rate</h2>\n<table class=\"num\">\n<tbody>\n")
	if t := r.Rate.TargetMean; t != nil {
		p("<tr><th>target</th><td>%s/s</td></tr>\n", formatRate(*t))
	} else {
		p("<tr><th>target</th><td>– <span class=\"muted\">(a max phase ran)</span></td></tr>\n")
	}
	achieved := formatRate(r.Rate.AchievedMean) + "/s"
	if r.ProduceOnly {
		achieved = "<span class=\"muted\">" + NotMeasured + "</span>"
	}
	p("<tr><th>achieved (received)</th><td>%s</td></tr>\n<tr><th>sent</th><td>%s/s</td></tr>\n<tr><th>acked</th><td>%s/s</td></tr>\n",
		achieved, formatRate(r.Rate.SentMean), formatRate(r.Rate.AckedMean))
	p("</tbody>\n</table>\n</div>\n</section>\n")

	// Charts.
	p("<section>\n<h2>Over time</h2>\n")
	if len(r.Chaos) > 0 {
		p("<p class=\"muted small\">Shaded bands are chaos faults, from when each began to when it was reverted; dashed lines are point events.</p>\n")
	}
	for _, ch := range timeCharts(r) {
		p("<figure>%s</figure>\n", ch.SVG())
	}
	p("</section>\n<section>\n<h2>Percentile spectrum</h2>\n")
	p("<p class=\"muted small\">Latency at each percentile of the whole run, on HdrHistogram's 1/(1−p) axis: each step right is ten times rarer.</p>\n")
	p("<figure>%s</figure>\n</section>\n", spectrumChart(r).SVG())

	// Faults.
	p("<section>\n<h2>Faults</h2>\n")
	if len(r.Chaos) == 0 {
		p("<p class=\"muted\">The scenario injected no faults.</p>\n")
	} else {
		p("<table class=\"faults num\">\n<thead><tr><th>#</th><th class=\"left\">action</th><th>window</th><th>ok</th><th>e2e p50 in window</th><th>e2e p99 in window</th><th>e2e max in window</th><th>lost in window</th><th>duplicates in window</th><th>peak backlog</th><th>recovery</th></tr></thead>\n<tbody>\n")
		for i, f := range r.Chaos {
			action := f.Action
			if f.Target != "" {
				action += " " + f.Target
			}
			ok := "✓"
			okClass := ""
			if !f.OK {
				ok, okClass = "✗ "+f.Error, " class=\"bad\""
			}
			window := formatSeconds(f.StartS) + " – " + formatSeconds(f.EndS)
			if f.EndS <= f.StartS {
				window = "at " + formatSeconds(f.StartS)
			}
			if r.ProduceOnly {
				p("<tr><td>%d</td><th>%s</th><td>%s</td><td%s>%s</td><td colspan=\"7\" class=\"muted\">%s</td></tr>\n",
					i+1, esc(action), esc(window), okClass, esc(ok), NotMeasured)
				continue
			}
			lat := [3]string{"–", "–", "–"}
			if l := f.WindowLatencyUS; l != nil && l.Count > 0 {
				lat = [3]string{FormatMicros(l.P50), FormatMicros(l.P99), FormatMicros(l.Max)}
			}
			rec := "did not recover"
			recClass := " class=\"bad\""
			if f.RecoveryS != nil {
				rec, recClass = formatSeconds(*f.RecoveryS), ""
			}
			p("<tr><td>%d</td><th>%s</th><td>%s</td><td%s>%s</td><td>%s</td><td>%s</td><td>%s</td><td%s>%s</td><td%s>%s</td><td>%s</td><td%s>%s</td></tr>\n",
				i+1, esc(action), esc(window), okClass, esc(ok), lat[0], lat[1], lat[2],
				badAttr(f.LostInWindow > 0 && !r.Incomplete), r.lostText(f.LostInWindow), badAttr(f.DuplicatesInWindow > 0), GroupInt(f.DuplicatesInWindow),
				GroupInt(f.PeakBacklog), recClass, esc(rec))
		}
		p("</tbody>\n</table>\n<p class=\"muted small\">Recovery: from the fault's end until e2e p99 over a sliding second is within 1.5× the pre-fault baseline and the backlog has drained.</p>\n")
	}
	p("</section>\n")

	if len(r.Examples) > 0 {
		n := min(len(r.Examples), 20)
		p("<section>\n<h2>Examples (%d of %d)</h2>\n<table class=\"num\">\n<thead><tr><th>producer</th><th>seq</th><th>partition</th><th>offset</th><th>txn</th><th class=\"left\">problem</th></tr></thead>\n<tbody>\n", n, len(r.Examples))
		for _, e := range r.Examples[:n] {
			part, off, txn := e.Where("–")
			p("<tr><td>%d</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td class=\"left\">%s</td></tr>\n", e.Producer, e.Seq, part, off, txn, esc(e.Problem))
		}
		p("</tbody>\n</table>\n</section>\n")
	}
	if len(r.DriverStats) > 0 {
		keys := make([]string, 0, len(r.DriverStats))
		for k := range r.DriverStats {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		p("<section>\n<h2>Driver stats</h2>\n<table class=\"num\">\n<tbody>\n")
		for _, k := range keys {
			p("<tr><th>%s</th><td>%s</td></tr>\n", esc(k), GroupInt(r.DriverStats[k]))
		}
		p("</tbody>\n</table>\n</section>\n")
	}
	p("<footer>Written by spate from results.json (schema version %d). The same directory holds the raw data: results.json, HdrHistogram .hgrm and .hlog files, junit.xml.</footer>\n", r.SchemaVersion)
	p("</main>\n</body>\n</html>\n")
	return bw.Flush()
}

// timeCharts are the charts over the run's time: throughput, backlog, e2e
// and publish latency percentiles.
func timeCharts(r *Results) []Chart {
	var windows []Window
	for i, f := range r.Chaos {
		label := f.Action
		if f.Target != "" {
			label += " " + f.Target
		}
		windows = append(windows, Window{From: f.StartS, To: f.EndS, Label: fmt.Sprintf("%d %s", i+1, label)})
	}
	const timeLabel = "time since the traffic started (s)"
	var target, sent, acked, received, backlog []Point
	lat := map[string][4][]Point{}
	// Rates over a sliver of an interval (the last one of the traffic, say)
	// are noise: a message in a millisecond is 1000/s. They are left out of
	// the throughput chart.
	var lengths []float64
	for _, iv := range r.Intervals {
		lengths = append(lengths, iv.EndS-iv.StartS)
	}
	slices.Sort(lengths)
	minRateSecs := 0.0
	if len(lengths) > 0 {
		minRateSecs = lengths[len(lengths)/2] / 4
	}
	for _, iv := range r.Intervals {
		secs := iv.EndS - iv.StartS
		if secs <= 0 {
			continue
		}
		x := iv.EndS
		if secs >= minRateSecs {
			t := math.NaN()
			if iv.TargetRate != nil {
				t = *iv.TargetRate
			}
			target = append(target, Point{x, t})
			sent = append(sent, Point{x, float64(iv.Counts.Sent) / secs})
			acked = append(acked, Point{x, float64(iv.Counts.Acked) / secs})
			if !r.ProduceOnly {
				received = append(received, Point{x, float64(iv.Counts.Received) / secs / float64(r.Subs())})
			}
		}
		if !r.ProduceOnly {
			backlog = append(backlog, Point{x, float64(iv.Backlog)})
		}
		for _, kind := range []string{accounting.E2E, accounting.Publish} {
			l := iv.LatencyUS.Get(kind)
			s := lat[kind]
			vals := [4]float64{float64(l.P50), float64(l.P99), float64(l.P999), float64(l.Max)}
			for j := range s {
				y := vals[j]
				if l.Count == 0 {
					y = math.NaN()
				}
				s[j] = append(s[j], Point{x, y})
			}
			lat[kind] = s
		}
	}
	var xDomain [2]float64
	if n := len(r.Intervals); n > 0 && r.Intervals[n-1].EndS > 0 {
		xDomain = [2]float64{0, r.Intervals[n-1].EndS}
	}
	empty, unmeasured := "no intervals were recorded", "no intervals were recorded"
	if r.ProduceOnly {
		unmeasured = NotMeasured
	}
	charts := []Chart{
		{
			ID: ChartThroughput, Title: "Throughput", XLabel: timeLabel, YLabel: "messages per second",
			XFormat: tickSeconds, XDomain: xDomain, Windows: windows, Empty: empty,
			Series: []Series{
				{Name: "sent", Color: Palette[0], Width: 6, Points: sent},
				{Name: "acked", Color: Palette[2], Width: 3.5, Points: acked},
				{Name: "received", Color: Palette[1], Width: 1.5, Points: received},
				{Name: "target", Color: "#333", Dashed: true, Width: 1.5, Points: target},
			},
		},
		{
			ID: ChartBacklog, Title: "Backlog (acked, not yet received)", XLabel: timeLabel, YLabel: "messages",
			XFormat: tickSeconds, XDomain: xDomain, Windows: windows, Empty: unmeasured,
			Series: []Series{{Name: "backlog", Color: Palette[3], Points: backlog}},
		},
	}
	for _, kind := range []struct{ id, name, what string }{
		{ChartE2E, accounting.E2E, "End-to-end latency (receive − intended send)"},
		{ChartPublish, accounting.Publish, "Publish latency (confirmation − send)"},
	} {
		s := lat[kind.name]
		empty := "no " + kind.name + " latencies were recorded"
		if r.ProduceOnly && kind.name == accounting.E2E {
			empty = NotMeasured
		}
		charts = append(charts, Chart{
			ID: kind.id, Title: kind.what + " per interval", XLabel: timeLabel, YLabel: kind.name + " latency (log scale)",
			YLog: true, XFormat: tickSeconds, XDomain: xDomain, YFormat: tickMicros, Windows: windows, Empty: empty,
			Series: []Series{
				{Name: "p50", Color: Palette[0], Points: s[0]},
				{Name: "p99", Color: Palette[1], Points: s[1]},
				{Name: "p99.9", Color: Palette[3], Points: s[2]},
				{Name: "max", Color: "#555", Dashed: true, Points: s[3]},
			},
		})
	}
	return charts
}

// spectrumChart is the classic HdrHistogram percentile plot of the total
// histograms: latency against 1/(1-p) on a logarithmic axis.
func spectrumChart(r *Results) Chart {
	c := Chart{
		ID: ChartSpectrum, Title: "Latency by percentile (whole run)", XLabel: "percentile (log scale of 1/(1−p))",
		YLabel: "latency (log scale)", XLog: true, YLog: true, YFormat: tickMicros,
		XFormat: func(x float64) string { return percentileLabel(1 - 1/x) },
		Empty:   "no latencies were recorded",
	}
	maxX := 10.0
	for i, kind := range accounting.Kinds {
		h, err := r.histogramOrEmpty(kind)
		if err != nil || h.TotalCount() == 0 {
			continue
		}
		var pts []Point
		for _, b := range h.CumulativeDistributionWithTicks(5) {
			if b.Quantile >= 100 {
				continue
			}
			x := 1 / (1 - b.Quantile/100)
			pts = append(pts, Point{x, float64(b.ValueAt)})
			maxX = math.Max(maxX, x)
		}
		c.Series = append(c.Series, Series{Name: kind, Color: Palette[i], Points: pts})
	}
	hi := math.Pow(10, math.Ceil(math.Log10(maxX)-1e-9))
	c.XDomain = [2]float64{1, hi}
	for x := 1.0; x <= hi*(1+1e-9); x *= 10 {
		c.XTicks = append(c.XTicks, Tick{x, percentileLabel(1 - 1/x)})
	}
	return c
}

// percentileLabel formats a quantile as a percentile: 0%, 90%, 99.9%.
func percentileLabel(q float64) string {
	if q <= 0 {
		return "0%"
	}
	digits := max(0, int(math.Ceil(-math.Log10(1-q)-1e-9))-2)
	return fmt.Sprintf("%.*f%%", digits, q*100)
}

func pctOf(n, of int64, what string) string {
	if of <= 0 {
		return ""
	}
	return formatPercent(float64(n)/float64(of)) + " of " + what
}

func badIf(b bool) string {
	if b {
		return "bad"
	}
	return "good"
}

func badAttr(b bool) string {
	if b {
		return ` class="bad"`
	}
	return ""
}

const htmlCSS = `
:root { color-scheme: light; --fg: #1d1d1f; --muted: #666; --line: #e3e3e3; --good: #0a7a3d; --bad: #b3261e; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f7f9; color: var(--fg); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 24px 40px; }
header { display: flex; gap: 20px; align-items: center; background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 16px 20px; }
.verdict { flex: none; font-size: 28px; font-weight: 700; letter-spacing: .04em; padding: 14px 22px; border-radius: 8px; color: #fff; min-width: 120px; text-align: center; }
.verdict .why { font-size: 12px; font-weight: 500; letter-spacing: 0; margin-top: 2px; white-space: nowrap; }
.verdict.pass { background: var(--good); }
.verdict.fail { background: var(--bad); }
h1 { margin: 0 0 4px; font-size: 22px; }
h2 { font-size: 17px; margin: 22px 0 8px; }
.desc { margin: 0 0 6px; color: var(--muted); }
.claim { margin: 0 0 6px; font-size: 15px; }
.claim.good { color: var(--good); }
.claim.bad { color: var(--bad); }
.meta { display: flex; flex-wrap: wrap; gap: 4px 22px; margin: 0; }
.meta div { display: flex; gap: 6px; }
.meta dt { color: var(--muted); }
.meta dd { margin: 0; font-variant-numeric: tabular-nums; }
.alert { background: #fdecea; border: 1px solid #f5c2bd; color: var(--bad); padding: 10px 14px; border-radius: 8px; }
.cards { display: grid; grid-template-columns: repeat(6, 1fr); gap: 12px; margin-top: 16px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 10px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .05em; }
.card .value { font-size: 22px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .note { color: var(--muted); font-size: 12px; }
.card.bad .value { color: var(--bad); }
.card.good .value { color: var(--good); }
section { margin-top: 8px; }
section.two { display: grid; grid-template-columns: 1fr 1.4fr; gap: 24px; }
table { border-collapse: collapse; background: #fff; border: 1px solid var(--line); border-radius: 8px; width: 100%; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left; }
thead th { font-weight: 600; color: var(--muted); font-size: 12px; }
table.num thead th:not(:first-child) { text-align: right; }
table.num thead th.left { text-align: left; }
table.num td { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.num td.left { text-align: left; }
tbody th { font-weight: 500; }
tr.bad td, td.bad { color: var(--bad); font-weight: 600; }
tr.ok .mark { color: var(--good); }
tr.bad .mark { color: var(--bad); }
.mark { width: 1.5em; font-weight: 700; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
figure { margin: 0 0 14px; background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 6px; }
svg.chart { display: block; width: 100%; height: auto; }
svg.chart .point { opacity: 0; }
svg.chart .point:hover { opacity: 1; }
.muted { color: var(--muted); }
.small { font-size: 12px; }
.scroll { overflow-x: auto; }
.findmax .cards { grid-template-columns: repeat(4, 1fr); }
.findmax .outcome { font-weight: 600; margin: 12px 0 6px; }
table.steps td.left { white-space: normal; }
svg.chart .marker { stroke: #fff; stroke-width: 1; }
footer { margin-top: 28px; color: var(--muted); font-size: 12px; }
@media (max-width: 900px) { .cards { grid-template-columns: repeat(3, 1fr); } section.two { grid-template-columns: 1fr; } header { flex-direction: column; align-items: flex-start; } }
`
