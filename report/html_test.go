package report

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// artifactDir is where tests leave files for people to look at (the HTML
// reports and their screenshots): $SPATE_ARTIFACTS, or testdata/out
// (ignored by git).
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SPATE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("testdata", "out")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func renderHTML(t *testing.T, r *Results) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// urlRE finds URLs; xmlnsRE the ones allowed, in xmlns attributes.
var (
	urlRE   = regexp.MustCompile(`(?i)https?://`)
	xmlnsRE = regexp.MustCompile(`xmlns(:[a-z]+)?="https?://[^"]*"`)
	svgRE   = regexp.MustCompile(`(?s)<svg .*?</svg>`)
)

// checkHTML checks what any report.html must be: every chart, no URL but
// in xmlns attributes, well-formed SVG, no script.
func checkHTML(t *testing.T, page string) {
	t.Helper()
	charts := HTMLCharts
	if strings.Contains(page, `id="`+ChartFindMax+`"`) {
		charts = append(slices.Clone(HTMLCharts), FindMaxCharts...)
	}
	for _, id := range charts {
		if !strings.Contains(page, `<svg xmlns="http://www.w3.org/2000/svg" id="`+id+`"`) {
			t.Errorf("no %s chart", id)
		}
	}
	if n := len(urlRE.FindAllString(xmlnsRE.ReplaceAllString(page, ""), -1)); n > 0 {
		for _, m := range urlRE.FindAllStringIndex(xmlnsRE.ReplaceAllString(page, ""), 3) {
			t.Errorf("external URL at %d: %.80q", m[0], xmlnsRE.ReplaceAllString(page, "")[m[0]:])
		}
	}
	for _, bad := range []string{"<script", "<link", "<img", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q: it must be self-contained and script-free", bad)
		}
	}
	svgs := svgRE.FindAllString(page, -1)
	if len(svgs) != len(charts) {
		t.Errorf("%d svg elements, want %d", len(svgs), len(charts))
	}
	for i, s := range svgs {
		d := xml.NewDecoder(strings.NewReader(s))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Errorf("svg %d is not well-formed XML: %v", i, err)
				break
			}
		}
	}
}

func TestWriteHTML(t *testing.T) {
	r := chartResults(t)
	page := renderHTML(t, r)
	checkHTML(t, page)
	for _, want := range []string{
		`<div class="verdict fail">FAIL<div class="why">1 of 4 thresholds failed</div></div>`, "<h1>checkout-spike</h1>", "00000000deadbeef", "memory",
		"1m2s (traffic 1m0s + drain 2s)", "e2e.p99 &lt; 250ms", "achieved_rate &gt;= 0.95 * target_rate",
		"1 broker-restart broker-0", "2 kill-consumer consumer-1", "did not recover", "3.2s",
		"Throughput", "Backlog", "End-to-end latency", "Publish latency", "Latency by percentile",
		"99.9%", "99.99%", "messages per second", "time since the traffic started (s)",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if page != renderHTML(t, chartResults(t)) {
		t.Error("WriteHTML is not deterministic")
	}
	out := filepath.Join(artifactDir(t), "report.html")
	if err := os.WriteFile(out, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", out)
}

// TestWriteHTMLEdges: a passing run without faults, an interrupted one
// without intervals or histograms, hostile strings.
func TestWriteHTMLEdges(t *testing.T) {
	r := testResults(t)
	r.Thresholds, r.Verdict = nil, Pass
	page := renderHTML(t, r)
	checkHTML(t, page)
	for _, want := range []string{`<div class="verdict pass">PASS<div class="why">no thresholds set</div></div>`, "The scenario injected no faults.", "The scenario sets no thresholds."} {
		if !strings.Contains(page, want) {
			t.Errorf("passing report lacks %q", want)
		}
	}

	empty := &Results{SchemaVersion: SchemaVersion, Scenario: `<script>alert("x")</script>`, Verdict: Fail,
		Interrupted: true, Error: "broker <gone> & https://example.com/x"}
	page = renderHTML(t, empty)
	if strings.Contains(page, "<script>") {
		t.Error("the scenario name is not escaped")
	}
	for _, want := range []string{"no intervals were recorded", "no latencies were recorded", "Interrupted", "broker &lt;gone&gt; &amp;"} {
		if !strings.Contains(page, want) {
			t.Errorf("empty report lacks %q", want)
		}
	}
	for _, id := range HTMLCharts {
		if !strings.Contains(page, `id="`+id+`"`) {
			t.Errorf("empty report has no %s chart placeholder", id)
		}
	}
}

func TestChartAxes(t *testing.T) {
	if got := niceStep(60); got != 10 {
		t.Errorf("niceStep(60) = %v", got)
	}
	a := newAxis([]float64{3, 2_500_000}, true, [2]float64{}, 1, false)
	if a.lo != 1 || a.hi != 1e7 {
		t.Errorf("log axis %v..%v", a.lo, a.hi)
	}
	var labels []string
	for _, tk := range a.ticks(tickMicros) {
		labels = append(labels, tk.Label)
	}
	if got := strings.Join(labels, " "); got != "1µs 10µs 100µs 1ms 10ms 100ms 1s 10s" {
		t.Errorf("log ticks %s", got)
	}
	for q, want := range map[float64]string{0: "0%", 0.9: "90%", 0.99: "99%", 0.999: "99.9%", 0.99999: "99.999%"} {
		if got := percentileLabel(q); got != want {
			t.Errorf("percentileLabel(%v) = %q, want %q", q, got, want)
		}
	}
	for v, want := range map[float64]string{0: "0", 950: "950", 1500: "1.5k", 2_000_000: "2M", 0.25: "0.25", 12.5: "12.5"} {
		if got := compactNumber(v); got != want {
			t.Errorf("compactNumber(%v) = %q, want %q", v, got, want)
		}
	}
	for v, want := range map[float64]string{0: "0s", 30: "30s", 120: "2m", 150: "2m30s"} {
		if got := tickSeconds(v); got != want {
			t.Errorf("tickSeconds(%v) = %q, want %q", v, got, want)
		}
	}
	// A window is drawn and labelled; a point event is a line.
	svg := Chart{Title: "t", Series: []Series{{Name: "s", Points: []Point{{0, 1}, {10, 2}}}},
		Windows: []Window{{From: 2, To: 4, Label: "restart"}, {From: 6, To: 6, Label: "kill"}}}.SVG()
	for _, want := range []string{`<rect class="window"`, `<line class="window"`, ">restart</text>", ">kill</text>", "<title>restart: 2–4</title>"} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
}
