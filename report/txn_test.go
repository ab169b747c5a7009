package report

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
	"github.com/spate-dev/spate/scenarios"
)

// txnMsg is message seq of producer 0 written in transaction txn.
func txnMsg(seq, txn uint64) stamp.Stamp {
	s := msg(0, seq)
	s.Txn = txn
	return s
}

func txnDelivery(seq, txn uint64, stream int32, offset int64) drivers.Delivery {
	return drivers.Delivery{Stamp: encode(txnMsg(seq, txn)), Stream: stream, HasOffset: true, Offset: offset}
}

// txnRun is a run of one transactional producer: transactions 1, 2 and 3
// of 100 messages each (seq 0..99, 100..199, 200..299); 2 aborted, 1 and 3
// committed. The consumers receive every committed message but seq 250,
// and ten messages of transaction 2: five before its abort is reported,
// five after. Two messages of transaction 3 are received before their
// commit is reported.
func txnRun(t *testing.T, readCommitted bool) Summary {
	t.Helper()
	tr := NewTracker(testRunID, 1, 0)
	tr.SetReadCommitted(readCommitted)
	tr.Sent(0, 300)
	var committed1, aborted2, committed3 []drivers.Result
	for s := uint64(0); s < 100; s++ {
		committed1 = append(committed1, drivers.Result{Stamp: txnMsg(s, 1)})
		aborted2 = append(aborted2, drivers.Result{Stamp: txnMsg(100+s, 2), Err: drivers.ErrAborted})
		committed3 = append(committed3, drivers.Result{Stamp: txnMsg(200+s, 3)})
	}
	tr.Acked(committed1, now)
	var early []drivers.Delivery
	for s := uint64(0); s < 100; s++ {
		early = append(early, txnDelivery(s, 1, int32(s%3), int64(s)))
	}
	for s := uint64(100); s < 105; s++ { // read before the abort is known
		early = append(early, txnDelivery(s, 2, 1, int64(1000+s)))
	}
	early = append(early, txnDelivery(200, 3, 2, 2000), txnDelivery(201, 3, 2, 2001)) // before the commit
	tr.Received(0, early, now)
	tr.Acked(aborted2, now)
	var late []drivers.Delivery
	for s := uint64(105); s < 110; s++ { // read after the abort is known
		late = append(late, txnDelivery(s, 2, 1, int64(1000+s)))
	}
	tr.Received(0, late, now)
	tr.Acked(committed3, now)
	late = late[:0]
	for s := uint64(202); s < 300; s++ {
		if s != 250 {
			late = append(late, txnDelivery(s, 3, 2, int64(2000+s-200)))
		}
	}
	tr.Received(0, late, now)
	return tr.Summary()
}

// TestTrackerTransactions: aborted messages are neither acked, failed nor
// unconfirmed; those delivered are aborted reads when consumers read
// committed data, aborted-visible otherwise, whether the delivery came
// before or after the abort was reported; they are never lost.
func TestTrackerTransactions(t *testing.T) {
	for _, rc := range []bool{true, false} {
		s := txnRun(t, rc)
		want := Counts{Sent: 300, Acked: 200, Received: 209, Lost: 1, Aborted: 100, AbortedReads: 10}
		if !rc {
			want.AbortedReads, want.AbortedVisible = 0, 10
		}
		wantCounts(t, "summary", s.Counts, want)
		if !rc {
			for _, e := range s.Examples {
				if e.Kind == ExampleAbortedRead {
					t.Errorf("read_uncommitted: aborted-read example %+v", e)
				}
			}
			continue
		}
		var aborted []Example
		for _, e := range s.Examples {
			if e.Kind == ExampleAbortedRead {
				aborted = append(aborted, e)
			}
		}
		if len(aborted) != 10 {
			t.Fatalf("%d aborted-read examples, want 10: %+v", len(aborted), s.Examples)
		}
		for i, e := range aborted {
			// The five read after the abort are found at delivery; the
			// five read before it when the abort is reported, with the
			// place they were read.
			seq := uint64(100 + i)
			why := "aborted read: seen before the abort was reported"
			if i >= 5 {
				why = "aborted read: its transaction was aborted"
			}
			w := Example{Producer: 0, Seq: seq, Kind: ExampleAbortedRead, Problem: why, Partition: i32(1), Offset: i64(int64(1000 + seq)), Txn: 2}
			if !reflect.DeepEqual(e, w) {
				t.Errorf("aborted example %d:\n got %+v\nwant %+v", i, e, w)
			}
		}
		lost := Example{Producer: 0, Seq: 250, Kind: ExampleLost, Problem: "lost: its transaction committed, never received", Txn: 3}
		if s.Examples[1].Kind != ExampleLost || !reflect.DeepEqual(s.Examples[1], lost) {
			t.Errorf("examples %+v, want the lost one second: %+v", s.Examples, lost)
		}
	}
}

