package kafka_test

import (
	"testing"

	"github.com/spate-dev/spate/report"
)

// TestExactlyOnceExamples runs every examples/exactly-once*.yaml on the
// embedded cluster through the engine: their thresholds state the
// guarantees (no aborted reads, no loss, no duplicates, in order), so each
// must pass, every fault must have been applied, and the claim must hold.
func TestExactlyOnceExamples(t *testing.T) {
	runExamples(t, "exactly-once*.yaml", 2, func(t *testing.T, res *report.Results) {
		if res.Claim == nil || !res.Claim.Held {
			t.Errorf("claim %+v", res.Claim)
		}
		if res.Counts.Aborted == 0 {
			t.Error("no transaction aborted: the isolation check proves nothing")
		}
	})
}
