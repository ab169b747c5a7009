package report

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/accounting/accountingtest"
	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
	"github.com/spate-dev/spate/scenarios"
)

// testResults returns the results of a small deterministic run: 2,000
// messages from two producers over 2 s, with failures, losses, duplicates,
// reordering and every latency kind recorded.
func testResults(t testing.TB) *Results {
	t.Helper()
	const start = int64(1_735_689_600) * int64(time.Second) // 2025-01-01T00:00:00Z
	tr := accounting.NewTracker(accountingtest.RunID, 2, start)
	boom := errors.New("broker said no")
	var intervals []IntervalResult
	target := 1000.0
	for iv := range 2 {
		for p := range uint32(2) {
			var res []drivers.Result
			var dels []drivers.Delivery
			for i := range uint64(500) {
				seq := uint64(iv)*500 + i
				intended := start + int64(iv)*int64(time.Second) + int64(i)*int64(2*time.Millisecond)
				s := stamp.Stamp{RunID: accountingtest.RunID, Producer: p, Seq: seq, Intended: intended, Sent: intended + int64(p+1)*int64(50*time.Microsecond)}
				switch {
				case seq%211 == 5:
					res = append(res, drivers.Result{Stamp: s, Err: boom})
				default:
					res = append(res, drivers.Result{Stamp: s})
				}
				if seq%150 == 7 && p == 0 {
					continue // lost
				}
				b := make([]byte, stamp.Size)
				s.Put(b)
				d := drivers.Delivery{Stamp: b, Stream: int32(p)}
				dels = append(dels, d)
				if seq%100 == 3 {
					dels = append(dels, drivers.Delivery{Stamp: b, Stream: d.Stream, Redelivered: true})
				}
			}
			tr.Sent(p, uint64(iv+1)*500)
			// Acks take 2 ms; deliveries arrive in the stamp's own order but
			// for a swap every 64 messages.
			for i := range res {
				tr.Acked(res[i:i+1], res[i].Stamp.Sent+int64(2*time.Millisecond)+int64(i%7)*int64(time.Microsecond))
			}
			for i := 0; i+1 < len(dels); i += 64 {
				dels[i], dels[i+1] = dels[i+1], dels[i]
			}
			for _, d := range dels {
				s, _ := stamp.Parse(d.Stamp)
				tr.Received(0, []drivers.Delivery{d}, s.Intended+testLatency(s.Seq))
			}
		}
		iv := tr.Tick(start+int64(iv+1)*int64(time.Second), nil)
		intervals = append(intervals, IntervalResult{
			StartS: iv.Start.Seconds(), EndS: iv.End.Seconds(), TargetRate: &target,
			Counts: iv.Counts, Backlog: iv.Backlog, LatencyUS: iv.Latency,
		})
	}
	r := &Results{
		SchemaVersion: SchemaVersion,
		Scenario:      "checkout-spike",
		File:          "examples/checkout-spike.yaml",
		Driver:        "memory",
		RunID:         stamp.RunIDString(accountingtest.RunID),
		StartedAt:     time.Unix(0, start).UTC(),
		DurationS:     2.5,
		TrafficS:      2,
		DrainS:        0.5,
		Producers:     2,
		Consumers:     1,
		Counts:        accounting.Counts{Unsent: 3},
		Intervals:     intervals,
		DriverStats:   map[string]int64{"dropped": 7, "duplicated": 40},
	}
	if err := r.SetSummary(tr.Summary()); err != nil {
		t.Fatal(err)
	}
	r.Rate = Rates{
		TargetMean:   &target,
		AchievedMean: float64(r.Counts.Received) / r.TrafficS,
		SentMean:     float64(r.Counts.Sent) / r.TrafficS,
		AckedMean:    float64(r.Counts.Acked) / r.TrafficS,
	}
	r.Evaluate(parseThresholds(t,
		"e2e.p99 < 300ms",
		"loss == 0",
		"duplicates.ratio <= 5%",
		"achieved_rate >= 0.95 * target_rate",
		"publish.max < 1ms",
		"reordered.ratio < 1%",
	))
	return r
}

