package eventbridge_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/spate-dev/spate/chaos"
	"github.com/spate-dev/spate/drivers/eventbridge"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// loadChaos parses a scenario with the chaos actions known.
func loadChaos(t *testing.T, src string) *scenarios.Scenario {
	t.Helper()
	l := &scenarios.Loader{}
	l.Driver(eventbridge.Kind.Name, eventbridge.Kind.Options)
	chaos.Register(l)
	sc, err := l.Parse(strings.ReplaceAll(t.Name(), "/", "-")+".yaml", []byte(src))
	if err != nil {
		t.Fatalf("scenario: %v", err)
	}
	return sc
}

func faultsOK(t *testing.T, res *report.Results, want int) {
	t.Helper()
	if len(res.Chaos) != want {
		t.Fatalf("%d faults in results, want %d: %+v", len(res.Chaos), want, res.Chaos)
	}
	for _, f := range res.Chaos {
		if !f.OK {
			t.Errorf("%s at %.1fs failed: %s", f.Action, f.StartS, f.Error)
		}
	}
}

// TestChaosTimeline runs spate's own chaos actions on the driver: a
// consumer crash (through Crasher, restarted after 1s), consumers' network
// down for 1s and producers' connections reset, through Env.Dial and the
// harness's proxy. Nothing acked may be lost.
func TestChaosTimeline(t *testing.T) {
	k := startKumo(t)
	sc := loadChaos(t, fmt.Sprintf(`
driver: {eventbridge: {endpoint: %q, provision: true, visibility-timeout: 2s, wait: 1s, retries: 3}}
producers: 2
consumers: 2
message: {size: 200B}
traffic:
  - constant: {rate: 300/s, for: 6s}
chaos:
  - {action: consumer-crash, at: 1s, for: 1s}
  - {action: network, at: 2500ms, for: 1s, target: consumers, fault: down}
  - {action: network, at: 4s, for: 500ms, target: producers, fault: reset}
drain: 20s
`, k.URL()))
	res := runScenario(t, sc, eventbridge.Kind)
	faultsOK(t, res, 3)
	c := res.Counts
	expect(t, "lost", c.Lost, 0)
	if c.Received+c.Failed+c.Unconfirmed < c.Sent {
		t.Errorf("received %d + failed %d + unconfirmed %d < sent %d", c.Received, c.Failed, c.Unconfirmed, c.Sent)
	}
	st := res.DriverStats
	expect(t, "stats crashes", st["crashes"], 1)
	t.Logf("sent %d acked %d failed %d unconfirmed %d received %d duplicates %d redelivered %d; receive_errors %d entries_retried %d abandoned %d",
		c.Sent, c.Acked, c.Failed, c.Unconfirmed, c.Received, c.Duplicates, c.Redelivered, st["receive_errors"], st["entries_retried"], st["abandoned"])
}

// TestChaosBrokerRestart: with endpoint: managed, broker-restart stops the
// emulator gracefully mid-run and starts it again with its state; traffic
// flows again after it.
func TestChaosBrokerRestart(t *testing.T) {
	t.Setenv(eventbridge.KumoEnv, kumoBinary(t))
	sc := loadChaos(t, `
driver: {eventbridge: {endpoint: managed, wait: 1s, retries: 5, retry-backoff: 200ms}}
producers: 1
consumers: 1
message: {size: 200B}
traffic:
  - constant: {rate: 200/s, for: 5s}
chaos:
  - {action: broker-restart, at: 1500ms, for: 500ms}
drain: 20s
`)
	res := runScenario(t, sc, eventbridge.Kind)
	faultsOK(t, res, 1)
	f := res.Chaos[0]
	var after int64
	for _, iv := range res.Intervals {
		if iv.StartS >= f.EndS {
			after += iv.Counts.Received
		}
	}
	if after == 0 {
		t.Errorf("nothing was received after the emulator came back (fault ended at %.1fs)", f.EndS)
	}
	c := res.Counts
	t.Logf("restart %v: sent %d acked %d failed %d received %d lost %d (lost in window %d) duplicates %d",
		f.Details, c.Sent, c.Acked, c.Failed, c.Received, c.Lost, f.LostInWindow, c.Duplicates)
}
