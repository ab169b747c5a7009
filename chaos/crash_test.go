package chaos_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/spate-dev/spate/chaos"
)

// slowConsumers is one consumer whose restart takes startTook, as a group
// join on a loaded host does; like the engine's, stopping it while it is
// down is an error.
type slowConsumers struct {
	startTook time.Duration
	mu        sync.Mutex
	running   bool
	events    []string
}

func (c *slowConsumers) Count() int              { return 1 }
func (c *slowConsumers) Owns(id int) bool        { return id == 0 }
func (c *slowConsumers) Pause([]int)             {}
func (c *slowConsumers) Resume([]int)            {}
func (c *slowConsumers) Throttle([]int, float64) {}
func (c *slowConsumers) log(format string, args ...any) {
	c.events = append(c.events, fmt.Sprintf(format, args...))
}

func (c *slowConsumers) Stop(ctx context.Context, id int, graceful bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		c.log("stop %d: already stopped", id)
		return fmt.Errorf("consumer %d is already stopped", id)
	}
	c.running = false
	c.log("stop %d", id)
	return nil
}

func (c *slowConsumers) Start(ctx context.Context, id int) error {
	time.Sleep(c.startTook)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.running = true
	c.log("started %d", id)
	return nil
}

// TestCrashWaitsForEarlierRestart: a crash of a consumer that an earlier
// crash stopped, and whose restart is still under way when the second
// crash is due, waits for the restart and crashes it then, rather than
// failing with "already stopped" (a loaded CI host's restart once outlasted
// the gap between TestPipelineExactlyOnce's two crashes).
func TestCrashWaitsForEarlierRestart(t *testing.T) {
	sc := loadScenario(t, `
driver: cluster
traffic: [{constant: {rate: 10/s, for: 20s}}]
chaos:
  - {action: consumer-crash, at: 0s, for: 1s, graceful: true}
  - {action: consumer-crash, at: 2s, for: 1s, graceful: true}
`)
	cons := &slowConsumers{startTook: 3 * time.Second, running: true}
	for _, f := range runFaultsIn(t, sc, &chaos.Env{Consumers: cons}, 15*time.Second) {
		if !f.OK {
			t.Errorf("%s at %.0fs: %s", f.Action, f.StartS, f.Error)
		}
	}
	want := "[stop 0 started 0 stop 0 started 0]"
	if got := fmt.Sprint(cons.events); got != want {
		t.Errorf("events %s, want %s", got, want)
	}
}