// testLatency is the e2e latency of message seq in testResults: 1 ms to
// 41 ms, growing with seq, and 250 ms more for every 97th.
func testLatency(seq uint64) int64 {
	lat := int64(time.Millisecond) + int64(seq)*int64(seq)*40
	if seq%97 == 0 {
		lat += int64(250 * time.Millisecond)
	}
	return lat
}

func parseThresholds(t testing.TB, exprs ...string) []scenarios.Threshold {
	t.Helper()
	var out []scenarios.Threshold
	for _, e := range exprs {
		th, err := scenarios.ParseThreshold(e)
		if err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		out = append(out, th)
	}
	return out
}

// metricNames lists every metric name scenarios offers: counts, ratios,
// rates, and every latency statistic with the percentiles thresholds use.
func metricNames() []string {
	names := append([]string{}, scenarios.CountMetrics...)
	for _, m := range scenarios.RatioMetrics {
		names = append(names, m+".ratio")
	}
	names = append(names, scenarios.RateMetrics...)
	names = append(names, scenarios.CapacityMetrics...)
	for _, k := range scenarios.LatencyKinds {
		for _, s := range append(append([]string{}, scenarios.LatencyStats...), "p50", "p90", "p99", "p999", "p9999", "p1") {
			names = append(names, k+"."+s)
		}
	}
	return names
}

// TestMetricImplementsEveryName: every name scenarios accepts has a value
// in a run where everything happened. A metric added to scenarios without
// an implementation here fails this test.
func TestMetricImplementsEveryName(t *testing.T) {
	r := findMaxResults(t)         // a run with a find-max phase and a peak: headroom too
	h := accounting.NewHistogram() // and a pipeline's latency
	_ = h.RecordValues(1500, 10)
	r.hists[accounting.Pipeline] = h
	for _, name := range metricNames() {
		if _, ok := scenarios.LookupMetric(name); !ok {
			t.Errorf("scenarios does not accept its own metric %q", name)
		}
		v, ok, err := r.Metric(name)
		if err != nil || !ok {
			t.Errorf("Metric(%q) = %v, %v, %v; want a value", name, v, ok, err)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("Metric(%q) = %v", name, v)
		}
	}
}

func TestMetricValues(t *testing.T) {
	r := testResults(t)
	c := r.Counts
	e2e, _ := r.Histogram(accounting.E2E)
	for name, want := range map[string]float64{
		"sent": float64(c.Sent), "lost": float64(c.Lost), "loss": float64(c.Lost),
		"unsent": 3, "duplicates": float64(c.Duplicates), "failed": float64(c.Failed),
		"lost.ratio": float64(c.Lost) / float64(c.Acked), "loss.ratio": float64(c.Lost) / float64(c.Acked),
		"duplicates.ratio":            float64(c.Duplicates) / float64(c.Received),
		"reordered.ratio":             float64(c.Reordered) / float64(c.Received),
		"failed.ratio":                float64(c.Failed) / float64(c.Sent),
		"unconfirmed_delivered.ratio": float64(c.UnconfirmedDelivered) / float64(c.Received),
		"target_rate":                 1000, "achieved_rate": float64(c.Received) / 2,
		"e2e.p50": float64(r.LatencyUS.E2E.P50), "e2e.p999": float64(r.LatencyUS.E2E.P999),
		"e2e.p9999": float64(e2e.ValueAtQuantile(99.99)), "e2e.max": float64(r.LatencyUS.E2E.Max),
		"e2e.min": float64(r.LatencyUS.E2E.Min), "service.mean": mustHist(t, r, accounting.Service).Mean(),
	} {
		v, ok, err := r.Metric(name)
		if err != nil || !ok || v != want {
			t.Errorf("Metric(%q) = %v, %v, %v; want %v", name, v, ok, err, want)
		}
	}
	// The run has some of everything, so the ratios above are not 0.
	if c.Lost == 0 || c.Duplicates == 0 || c.Failed == 0 || c.Reordered == 0 || c.UnconfirmedDelivered == 0 {
		t.Errorf("test run lacks a kind of event: %+v", c)
	}
}