// TestTrackerPipelineLatency: with EnablePipeline, a first delivery's
// pipeline latency is its receive time − its confirmation time; one
// delivered before its confirmation is untimed, and duplicates are not
// timed.
func TestTrackerPipelineLatency(t *testing.T) {
	tr := NewTracker(testRunID, 1, 0)
	tr.EnablePipeline()
	tr.Sent(0, 3)
	m0, m1, m2 := msg(0, 0), msg(0, 1), msg(0, 2)
	tr.Acked([]drivers.Result{{Stamp: m0}}, m0.Sent+int64(2*time.Millisecond))
	tr.Acked([]drivers.Result{{Stamp: m1}}, m1.Sent+int64(3*time.Millisecond))
	tr.Received(0, []drivers.Delivery{{Stamp: encode(m0)}}, m0.Sent+int64(10*time.Millisecond)) // 8ms after its ack
	tr.Received(0, []drivers.Delivery{{Stamp: encode(m1)}}, m1.Sent+int64(53*time.Millisecond)) // 50ms
	tr.Received(0, []drivers.Delivery{{Stamp: encode(m1)}}, m1.Sent+int64(90*time.Millisecond)) // a duplicate
	tr.Received(0, []drivers.Delivery{{Stamp: encode(m2)}}, m2.Sent+int64(time.Millisecond))    // before its ack
	tr.Acked([]drivers.Result{{Stamp: m2}}, m2.Sent+int64(5*time.Millisecond))
	s := tr.Summary()
	if s.Pipeline == nil {
		t.Fatal("no pipeline latency")
	}
	if l := *s.Pipeline; l.Count != 2 || l.Min != 8000 || l.Max < 50000 || l.Max > 50050 {
		t.Errorf("pipeline latency %+v, want 8ms and 50ms", l)
	}
	if s.PipelineUntimed != 1 {
		t.Errorf("untimed %d, want 1", s.PipelineUntimed)
	}
	if h := s.Histograms[Pipeline]; h == nil || h.TotalCount() != 2 {
		t.Errorf("pipeline histogram %v", h)
	}
	if NewTracker(testRunID, 1, 0).Summary().Pipeline != nil {
		t.Error("pipeline latency without EnablePipeline")
	}

	// Results carry it, and the threshold metric reads it.
	r := &Results{SchemaVersion: SchemaVersion, Pipeline: &PipelineResult{Input: "kafka", Output: "kafka", Processor: "external"}}
	if err := r.SetSummary(s); err != nil {
		t.Fatal(err)
	}
	if r.Pipeline.LatencyUS.Count != 2 || r.Pipeline.Untimed != 1 {
		t.Errorf("results pipeline %+v", r.Pipeline)
	}
	if v, ok, err := r.Metric("pipeline.max"); err != nil || !ok || v < 50000 {
		t.Errorf("pipeline.max = %v, %v, %v", v, ok, err)
	}
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	back, err := DecodeResults(&b)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok, err := back.Metric("pipeline.max"); err != nil || !ok || v < 50000 {
		t.Errorf("pipeline.max read back = %v, %v, %v", v, ok, err)
	}
}

