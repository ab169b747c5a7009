package rabbitmq_test

import (
	"testing"

	"github.com/spate-dev/spate/report"
)

// TestProduceOnly publishes without consumers (consumers: 0) on the shared
// node, steady and then as fast as confirms come back: acked equals the
// publisher confirms the broker sent (the driver's confirmed), each
// confirm's publish latency is recorded, and no delivery figure is
// measured; the messages wait in the queue, which the driver deletes.
func TestProduceOnly(t *testing.T) {
	h := newHarness(t)
	res := h.run(`
driver: rabbitmq
producers: 2
consumers: 0
message: {size: 512B}
traffic:
  - constant: {rate: 500/s, for: 1s}
  - max: {for: 500ms, in-flight: 2000}
drain: 10s
thresholds:
  - failed == 0
  - publish.p99 < 5s
`)
	c := res.Counts
	if !res.ProduceOnly || c.Sent < 500 {
		t.Fatalf("produce_only %v, sent %d", res.ProduceOnly, c.Sent)
	}
	if c.Acked != c.Sent || c.Failed != 0 || c.Unconfirmed != 0 {
		t.Errorf("sent %d, acked %d, failed %d, unconfirmed %d: every message is confirmed", c.Sent, c.Acked, c.Failed, c.Unconfirmed)
	}
	if got := res.DriverStats["confirmed"]; got != c.Acked {
		t.Errorf("acked %d, but the broker confirmed %d messages", c.Acked, got)
	}
	if res.LatencyUS.Publish.Count != c.Acked {
		t.Errorf("%d publish latencies for %d acks", res.LatencyUS.Publish.Count, c.Acked)
	}
	if c.Received != 0 || c.Lost != 0 || res.DriverStats["delivered"] != 0 || res.LatencyUS.E2E.Count != 0 {
		t.Errorf("received %d, lost %d, delivered %d, e2e count %d: nothing is consumed", c.Received, c.Lost, res.DriverStats["delivered"], res.LatencyUS.E2E.Count)
	}
	if res.Verdict != report.Pass {
		t.Errorf("verdict %s: %+v", res.Verdict, res.Thresholds)
	}
}
