package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/spate-dev/spate/chaos"
	"github.com/spate-dev/spate/drivers/memory"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

func onlyFault(t *testing.T, res *report.Results) report.FaultResult {
	t.Helper()
	if len(res.Chaos) != 1 {
		t.Fatalf("%d faults in results, want 1: %+v", len(res.Chaos), res.Chaos)
	}
	f := res.Chaos[0]
	if !f.OK {
		t.Fatalf("fault failed: %s", f.Error)
	}
	return f
}

// TestConsumerPauseBacklog: consumers pause for 3 s at 2000/s, so the
// backlog peaks at about 6000 and drains; nothing is lost, the window shows
// the wait in e2e latency, and a recovery time is measured. Virtual time
// makes the figures exact.
func TestConsumerPauseBacklog(t *testing.T) {
	sc := load(t, `
driver: {memory: {streams: 2}}
consumers: 2
traffic:
  - constant: {rate: 2000/s, for: 8s}
chaos:
  - {action: consumer-pause, at: 2s, for: 3s}
drain: 5s
`)
	var res *report.Results
	synctest.Test(t, func(t *testing.T) { res = run(t, sc) })
	f := onlyFault(t, res)
	if f.StartS < 2 || f.StartS > 2.01 || f.EndS < 5 || f.EndS > 5.01 {
		t.Errorf("window [%v, %v], want [2, 5]", f.StartS, f.EndS)
	}
	if res.Counts.Lost != 0 || res.Counts.Received != res.Counts.Sent {
		t.Errorf("counts %+v", res.Counts)
	}
	if f.PeakBacklog < 5900 || f.PeakBacklog > 6100 {
		t.Errorf("peak backlog %d, want about 2000/s × 3s = 6000", f.PeakBacklog)
	}
	if f.RecoveryS == nil || *f.RecoveryS > 1.5 {
		t.Errorf("recovery %v, want a time within the sliding second after the pause", f.RecoveryS)
	}
	if f.WindowLatencyUS != nil && f.WindowLatencyUS.Count > 2 {
		t.Errorf("nothing but a message in flight at the start is received while paused, yet the window has %d", f.WindowLatencyUS.Count)
	}
	if res.LatencyUS.E2E.Max < 2_900_000 {
		t.Errorf("e2e max %dµs: the first message held by the pause waited about 3s", res.LatencyUS.E2E.Max)
	}
}

// TestDuplicateInjectionExact: producers re-send 1% of 10,000 messages; the
// duplicates observed equal the injected count exactly, and all of them
// were sent inside the window.
func TestDuplicateInjectionExact(t *testing.T) {
	sc := load(t, `
driver: {memory: {streams: 4}}
producers: 2
consumers: 2
traffic:
  - constant: {rate: 2000/s, for: 5s}
chaos:
  - {action: duplicate, at: 0s, for: 5s, fraction: 0.01}
drain: 2s
`)
	var res *report.Results
	synctest.Test(t, func(t *testing.T) { res = run(t, sc) })
	f := onlyFault(t, res)
	injected, _ := f.Details["injected"].(int64)
	if injected < 50 {
		t.Fatalf("injected %d re-sends of 10,000 at 1%%", injected)
	}
	if res.Counts.Sent != 10000 || res.Counts.Duplicates != injected || f.DuplicatesInWindow != injected {
		t.Errorf("sent %d, duplicates %d (in window %d), injected %d",
			res.Counts.Sent, res.Counts.Duplicates, f.DuplicatesInWindow, injected)
	}
	if res.Counts.Lost != 0 || res.Counts.Reordered != 0 {
		t.Errorf("counts %+v", res.Counts)
	}
}

