package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/chaos"
	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/kafka"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// captured is the kafka driver of one engine run, reachable by the test
// while the run goes on, as chaos will reach it.
type captured struct {
	t      *testing.T
	opened chan struct{}
	// onOpen, if set, runs when the driver is open, before any traffic.
	onOpen func(d *kafka.EmbeddedDriver)

	mu        sync.Mutex
	drv       *kafka.EmbeddedDriver
	consumers []drivers.Consumer
}

func newCaptured(t *testing.T) *captured {
	return &captured{t: t, opened: make(chan struct{})}
}

// kind is kafka.Kind, opened through the capture.
func (c *captured) kind() drivers.Kind {
	return drivers.Kind{
		Name:    "kafka",
		Options: kafka.Kind.Options,
		Open: func(ctx context.Context, options any, env drivers.Env) (drivers.Driver, error) {
			d, err := kafka.Kind.Open(ctx, options, env)
			if err != nil {
				return nil, err
			}
			ed, ok := d.(*kafka.EmbeddedDriver)
			if !ok {
				return nil, fmt.Errorf("want the embedded driver, got %T", d)
			}
			c.mu.Lock()
			c.drv = ed
			c.mu.Unlock()
			if c.onOpen != nil {
				c.onOpen(ed)
			}
			close(c.opened)
			return &capturedDriver{Driver: d, c: c}, nil
		},
	}
}

func (c *captured) driver() *kafka.EmbeddedDriver {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.drv
}

func (c *captured) consumer(i int) drivers.Consumer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.consumers[i]
}

type capturedDriver struct {
	drivers.Driver
	c *captured
}

func (d *capturedDriver) Stats() map[string]int64 { return d.Driver.(drivers.StatsReporter).Stats() }

func (d *capturedDriver) NewConsumer(ctx context.Context, id int) (drivers.Consumer, error) {
	cons, err := d.Driver.NewConsumer(ctx, id)
	if err != nil {
		return nil, err
	}
	d.c.mu.Lock()
	d.c.consumers = append(d.c.consumers, cons)
	d.c.mu.Unlock()
	return crashTolerant{cons}, nil
}

// crashTolerant keeps the engine from ending the run when the test crashes
// a consumer on purpose: today's engine treats any Consume error as a
// failed run, where chaos would expect drivers.ErrCrashed.
type crashTolerant struct{ drivers.Consumer }

func (c crashTolerant) Consume(ctx context.Context, h drivers.Handler) error {
	err := c.Consumer.Consume(ctx, h)
	if errors.Is(err, drivers.ErrCrashed) {
		<-ctx.Done()
		return nil
	}
	return err
}

// runScenario runs the scenario yaml on the embedded cluster through the
// real engine, with the driver reachable through c.
func runScenario(t *testing.T, c *captured, yaml string) *report.Results {
	t.Helper()
	return runKind(t, c.kind(), yaml)
}

// runKind runs the scenario yaml with driver kind k through the engine.
func runKind(t *testing.T, k drivers.Kind, yaml string) *report.Results {
	t.Helper()
	l := &scenarios.Loader{}
	l.Driver("kafka", kafka.Kind.Options)
	chaos.Register(l)
	sc, err := l.Parse(t.Name()+".yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("scenario: %v", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	res, err := engine.Run(context.Background(), sc, engine.WithDrivers(k), engine.WithLogger(log))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Logf("counts %+v", res.Counts)
	t.Logf("driver %v", res.DriverStats)
	return res
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// waitFor polls cond every 10ms until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// afterDelivered runs fn (in a goroutine) once the run delivered n records.
func afterDelivered(t *testing.T, c *captured, n int64, fn func(d *kafka.EmbeddedDriver)) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-c.opened:
		case <-time.After(30 * time.Second):
			t.Error("the driver was never opened")
			return
		}
		d := c.driver()
		deadline := time.Now().Add(30 * time.Second)
		for d.Stats()["delivered"] < n {
			if time.Now().After(deadline) {
				t.Errorf("%d records were never delivered", n)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		fn(d)
	}()
	return &wg
}

func expect(t *testing.T, what string, got, want int64) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %d, want %d", what, got, want)
	}
}

// checkClean asserts what every run here must show: every message sent was
// confirmed and received, nothing foreign or malformed.
func checkClean(t *testing.T, c accounting.Counts) {
	t.Helper()
	if c.Sent < 1000 || c.Unsent != 0 {
		t.Fatalf("sent %d, unsent %d: the pacer did not deliver the schedule", c.Sent, c.Unsent)
	}
	expect(t, "acked", c.Acked, c.Sent)
	expect(t, "failed", c.Failed, 0)
	expect(t, "lost", c.Lost, 0)
	expect(t, "received", c.Received, c.Sent)
	expect(t, "foreign", c.Foreign, 0)
	expect(t, "malformed", c.Malformed, 0)
}

