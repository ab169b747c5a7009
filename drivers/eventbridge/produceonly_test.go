package eventbridge_test

import (
	"fmt"
	"testing"

	"github.com/spate-dev/spate/drivers/eventbridge"
	"github.com/spate-dev/spate/report"
)

// TestProduceOnly puts events without consumers (consumers: 0) on kumo,
// steady and then as fast as PutEvents answers: acked equals the entries
// PutEvents accepted (the driver's entries_ok), each acceptance's publish
// latency is recorded, and no delivery figure is measured; the events
// routed to the run's queue are removed with it.
func TestProduceOnly(t *testing.T) {
	k := startKumo(t)
	sc := load(t, fmt.Sprintf(`
driver: {eventbridge: {endpoint: %q, provision: true}}
producers: 2
consumers: 0
message: {size: 512B}
traffic:
  - constant: {rate: 300/s, for: 1s}
  - max: {for: 500ms, in-flight: 320}
drain: 10s
thresholds:
  - failed == 0
  - publish.p99 < 5s
`, k.URL()), eventbridge.Kind)
	res := runScenario(t, sc, eventbridge.Kind)
	c := res.Counts
	if !res.ProduceOnly || c.Sent < 300 {
		t.Fatalf("produce_only %v, sent %d", res.ProduceOnly, c.Sent)
	}
	if c.Acked != c.Sent || c.Failed != 0 || c.Unconfirmed != 0 {
		t.Errorf("sent %d, acked %d, failed %d, unconfirmed %d: every event is accepted", c.Sent, c.Acked, c.Failed, c.Unconfirmed)
	}
	if got := res.DriverStats["entries_ok"]; got != c.Acked {
		t.Errorf("acked %d, but PutEvents accepted %d entries", c.Acked, got)
	}
	if res.LatencyUS.Publish.Count != c.Acked {
		t.Errorf("%d publish latencies for %d acks", res.LatencyUS.Publish.Count, c.Acked)
	}
	if c.Received != 0 || c.Lost != 0 || res.DriverStats["received"] != 0 || res.LatencyUS.E2E.Count != 0 {
		t.Errorf("received %d, lost %d, received by the driver %d, e2e count %d: nothing is consumed", c.Received, c.Lost, res.DriverStats["received"], res.LatencyUS.E2E.Count)
	}
	if res.Verdict != report.Pass {
		t.Errorf("verdict %s: %+v", res.Verdict, res.Thresholds)
	}
	if left := leftovers(t, k); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}
