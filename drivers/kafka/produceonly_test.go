package kafka_test

import (
	"testing"

	"github.com/spate-dev/spate/drivers/kafka"
	"github.com/spate-dev/spate/report"
)

// TestProduceOnly runs producers without consumers (consumers: 0) on the
// embedded cluster, steady and then as fast as acks come back: every
// message is confirmed, acked equals the records the cluster confirmed to
// franz-go's promises (the driver's produced), each ack's publish latency
// is recorded, and no delivery figure is measured.
func TestProduceOnly(t *testing.T) {
	res := runKind(t, kafka.Kind, `
driver: {kafka: {partitions: 3}}
producers: 2
consumers: 0
message: {size: 512B}
traffic:
  - constant: {rate: 2000/s, for: 1s}
  - max: {for: 500ms, in-flight: 2000}
drain: 10s
thresholds:
  - failed == 0
  - publish.p99 < 5s
`)
	c := res.Counts
	if !res.ProduceOnly || c.Sent < 2000 {
		t.Fatalf("produce_only %v, sent %d", res.ProduceOnly, c.Sent)
	}
	if c.Acked != c.Sent || c.Failed != 0 || c.Unconfirmed != 0 {
		t.Errorf("sent %d, acked %d, failed %d, unconfirmed %d: every record is confirmed", c.Sent, c.Acked, c.Failed, c.Unconfirmed)
	}
	if got := res.DriverStats["produced"]; got != c.Acked {
		t.Errorf("acked %d, but the cluster confirmed %d records", c.Acked, got)
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

// TestProduceOnlyAndCatchUpExamples runs examples/producer-capacity.yaml
// (no consumers) and examples/catch-up.yaml (consumers paused while the
// backlog builds, then only consuming) on the embedded cluster.
func TestProduceOnlyAndCatchUpExamples(t *testing.T) {
	runExamples(t, "producer-capacity.yaml", 1, func(t *testing.T, res *report.Results) {
		if !res.ProduceOnly || res.Counts.Acked != res.DriverStats["produced"] || res.Counts.Received != 0 {
			t.Errorf("produce_only %v, acked %d, produced %d, received %d", res.ProduceOnly, res.Counts.Acked, res.DriverStats["produced"], res.Counts.Received)
		}
	})
	runExamples(t, "catch-up.yaml", 1, func(t *testing.T, res *report.Results) {
		if len(res.Chaos) != 1 || res.Chaos[0].PeakBacklog < res.Counts.Sent/2 {
			t.Errorf("faults %+v: the paused consumers should have let most of the traffic pile up", res.Chaos)
		}
		if res.Counts.Received != res.Counts.Sent {
			t.Errorf("received %d of %d: the catch-up did not finish within the drain", res.Counts.Received, res.Counts.Sent)
		}
	})
}
