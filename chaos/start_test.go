package chaos_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/chaos"
)

// TestFaultsDueAtStartBegunByStart: Start returns only once the faults due
// at 0s are under way, and those due later are not. In the bubble no other
// goroutine runs until the test's blocks, so without the wait in Start
// the pause would not have begun when it returns.
func TestFaultsDueAtStartBegunByStart(t *testing.T) {
	sc := loadScenario(t, `
driver: cluster
traffic: [{constant: {rate: 10/s, for: 5s}}]
chaos:
  - {action: consumer-pause, at: 0s, for: 2s}
  - {action: slow-consumer, at: 1s, for: 1s, rate: 10/s}
`)
	synctest.Test(t, func(t *testing.T) {
		r := chaos.NewRunner(sc, 0, 1)
		start := time.Now()
		tr := accounting.NewTracker(1, 1, start.UnixNano())
		env := &chaos.Env{Consumers: &slowConsumers{running: true}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		r.Start(context.Background(), env, tr, func() time.Duration { return time.Since(start) })
		if got := fmt.Sprint(r.Active()); got != "[consumer-pause]" {
			t.Errorf("active when Start returned: %s, want [consumer-pause]", got)
		}
		r.Stop()
		r.Close()
	})
}
