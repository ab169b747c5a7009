package report

import (
	"bufio"
	"bytes"
	"encoding/csv"
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

	"github.com/spate-dev/spate/accounting"
)

// SweepSchemaVersion is the version of sweep.json; see report/SCHEMA.md.
const SweepSchemaVersion = 1

// SweepResults is the table of a sweep: one row per point run, in the
// sweep's order. It is written as sweep.json, sweep.csv and sweep.html.
type SweepResults struct {
	SchemaVersion int         `json:"schema_version"`
	Name          string      `json:"name"`
	Description   string      `json:"description,omitempty"`
	File          string      `json:"file"`     // the sweep file
	Scenario      string      `json:"scenario"` // the base scenario
	StartedAt     time.Time   `json:"started_at"`
	Axes          []SweepAxis `json:"axes"`
	// Along is the path each curve of the charts varies along; the other
	// axes' values name the curves (Line).
	Along string `json:"along"`
	// Planned is the number of points in the grid; Points holds those run.
	Planned int        `json:"planned"`
	Points  []SweepRow `json:"points"`
}

// SweepAxis is one grid path and its values.
type SweepAxis struct {
	Path   string   `json:"path"`
	Values []string `json:"values"`
}

// SweepRow is one point's figures, condensed from its results.json.
type SweepRow struct {
	Point  int      `json:"point"`  // 1, 2, ...
	Values []string `json:"values"` // one per axis, as written in the sweep
	Line   string   `json:"line"`   // the curve it belongs to
	// Dir is the point's report directory, relative to the sweep's.
	Dir         string  `json:"dir"`
	Verdict     string  `json:"verdict"` // pass, fail, or error when the point did not run
	Error       string  `json:"error,omitempty"`
	Interrupted bool    `json:"interrupted,omitempty"`
	DurationS   float64 `json:"duration_s"`
	// TargetRate and AchievedRate are the point's target_mean and
	// achieved_mean (messages received during the traffic ÷ its length):
	// the throughput.
	TargetRate   *float64              `json:"target_rate"`
	AchievedRate float64               `json:"achieved_rate"`
	LatencyUS    accounting.LatencySet `json:"latency_us"`
	Counts       accounting.Counts     `json:"counts"`
	// FailedThresholds counts the point's thresholds that did not hold.
	FailedThresholds int `json:"failed_thresholds"`
	// ProduceOnly marks a point without consumers (Results.ProduceOnly):
	// its achieved rate, received, lost, duplicates, reordered and e2e
	// figures are not measured; the tables leave them empty.
	ProduceOnly bool `json:"produce_only,omitempty"`
	// SustainedRate is the find-max result when the scenario has a
	// find-max phase.
	SustainedRate *float64 `json:"sustained_rate,omitempty"`
	// HTML is the point's report.html relative to the sweep directory,
	// when it was written.
	HTML string `json:"html,omitempty"`
}

// NewSweepRow condenses a point's results (nil when it did not run, with
// err saying why).
func NewSweepRow(point int, values []string, line, dir string, r *Results, err error) SweepRow {
	row := SweepRow{Point: point, Values: values, Line: line, Dir: dir, Verdict: "error"}
	if err != nil {
		row.Error = err.Error()
	}
	if r == nil {
		return row
	}
	row.Verdict, row.Interrupted, row.DurationS = r.Verdict, r.Interrupted, r.DurationS
	if r.Error != "" {
		row.Error = r.Error
	}
	row.TargetRate, row.AchievedRate = r.Rate.TargetMean, r.Rate.AchievedMean
	row.LatencyUS, row.Counts, row.ProduceOnly = r.LatencyUS, r.Counts, r.ProduceOnly
	for _, t := range r.Thresholds {
		if !t.OK {
			row.FailedThresholds++
		}
	}
	if r.FindMax != nil {
		row.SustainedRate = r.FindMax.SustainedRate
	}
	return row
}

// Sweep file names.
const (
	SweepJSON = "sweep.json"
	SweepCSV  = "sweep.csv"
	SweepHTML = "sweep.html"
)

// WriteSweepDir writes sweep.json, sweep.csv and sweep.html into dir
// (made if needed) and returns their paths.
func WriteSweepDir(dir string, s *SweepResults) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	for _, f := range []struct {
		name  string
		write func(io.Writer, *SweepResults) error
	}{{SweepJSON, WriteSweepJSON}, {SweepCSV, WriteSweepCSV}, {SweepHTML, WriteSweepHTML}} {
		var b bytes.Buffer
		if err := f.write(&b, s); err != nil {
			return paths, fmt.Errorf("%s: %w", f.name, err)
		}
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// WriteSweepJSON writes s as sweep.json.
func WriteSweepJSON(w io.Writer, s *SweepResults) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(s)
}