func TestClaimAsserts(t *testing.T) {
	cases := map[string]string{
		"lost == 0": "loss", "loss <= 0": "loss", "0 == lost": "loss", "lost < 1": "loss", "lost.ratio == 0": "loss",
		"duplicates == 0": "duplicates", "duplicates.ratio <= 0%": "duplicates", "aborted_reads == 0": "aborted_reads",
		"reordered == 0": "order",
	}
	for _, expr := range []string{"lost < 2", "duplicates.ratio < 1%", "duplicates > 0", "e2e.p99 < 1s", "lost != 0", "aborted == 0", "lost.ratio < 0.5"} {
		cases[expr] = "" // asserts nothing
	}
	for expr, want := range cases {
		th, err := scenarios.ParseThreshold(expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		if got := asserts(th); got != want {
			t.Errorf("asserts(%q) = %q, want %q", expr, got, want)
		}
	}
}

// TestClaim: the claim names the guarantee the thresholds assert, and
// says whether it held, across which faults, or what broke it.
func TestClaim(t *testing.T) {
	base := func() *Results {
		return &Results{
			Counts:   Counts{Sent: 1_204_400, Acked: 1_204_331, Received: 1_204_331},
			Pipeline: &PipelineResult{Processor: scenarios.ProcessorBuiltin, Mode: "exactly-once", Instances: 2},
			Chaos: []FaultResult{
				{Action: "consumer-crash", OK: true, Details: map[string]any{"consumers": 1}},
				{Action: "consumer-crash", OK: true, Details: map[string]any{"consumers": float64(2)}},
				{Action: "broker-restart", OK: true},
				{Action: "exec", OK: false},
			},
		}
	}
	for _, c := range []struct {
		name       string
		thresholds []string
		edit       func(r *Results)
		want       string // "" for no claim
		held       bool
	}{
		{"exactly-once held", []string{"lost == 0", "duplicates == 0", "e2e.p99 < 1s"}, nil,
			"exactly-once held for 1,204,331 messages across 3 processor crashes and 1 broker restart", true},
		{"with isolation and order", []string{"lost == 0", "duplicates == 0", "aborted_reads == 0", "reordered == 0"}, func(r *Results) { r.Chaos = nil },
			"exactly-once (no aborted reads, in order) held for 1,204,331 messages", true},
		{"violated", []string{"loss == 0", "duplicates == 0"}, func(r *Results) {
			r.Counts.Duplicates, r.Examples = 17, []Example{{Kind: ExampleDuplicate}}
			r.Pipeline = nil
		}, "exactly-once violated across 3 consumer crashes and 1 broker restart: 17 duplicates (examples below)", false},
		{"at-least-once", []string{"lost == 0", "duplicates.ratio < 5%"}, func(r *Results) { r.Chaos = nil; r.Counts.Lost = 1 },
			"at-least-once violated: 1 lost", false},
		{"read-committed", []string{"aborted_reads == 0"}, func(r *Results) { r.Chaos = nil; r.Counts.AbortedReads = 1750; r.Examples = []Example{{}} },
			"read-committed violated: 1,750 aborted reads (examples below)", false},
		{"interrupted", []string{"duplicates == 0"}, func(r *Results) { r.Chaos = nil; r.Interrupted = true },
			"at-most-once not established: the run did not complete", false},
		{"no claim", []string{"e2e.p99 < 1s", "duplicates.ratio < 1%"}, nil, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := base()
			if c.edit != nil {
				c.edit(r)
			}
			r.Evaluate(parseThresholds(t, c.thresholds...))
			if c.want == "" {
				if r.Claim != nil {
					t.Errorf("claim %+v, want none", r.Claim)
				}
				return
			}
			if r.Claim == nil || r.Claim.Statement != c.want || r.Claim.Held != c.held {
				t.Fatalf("claim %+v\nwant %q (held %v)", r.Claim, c.want, c.held)
			}
			var text strings.Builder
			if err := WriteText(&text, r); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), "\nclaim    "+c.want+"\nverdict  ") {
				t.Errorf("the text summary does not state the claim before the verdict:\n%s", text.String())
			}
			var html bytes.Buffer
			if err := WriteHTML(&html, r); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(html.String(), esc(c.want)) {
				t.Error("report.html does not state the claim")
			}
		})
	}
}