const knownAnswerTraffic = `
producers: 3
message: {size: 100B, keys: {strategy: round-robin, count: 12}}
traffic:
  - constant: {rate: 4000/s, for: 2s}
drain: 10s
`

func TestCleanRun(t *testing.T) {
	c := newCaptured(t)
	res := runScenario(t, c, `
driver: {kafka: {partitions: 6}}
consumers: 3
`+knownAnswerTraffic)
	checkClean(t, res.Counts)
	expect(t, "duplicates", res.Counts.Duplicates, 0)
	expect(t, "reordered", res.Counts.Reordered, 0)
	expect(t, "driver produced", res.DriverStats["produced"], res.Counts.Sent)
}

// TestProduceTimeouts: the brokers append produce requests and answer
// REQUEST_TIMED_OUT, so clients retry what was written. Without idempotence
// every retried batch lands twice; with it the broker drops the retries.
func TestProduceTimeouts(t *testing.T) {
	for _, idempotent := range []bool{false, true} {
		t.Run(fmt.Sprintf("idempotent=%v", idempotent), func(t *testing.T) {
			c := newCaptured(t)
			var remove func()
			c.onOpen = func(d *kafka.EmbeddedDriver) {
				var err error
				remove, err = d.InjectFault(context.Background(), drivers.ProtocolFault{
					Request: "produce", Error: "REQUEST_TIMED_OUT", Count: 30,
				})
				if err != nil {
					t.Error(err)
				}
			}
			res := runScenario(t, c, fmt.Sprintf(`
driver: {kafka: {partitions: 3, idempotent: %v}}
consumers: 2
`, idempotent)+knownAnswerTraffic)
			if remove != nil {
				remove()
			}
			checkClean(t, res.Counts)
			if hits := res.DriverStats["fault_hits"]; hits != 30 {
				t.Errorf("fault_hits = %d, want 30: the faults did not all fire", hits)
			}
			if idempotent {
				expect(t, "duplicates", res.Counts.Duplicates, 0)
				expect(t, "reordered", res.Counts.Reordered, 0)
			} else if res.Counts.Duplicates == 0 {
				t.Error("duplicates = 0, want some: retried appends without idempotence are written twice")
			}
		})
	}
}

// TestConsumerCrash: one consumer of three dies abruptly mid-run. The
// other two take its partitions after the session timeout and read again
// from its last commit: nothing is lost, and the duplicates are exactly the
// records it had delivered after that commit and that were read again.
func TestConsumerCrash(t *testing.T) {
	c := newCaptured(t)
	wg := afterDelivered(t, c, 3000, func(d *kafka.EmbeddedDriver) {
		victim := c.consumer(1)
		waitFor(t, "consumer 1 to own partitions", 10*time.Second, func() bool { return kafka.Owned(victim) > 0 })
		victim.(drivers.Crasher).Crash()
	})
	res := runScenario(t, c, `
driver: {kafka: {partitions: 6, session-timeout: 3s, commit-interval: 500ms}}
producers: 3
consumers: 3
message: {size: 100B, keys: {strategy: round-robin, count: 12}}
traffic:
  - constant: {rate: 3000/s, for: 4s}
drain: 15s
`)
	wg.Wait()
	checkClean(t, res.Counts)
	st := res.DriverStats
	expect(t, "crashes", st["crashes"], 1)
	if st["crash_uncommitted"] == 0 {
		t.Error("crash_uncommitted = 0: the crashed consumer had nothing uncommitted; the test proves little")
	}
	if st["crash_redelivered"] > st["crash_uncommitted"] {
		t.Errorf("crash_redelivered %d > crash_uncommitted %d", st["crash_redelivered"], st["crash_uncommitted"])
	}
	expectCrashDuplicates(t, res)
	expect(t, "reordered", res.Counts.Reordered, 0)
}

// TestClusterRestart: every broker goes down mid-run, killed (connections
// reset, no shutdown) or stopped gracefully, and comes back on its data
// after 300ms. With acks=all nothing confirmed is lost.
func TestClusterRestart(t *testing.T) {
	for _, mode := range []drivers.RestartMode{drivers.Kill, drivers.Graceful} {
		name := map[drivers.RestartMode]string{drivers.Kill: "kill", drivers.Graceful: "graceful"}[mode]
		t.Run(name, func(t *testing.T) {
			c := newCaptured(t)
			wg := afterDelivered(t, c, 2000, func(d *kafka.EmbeddedDriver) {
				if err := d.RestartBroker(context.Background(), drivers.AllBrokers, mode, 300*time.Millisecond); err != nil {
					t.Error(err)
				}
			})
			res := runScenario(t, c, `
driver: {kafka: {partitions: 3}}
consumers: 2
`+knownAnswerTraffic)
			wg.Wait()
			checkClean(t, res.Counts)
			expect(t, "broker_restarts", res.DriverStats["broker_restarts"], 1)
		})
	}
}

