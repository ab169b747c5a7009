package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/accounting/accountingtest"
	"github.com/spate-dev/spate/scenarios"
)

// txnSummary is the summary of accountingtest.TxnRun's run.
func txnSummary(readCommitted bool) accounting.Summary {
	tr := accounting.NewTracker(accountingtest.RunID, 1, 0)
	accountingtest.TxnRun(tr, readCommitted)
	return tr.Summary()
}

// TestResultsPipelineLatency: results carry the pipeline latency of
// accountingtest.PipelineRun, and the threshold metric reads it, also
// from results.json.
func TestResultsPipelineLatency(t *testing.T) {
	tr := accounting.NewTracker(accountingtest.RunID, 1, 0)
	accountingtest.PipelineRun(tr)
	r := &Results{SchemaVersion: SchemaVersion, Pipeline: &PipelineResult{Input: "kafka", Output: "kafka", Processor: "external"}}
	if err := r.SetSummary(tr.Summary()); err != nil {
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
			Counts:   accounting.Counts{Sent: 1_204_400, Acked: 1_204_331, Received: 1_204_331},
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
			r.Counts.Duplicates, r.Examples = 17, []accounting.Example{{Kind: accounting.ExampleDuplicate}}
			r.Pipeline = nil
		}, "exactly-once violated across 3 consumer crashes and 1 broker restart: 17 duplicates (examples below)", false},
		{"at-least-once", []string{"lost == 0", "duplicates.ratio < 5%"}, func(r *Results) { r.Chaos = nil; r.Counts.Lost = 1 },
			"at-least-once violated: 1 lost", false},
		{"read-committed", []string{"aborted_reads == 0"}, func(r *Results) { r.Chaos = nil; r.Counts.AbortedReads = 1750; r.Examples = []accounting.Example{{}} },
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
	s := txnSummary(true)
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
