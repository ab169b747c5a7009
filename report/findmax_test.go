package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/accounting/accountingtest"
	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
	"github.com/spate-dev/spate/scenarios"
)

// TestTrackerStepWindows: messages are attributed to a step by their
// intended send time, whenever they are acked or received, and only while
// the window is open.
func TestTrackerStepWindows(t *testing.T) {
	tr := accounting.NewTracker(accountingtest.RunID, 1, 0)
	w := tr.OpenStep(int64(10*time.Millisecond), int64(20*time.Millisecond))
	// Messages 0..29 intended 1 ms apart: 10..19 are the step's. They are
	// acked at once and received 5 ms later, but 15 arrives twice and 17
	// never arrives; 12 fails.
	for seq := range uint64(30) {
		s := stamp.Stamp{RunID: accountingtest.RunID, Seq: seq, Intended: int64(seq) * int64(time.Millisecond)}
		s.Sent = s.Intended
		tr.Sent(0, seq+1)
		var err error
		if seq == 12 {
			err = errors.New("no")
		}
		tr.Acked([]drivers.Result{{Stamp: s, Err: err}}, s.Sent+int64(time.Millisecond))
		if seq == 17 {
			continue
		}
		d := []drivers.Delivery{{Stamp: accountingtest.Encode(s), Stream: 0}}
		tr.Received(0, d, s.Intended+int64(5*time.Millisecond))
		if seq == 15 {
			tr.Received(0, d, s.Intended+int64(6*time.Millisecond))
		}
	}
	f := tr.StepFigures(w)
	want := accounting.StepCounts{Acked: 9, Failed: 1, Received: 9, Duplicates: 1, ReceivedAcked: 8, Subscriptions: 1}
	if f.Counts != want || f.Counts.Missing() != 1 || f.Latency.E2E.Count != 9 || f.Latency.E2E.P50 < 5000 || f.Latency.E2E.P50 > 5010 || f.Latency.Publish.Count != 9 {
		t.Errorf("step counts %+v (want %+v) e2e %+v publish %+v", f.Counts, want, f.Latency.E2E, f.Latency.Publish)
	}
	closed := tr.CloseStep(w)
	late := stamp.Stamp{RunID: accountingtest.RunID, Seq: 17, Intended: int64(17 * time.Millisecond)}
	tr.Received(0, []drivers.Delivery{{Stamp: accountingtest.Encode(late), Stream: 0}}, int64(time.Second))
	if again := tr.CloseStep(w); again.Counts != closed.Counts {
		t.Errorf("a message after closing changed the figures: %+v %+v", again.Counts, closed.Counts)
	}
	// A missing message counts at least as long as it waited.
	closed.ImputeMissing(250_000)
	if closed.Latency.E2E.Count != 10 || closed.Latency.E2E.Max < 249_000 {
		t.Errorf("imputed e2e %+v", closed.Latency.E2E)
	}
}

func TestFindMaxStepMetrics(t *testing.T) {
	r := findMaxResults(t)
	s := r.FindMax.Steps[3] // 8,000/s, failed
	for name, want := range map[string]float64{
		"e2e.p99": 1140000, "target_rate": 8000, "achieved_rate": 5247, "lost": 0, "loss.ratio": 0,
		"duplicates.ratio": 0, "failed.ratio": 0, "e2e.max": 1150000,
	} {
		v, ok, err := s.Metric(name)
		if err != nil || !ok || (v < want*0.999 || v > want*1.001) && !(want == 0 && v == 0) {
			t.Errorf("step Metric(%q) = %v, %v, %v; want %v", name, v, ok, err, want)
		}
	}
	if _, ok, _ := s.Metric("publish.p99"); ok {
		t.Error("publish.p99 defined for a step with no publish latencies")
	}
	if _, _, err := s.Metric("reordered"); err == nil {
		t.Error("reordered is not measured per step")
	}
	for _, m := range scenarios.StepMetrics {
		if _, _, err := s.Metric(m); err != nil {
			t.Errorf("step metric %s: %v", m, err)
		}
	}
	if !strings.Contains(s.Why, "e2e.p99 = 1.14s, not < 100ms") || !strings.Contains(s.Why, "backlog kept growing: 2,506 at mid-step, 5,506 at the end") {
		t.Errorf("why %q", s.Why)
	}
	// The knee: 1 ms at 1,000/s, so the limit is 2 ms; 5,000/s is the
	// last rate before p99 exceeds it.
	f := r.FindMax
	if f.KneeRate == nil || *f.KneeRate != 5000 || *f.BaseP99US != 1000 || *f.KneeLimitUS != 2000 {
		t.Errorf("knee %v base %v limit %v", f.KneeRate, f.BaseP99US, f.KneeLimitUS)
	}
	if f.Headroom == nil || *f.Headroom != 5000.0/1200 {
		t.Errorf("headroom %v", f.Headroom)
	}
	if !r.Thresholds[1].OK || r.Thresholds[2].OK {
		t.Errorf("headroom thresholds %+v", r.Thresholds)
	}
}