// TestLeadersMoveAndBrokerRestarts: leaders move, then one broker is
// killed and one restarted gracefully, all mid-run. Nothing is lost or
// reordered, and with idempotence nothing is duplicated on the produce side.
func TestLeadersMoveAndBrokerRestarts(t *testing.T) {
	c := newCaptured(t)
	wg := afterDelivered(t, c, 1500, func(d *kafka.EmbeddedDriver) {
		ctx := context.Background()
		if err := d.MoveLeaders(ctx); err != nil {
			t.Error(err)
		}
		time.Sleep(200 * time.Millisecond)
		if err := d.RestartBroker(ctx, 1, drivers.Kill, 200*time.Millisecond); err != nil {
			t.Error(err)
		}
		time.Sleep(200 * time.Millisecond)
		if err := d.RestartBroker(ctx, 2, drivers.Graceful, 0); err != nil {
			t.Error(err)
		}
	})
	res := runScenario(t, c, `
driver: {kafka: {partitions: 6}}
consumers: 2
`+knownAnswerTraffic)
	wg.Wait()
	checkClean(t, res.Counts)
	expect(t, "reordered", res.Counts.Reordered, 0)
	if res.DriverStats["leader_moves"] != 6 {
		t.Errorf("leader_moves = %d, want 6", res.DriverStats["leader_moves"])
	}
}

// expectCrashDuplicates checks that a run's duplicates are exactly the
// records crashed consumers had delivered after their last commit and that
// were read again (crash_redelivered). When the group also took partitions
// from a live member (partitions_lost: its session expired on a loaded
// machine, or a killed broker was the group's coordinator), that member's
// uncommitted records are read again as well, legitimately, so then the
// duplicates may only exceed it. These tests give the group a 3 s session
// timeout to make that rare.
func expectCrashDuplicates(t *testing.T, res *report.Results) {
	t.Helper()
	dup, re := res.Counts.Duplicates, res.DriverStats["crash_redelivered"]
	if lost := res.DriverStats["partitions_lost"]; lost > 0 {
		t.Logf("%d partitions were taken from a live member: duplicates %d, crash_redelivered %d", lost, dup, re)
		if dup < re {
			t.Errorf("duplicates = %d, fewer than the %d crash_redelivered", dup, re)
		}
		return
	}
	expect(t, "duplicates", dup, re)
}

// TestChaosScenario runs the scenario's own chaos timeline on the embedded
// cluster: leaders move, produces time out after appending, a consumer
// crashes and comes back, a broker is killed, and the producers' network
// goes down, in turn (the crash before the produce timeouts, which stall
// the partitions they hit). Nothing is lost or reordered; with idempotent
// producers the only duplicates are what the crashed consumer had
// processed after its last commit and the others read again.
func TestChaosScenario(t *testing.T) {
	res := runKind(t, kafka.Kind, `
driver: {kafka: {partitions: 6, session-timeout: 3s, commit-interval: 500ms}}
producers: 3
consumers: 3
message: {size: 100B, keys: {strategy: round-robin, count: 12}}
traffic:
  - constant: {rate: 3000/s, for: 6s}
drain: 15s
chaos:
  - {action: leader-move, at: 500ms}
  - {action: consumer-crash, at: 1s, for: 2s, count: 1}
  - {action: produce-error, at: 1500ms, count: 20}
  - {action: broker-restart, at: 2500ms, for: 300ms, target: 2, mode: kill}
  - {action: network, at: 4s, for: 300ms, target: producers, fault: down}
`)
	checkClean(t, res.Counts)
	st := res.DriverStats
	for _, f := range res.Chaos {
		t.Logf("fault %+v", f)
	}
	if len(res.Chaos) != 5 {
		t.Errorf("%d faults in the results, want 5", len(res.Chaos))
	}
	for _, f := range res.Chaos {
		if !f.OK {
			t.Errorf("fault %s failed: %s", f.Action, f.Error)
		}
	}
	expect(t, "crashes", st["crashes"], 1)
	expect(t, "leader_moves", st["leader_moves"], 6)
	expect(t, "broker_restarts", st["broker_restarts"], 1)
	expect(t, "fault_hits", st["fault_hits"], 20)
	expect(t, "reordered", res.Counts.Reordered, 0)
	expectCrashDuplicates(t, res)
}
