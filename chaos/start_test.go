package chaos_test

import (
	"fmt"
	"testing"
	"testing/synctest"

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
		r := startFaults(sc, &chaos.Env{Consumers: &slowConsumers{running: true}})
		if got := fmt.Sprint(r.Active()); got != "[consumer-pause]" {
			t.Errorf("active when Start returned: %s, want [consumer-pause]", got)
		}
		r.Stop()
		r.Close()
	})
}
