package report

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/accounting/accountingtest"
	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
)

// produceOnlyResults is a run without consumers, accounted by a real
// tracker owing no deliveries: 1,000 messages sent, 990 acked in 3 ms, 10
// failed, nothing received; a broker restart ran during it. Its thresholds
// include delivery figures, as results read back from a file (validation
// rejects them in scenarios) might.
func produceOnlyResults(t testing.TB) *Results {
	t.Helper()
	const start = int64(1_735_689_600) * int64(time.Second)
	tr := accounting.NewTracker(accountingtest.RunID, 1, start)
	tr.SetSubscriptions(0)
	var res []drivers.Result
	for seq := range uint64(1000) {
		s := stamp.Stamp{RunID: accountingtest.RunID, Seq: seq, Intended: start + int64(seq)*int64(time.Millisecond)}
		s.Sent = s.Intended
		var err error
		if seq%100 == 50 {
			err = errors.New("broker said no")
		}
		res = append(res, drivers.Result{Stamp: s, Err: err})
	}
	tr.Sent(0, 1000)
	for i := range res {
		tr.Acked(res[i:i+1], res[i].Stamp.Sent+int64(3*time.Millisecond))
	}
	iv := tr.Tick(start+int64(time.Second), nil)
	target := 1000.0
	r := &Results{
		SchemaVersion: SchemaVersion, Scenario: "producer-capacity", Driver: "kafka",
		RunID: stamp.RunIDString(accountingtest.RunID), StartedAt: time.Unix(0, start).UTC(),
		DurationS: 1.01, TrafficS: 1, DrainS: 0.01, Producers: 1, Consumers: 0, ProduceOnly: true,
		Intervals: []IntervalResult{{StartS: iv.Start.Seconds(), EndS: iv.End.Seconds(), TargetRate: &target,
			Counts: iv.Counts, Backlog: iv.Backlog, LatencyUS: iv.Latency}},
		Chaos: []FaultResult{{Action: "broker-restart", Target: "all", StartS: 0.2, EndS: 0.4, OK: true}},
	}
	if err := r.SetSummary(tr.Summary()); err != nil {
		t.Fatal(err)
	}
	r.Rate = Rates{TargetMean: &target, SentMean: 1000, AckedMean: 990}
	r.Evaluate(parseThresholds(t, "publish.p99 < 10ms", "acked >= 990", "lost == 0", "e2e.p99 < 1s", "achieved_rate >= 0.9 * target_rate"))
	return r
}

func TestProduceOnlyFigures(t *testing.T) {
	r := produceOnlyResults(t)
	c := r.Counts
	if c.Sent != 1000 || c.Acked != 990 || c.Failed != 10 || c.Lost != 0 || c.Received != 0 || r.LatencyUS.Publish.Count != 990 {
		t.Errorf("counts %+v, publish latencies %d", c, r.LatencyUS.Publish.Count)
	}
	if r.Claim != nil {
		t.Errorf("claim %q: a produce-only run cannot state a delivery guarantee", r.Claim.Statement)
	}
	if r.Intervals[0].Backlog != 0 {
		t.Errorf("backlog %d: nothing is owed without consumers", r.Intervals[0].Backlog)
	}
	for i, want := range []struct {
		ok  bool
		err string
	}{{true, ""}, {true, ""}, {false, NotMeasured}, {false, NotMeasured}, {false, NotMeasured}} {
		if got := r.Thresholds[i]; got.OK != want.ok || got.Error != want.err {
			t.Errorf("%s: ok %v error %q, want ok %v error %q", got.Expr, got.OK, got.Error, want.ok, want.err)
		}
	}
}

