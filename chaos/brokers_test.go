package chaos_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/chaos"
	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// fakeCluster is a driver of three brokers that records the node faults
// chaos applies and takes back. Queue "q" is led by broker leader until a
// fault moves it to the next broker.
type fakeCluster struct {
	drivers.Driver
	mu      sync.Mutex
	leader  int
	events  []string
	failLdr bool
}

func (f *fakeCluster) log(e string) {
	f.mu.Lock()
	f.events = append(f.events, e)
	f.mu.Unlock()
}

func (f *fakeCluster) Brokers() []int { return []int{0, 1, 2} }

func (f *fakeCluster) RestartBroker(ctx context.Context, id int, mode drivers.RestartMode, down time.Duration) error {
	f.log("restart " + brokerString(id))
	f.mu.Lock()
	f.leader = (f.leader + 1) % 3
	f.mu.Unlock()
	return nil
}

func (f *fakeCluster) PauseBroker(ctx context.Context, id int) (func() error, error) {
	f.log("pause " + brokerString(id))
	return func() error { f.log("resume " + brokerString(id)); return nil }, nil
}

func (f *fakeCluster) PartitionBroker(ctx context.Context, id int) (func() error, error) {
	f.log("partition " + brokerString(id))
	f.mu.Lock()
	f.leader = (f.leader + 1) % 3
	f.mu.Unlock()
	return func() error { f.log("heal " + brokerString(id)); return nil }, nil
}

func (f *fakeCluster) Leaders(ctx context.Context) (map[string]int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failLdr {
		return nil, errors.New("no node answers")
	}
	return map[string]int{"q": f.leader}, nil
}

func brokerString(id int) string {
	if id == drivers.AllBrokers {
		return "all"
	}
	return string(rune('0' + id))
}

// clusterOptions are the options of a driver that manages three brokers.
type clusterOptions struct{}

func (clusterOptions) Abilities() []string {
	return []string{scenarios.AbilityBrokerRestart, scenarios.AbilityBrokerPause, scenarios.AbilityBrokerPartition, scenarios.AbilityLeaderLocate}
}

func (clusterOptions) BrokerIDs() []int { return []int{0, 1, 2} }