// TestSlowConsumer: consumers capped at 500/s each against 2000/s of
// traffic build a backlog of about (2000 − 1000) × 2 s.
func TestSlowConsumer(t *testing.T) {
	sc := load(t, `
driver: {memory: {streams: 2}}
consumers: 2
traffic:
  - constant: {rate: 2000/s, for: 6s}
chaos:
  - {action: slow-consumer, at: 1s, for: 2s, rate: 500/s}
drain: 5s
`)
	var res *report.Results
	synctest.Test(t, func(t *testing.T) { res = run(t, sc) })
	f := onlyFault(t, res)
	if f.PeakBacklog < 1800 || f.PeakBacklog > 2200 {
		t.Errorf("peak backlog %d, want about 2000", f.PeakBacklog)
	}
	if f.WindowLatencyUS == nil || f.WindowLatencyUS.Count < 1800 || f.WindowLatencyUS.Count > 2200 {
		t.Errorf("window latency %+v: about 1000/s × 2s were processed in the window", f.WindowLatencyUS)
	}
	if res.Counts.Lost != 0 || f.RecoveryS == nil {
		t.Errorf("lost %d, recovery %v", res.Counts.Lost, f.RecoveryS)
	}
}

// TestGracefulConsumerCrash: a consumer stops cleanly and comes back after
// 2 s; its streams wait for it, nothing is lost.
func TestGracefulConsumerCrash(t *testing.T) {
	sc := load(t, `
driver: {memory: {streams: 2}}
consumers: 2
traffic:
  - constant: {rate: 1000/s, for: 5s}
chaos:
  - {action: consumer-crash, at: 1s, for: 2s, graceful: true}
drain: 5s
`)
	var res *report.Results
	synctest.Test(t, func(t *testing.T) { res = run(t, sc) })
	f := onlyFault(t, res)
	if f.Details["restarted"] != true || res.Counts.Lost != 0 || res.Counts.Received != res.Counts.Sent {
		t.Errorf("details %v counts %+v", f.Details, res.Counts)
	}
	if f.PeakBacklog < 900 || f.PeakBacklog > 1100 {
		t.Errorf("peak backlog %d, want about half of 1000/s × 2s", f.PeakBacklog)
	}
}

// TestExecFault runs a command and its revert, recording their output.
func TestExecFault(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "fault-on")
	sc := load(t, `
driver: memory
traffic:
  - constant: {rate: 100/s, for: 2s}
chaos:
  - action: exec
    at: 500ms
    for: 500ms
    command: echo injected > `+marker+` && echo started
    revert: rm `+marker+` && echo reverted
drain: 1s
`)
	res := run(t, sc)
	f := onlyFault(t, res)
	if f.Details["output"] != "started\n" || f.Details["revert_output"] != "reverted\n" || f.Details["exit_code"] != 0 {
		t.Errorf("details %v", f.Details)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("the revert did not run: %v", err)
	}
	if f.EndS-f.StartS < 0.5 {
		t.Errorf("window %v..%v shorter than for: 500ms", f.StartS, f.EndS)
	}
}

// TestInterruptRevertsFaults interrupts a run mid-fault: the pause is
// lifted (the drain receives the backlog), the exec fault's revert runs, and
// the results record both faults as ended.
func TestInterruptRevertsFaults(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "fault-on")
	sc := load(t, `
driver: memory
traffic:
  - constant: {rate: 500/s, for: 30s}
chaos:
  - {action: consumer-pause, at: 500ms, for: 20s}
  - {action: exec, at: 500ms, for: 20s, command: "touch `+marker+`", revert: "rm `+marker+`"}
drain: 10s
`)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(1500*time.Millisecond, cancel)
	start := time.Now()
	res, err := engine.Run(ctx, sc, engine.WithDrivers(memory.Kind))
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("interrupted run took %v", took)
	}
	if !res.Interrupted || len(res.Chaos) != 2 {
		t.Fatalf("interrupted %v, chaos %+v", res.Interrupted, res.Chaos)
	}
	for _, f := range res.Chaos {
		if !f.OK || f.EndS > 3 {
			t.Errorf("fault %s: ok %v, ended at %vs (the interrupt came at 1.5s)", f.Action, f.OK, f.EndS)
		}
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("the exec fault was not reverted: %v", err)
	}
	if res.Counts.Lost != 0 {
		t.Errorf("lost %d: the pause was not lifted for the drain", res.Counts.Lost)
	}
}