// TestReportsShowTransactions: the text summary, report.html, junit.xml
// and results.json show the transaction counts, the pipeline and the
// examples with their partition, offset and transaction.
func TestReportsShowTransactions(t *testing.T) {
	s := txnRun(t, true)
	r := &Results{SchemaVersion: SchemaVersion, Scenario: "txn", Driver: "kafka",
		Pipeline: &PipelineResult{Input: "kafka", Output: "kafka", Processor: scenarios.ProcessorBuiltin, Mode: "exactly-once", Instances: 1}}
	if err := r.SetSummary(s); err != nil {
		t.Fatal(err)
	}
	r.Evaluate(parseThresholds(t, "aborted_reads == 0", "lost == 0", "duplicates == 0"))
	var text, html, junit, js bytes.Buffer
	for _, w := range []struct {
		b  *bytes.Buffer
		fn func(*bytes.Buffer, *Results) error
	}{
		{&text, func(b *bytes.Buffer, r *Results) error { return WriteText(b, r) }},
		{&html, func(b *bytes.Buffer, r *Results) error { return WriteHTML(b, r) }},
		{&junit, func(b *bytes.Buffer, r *Results) error { return WriteJUnit(b, r) }},
		{&js, func(b *bytes.Buffer, r *Results) error { return WriteJSON(b, r) }},
	} {
		if err := w.fn(w.b, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{
		"  aborted                           100",
		"  aborted_reads                      10",
		"pipeline     kafka → built-in processor (exactly-once, 1 instance) → kafka",
		"  producer        seq partition     offset    txn  problem",
		"  0               100         1       1100      2  aborted read: seen before the abort was reported",
		"  0               250         -          -      3  lost: its transaction committed, never received",
		"claim    exactly-once (no aborted reads) violated: 1 lost, 10 aborted reads (examples below)",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, text.String())
		}
	}
	for _, line := range strings.Split(text.String(), "\n") {
		if n := len([]rune(line)); n > 100 {
			t.Errorf("summary line of %d columns: %q", n, line)
		}
	}
	for _, want := range []string{"<th>partition</th><th>offset</th><th>txn</th>", "<td>100</td><td>1</td><td>1100</td><td>2</td>",
		"aborted reads", "built-in processor (exactly-once, 1 instance)"} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	for _, want := range []string{`<testcase name="isolation"`, "aborted reads 10 (10.00% of 100 aborted)",
		"producer 0 seq 100 (partition 1, offset 1100, txn 2): aborted read: seen before the abort was reported"} {
		if !strings.Contains(junit.String(), want) {
			t.Errorf("junit.xml lacks %q:\n%s", want, junit.String())
		}
	}
	var back struct {
		Counts   map[string]int64 `json:"counts"`
		Examples []map[string]any `json:"examples"`
		Claim    map[string]any   `json:"claim"`
		Pipeline map[string]any   `json:"pipeline"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Counts["aborted"] != 100 || back.Counts["aborted_reads"] != 10 {
		t.Errorf("results.json counts %v", back.Counts)
	}
	if e := back.Examples[0]; e["kind"] != "aborted_read" || e["partition"] != 1.0 || e["offset"] != 1100.0 || e["txn"] != 2.0 {
		t.Errorf("results.json example %v", e)
	}
	if back.Claim["held"] != false || back.Pipeline["processor"] != "builtin" {
		t.Errorf("results.json claim %v pipeline %v", back.Claim, back.Pipeline)
	}
}

// TestPubTimesGrow: the page table grows by doubling, and every entry
// reads back.
func TestPubTimesGrow(t *testing.T) {
	var p pubTimes
	const n = 20 << pageShift // twenty pages
	for seq := uint64(0); seq < n; seq += 997 {
		p.set(seq, int64(seq)*1000)
	}
	if len(p.pages) != 20 || cap(p.pages) > 32 {
		t.Errorf("%d pages, capacity %d", len(p.pages), cap(p.pages))
	}
	for seq := uint64(0); seq < n; seq += 997 {
		if v, ok := p.get(seq); !ok || v != int64(seq)*1000 {
			t.Fatalf("get(%d) = %d, %v", seq, v, ok)
		}
	}
	if _, ok := p.get(1); ok {
		t.Error("an unset entry reads as set")
	}
	if _, ok := p.get(n * 4); ok {
		t.Error("an entry beyond the pages reads as set")
	}
}