func loadScenario(t *testing.T, src string) *scenarios.Scenario {
	t.Helper()
	l := &scenarios.Loader{}
	l.Driver("cluster", func(*scenarios.Decoder, *yaml.Node, string) any { return clusterOptions{} })
	chaos.Register(l)
	sc, err := l.Parse("c.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// runFaults runs sc's faults against drv on a timeline that starts now,
// stops them after stopAfter (as the end of a run or an interrupt would)
// and returns their results. It runs in a synctest bubble: the timeline's
// clock is the bubble's, so the faults' times are exact and nothing waits
// for real.
func runFaults(t *testing.T, sc *scenarios.Scenario, drv drivers.Driver, stopAfter time.Duration) []report.FaultResult {
	return runFaultsIn(t, sc, &chaos.Env{Driver: drv}, stopAfter)
}

// runFaultsIn is runFaults with the Env given (its Log is set here).
func runFaultsIn(t *testing.T, sc *scenarios.Scenario, env *chaos.Env, stopAfter time.Duration) []report.FaultResult {
	t.Helper()
	var res []report.FaultResult
	synctest.Test(t, func(t *testing.T) {
		r := startFaults(sc, env)
		time.Sleep(stopAfter)
		r.Stop()
		r.Close()
		res = r.Results()
	})
	return res
}

// startFaults starts sc's faults on env (its Log is set here), with the
// timeline's clock starting now, and returns the runner.
func startFaults(sc *scenarios.Scenario, env *chaos.Env) *chaos.Runner {
	r := chaos.NewRunner(sc, 0, 1)
	start := time.Now()
	tr := accounting.NewTracker(1, 1, start.UnixNano())
	env.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	r.Start(context.Background(), env, tr, func() time.Duration { return time.Since(start) })
	return r
}

// TestNodeFaults: each node fault acts on the broker its target names
// (leader: the one leading the queue when it starts), is taken back at
// the end of its window, and records where the queue's leader was before
// and after.
func TestNodeFaults(t *testing.T) {
	sc := loadScenario(t, `
driver: cluster
traffic: [{constant: {rate: 10/s, for: 10s}}]
chaos:
  - {action: broker-pause, at: 0s, for: 100ms, target: leader}
  - {action: broker-partition, at: 300ms, for: 100ms, target: 2}
  - {action: broker-restart, at: 600ms, for: 50ms, target: leader, mode: kill}
`)
	drv := &fakeCluster{leader: 1}
	res := runFaults(t, sc, drv, 1500*time.Millisecond)
	want := []string{"pause 1", "resume 1", "partition 2", "heal 2", "restart 2"}
	if got := drv.events; len(got) != len(want) || fmtList(got) != fmtList(want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if len(res) != 3 {
		t.Fatalf("%d results: %+v", len(res), res)
	}
	for i, tc := range []struct{ broker, before, after string }{
		{"1", "1", "1"}, // a pause moves nothing here
		{"2", "1", "2"}, // the partition moved the leader
		{"2", "2", "0"}, // target: leader, after it moved
	} {
		f := res[i]
		if !f.OK {
			t.Errorf("%s: %s", f.Action, f.Error)
		}
		d := f.Details
		if got := d["broker"]; got != tc.broker {
			t.Errorf("%s: broker %v, want %s", f.Action, got, tc.broker)
		}
		before, _ := d["leaders_before"].(map[string]int)
		after, _ := d["leaders_after"].(map[string]int)
		if brokerString(before["q"]) != tc.before || brokerString(after["q"]) != tc.after {
			t.Errorf("%s: leaders before %v after %v, want q led by %s then %s", f.Action, before, after, tc.before, tc.after)
		}
		if _, ok := d["applied_after"]; !ok {
			t.Errorf("%s: no applied_after in %v", f.Action, d)
		}
	}
}

// TestNodeFaultsUndoneOnStop: faults in effect when the run stops early
// (an interrupt) are taken back before Stop returns.
func TestNodeFaultsUndoneOnStop(t *testing.T) {
	sc := loadScenario(t, `
driver: cluster
traffic: [{constant: {rate: 10/s, for: 60s}}]
chaos:
  - {action: broker-pause, at: 0s, for: 50s, target: all}
  - {action: broker-partition, at: 0s, for: 50s, target: 1}
`)
	drv := &fakeCluster{}
	res := runFaults(t, sc, drv, 300*time.Millisecond)
	got := map[string]bool{}
	for _, e := range drv.events {
		got[e] = true
	}
	for _, e := range []string{"pause all", "resume all", "partition 1", "heal 1"} {
		if !got[e] {
			t.Errorf("no %q in %v", e, drv.events)
		}
	}
	for _, f := range res {
		if !f.OK || f.EndS > 1 {
			t.Errorf("%s: ok %v, ended at %.1fs (stopped at 0.3s)", f.Action, f.OK, f.EndS)
		}
	}
}

// TestLeaderTargetNeedsALeader: target: leader fails the fault, saying
// why, when the driver cannot say which broker leads; a fault on a named
// broker goes ahead and records the error instead.
func TestLeaderTargetNeedsALeader(t *testing.T) {
	sc := loadScenario(t, `
driver: cluster
traffic: [{constant: {rate: 10/s, for: 10s}}]
chaos:
  - {action: broker-pause, at: 0s, for: 50ms, target: leader}
  - {action: broker-pause, at: 0s, for: 50ms, target: 0}
`)
	drv := &fakeCluster{failLdr: true}
	res := runFaults(t, sc, drv, 500*time.Millisecond)
	if len(res) != 2 {
		t.Fatalf("results %+v", res)
	}
	if res[0].OK || res[0].Error != "broker-pause: which broker leads the queue: no node answers" {
		t.Errorf("leader target: ok %v, error %q", res[0].OK, res[0].Error)
	}
	if !res[1].OK || res[1].Details["leaders_before_error"] != "no node answers" {
		t.Errorf("named target: ok %v, details %v", res[1].OK, res[1].Details)
	}
}

func fmtList(l []string) string {
	out := ""
	for _, s := range l {
		out += s + ";"
	}
	return out
}