// TestChaosValidation: faults the driver cannot perform are rejected when
// the scenario loads, naming the action, the driver and the way out.
func TestChaosValidation(t *testing.T) {
	l := &scenarios.Loader{}
	l.Driver(memory.Kind.Name, memory.Kind.Options)
	chaos.Register(l)
	_, err := l.Parse("c.yaml", []byte(`
driver: memory
consumers: 2
traffic:
  - constant: {rate: 100/s, for: 10s}
chaos:
  - {action: consumer-crash, at: 1s}
  - {action: network, at: 1s, for: 1s, target: consumers, fault: latency, latency: 50ms}
  - {action: broker-restart, at: 2s}
  - {action: consumer-pause, at: 1s}
  - {action: duplicate, at: 1s, for: 1s, fraction: 2}
  - {action: slow-consumer, at: 1s, for: 1s, rate: 10/s, count: 3}
  - {action: broker-restart, at: 2s, stop: "docker stop k"}
`))
	want := []string{
		`c.yaml:7:5: chaos[0].action: consumer-crash cannot run on driver "memory" as configured: its consumers cannot die abruptly (kafka, rabbitmq and eventbridge consumers can); use graceful: true for a clean stop`,
		`c.yaml:8:5: chaos[1].action: network cannot run on driver "memory" as configured: the driver does not connect through spate's dialer (kafka, rabbitmq and eventbridge do)`,
		`c.yaml:9:5: chaos[2].action: broker-restart cannot run on driver "memory" as configured: it manages no brokers; use brokers: embedded (kafka) or url: managed (rabbitmq), or give stop: and start: commands`,
		`c.yaml:10:5: chaos[3]: consumer-pause needs ` + "`for`" + ` (how long the consumers stay paused)`,
		`c.yaml:11:52: chaos[4].fraction: must be above 0 and at most 1, got 2`,
		`c.yaml:12:65: chaos[5].count: must be between 1 and the 2 consumers, got 3`,
		`c.yaml:13:5: chaos[6]: give both stop and start commands, or neither`,
	}
	if err == nil {
		t.Fatal("no problems")
	}
	got := strings.Split(err.Error(), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestPoisonDeadLettered: producers flag 2% of 10,000 messages as poison;
// the consumers reject them and the broker routes them to its dead-letter
// stream. spate counts exactly the injected number as dead-lettered, none
// lost. Without a dead-letter queue the same messages vanish, and spate
// reports exactly them as lost.
func TestPoisonDeadLettered(t *testing.T) {
	for _, dlq := range []bool{true, false} {
		t.Run(fmt.Sprintf("dead-letter=%v", dlq), func(t *testing.T) {
			sc := load(t, fmt.Sprintf(`
driver: {memory: {streams: 4, dead-letter: %v}}
producers: 2
consumers: 2
traffic:
  - constant: {rate: 2000/s, for: 5s}
chaos:
  - {action: poison, at: 0s, for: 5s, fraction: 0.02}
drain: 1s
`, dlq))
			var res *report.Results
			synctest.Test(t, func(t *testing.T) { res = run(t, sc) })
			f := onlyFault(t, res)
			injected, _ := f.Details["injected"].(int64)
			if injected < 100 {
				t.Fatalf("injected %d poison messages of 10,000 at 2%%", injected)
			}
			c := res.Counts
			if dlq {
				if c.DeadLettered != injected || c.Lost != 0 || c.Received != c.Sent || res.DriverStats["dead_lettered"] != injected {
					t.Errorf("injected %d: counts %+v, driver %v", injected, c, res.DriverStats)
				}
			} else if c.Lost != injected || c.DeadLettered != 0 || f.LostInWindow != injected || res.DriverStats["poison_discarded"] != injected {
				t.Errorf("injected %d: lost %d (in window %d), dead-lettered %d, driver %v", injected, c.Lost, f.LostInWindow, c.DeadLettered, res.DriverStats)
			}
			if c.Reordered != 0 || c.Duplicates != 0 {
				t.Errorf("counts %+v", c)
			}
		})
	}
}
