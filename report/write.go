package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/scenarios"
)

// FileNames maps each format to the files it writes.
var FileNames = map[string][]string{
	scenarios.FormatText:  {"summary.txt"},
	scenarios.FormatJSON:  {"results.json"},
	scenarios.FormatHgrm:  {"e2e.hgrm", "service.hgrm", "publish.hgrm"},
	scenarios.FormatHlog:  {"e2e.hlog", "service.hlog", "publish.hlog"},
	scenarios.FormatHTML:  {"report.html"},
	scenarios.FormatJUnit: {"junit.xml"},
}

// HgrmUnitDivisor turns the histograms' microseconds into the milliseconds
// that .hgrm files show.
const HgrmUnitDivisor = 1000

// WriteDir creates dir (and its parents) and writes the given formats of r
// into it: "text" as summary.txt, "json" as results.json, "hgrm" as one
// percentile distribution per latency kind (e2e.hgrm, service.hgrm,
// publish.hgrm, in milliseconds), "html" as report.html and "junit" as
// junit.xml. "hlog" is accepted and skipped: interval logs are written
// while the run goes, by IntervalLogs. An empty formats writes every
// format. It returns the paths written, and stops at the first error; an
// unknown format is an error before anything is written.
func WriteDir(dir string, r *Results, formats []string) ([]string, error) {
	if len(formats) == 0 {
		formats = scenarios.Formats
	}
	for _, f := range formats {
		if !slices.Contains(scenarios.Formats, f) {
			return nil, fmt.Errorf("unknown report format %q (formats: %s)", f, strings.Join(scenarios.Formats, ", "))
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	write := func(name string, fill func(w io.Writer) error) error {
		var b bytes.Buffer
		if err := fill(&b); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	}
	done := map[string]bool{}
	for _, f := range formats {
		if done[f] {
			continue
		}
		done[f] = true
		var err error
		switch f {
		case scenarios.FormatText:
			err = write("summary.txt", func(w io.Writer) error { return WriteText(w, r) })
		case scenarios.FormatJSON:
			err = write("results.json", func(w io.Writer) error { return WriteJSON(w, r) })
		case scenarios.FormatHTML:
			err = write("report.html", func(w io.Writer) error { return WriteHTML(w, r) })
		case scenarios.FormatJUnit:
			err = write("junit.xml", func(w io.Writer) error { return WriteJUnit(w, r) })
		case scenarios.FormatHgrm:
			for _, kind := range accounting.Kinds {
				h, herr := r.histogramOrEmpty(kind)
				if herr != nil {
					err = herr
					break
				}
				if err = write(kind+".hgrm", func(w io.Writer) error { return WriteHgrm(w, h, HgrmUnitDivisor) }); err != nil {
					break
				}
			}
		}
		if err != nil {
			return paths, err
		}
	}
	return paths, nil
}

// histogramOrEmpty is Histogram, with an empty histogram for a kind the
// results hold none of (a run that ended before its summary).
func (r *Results) histogramOrEmpty(kind string) (*hdr.Histogram, error) {
	if _, ok := r.hists[kind]; !ok {
		if _, ok := r.Histograms[kind]; !ok {
			return accounting.NewHistogram(), nil
		}
	}
	return r.Histogram(kind)
}

// WriteJSON writes r as results.json: indented, fields in schema order, map
// keys sorted, and no HTML escaping (thresholds keep their < and >).
func WriteJSON(w io.Writer, r *Results) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// WriteHgrm writes h's percentile distribution in HdrHistogram's .hgrm text
// format, byte for byte as the Java reference's
// AbstractHistogram.outputPercentileDistribution(out, 5, unitDivisor)
// prints it (and as HdrHistogram's plotter reads it): values divided by
// unitDivisor, five percentile ticks per half distance, then the mean,
// standard deviation, max, total count and bucket geometry. An empty
// histogram gives the header and footer alone, as in Java.
func WriteHgrm(w io.Writer, h *hdr.Histogram, unitDivisor float64) error {
	if !(unitDivisor > 0) || math.IsInf(unitDivisor, 0) {
		return fmt.Errorf("hgrm unit divisor %v: want a positive number", unitDivisor)
	}
	bw := bufio.NewWriter(w)
	digits := int(h.SignificantFigures())
	fmt.Fprintf(bw, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)")
	// hdrhistogram-go's percentile iterator steps exactly as Java's
	// PercentileIterator does (TestWriteHgrmMatchesJavaIteration replays
	// Java's algorithm), but unlike Java it yields a 100% line for an empty
	// histogram.
	if h.TotalCount() > 0 {
		for _, b := range h.CumulativeDistributionWithTicks(5) {
			value := javaFloat(float64(b.ValueAt)/unitDivisor, 12, digits)
			p := b.Quantile / 100
			if b.Quantile != 100 {
				fmt.Fprintf(bw, "%s %s %10d %s\n", value, javaFloat(p, 2, 12), b.Count, javaFloat(1/(1-p), 14, 2))
			} else {
				fmt.Fprintf(bw, "%s %s %10d\n", value, javaFloat(p, 2, 12), b.Count)
			}
		}
	}
	mean, stddev := javaMeanStdDev(h)
	buckets, subBuckets := javaGeometry(h)
	fmt.Fprintf(bw, "#[Mean    = %s, StdDeviation   = %s]\n", javaFloat(mean/unitDivisor, 12, digits), javaFloat(stddev/unitDivisor, 12, digits))
	fmt.Fprintf(bw, "#[Max     = %s, Total count    = %12d]\n", javaFloat(float64(h.Max())/unitDivisor, 12, digits), h.TotalCount())
	fmt.Fprintf(bw, "#[Buckets = %12d, SubBuckets     = %12d]\n", buckets, subBuckets)
	return bw.Flush()
}

// javaMeanStdDev computes the mean and standard deviation as Java's
// getMean and getStdDeviation do, summing in the same order with the same
// roundings (hdrhistogram-go divides per bucket, which can differ in the
// last digit printed).
func javaMeanStdDev(h *hdr.Histogram) (mean, stddev float64) {
	n := h.TotalCount()
	if n == 0 {
		return 0, 0
	}
	bars := h.Distribution()
	median := func(b hdr.Bar) int64 { return b.From + (b.To-b.From+1)>>1 }
	var total float64
	for _, b := range bars {
		if b.Count != 0 {
			total += float64(median(b) * b.Count)
		}
	}
	mean = total / float64(n)
	var dev float64
	for _, b := range bars {
		if b.Count != 0 {
			d := float64(median(b)) - mean
			dev += d * d * float64(b.Count)
		}
	}
	return mean, math.Sqrt(dev / float64(n))
}

// javaGeometry returns the bucket and sub-bucket counts Java reports for a
// histogram of h's range and precision.
func javaGeometry(h *hdr.Histogram) (buckets, subBuckets int64) {
	largestWithUnitResolution := 2 * math.Pow(10, float64(h.SignificantFigures()))
	subBucketCountMagnitude := int(math.Ceil(math.Log(largestWithUnitResolution) / math.Log(2)))
	subBucketHalfCountMagnitude := max(subBucketCountMagnitude, 1) - 1
	subBuckets = int64(1) << (subBucketHalfCountMagnitude + 1)
	unitMagnitude := int(math.Floor(math.Log(float64(max(h.LowestTrackableValue(), 1))) / math.Log(2)))
	smallestUntrackable := subBuckets << unitMagnitude
	buckets = 1
	for smallestUntrackable <= h.HighestTrackableValue() {
		if smallestUntrackable > math.MaxInt64/2 {
			return buckets + 1, subBuckets
		}
		smallestUntrackable <<= 1
		buckets++
	}
	return buckets, subBuckets
}

// javaFloat formats v as Java's Formatter does with "%<width>.<prec>f" and
// Locale.US. Java rounds the shortest decimal representation of v half up,
// where Go's fmt rounds the exact binary value half to even, so the two
// differ on ties: Java prints 0.125 as 0.13 and 1.0005 as 1.001 at two and
// three decimals, Go as 0.12 and 1.000.
func javaFloat(v float64, width, prec int) string {
	var s string
	switch {
	case math.IsNaN(v):
		s = "NaN"
	case math.IsInf(v, 1):
		s = "Infinity"
	case math.IsInf(v, -1):
		s = "-Infinity"
	default:
		s = javaFixed(v, prec)
	}
	if len(s) < width {
		s = strings.Repeat(" ", width-len(s)) + s
	}
	return s
}

func javaFixed(v float64, prec int) string {
	neg := math.Signbit(v)
	// Shortest digits d1 d2 ... dn with v = 0.d1d2...dn × 10^point.
	e := strconv.FormatFloat(math.Abs(v), 'e', -1, 64)
	mant, exp, _ := strings.Cut(e, "e")
	digits := []byte(strings.Replace(mant, ".", "", 1))
	x, _ := strconv.Atoi(exp)
	point := x + 1
	if len(digits) == 1 && digits[0] == '0' {
		point = 1
	}
	// Round half up to prec decimals: keep the first point+prec digits.
	if keep := point + prec; keep < 0 {
		digits, point = []byte{'0'}, 1
	} else if keep < len(digits) {
		up := digits[keep] >= '5'
		digits = digits[:keep]
		for i := len(digits) - 1; up && i >= 0; i-- {
			if digits[i] == '9' {
				digits[i] = '0'
			} else {
				digits[i]++
				up = false
			}
		}
		if up {
			digits = append([]byte{'1'}, digits...)
			point++
		}
	}
	digit := func(i int) byte {
		if i < 0 || i >= len(digits) {
			return '0'
		}
		return digits[i]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	if point <= 0 {
		b.WriteByte('0')
	}
	for i := 0; i < point; i++ {
		b.WriteByte(digit(i))
	}
	if prec > 0 {
		b.WriteByte('.')
		for i := 0; i < prec; i++ {
			b.WriteByte(digit(point + i))
		}
	}
	return b.String()
}

// textWidth is the width of the text summary's label column.
const textWidth = 24

// WriteText writes the human summary of r: the run, message counts with
// ratios, the latency table, rates, thresholds, the verdict, and the first
// examples and the driver's own figures when there are any. The output is
// deterministic and fits 100 columns except for long threshold
// expressions and error messages.
func WriteText(w io.Writer, r *Results) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }

	p("%-12s %s", "scenario", r.Scenario)
	if r.File != "" {
		p(" (%s)", r.File)
	}
	p("\n%-12s %s\n", "driver", r.Driver)
	if r.ProduceOnly {
		p("%-12s %s\n", "produce-only", "no consumers: publishing alone is measured; deliveries, loss and e2e are not")
	}
	if r.Subs() > 1 {
		p("%-12s %d subscriptions, each owed every message, over %d consumers\n", "fan-out", r.Subs(), r.Consumers)
	}
	p("%-12s %s\n", "run", r.RunID)
	if !r.StartedAt.IsZero() {
		p("%-12s %s\n", "started", r.StartedAt.UTC().Format(time.RFC3339))
	}
	p("%-12s %s (traffic %s + drain %s)\n", "duration", formatSeconds(r.DurationS), formatSeconds(r.TrafficS), formatSeconds(r.DrainS))
	if r.Interrupted {
		p("%-12s %s\n", "interrupted", "yes: traffic stopped early, drain cut short")
	}
	if r.Error != "" {
		p("%-12s %s\n", "error", r.Error)
	}
	if sr := r.Shards; sr != nil {
		p("%-12s %d, started within %s of each other; e2e latencies exact to ±%s (clock offsets measured)\n", "shards",
			sr.Count, formatMillis(sr.StartSkewMS), formatMillis(sr.E2EBoundMS))
	}
	if r.Incomplete {
		p("%-12s %s\n", "incomplete", r.incompleteText())
	}

	c := r.Counts
	p("\nmessages\n")
	row := func(name string, n int64, of int64, what string) {
		p("  %-*s %14s", textWidth-2, name, GroupInt(n))
		if of > 0 {
			p("  %8s of %s", formatPercent(float64(n)/float64(of)), what)
		}
		p("\n")
	}
	row("sent", c.Sent, 0, "")
	row("acked", c.Acked, c.Sent, "sent")
	row("failed", c.Failed, c.Sent, "sent")
	row("unconfirmed", c.Unconfirmed, c.Sent, "sent")
	row("unsent", c.Unsent, c.Sent+c.Unsent, "scheduled")
	subs := int64(r.Subs())
	owed := ""
	if subs > 1 {
		owed = fmt.Sprintf(" × %d subscriptions", subs)
	}
	if r.ProduceOnly {
		for _, name := range []string{"received", "duplicates", "lost", "unconfirmed_delivered", "reordered"} {
			p("  %-*s %14s\n", textWidth-2, name, NotMeasured)
		}
	} else {
		row("received", c.Received, c.Sent*subs, "sent"+owed)
		row("duplicates", c.Duplicates, c.Received, "received")
		if r.Incomplete {
			p("  %-*s %14s  (%s acked and not received by the shards that reported)\n", textWidth-2, "lost", "not claimed", GroupInt(c.Lost))
		} else {
			row("lost", c.Lost, c.Acked*subs, "acked"+owed)
		}
		row("unconfirmed_delivered", c.UnconfirmedDelivered, c.Received, "received")
		row("reordered", c.Reordered, c.Received, "received")
		row("redelivered", c.Redelivered, c.Received+c.Duplicates, "deliveries")
	}
	if c.DeadLettered > 0 {
		row("dead_lettered", c.DeadLettered, c.Received, "received")
	}
	if c.Aborted > 0 || c.AbortedReads > 0 || c.AbortedVisible > 0 {
		row("aborted", c.Aborted, c.Sent, "sent")
		row("aborted_reads", c.AbortedReads, c.Aborted, "aborted")
		if c.AbortedVisible > 0 {
			row("aborted_visible", c.AbortedVisible, c.Aborted, "aborted")
		}
	}
	for _, x := range []struct {
		name string
		n    int64
	}{
		{"foreign", c.Foreign}, {"malformed", c.Malformed},
		{"clamped_latencies", c.Clamped}, {"negative_latencies", c.Negative},
	} {
		if x.n != 0 {
			row(x.name, x.n, 0, "")
		}
	}

	p("\n%-12s %12s %9s %9s %9s %9s %9s\n", "latency", "count", "p50", "p90", "p99", "p99.9", "max")
	for _, kind := range accounting.Kinds {
		l := r.LatencyUS.Get(kind)
		if r.ProduceOnly && kind != accounting.Publish {
			p("  %-10s %12s\n", kind, NotMeasured)
			continue
		}
		if l.Count == 0 {
			p("  %-10s %12s %9s %9s %9s %9s %9s\n", kind, "0", "-", "-", "-", "-", "-")
			continue
		}
		p("  %-10s %12s %9s %9s %9s %9s %9s\n", kind, GroupInt(l.Count),
			FormatMicros(l.P50), FormatMicros(l.P90), FormatMicros(l.P99), FormatMicros(l.P999), FormatMicros(l.Max))
	}

	if pl := r.Pipeline; pl != nil {
		writePipelineText(bw, pl)
	}

	p("\nrate (per second)\n")
	rate := func(name string, v float64, note string) {
		p("  %-*s %14s%s\n", textWidth-2, name, formatRate(v), note)
	}
	if t := r.Rate.TargetMean; t != nil {
		rate("target", *t, "")
	} else {
		p("  %-*s %14s  %s\n", textWidth-2, "target", "-", "(undefined: a max phase ran)")
	}
	var ofTarget string
	if t := r.Rate.TargetMean; t != nil && *t > 0 {
		ofTarget = fmt.Sprintf("  %8s of target", formatPercent(r.Rate.AchievedMean / *t))
	}
	if r.ProduceOnly {
		p("  %-*s %14s\n", textWidth-2, "achieved (received)", NotMeasured)
	} else {
		rate("achieved (received)", r.Rate.AchievedMean, ofTarget)
	}
	rate("sent", r.Rate.SentMean, "")
	rate("acked", r.Rate.AckedMean, "")

	if r.FindMax != nil {
		writeFindMaxText(bw, r)
	}
	if sr := r.Shards; sr != nil {
		writeShardsText(bw, sr)
	}

	p("\nthresholds\n")
	if len(r.Thresholds) == 0 {
		p("  none\n")
	}
	exprWidth := 0
	for _, t := range r.Thresholds {
		exprWidth = max(exprWidth, len(t.Expr))
	}
	exprWidth = min(exprWidth, 48)
	failed := 0
	for _, t := range r.Thresholds {
		mark := "✓"
		if !t.OK {
			mark = "✗"
			failed++
		}
		p("  %s %-*s  %s\n", mark, exprWidth, t.Expr, thresholdValue(t))
	}

	if len(r.Chaos) > 0 {
		writeFaultsText(bw, r)
	}

	if len(r.Examples) > 0 {
		writeExamplesText(bw, r.Examples, 10)
	}

	if len(r.DriverStats) > 0 {
		p("\ndriver stats\n")
		keys := make([]string, 0, len(r.DriverStats))
		for k := range r.DriverStats {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		width := textWidth - 2
		for _, k := range keys {
			width = max(width, len(k))
		}
		for _, k := range keys {
			p("  %-*s %14s\n", width, k, GroupInt(r.DriverStats[k]))
		}
	}

	var why []string
	if failed > 0 {
		why = append(why, fmt.Sprintf("%d of %d thresholds failed", failed, len(r.Thresholds)))
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
	verdict := strings.ToUpper(r.Verdict)
	if verdict == "" {
		verdict = "not evaluated"
	}
	if cl := r.Claim; cl != nil {
		p("\n%-8s %s", "claim", cl.Statement)
	}
	p("\nverdict  %s", verdict)
	if len(why) > 0 && r.Verdict != Pass {
		p(" (%s)", strings.Join(why, "; "))
	}
	p("\n")
	return bw.Flush()
}

// thresholdValue formats a threshold's measured value in its metric's unit,
// with the limit when the other side is a metric too, or why it has none.
func thresholdValue(t ThresholdResult) string {
	if t.Error != "" {
		return t.Error
	}
	if t.Value == nil {
		return "-"
	}
	_, other := thresholdMetrics(t.Expr)
	s, limit := thresholdFigures(t)
	// The limit is shown when the expression does not show it: it is a
	// metric, or it needed more digits than written to tell them apart.
	if limit != "" && (other != "" || (!t.OK && limit != formatMetric(measuredMetric(t.Expr), *t.Limit))) {
		s += " (limit " + limit + ")"
	}
	return s
}

// measuredMetric is the metric of a threshold's measured side.
func measuredMetric(expr string) string {
	m, _ := thresholdMetrics(expr)
	return m
}

// thresholdMetrics returns the metric of the measured side of expr and the
// metric of the limit side, if it has one.
func thresholdMetrics(expr string) (measured, limit string) {
	th, err := scenarios.ParseThreshold(expr)
	if err != nil {
		return "", ""
	}
	if th.Left.Metric == "" {
		return th.Right.Metric, ""
	}
	return th.Left.Metric, th.Right.Metric
}

// formatMetric formats a value of metric name: latencies with a time unit,
// ratios as percentages, rates per second, counts as integers.
func formatMetric(name string, v float64) string {
	typ, ok := scenarios.LookupMetric(name)
	switch {
	case !ok:
		return strconv.FormatFloat(v, 'g', 6, 64)
	case typ == scenarios.Latency:
		return formatMicros(v)
	case strings.HasSuffix(name, ".ratio"):
		return formatPercent(v)
	case slices.Contains(scenarios.RateMetrics, name):
		return formatRate(v) + "/s"
	case slices.Contains(scenarios.CapacityMetrics, name):
		return factor(v)
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return GroupInt(int64(v))
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// FormatMicros formats a latency in microseconds with three significant
// digits and a unit: 850µs, 1.23ms, 45.6ms, 2.50s.
func FormatMicros(us int64) string { return formatMicros(float64(us)) }

func formatMicros(us float64) string {
	switch {
	case us < 0:
		return "-" + formatMicros(-us)
	case us < 999.5 && us == math.Trunc(us):
		return strconv.FormatFloat(us, 'f', 0, 64) + "µs"
	case us < 999.5:
		return threeDigits(us) + "µs"
	case us < 999_500:
		return threeDigits(us/1e3) + "ms"
	}
	return threeDigits(us/1e6) + "s"
}

// threeDigits formats v with three significant digits (more for v ≥ 1000).
func threeDigits(v float64) string {
	switch {
	case v < 9.995:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 99.95:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// formatPercent formats a ratio as a percentage with two decimals, or two
// significant digits below 0.01%.
func formatPercent(r float64) string {
	pct := r * 100
	switch {
	case pct == 0:
		return "0%"
	case math.Abs(pct) >= 0.01:
		return strconv.FormatFloat(pct, 'f', 2, 64) + "%"
	}
	prec := int(-math.Floor(math.Log10(math.Abs(pct)))) + 1
	return strconv.FormatFloat(pct, 'f', prec, 64) + "%"
}

// formatRate formats a per-second rate with one decimal and digit groups.
func formatRate(v float64) string { return formatRateDecimals(v, 1) }

// formatSeconds formats a duration in seconds to the millisecond: 12.5s,
// 2m3.25s.
func formatSeconds(s float64) string {
	return time.Duration(math.Round(s*1e3) * float64(time.Millisecond)).String()
}

// GroupInt formats n with commas between groups of three digits:
// 1,204,331.
func GroupInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// writeFaultsText lists each fault with its window and what it did to the
// traffic: e2e p99 inside the window, lost and duplicated messages sent
// inside it, the peak backlog and the time to recover.
//
// In a produce-only run those figures are not measured: each fault gets
// its window and whether it worked.
func writeFaultsText(w io.Writer, r *Results) {
	faults, produceOnly := r.Chaos, r.ProduceOnly
	fmt.Fprintf(w, "\nfaults\n")
	if produceOnly {
		fmt.Fprintf(w, "  (e2e, loss, duplicates, backlog and recovery: %s)\n", NotMeasured)
		for _, f := range faults {
			name := f.Action
			if f.Target != "" {
				name += " " + f.Target
			}
			outcome := "ok"
			if !f.OK {
				outcome = "FAILED: " + f.Error
			}
			fmt.Fprintf(w, "  %-26s %-15s %s\n", Truncate(name, 26), faultWindow(f), outcome)
		}
		return
	}
	fmt.Fprintf(w, "  %-26s %-15s %9s %6s %6s %9s  %s\n", "action", "window", "e2e p99", "lost", "dup", "backlog", "recovery")
	for _, f := range faults {
		name := f.Action
		if f.Target != "" {
			name += " " + f.Target
		}
		window := faultWindow(f)
		p99 := "-"
		if f.WindowLatencyUS != nil {
			p99 = formatMicros(float64(f.WindowLatencyUS.P99))
		}
		recovery := "did not recover"
		if f.RecoveryS != nil {
			recovery = formatSeconds(*f.RecoveryS)
		}
		if !f.OK {
			recovery = Truncate("FAILED: "+f.Error, 20) // the whole error is in results.json
		}
		fmt.Fprintf(w, "  %-26s %-15s %9s %6s %6s %9s  %s\n", Truncate(name, 26), window, p99,
			r.lostText(f.LostInWindow), GroupInt(f.DuplicatesInWindow), GroupInt(f.PeakBacklog), recovery)
	}
}

// faultWindow formats when a fault ran: "12.0s-15.0s", or "at 12.0s" for
// a point event.
func faultWindow(f FaultResult) string {
	if f.EndS-f.StartS < 0.05 {
		return fmt.Sprintf("at %.1fs", f.StartS)
	}
	return fmt.Sprintf("%.1fs-%.1fs", f.StartS, f.EndS)
}

// Truncate cuts s to at most n characters (runes, never mid-character),
// marking the cut with "…".
func Truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n < 1 {
		return ""
	}
	return string(r[:n-1]) + "…"
}

// writeExamplesText lists the first n examples: who sent each message,
// where it was found, and what was wrong.
func writeExamplesText(w io.Writer, examples []accounting.Example, n int) {
	n = min(len(examples), n)
	located := false
	for _, e := range examples[:n] {
		located = located || e.Partition != nil || e.Offset != nil || e.Txn != 0
	}
	fmt.Fprintf(w, "\nexamples (%d of %d)\n", n, len(examples))
	if !located {
		for _, e := range examples[:n] {
			fmt.Fprintf(w, "  producer %-4d seq %-12d %s\n", e.Producer, e.Seq, e.Problem)
		}
		return
	}
	fmt.Fprintf(w, "  %-8s %10s %9s %10s %6s  %s\n", "producer", "seq", "partition", "offset", "txn", "problem")
	for _, e := range examples[:n] {
		part, off, txn := e.Where("-")
		fmt.Fprintf(w, "  %-8d %10d %9s %10s %6s  %s\n", e.Producer, e.Seq, part, off, txn, e.Problem)
	}
}

// writePipelineText states what ran between a pipeline's ends and the
// latency it added.
func writePipelineText(w io.Writer, pl *PipelineResult) {
	fmt.Fprintf(w, "\npipeline     %s → %s → %s\n", pl.Input, pl.processorText(), pl.Output)
	fmt.Fprintf(w, "  latency: each message's output receive − its input ack\n")
	l := pl.LatencyUS
	if l.Count == 0 {
		fmt.Fprintf(w, "  %-10s %12s %9s %9s %9s %9s %9s\n", "pipeline", "0", "-", "-", "-", "-", "-")
	} else {
		fmt.Fprintf(w, "  %-10s %12s %9s %9s %9s %9s %9s\n", "pipeline", GroupInt(l.Count),
			FormatMicros(l.P50), FormatMicros(l.P90), FormatMicros(l.P99), FormatMicros(l.P999), FormatMicros(l.Max))
	}
	if pl.Untimed > 0 {
		fmt.Fprintf(w, "  %s received before their input ack was reported (not timed)\n", GroupInt(pl.Untimed))
	}
}

// processorText describes the processor: "built-in processor
// (exactly-once, 2 instances)" or "external processor".
func (pl *PipelineResult) processorText() string {
	if pl.Processor != "builtin" {
		return pl.Processor + " processor"
	}
	inst := "instances"
	if pl.Instances == 1 {
		inst = "instance"
	}
	return fmt.Sprintf("built-in processor (%s, %d %s)", pl.Mode, pl.Instances, inst)
}