// TestProduceOnlyWriters: every writer shows the delivery figures of a
// produce-only run as not measured, never as 0 or as all lost, and still
// shows what producers saw.
func TestProduceOnlyWriters(t *testing.T) {
	r := produceOnlyResults(t)

	var text bytes.Buffer
	if err := WriteText(&text, r); err != nil {
		t.Fatal(err)
	}
	golden(t, "summary-produce-only.golden", text.Bytes())
	for _, row := range []string{"received", "duplicates", "lost", "reordered", "e2e", "service", "achieved \\(received\\)"} {
		if !regexp.MustCompile(`(?m)^  ` + row + ` +not measured \(no consumers\)$`).MatchString(text.String()) {
			t.Errorf("summary does not show %s as not measured", row)
		}
	}
	for _, row := range []string{"sent +1,000", "acked +990", "failed +10", "publish +990"} {
		if !regexp.MustCompile(`(?m)^  ` + row).MatchString(text.String()) {
			t.Errorf("summary lacks %q", row)
		}
	}

	var html bytes.Buffer
	if err := WriteHTML(&html, r); err != nil {
		t.Fatal(err)
	}
	h := html.String()
	for _, want := range []string{"publish p99", "acked rate", "<th>lost</th><td colspan=\"2\" class=\"muted\">" + NotMeasured, "<th>e2e</th><td colspan=\"6\" class=\"muted\">" + NotMeasured} {
		if !strings.Contains(h, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	for _, unwanted := range []string{`<div class="label">lost</div>`, `<div class="label">e2e p99</div>`, `did not recover`} {
		if strings.Contains(h, unwanted) {
			t.Errorf("report.html shows %q in a produce-only run", unwanted)
		}
	}

	var junit bytes.Buffer
	if err := WriteJUnit(&junit, r); err != nil {
		t.Fatal(err)
	}
	j := junit.String()
	if !strings.Contains(j, `<testsuite name="correctness" tests="3" failures="0" errors="0" skipped="3"`) {
		t.Errorf("junit.xml does not skip the correctness checks:\n%s", j)
	}
	if strings.Contains(j, "did not recover") {
		t.Error("junit.xml judges a fault's recovery, which a produce-only run cannot measure")
	}

	var js bytes.Buffer
	if err := WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js.String(), `"produce_only": true`) {
		t.Error("results.json does not say produce_only")
	}
	back, err := DecodeResults(&js)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := back.Metric("lost"); ok {
		t.Error("lost is defined after a round trip through results.json")
	}
}

// TestProduceOnlySweepRow: a sweep point without consumers leaves its
// delivery columns empty in every table, rather than showing 0 lost.
func TestProduceOnlySweepRow(t *testing.T) {
	row := NewSweepRow(1, []string{"5000/s"}, "", "points/01", produceOnlyResults(t), nil)
	if !row.ProduceOnly {
		t.Fatal("the row does not say produce_only")
	}
	s := &SweepResults{SchemaVersion: SchemaVersion, Name: "producer-rates", Axes: []SweepAxis{{Path: "traffic[0].constant.rate", Values: []string{"5000/s"}}},
		Along: "traffic[0].constant.rate", Planned: 1, Points: []SweepRow{row}}
	var text, csv bytes.Buffer
	if err := WriteSweepText(&text, s); err != nil {
		t.Fatal(err)
	}
	if err := WriteSweepCSV(&csv, s); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(text.String()), "\n")
	if last := strings.Fields(lines[len(lines)-1]); len(last) < 10 || last[2] != "-" || last[7] != "-" || last[8] != "-" || last[9] != "-" {
		t.Errorf("text row %q: achieved, lost, dup and reord should be -", lines[len(lines)-1])
	}
	rows := strings.Split(strings.TrimSpace(csv.String()), "\n")
	header, rec := strings.Split(rows[0], ","), strings.Split(rows[1], ",")
	checked := 0
	for i, col := range header {
		switch col {
		case "achieved_rate", "received", "lost", "duplicates", "reordered":
			checked++
			if rec[i] != "" {
				t.Errorf("csv %s = %q, want empty", col, rec[i])
			}
		case "acked":
			checked++
			if rec[i] != "990" {
				t.Errorf("csv acked = %q, want 990", rec[i])
			}
		}
	}
	if checked != 6 {
		t.Errorf("found %d of the 6 columns checked in %q", checked, rows[0])
	}
}
