package engine_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/chaos"
	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/memory"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// load parses a scenario given inline, failing the test on any problem.
func load(t *testing.T, yaml string, extra ...drivers.Kind) *scenarios.Scenario {
	t.Helper()
	l := &scenarios.Loader{}
	for _, k := range append([]drivers.Kind{memory.Kind}, extra...) {
		l.Driver(k.Name, k.Options)
	}
	chaos.Register(l)
	sc, err := l.Parse(t.Name()+".yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("scenario: %v", err)
	}
	return sc
}

func run(t *testing.T, sc *scenarios.Scenario, opts ...engine.Option) *report.Results {
	t.Helper()
	opts = append([]engine.Option{engine.WithDrivers(memory.Kind)}, opts...)
	res, err := engine.Run(context.Background(), sc, opts...)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

// TestKnownAnswers compares spate's accounting with the memory broker's own
// record of what it did to the traffic: the counts must be equal, exactly.
func TestKnownAnswers(t *testing.T) {
	cases := []struct {
		name    string
		options string
		check   func(t *testing.T, c accounting.Counts, truth map[string]int64)
	}{
		{"clean", "{streams: 4}", func(t *testing.T, c accounting.Counts, truth map[string]int64) {
			expect(t, "lost", c.Lost, 0)
			expect(t, "duplicates", c.Duplicates, 0)
			expect(t, "reordered", c.Reordered, 0)
			expect(t, "received", c.Received, c.Sent)
		}},
		{"drop", "{streams: 4, drop: 0.05, seed: 7}", func(t *testing.T, c accounting.Counts, truth map[string]int64) {
			if truth["dropped"] == 0 {
				t.Fatal("the broker dropped nothing; the test proves nothing")
			}
			expect(t, "lost", c.Lost, truth["dropped"])
			expect(t, "received", c.Received, c.Sent-truth["dropped"])
			expect(t, "duplicates", c.Duplicates, 0)
		}},
		{"duplicate", "{streams: 4, duplicate: 0.05, seed: 8}", func(t *testing.T, c accounting.Counts, truth map[string]int64) {
			if truth["duplicated"] == 0 {
				t.Fatal("the broker duplicated nothing")
			}
			expect(t, "duplicates", c.Duplicates, truth["duplicated"])
			expect(t, "lost", c.Lost, 0)
		}},
		{"every message duplicated", "{streams: 4, duplicate: 1}", func(t *testing.T, c accounting.Counts, truth map[string]int64) {
			expect(t, "duplicates", c.Duplicates, c.Sent)
			expect(t, "received", c.Received, c.Sent)
			expect(t, "lost", c.Lost, 0)
		}},
		{"reorder", "{streams: 4, reorder: 0.05, seed: 9}", func(t *testing.T, c accounting.Counts, truth map[string]int64) {
			if truth["reordered"] == 0 {
				t.Fatal("the broker reordered nothing")
			}
			expect(t, "reordered", c.Reordered, truth["reordered"])
			expect(t, "lost", c.Lost, 0)
			expect(t, "duplicates", c.Duplicates, 0)
		}},
		{"all at once", "{streams: 3, drop: 0.02, duplicate: 0.03, reorder: 0.04, seed: 10}", func(t *testing.T, c accounting.Counts, truth map[string]int64) {
			expect(t, "lost", c.Lost, truth["dropped"])
			expect(t, "duplicates", c.Duplicates, truth["duplicated"])
			expect(t, "reordered", c.Reordered, truth["reordered"])
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc := load(t, fmt.Sprintf(`
driver: {memory: %s}
producers: 3
consumers: 2
message: {size: 100B, keys: {strategy: round-robin, count: 12}}
traffic:
  - constant: {rate: 20000/s, for: 1s}
drain: 1s
`, tc.options))
			res := run(t, sc)
			c := res.Counts
			if c.Sent < 19000 || c.Unsent != 0 {
				t.Fatalf("sent %d, unsent %d: the pacer did not deliver the schedule", c.Sent, c.Unsent)
			}
			expect(t, "acked", c.Acked, c.Sent)
			expect(t, "failed", c.Failed, 0)
			expect(t, "foreign", c.Foreign, 0)
			expect(t, "malformed", c.Malformed, 0)
			tc.check(t, c, res.DriverStats)
		})
	}
}

func expect(t *testing.T, what string, got, want int64) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %d, want %d", what, got, want)
	}
}