func TestFindMaxKnee(t *testing.T) {
	mk := func(rate float64, p99 int64) FindMaxStep {
		return FindMaxStep{Rate: rate, LatencyUS: accounting.LatencySet{E2E: accounting.LatencySummary{Count: 1, P99: p99}}}
	}
	for _, c := range []struct {
		steps []FindMaxStep
		knee  float64
	}{
		{[]FindMaxStep{mk(1000, 10_000), mk(2000, 15_000), mk(4000, 19_000), mk(8000, 90_000)}, 4000},
		{[]FindMaxStep{mk(4000, 30_000), mk(1000, 10_000), mk(2000, 15_000)}, 2000},            // order does not matter
		{[]FindMaxStep{mk(1000, 100), mk(2000, 900), mk(3000, 1200)}, 2000},                    // at least +1 ms
		{[]FindMaxStep{mk(1000, 10_000), mk(2000, 30_000), mk(3000, 12_000)}, 3000},            // a noisy step in between does not end it
		{[]FindMaxStep{mk(1000, 10_000), {Rate: 2000}, mk(3000, 12_000), mk(9000, 1e6)}, 3000}, // a step with no latency is skipped
	} {
		if got, _, _, ok := Knee(c.steps); !ok || got != c.knee {
			t.Errorf("Knee = %v (%v), want %v", got, ok, c.knee)
		}
	}
	if _, _, _, ok := Knee([]FindMaxStep{{Rate: 1}}); ok {
		t.Error("a knee without latencies")
	}
}

func TestFindMaxText(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, findMaxResults(t)); err != nil {
		t.Fatal(err)
	}
	golden(t, "summary-findmax.golden", b.Bytes())
}

// TestFindMaxJSON: find_max round-trips through results.json, and a run
// without one has no find_max key (the schema is additive).
func TestFindMaxJSON(t *testing.T) {
	var b bytes.Buffer
	r := findMaxResults(t)
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	back, err := DecodeResults(&b)
	if err != nil {
		t.Fatal(err)
	}
	f := back.FindMax
	if f == nil || len(f.Steps) != 8 || *f.SustainedRate != 5000 || *f.Headroom != *r.FindMax.Headroom || f.Steps[3].BacklogEnd != 5506 ||
		f.Steps[3].OK || f.Steps[3].SLO[0].Expr != "e2e.p99 < 100ms" || f.Outcome != "converged" || *f.KneeRate != 5000 {
		t.Errorf("find_max after a round trip: %+v", f)
	}
	if v, ok, err := back.Metric("headroom"); !ok || err != nil || v != *r.FindMax.Headroom {
		t.Errorf("headroom from results.json: %v %v %v", v, ok, err)
	}
	var plain bytes.Buffer
	if err := WriteJSON(&plain, testResults(t)); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(plain.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["find_max"]; ok {
		t.Error("a run without a find-max phase has a find_max key")
	}
}

func TestFindMaxHTML(t *testing.T) {
	r := findMaxResults(t)
	page := renderHTML(t, r)
	checkHTML(t, page)
	for _, want := range []string{
		"Capacity search (find-max: capacity)", "5,000/s", "4.16×", "meets headroom &gt;= 2", "does not meet headroom &gt;= 5",
		"SLO e2e.p99 &lt; 100ms", "sustained 5k/s", "knee", "End-to-end latency by step rate", "Achieved rate by step rate",
		`class="marker"`, "failed step", "backlog kept growing: 2,506 at mid-step, 5,506 at the end",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	out := filepath.Join(artifactDir(t), "report-findmax.html")
	if err := os.WriteFile(out, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFindMaxHTMLInBrowser loads a find-max report in headless Chromium:
// no console error, and every chart, the find-max ones included, laid out.
func TestFindMaxHTMLInBrowser(t *testing.T) {
	ctx := browserContext(t)
	b := startBrowser(t, ctx)
	dir := artifactDir(t)
	page := filepath.Join(dir, "report-findmax.html")
	if err := os.WriteFile(page, []byte(renderHTML(t, findMaxResults(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	if problems := b.load(ctx, "file://"+page); len(problems) > 0 {
		t.Errorf("loading %s: %s", page, strings.Join(problems, "\n"))
	}
	for _, id := range append(append([]string{}, HTMLCharts...), FindMaxCharts...) {
		w := b.evaluate(ctx, fmt.Sprintf("(e => e ? e.getBoundingClientRect().width : -1)(document.getElementById(%q))", id))
		if f, ok := w.(float64); !ok || f < 500 {
			t.Errorf("chart %s is %v px wide in a 1366 px window", id, w)
		}
	}
	b.screenshot(ctx, filepath.Join(dir, "report-findmax.png"), 1366, 0)
}

func TestHeadroomIsWorseWhenLower(t *testing.T) {
	if WorseWhenHigher("headroom") {
		t.Error("a lower headroom is the regression")
	}
}

// TestChartMarkersAndLegendRows: markers are drawn visibly, a series
// without a line has only its dots, and a legend wider than the plot takes
// more rows and pushes the plot down.
func TestChartMarkersAndLegendRows(t *testing.T) {
	pts := []Point{{1, 1}, {2, 2}}
	svg := Chart{Title: "t", Series: []Series{
		{Name: "line with markers", Points: pts, Markers: true},
		{Name: "dots only", Points: pts, Markers: true, NoLine: true},
	}}.SVG()
	if strings.Count(svg, `<circle class="marker"`) != 4 || strings.Count(svg, `<path class="series"`) != 1 {
		t.Errorf("markers and lines:\n%s", svg)
	}
	var long []Series
	for i := range 12 {
		long = append(long, Series{Name: fmt.Sprintf("message.size=%dKiB driver.kafka.partitions=12", i), Points: pts})
	}
	c := Chart{Title: "t", Series: long}
	rows := c.legendLayout(marginLeft, 960-marginRight)
	if last := rows[len(rows)-1].row; last < 3 {
		t.Errorf("12 long legend entries in %d rows", last+1)
	}
	for _, e := range rows {
		if e.x < marginLeft-1 {
			t.Errorf("legend entry %d starts at %v, left of the plot", e.series, e.x)
		}
	}
	if !strings.Contains(c.SVG(), `y1="`+f1(40+float64(rows[len(rows)-1].row)*legendRow)+`"`) {
		t.Error("the last legend row is not drawn")
	}
}
