package engine_test

import (
	"testing"

	"github.com/spate-dev/spate/report"
)

// TestProduceOnly runs producers without consumers (consumers: 0) into a
// memory broker that holds at most 3,000 messages, so that part of the
// traffic is refused: acked and failed must equal the broker's own
// accepted and rejected, every ack is timed, and nothing is owed to a
// consumer, so nothing counts as lost, the backlog stays 0 and the drain
// does not wait for deliveries.
func TestProduceOnly(t *testing.T) {
	sc := load(t, `
driver: {memory: {streams: 4, max-queued: 3000}}
producers: 2
consumers: 0
message: {size: 128B}
traffic:
  - constant: {rate: 5000/s, for: 1s}
drain: 5s
thresholds:
  - publish.p99 < 1s
  - acked == 3000
  - failed == 2000
`)
	res := run(t, sc)
	c, truth := res.Counts, res.DriverStats
	if !res.ProduceOnly || res.Consumers != 0 {
		t.Errorf("produce_only %v, consumers %d", res.ProduceOnly, res.Consumers)
	}
	expect(t, "sent", c.Sent, 5000)
	expect(t, "acked", c.Acked, truth["accepted"])
	expect(t, "failed", c.Failed, truth["rejected"])
	expect(t, "acked", c.Acked, 3000)
	expect(t, "publish latencies", res.LatencyUS.Publish.Count, c.Acked)
	expect(t, "received", c.Received, 0)
	expect(t, "lost", c.Lost, 0)
	expect(t, "e2e latencies", res.LatencyUS.E2E.Count, 0)
	expect(t, "delivered (broker)", truth["delivered"], 0)
	for _, iv := range res.Intervals {
		if iv.Backlog != 0 {
			t.Errorf("interval at %.1fs: backlog %d, want 0 with nothing owed", iv.EndS, iv.Backlog)
		}
	}
	if res.DrainS > 0.4 {
		t.Errorf("the drain took %.2fs; with no consumers it waits only for outcomes", res.DrainS)
	}
	if res.Verdict != report.Pass {
		t.Errorf("verdict %s: %+v", res.Verdict, res.Thresholds)
	}
	for _, m := range []string{"lost", "received", "e2e.p99", "duplicates.ratio", "achieved_rate"} {
		if _, ok, err := res.Metric(m); ok || err != nil {
			t.Errorf("%s: defined %v, err %v; want undefined in a produce-only run", m, ok, err)
		}
	}
	if v, ok, _ := res.Metric("acked_rate"); !ok || v <= 0 {
		t.Errorf("acked_rate %v, defined %v", v, ok)
	}
}

// TestProduceOnlyMax is a produce-only max phase: the producers' window is
// refilled by acks alone, as in a producer capacity test.
func TestProduceOnlyMax(t *testing.T) {
	sc := load(t, `
driver: {memory: {streams: 4}}
producers: 2
consumers: 0
traffic:
  - max: {for: 500ms, in-flight: 200}
drain: 2s
`)
	res := run(t, sc)
	expect(t, "acked", res.Counts.Acked, res.DriverStats["accepted"])
	expect(t, "acked", res.Counts.Acked, res.Counts.Sent)
	if res.Counts.Acked < 1000 || res.Rate.AckedMean <= 0 {
		t.Errorf("acked %d at %.0f/s: the max phase barely ran", res.Counts.Acked, res.Rate.AckedMean)
	}
	expect(t, "queued (broker)", res.DriverStats["queued"], res.Counts.Acked)
}