// TestLatencyTruth: a broker that adds 20 ms must show e2e p50 within
// [20 ms, 25 ms].
func TestLatencyTruth(t *testing.T) {
	sc := load(t, `
driver: {memory: {latency: 20ms}}
traffic:
  - constant: {rate: 2000/s, for: 2s}
drain: 2s
`)
	res := run(t, sc)
	p50 := res.LatencyUS.E2E.P50
	if p50 < 20000 || p50 > 25000 {
		t.Errorf("e2e p50 = %dµs, want within [20000, 25000]", p50)
	}
	if res.LatencyUS.E2E.Min < 20000 {
		t.Errorf("e2e min = %dµs, below the broker's fixed 20ms", res.LatencyUS.E2E.Min)
	}
	if res.Counts.Lost != 0 || res.Counts.Received != res.Counts.Sent {
		t.Errorf("counts %+v", res.Counts)
	}
}

// TestSubscriptionsKnownAnswers runs fan-out on the memory broker: three
// subscriptions over five consumers (two, two and one), each owed every
// message. The broker's fault decisions are per message and its
// deliveries per subscription, so spate must count each fault three
// times, exactly, and an all-clean run must deliver every message three
// times with nothing counted as a duplicate.
func TestSubscriptionsKnownAnswers(t *testing.T) {
	for _, tc := range []struct{ name, options string }{
		{"clean", "{streams: 4}"},
		{"faults", "{streams: 3, drop: 0.02, duplicate: 0.03, reorder: 0.04, seed: 11}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, load(t, fmt.Sprintf(`
driver: {memory: %s}
producers: 2
consumers: 5
subscriptions: 3
message: {size: 100B, keys: {strategy: round-robin, count: 12}}
traffic:
  - constant: {rate: 10000/s, for: 1s}
drain: 1s
thresholds:
  - loss.ratio <= 0.05
`, tc.options)))
			c, truth := res.Counts, res.DriverStats
			if c.Sent < 9000 {
				t.Fatalf("sent %d", c.Sent)
			}
			if res.Subscriptions != 3 {
				t.Errorf("results.subscriptions = %d, want 3", res.Subscriptions)
			}
			expect(t, "acked", c.Acked, c.Sent)
			expect(t, "lost", c.Lost, 3*truth["dropped"])
			expect(t, "received", c.Received, 3*(c.Sent-truth["dropped"]))
			expect(t, "duplicates", c.Duplicates, 3*truth["duplicated"])
			expect(t, "reordered", c.Reordered, 3*truth["reordered"])
			expect(t, "e2e count", res.LatencyUS.E2E.Count, c.Received)
			if tc.name == "faults" && (truth["dropped"] == 0 || truth["duplicated"] == 0 || truth["reordered"] == 0) {
				t.Fatalf("the broker injected too little to prove anything: %v", truth)
			}
			// achieved_rate is per subscription, so it compares with the
			// target; loss.ratio divides by what was owed (acked × 3).
			if ratio := res.Rate.AchievedMean / *res.Rate.TargetMean; ratio < 0.9 || ratio > 1.1 {
				t.Errorf("achieved/target = %.3f, want about 1 (per subscription)", ratio)
			}
			if got, want := res.Thresholds[0].Value, float64(c.Lost)/float64(3*c.Acked); got == nil || *got != want {
				t.Errorf("loss.ratio = %v, want %v", got, want)
			}
		})
	}
}