// ReadSweep reads a sweep.json file.
func ReadSweep(path string) (*SweepResults, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s SweepResults
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.SchemaVersion != SweepSchemaVersion {
		return nil, fmt.Errorf("%s: schema_version %d, this build reads %d", path, s.SchemaVersion, SweepSchemaVersion)
	}
	return &s, nil
}

// SweepCSVHeader is the header of sweep.csv after the point number and
// the axis paths.
var SweepCSVHeader = []string{
	"verdict", "target_rate", "achieved_rate",
	"e2e_p50_us", "e2e_p99_us", "e2e_p999_us", "e2e_max_us", "publish_p99_us",
	"sent", "acked", "received", "lost", "duplicates", "reordered", "failed", "unsent",
	"failed_thresholds", "sustained_rate", "error", "dir",
}

// WriteSweepCSV writes the table as CSV: the point number, each axis's
// value, then SweepCSVHeader's columns. Latencies are microseconds, rates
// messages per second; an undefined figure is an empty field.
func WriteSweepCSV(w io.Writer, s *SweepResults) error {
	cw := csv.NewWriter(w)
	header := []string{"point"}
	for _, a := range s.Axes {
		header = append(header, a.Path)
	}
	if err := cw.Write(append(header, SweepCSVHeader...)); err != nil {
		return err
	}
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	opt := func(v *float64) string {
		if v == nil {
			return ""
		}
		return strconv.FormatFloat(math.Round(*v*1000)/1000, 'f', -1, 64)
	}
	lat := func(l accounting.LatencySummary, v int64) string {
		if l.Count == 0 {
			return ""
		}
		return strconv.FormatInt(v, 10)
	}
	for _, p := range s.Points {
		rec := []string{strconv.Itoa(p.Point)}
		rec = append(rec, p.Values...)
		c, e := p.Counts, p.LatencyUS.E2E
		d := p.delivery(func(v float64) string { return num(math.Round(v*1000) / 1000) }, func(n int64) string { return strconv.FormatInt(n, 10) }, "")
		rec = append(rec, p.Verdict, opt(p.TargetRate), d.achieved,
			lat(e, e.P50), lat(e, e.P99), lat(e, e.P999), lat(e, e.Max), lat(p.LatencyUS.Publish, p.LatencyUS.Publish.P99),
			strconv.FormatInt(c.Sent, 10), strconv.FormatInt(c.Acked, 10), d.received,
			d.lost, d.duplicates, d.reordered,
			strconv.FormatInt(c.Failed, 10), strconv.FormatInt(c.Unsent, 10), strconv.Itoa(p.FailedThresholds),
			opt(p.SustainedRate), p.Error, p.Dir)
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteSweepText writes the table for a terminal.
func WriteSweepText(w io.Writer, s *SweepResults) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p("sweep %s: %d of %d points (scenario %s)\n", s.Name, len(s.Points), s.Planned, s.Scenario)
	widths := make([]int, len(s.Axes))
	for i, a := range s.Axes {
		widths[i] = len(shortPath(a.Path))
		for _, v := range a.Values {
			widths[i] = max(widths[i], len([]rune(v)))
		}
	}
	p("  %5s", "point")
	for i, a := range s.Axes {
		p(" %-*s", widths[i], shortPath(a.Path))
	}
	p(" %12s %9s %9s %9s %9s %8s %7s %6s  %s\n", "achieved/s", "e2e p50", "p99", "p99.9", "pub p99", "lost", "dup", "reord", "verdict")
	for _, pt := range s.Points {
		p("  %5d", pt.Point)
		for i, v := range pt.Values {
			p(" %-*s", widths[i], v)
		}
		e := pt.LatencyUS.E2E
		l := func(l accounting.LatencySummary, v int64) string {
			if l.Count == 0 {
				return "-"
			}
			return FormatMicros(v)
		}
		verdict := strings.ToUpper(pt.Verdict)
		if pt.Error != "" {
			verdict += ": " + pt.Error
		}
		d := pt.delivery(formatRate, GroupInt, "-")
		p(" %12s %9s %9s %9s %9s %8s %7s %6s  %s\n", d.achieved, l(e, e.P50), l(e, e.P99), l(e, e.P999),
			l(pt.LatencyUS.Publish, pt.LatencyUS.Publish.P99), d.lost, d.duplicates, d.reordered, verdict)
	}
	return bw.Flush()
}

// deliveryCells are a sweep row's delivery figures, formatted.
type deliveryCells struct{ achieved, received, lost, duplicates, reordered string }

// delivery formats the row's delivery figures with rate and count, or
// gives each as none in a produce-only point, where they were not
// measured.
func (r SweepRow) delivery(rate func(float64) string, count func(int64) string, none string) deliveryCells {
	if r.ProduceOnly {
		return deliveryCells{none, none, none, none, none}
	}
	c := r.Counts
	return deliveryCells{rate(r.AchievedRate), count(c.Received), count(c.Lost), count(c.Duplicates), count(c.Reordered)}
}

// shortPath is a path's last key, for narrow column headers.
func shortPath(path string) string {
	if i := strings.LastIndex(path, "."); i >= 0 && i+1 < len(path) {
		return path[i+1:]
	}
	return path
}

// Chart ids in sweep.html.
const (
	ChartSweepP99 = "chart-sweep-p99" // e2e p99 (and p50) against throughput, one curve per line
	ChartSweepP50 = "chart-sweep-p50"
)

// SweepCharts are the charts WriteSweepHTML draws, by id.
var SweepCharts = []string{ChartSweepP99, ChartSweepP50}

// sweepLines groups the points by line, lines and points in sweep order.
func sweepLines(s *SweepResults) (names []string, points map[string][]SweepRow) {
	points = map[string][]SweepRow{}
	for _, p := range s.Points {
		if _, ok := points[p.Line]; !ok {
			names = append(names, p.Line)
		}
		points[p.Line] = append(points[p.Line], p)
	}
	return names, points
}

// sweepCharts draws latency against throughput, one curve per line: the
// "hockey stick" where latency turns up as throughput stops growing.
func sweepCharts(s *SweepResults) []Chart {
	names, points := sweepLines(s)
	var charts []Chart
	for _, c := range []struct {
		id, title string
		stat      func(accounting.LatencySummary) int64
	}{
		{ChartSweepP99, "e2e p99 by throughput", func(l accounting.LatencySummary) int64 { return l.P99 }},
		{ChartSweepP50, "e2e p50 by throughput", func(l accounting.LatencySummary) int64 { return l.P50 }},
	} {
		ch := Chart{
			ID: c.id, Title: c.title + " (along " + s.Along + ")", XLabel: "throughput: messages received per second",
			YLabel: "e2e latency (log scale)", YLog: true, YFormat: tickMicros, Height: 360,
			Empty: "no point received any message",
		}
		for i, name := range names {
			var pts []Point
			for _, p := range points[name] {
				if p.LatencyUS.E2E.Count == 0 {
					continue
				}
				pts = append(pts, Point{p.AchievedRate, float64(c.stat(p.LatencyUS.E2E))})
			}
			// Earlier lines are drawn wider, so lines that coincide (a size
			// that makes no difference) stay visible under later ones.
			width := 2 + 2.5*float64(len(names)-1-i)/float64(max(len(names)-1, 1))
			ch.Series = append(ch.Series, Series{Name: name, Color: Palette[i%len(Palette)], Points: pts, Markers: true, Width: width})
		}
		charts = append(charts, ch)
	}
	return charts
}

// WriteSweepHTML writes sweep.html: one self-contained page with the
// grid, the latency-by-throughput curves of every line, and the table
// with a link to each point's report. It loads nothing and runs no script.
func WriteSweepHTML(w io.Writer, s *SweepResults) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	failed, errs := 0, 0
	for _, pt := range s.Points {
		switch {
		case pt.Verdict == "error" || pt.Error != "" || pt.Interrupted:
			errs++
		case pt.Verdict != Pass:
			failed++
		}
	}
	p("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	p("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
	p("<title>%s</title>\n<style>%s</style>\n</head>\n<body>\n<main>\n", esc("spate sweep: "+s.Name), htmlCSS)
	vclass, verdict := "pass", "DONE"
	why := fmt.Sprintf("%d of %d points", len(s.Points), s.Planned)
	if failed > 0 {
		why += fmt.Sprintf("; %d failed thresholds", failed)
	}
	if errs > 0 || len(s.Points) < s.Planned {
		vclass, verdict = "fail", "INCOMPLETE"
	}
	p("<header>\n<div class=\"verdict %s\">%s<div class=\"why\">%s</div></div>\n<div class=\"head\">\n<h1>%s</h1>\n", vclass, verdict, esc(why), esc(s.Name))
	if s.Description != "" {
		p("<p class=\"desc\">%s</p>\n", esc(s.Description))
	}
	p("<dl class=\"meta\">")
	meta := func(k, v string) { p("<div><dt>%s</dt><dd>%s</dd></div>", esc(k), esc(v)) }
	meta("scenario", s.Scenario)
	meta("sweep file", s.File)
	if !s.StartedAt.IsZero() {
		meta("started", s.StartedAt.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	meta("points", fmt.Sprintf("%d run, %d failed thresholds, %d errors", len(s.Points), failed, errs))
	p("</dl>\n</div>\n</header>\n")

	p("<section>\n<h2>Grid</h2>\n<table>\n<thead><tr><th>path</th><th>values</th></tr></thead>\n<tbody>\n")
	for _, a := range s.Axes {
		role := ""
		if a.Path == s.Along {
			role = " <span class=\"muted\">(along each curve)</span>"
		}
		p("<tr><td><code>%s</code>%s</td><td>%s</td></tr>\n", esc(a.Path), role, esc(strings.Join(a.Values, ", ")))
	}
	p("</tbody>\n</table>\n</section>\n")

	p("<section>\n<h2>Latency by throughput</h2>\n<p class=\"muted small\">One curve per line of the grid, its points in the order of <code>%s</code>. Where a system saturates, throughput stops growing while latency climbs: the curve turns up like a hockey stick.</p>\n", esc(s.Along))
	for _, c := range sweepCharts(s) {
		p("<figure>%s</figure>\n", c.SVG())
	}
	p("</section>\n")

	p("<section>\n<h2>Points</h2>\n<div class=\"scroll\">\n<table class=\"num sweep\">\n<thead><tr><th>point</th>")
	for _, a := range s.Axes {
		p("<th class=\"left\">%s</th>", esc(a.Path))
	}
	p("<th class=\"left\">verdict</th><th>target/s</th><th>achieved/s</th><th>e2e p50</th><th>e2e p99</th><th>e2e p99.9</th><th>publish p99</th><th>sent</th><th>received</th><th>lost</th><th>duplicates</th><th>reordered</th><th class=\"left\">report</th></tr></thead>\n<tbody>\n")
	for _, pt := range s.Points {
		lat := func(l accounting.LatencySummary, v int64) string {
			if l.Count == 0 {
				return "–"
			}
			return FormatMicros(v)
		}
		class := "ok"
		verdict := pt.Verdict
		if pt.Verdict != Pass {
			class = "bad"
		}
		if pt.Error != "" {
			verdict += ": " + pt.Error
		}
		if pt.SustainedRate != nil {
			verdict += " (sustained " + stepRate(*pt.SustainedRate) + "/s)"
		}
		target := "–"
		if pt.TargetRate != nil {
			target = stepRate(*pt.TargetRate)
		}
		p("<tr class=\"%s\"><td>%d</td>", class, pt.Point)
		for _, v := range pt.Values {
			p("<td class=\"left\">%s</td>", esc(v))
		}
		e := pt.LatencyUS.E2E
		link := esc(pt.Dir)
		if pt.HTML != "" {
			link = fmt.Sprintf("<a href=\"%s\">%s</a>", esc(filepath.ToSlash(pt.HTML)), esc(pt.Dir))
		}
		d := pt.delivery(stepRate, GroupInt, "–")
		p("<td class=\"left\">%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td%s>%s</td><td%s>%s</td><td%s>%s</td><td class=\"left\">%s</td></tr>\n",
			esc(verdict), target, d.achieved, lat(e, e.P50), lat(e, e.P99), lat(e, e.P999),
			lat(pt.LatencyUS.Publish, pt.LatencyUS.Publish.P99), GroupInt(pt.Counts.Sent), d.received,
			badAttr(pt.Counts.Lost > 0), d.lost, badAttr(pt.Counts.Duplicates > 0), d.duplicates,
			badAttr(pt.Counts.Reordered > 0), d.reordered, link)
	}
	p("</tbody>\n</table>\n</div>\n</section>\n")
	p("<footer>Written by spate from sweep.json (schema version %d); sweep.csv holds the same table. Each point's own report directory is under points/.</footer>\n", s.SchemaVersion)
	p("</main>\n</body>\n</html>\n")
	return bw.Flush()
}

// SweepLine returns the points of one line, for tests and tools.
func (s *SweepResults) SweepLine(name string) []SweepRow {
	_, points := sweepLines(s)
	return slices.Clone(points[name])
}

// Lines returns the names of the sweep's lines in order.
func (s *SweepResults) Lines() []string {
	names, _ := sweepLines(s)
	return names
}