func mustHist(t testing.TB, r *Results, kind string) *hdr.Histogram {
	t.Helper()
	h, err := r.Histogram(kind)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestMetricUndefined: a run with nothing in it, and a max phase, leaves
// latencies, ratios and the target rate undefined: not 0.
func TestMetricUndefined(t *testing.T) {
	r := &Results{SchemaVersion: SchemaVersion}
	if err := r.SetSummary(accounting.NewTracker(1, 1, 0).Summary()); err != nil {
		t.Fatal(err)
	}
	for _, name := range metricNames() {
		v, ok, err := r.Metric(name)
		if err != nil {
			t.Errorf("Metric(%q): %v", name, err)
			continue
		}
		_, isCount := scenarios.LookupMetric(name)
		wantOK := isCount && !strings.Contains(name, ".") && name != "target_rate" && name != "headroom"
		if ok != wantOK || v != 0 {
			t.Errorf("Metric(%q) on an empty run = %v, %v; want 0, %v", name, v, ok, wantOK)
		}
	}
	// The publish latency alone is undefined when nothing was confirmed.
	tr := accounting.NewTracker(accountingtest.RunID, 1, 0)
	accountingtest.RecordOne(tr, 0, time.Millisecond, time.Millisecond, time.Millisecond)
	s := tr.Summary()
	s.Histograms[accounting.Publish].Reset()
	if err := r.SetSummary(s); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := r.Metric("publish.p99"); ok {
		t.Error("publish.p99 defined with no publish latencies")
	}
	if _, ok, _ := r.Metric("e2e.p99"); !ok {
		t.Error("e2e.p99 undefined with an e2e latency")
	}
}

func TestMetricUnknown(t *testing.T) {
	r := testResults(t)
	for _, name := range []string{"nope", "sent.p99", "e2e.p100x", "e2e.median", "foo.ratio", "e2e.ratio", "latency.p50", ""} {
		if v, ok, err := r.Metric(name); err == nil {
			t.Errorf("Metric(%q) = %v, %v, nil; want an error", name, v, ok)
		}
	}
	// A results file without histograms: latency metrics are an error.
	if _, _, err := (&Results{}).Metric("e2e.p50"); err == nil {
		t.Error("latency metric of results without histograms: no error")
	}
}

func TestEvaluate(t *testing.T) {
	r := testResults(t)
	f := func(v float64) *float64 { return &v }
	achieved := r.Rate.AchievedMean
	cases := []struct {
		expr        string
		ok          bool
		value, lim  *float64
		errContains string
	}{
		{"e2e.p99 < 300ms", true, f(float64(r.LatencyUS.E2E.P99)), f(300_000), ""},
		{"e2e.p99 < 10ms", false, f(float64(r.LatencyUS.E2E.P99)), f(10_000), ""},
		{"300ms > e2e.p99", true, f(float64(r.LatencyUS.E2E.P99)), f(300_000), ""},
		{"loss == 0", false, f(float64(r.Counts.Lost)), f(0), ""},
		{"failed.ratio < 1%", true, f(float64(r.Counts.Failed) / float64(r.Counts.Sent)), f(0.01), ""},
		{"achieved_rate >= 0.95 * target_rate", true, f(achieved), f(950), ""},
		{"achieved_rate >= 1.5 * target_rate", false, f(achieved), f(1500), ""},
		{"sent_rate >= 1000/s", true, f(r.Rate.SentMean), f(1000), ""},
	}
	var ths []scenarios.Threshold
	for _, c := range cases {
		ths = append(ths, parseThresholds(t, c.expr)...)
	}
	r.Evaluate(ths)
	if r.Verdict != Fail || len(r.Thresholds) != len(cases) {
		t.Fatalf("verdict %q with %d results", r.Verdict, len(r.Thresholds))
	}
	for i, c := range cases {
		got := r.Thresholds[i]
		if got.Expr != c.expr || got.OK != c.ok || got.Error != "" || !sameFloat(got.Value, c.value) || !sameFloat(got.Limit, c.lim) {
			t.Errorf("%s: %+v (value %v limit %v); want ok %v value %v limit %v", c.expr, got,
				deref(got.Value), deref(got.Limit), c.ok, deref(c.value), deref(c.lim))
		}
	}
	r.Evaluate(parseThresholds(t, "e2e.p99 < 300ms", "achieved_rate >= 0.95 * target_rate"))
	if r.Verdict != Pass {
		t.Errorf("passing thresholds: verdict %q: %+v", r.Verdict, r.Thresholds)
	}
	r.Evaluate(nil)
	if r.Verdict != Pass || r.Thresholds == nil || len(r.Thresholds) != 0 {
		t.Errorf("no thresholds: verdict %q, %v", r.Verdict, r.Thresholds)
	}

	// A max phase ran: target_rate is undefined and the threshold fails.
	r.Rate.TargetMean = nil
	r.Evaluate(parseThresholds(t, "e2e.p99 < 300ms", "achieved_rate >= 0.95 * target_rate"))
	if r.Verdict != Fail {
		t.Errorf("undefined target_rate: verdict %q", r.Verdict)
	}
	if got := r.Thresholds[1]; got.OK || got.Value != nil || got.Limit != nil || !strings.Contains(got.Error, "undefined") {
		t.Errorf("undefined target_rate: %+v", got)
	}
	if !r.Thresholds[0].OK {
		t.Errorf("the defined threshold failed: %+v", r.Thresholds[0])
	}
}

func sameFloat(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return math.Abs(*a-*b) <= 1e-9*math.Max(1, math.Abs(*b))
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestResultsRoundTrip: results.json read back holds the same histograms
// and evaluates to the same verdict; writing it again gives the same bytes.
func TestResultsRoundTrip(t *testing.T) {
	r := testResults(t)
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), `\u003c`) {
		t.Error("results.json escapes < in thresholds")
	}
	path := filepath.Join(t.TempDir(), "results.json")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := ReadResults(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range accounting.Kinds {
		orig, err := r.Histogram(kind)
		if err != nil {
			t.Fatal(err)
		}
		got, err := back.Histogram(kind)
		if err != nil {
			t.Fatal(err)
		}
		if got.TotalCount() != orig.TotalCount() || got.TotalCount() == 0 || !got.Equals(orig) {
			t.Errorf("%s: %d values read back, %d written (equal: %v)", kind, got.TotalCount(), orig.TotalCount(), got.Equals(orig))
		}
		if accounting.Summarize(got) != r.LatencyUS.Get(kind) {
			t.Errorf("%s summary read back %+v, written %+v", kind, accounting.Summarize(got), r.LatencyUS.Get(kind))
		}
	}
	ths := parseThresholds(t, "e2e.p99 < 300ms", "loss == 0", "service.p9999 < 1s", "achieved_rate >= 0.95 * target_rate")
	r.Evaluate(ths)
	back.Evaluate(ths)
	if back.Verdict != r.Verdict || len(back.Thresholds) != len(r.Thresholds) {
		t.Fatalf("verdict read back %q, written %q", back.Verdict, r.Verdict)
	}
	for i := range ths {
		a, b := r.Thresholds[i], back.Thresholds[i]
		if a.OK != b.OK || *a.Value != *b.Value || *a.Limit != *b.Limit {
			t.Errorf("%s: read back %+v, written %+v", a.Expr, b, a)
		}
	}
	var again bytes.Buffer
	if err := WriteJSON(&again, back); err != nil {
		t.Fatal(err)
	}
	var first bytes.Buffer
	_ = WriteJSON(&first, r)
	if again.String() != first.String() {
		t.Error("results.json written again after reading differs")
	}

	// A results file of another schema version is refused.
	bad := strings.Replace(b.String(), `"schema_version": 1`, `"schema_version": 99`, 1)
	if _, err := DecodeResults(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "schema_version 99") {
		t.Errorf("schema 99: %v", err)
	}
	if _, err := ReadResults(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("missing file: no error")
	}
}
