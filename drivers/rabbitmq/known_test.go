package rabbitmq_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/rabbitmq"
)

// These tests run scenarios through the engine against the shared node and
// compare spate's figures with what is known independently: the queue
// depth asked of the broker, the deliveries the test saw, the driver's own
// counters.

// TestKnownAnswerClean: durable queue, persistent messages, confirms, keys
// routed through a direct exchange: nothing lost, nothing duplicated.
func TestKnownAnswerClean(t *testing.T) {
	node(t)
	h := newHarness(t)
	res := h.run(fmt.Sprintf(`
driver:
  rabbitmq:
    exchange: {name: %s, kind: direct}
producers: 2
consumers: 2
message: {size: 200B, keys: {strategy: round-robin, count: 4}}
traffic:
  - constant: {rate: 1000/s, for: 2s}
drain: 20s
`, uniqueName("spate-clean")))
	c := res.Counts
	t.Logf("counts %+v\nstats %v", c, res.DriverStats)
	if c.Sent < 1000 {
		t.Fatalf("sent %d, want about 2000", c.Sent)
	}
	expect(t, "lost", c.Lost, 0)
	expect(t, "duplicates", c.Duplicates, 0)
	expect(t, "failed", c.Failed, 0)
	expect(t, "acked", c.Acked, c.Sent)
	expect(t, "received", c.Received, c.Sent)
	expect(t, "driver confirmed", res.DriverStats["confirmed"], c.Sent)
	expect(t, "driver delivered", res.DriverStats["delivered"], c.Sent)
	expect(t, "queue depth at the end", res.DriverStats["queue_depth"], 0)
}

// TestKnownAnswerTransientRestart: a non-durable queue with transient
// messages loses exactly what it held when the broker restarts. Consumers
// subscribe only after the restart, so the backlog is all in the queue;
// producers are held (and every outcome is in) while the depth is read and
// the broker restarts, so nothing else is in flight.
func TestKnownAnswerTransientRestart(t *testing.T) {
	node(t)
	h := newHarness(t)
	h.lazy = true
	wait := h.start(`
driver:
  rabbitmq:
    queue: {durable: false}
    persistent: false
producers: 2
consumers: 2
traffic:
  - constant: {rate: 500/s, for: 12s}
drain: 6s
`)
	waitFor(t, "300 acked messages", time.Minute, func() bool { return h.acked.Load() >= 300 })
	h.closeGate()
	h.quiet(time.Minute)
	d := h.driver()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	depth, err := d.QueueDepth(ctx, d.Queue())
	if err != nil {
		t.Fatal(err)
	}
	acked := h.acked.Load()
	if int64(depth) != acked {
		t.Errorf("queue depth %d before the restart, want every acked message (%d): nobody consumed yet", depth, acked)
	}
	if err := d.RestartBroker(ctx, 0, drivers.Graceful, 0); err != nil {
		t.Fatal(err)
	}
	h.openGate()
	close(h.release)
	res := wait()
	c := res.Counts
	t.Logf("depth at restart %d\ncounts %+v\nstats %v", depth, c, res.DriverStats)
	if depth == 0 {
		t.Fatal("the queue was empty at the restart; the test proves nothing")
	}
	expect(t, "lost", c.Lost, int64(depth))
	expect(t, "duplicates", c.Duplicates, 0)
	expect(t, "received", c.Received, c.Acked-int64(depth))
	if c.Acked <= int64(depth) {
		t.Errorf("acked %d: nothing was acked after the restart (did the producers reconnect?)", c.Acked)
	}
}

// TestKnownAnswerKillDurable: a durable queue with persistent, confirmed
// messages loses nothing acked when the broker is killed with SIGKILL.
// Producers keep sending through the kill; their messages in flight are
// unconfirmed, not lost.
func TestKnownAnswerKillDurable(t *testing.T) {
	node(t)
	h := newHarness(t)
	h.lazy = true
	started := time.Now()
	wait := h.start(`
driver: rabbitmq
producers: 2
consumers: 2
traffic:
  - constant: {rate: 500/s, for: 12s}
drain: 30s
`)
	waitFor(t, "300 acked messages", time.Minute, func() bool { return h.acked.Load() >= 300 })
	settleDeclarations(started)
	d := h.driver()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	depth, err := d.QueueDepth(ctx, d.Queue())
	if err != nil {
		t.Fatal(err)
	}
	ackedBefore := h.acked.Load()
	if err := d.RestartBroker(ctx, 0, drivers.Kill, 0); err != nil {
		t.Fatal(err)
	}
	close(h.release)
	res := wait()
	c := res.Counts
	t.Logf("depth before the kill %d\ncounts %+v\nstats %v", depth, c, res.DriverStats)
	if depth < 250 {
		t.Errorf("queue depth before the kill %d, want at least 250 (the acked backlog)", depth)
	}
	expect(t, "lost", c.Lost, 0)
	if c.Received < ackedBefore {
		t.Errorf("received %d, want at least the %d acked before the kill", c.Received, ackedBefore)
	}
	if c.Acked <= ackedBefore {
		t.Errorf("acked %d: nothing was acked after the restart (did the producers reconnect?)", c.Acked)
	}
	if res.DriverStats["reconnects"] == 0 {
		t.Error("the driver counted no reconnects")
	}
}

// settleDeclarations waits until the run that started at start is
// declarationSettle old. RabbitMQ 3.10 can lose a durable queue declared
// less than about a second before a SIGKILL, persistent messages and all:
// after such a kill the node logs "Recovering 0 queues of type
// rabbit_classic_queue" and the driver declares the queue again, empty.
// That is the broker's loss, not the driver's, and these tests are about
// what happens to messages in queues that exist.
func settleDeclarations(start time.Time) {
	time.Sleep(time.Until(start.Add(declarationSettle)))
}

const declarationSettle = 3 * time.Second

// TestKnownAnswerConsumerCrash: a consumer crashes inside its Handler, so
// the batch it was handed is never acked. The broker redelivers it (and
// whatever else the consumer held) to the other consumer or to the
// replacement: duplicates and redeliveries are counted, nothing is lost.
func TestKnownAnswerConsumerCrash(t *testing.T) {
	node(t)
	h := newHarness(t)
	h.crashID.Store(0)
	h.crashAfter = 300
	res := h.run(`
driver: {rabbitmq: {prefetch: 100}}
producers: 1
consumers: 2
traffic:
  - constant: {rate: 1000/s, for: 2s}
drain: 30s
`)
	c := res.Counts
	t.Logf("crashed batch %d\ncounts %+v\nstats %v", h.crashBatch.Load(), c, res.DriverStats)
	if !h.crashed.Load() {
		t.Fatal("consumer 0 never crashed; the test proves nothing")
	}
	expect(t, "lost", c.Lost, 0)
	expect(t, "received", c.Received, c.Sent)
	expect(t, "driver crashes", res.DriverStats["crashes"], 1)
	if c.Duplicates < h.crashBatch.Load() {
		t.Errorf("duplicates %d, want at least the %d deliveries of the batch being handled at the crash", c.Duplicates, h.crashBatch.Load())
	}
	if c.Redelivered < c.Duplicates {
		t.Errorf("redelivered %d < duplicates %d: every duplicate here is a redelivery", c.Redelivered, c.Duplicates)
	}
}

// TestSingleActiveConsumerOrder: with x-single-active-consumer one of three
// consumers receives at a time, and when it crashes the broker hands the
// queue to another, in order: nothing is reordered or lost.
func TestSingleActiveConsumerOrder(t *testing.T) {
	node(t)
	h := newHarness(t)
	h.crashAfter = 500
	var once sync.Once
	h.onBatch = func(id int, batch []drivers.Delivery) {
		// Crash the consumer the broker made active.
		once.Do(func() { h.crashID.Store(int64(id)) })
	}
	res := h.run(`
driver: {rabbitmq: {single-active: true, prefetch: 50}}
producers: 1
consumers: 3
traffic:
  - constant: {rate: 1000/s, for: 2s}
drain: 30s
`)
	c := res.Counts
	h.mu.Lock()
	per := fmt.Sprint(h.perCons)
	active := len(h.perCons)
	h.mu.Unlock()
	t.Logf("deliveries per consumer %s\ncounts %+v\nstats %v", per, c, res.DriverStats)
	if !h.crashed.Load() {
		t.Fatal("the active consumer never crashed; the test proves nothing")
	}
	if active < 2 {
		t.Errorf("%d consumers received, want the queue handed to another after the crash", active)
	}
	expect(t, "reordered", c.Reordered, 0)
	expect(t, "lost", c.Lost, 0)
	expect(t, "received", c.Received, c.Sent)
}

// TestDeadLetter: consumers reject a tenth of the deliveries; the broker
// routes them to the dead-letter queue, which spate consumes and hands on
// with DeadLetter set. Rejected deliveries never reach the run as received.
func TestDeadLetter(t *testing.T) {
	node(t)
	h := newHarness(t)
	type id struct {
		producer uint32
		seq      uint64
	}
	main, dead := map[id]int{}, map[id]int{}
	var badStream int
	h.onBatch = func(_ int, batch []drivers.Delivery) {
		for _, d := range batch {
			s := stampOf(t, d)
			k := id{s.Producer, s.Seq}
			if d.DeadLetter {
				dead[k]++
				if d.Stream != rabbitmq.DeadLetterStream {
					badStream++
				}
			} else {
				main[k]++
				if d.Stream != rabbitmq.QueueStream {
					badStream++
				}
			}
		}
	}
	dlq := uniqueName("spate-dlq")
	res := h.run(fmt.Sprintf(`
driver: {rabbitmq: {reject: 0.1, dead-letter: %s, seed: 7}}
producers: 1
consumers: 2
traffic:
  - constant: {rate: 1000/s, for: 2s}
drain: 30s
`, dlq))
	c := res.Counts
	st := res.DriverStats
	h.mu.Lock()
	defer h.mu.Unlock()
	t.Logf("main %d, dead-lettered %d\ncounts %+v\nstats %v", len(main), len(dead), c, st)
	if len(dead) == 0 {
		t.Fatal("nothing was dead-lettered; the test proves nothing")
	}
	if len(dead) < int(c.Sent)/20 || len(dead) > int(c.Sent)/5 {
		t.Errorf("%d of %d dead-lettered, want about a tenth", len(dead), c.Sent)
	}
	both := 0
	for k := range dead {
		if main[k] > 0 {
			both++
		}
	}
	if both > 0 {
		t.Errorf("%d rejected messages were also handed to the run as received", both)
	}
	if badStream > 0 {
		t.Errorf("%d deliveries on the wrong stream", badStream)
	}
	expect(t, "dead-lettered deliveries", int64(len(dead)), st["rejected"])
	expect(t, "driver dead_lettered", st["dead_lettered"], st["rejected"])
	expect(t, "driver delivered", st["delivered"], int64(len(main)))
	expect(t, "main + dead-lettered", int64(len(main)+len(dead)), c.Acked)
	expect(t, "dead-letter depth at the end", st["dead_letter_depth"], 0)
	// Today's tracker counts a dead-lettered delivery as received; either
	// way nothing acked is missing.
	expect(t, "lost", c.Lost, 0)
}

// TestKnownAnswerMaxLength: a queue declared with queue.max-length: 10
// holds 10 messages. Consumers subscribe only once every publish has its
// outcome, so 30 messages meet a queue nobody reads: with overflow:
// reject-publish the broker nacks the 11th publish and every one after it,
// which spate counts as failed (not owed, not lost); with drop-head it
// confirms all 30 and drops the oldest to make room, which spate counts as
// lost.
func TestKnownAnswerMaxLength(t *testing.T) {
	node(t)
	for _, tc := range []struct {
		overflow                      string
		acked, failed, received, lost int64
	}{
		{"reject-publish", 10, 20, 10, 0},
		{"drop-head", 30, 0, 10, 20},
	} {
		t.Run(tc.overflow, func(t *testing.T) {
			h := newHarness(t)
			h.lazy = true
			wait := h.start(`
driver:
  rabbitmq:
    queue: {max-length: 10, overflow: ` + tc.overflow + `}
producers: 1
consumers: 1
traffic:
  - constant: {rate: 30/s, for: 1s}
drain: 5s
`)
			waitFor(t, "every publish's outcome", time.Minute, func() bool { return h.outcomes.Load() >= 30 })
			close(h.release)
			res := wait()
			c := res.Counts
			t.Logf("counts %+v\nstats %v", c, res.DriverStats)
			expect(t, "sent", c.Sent, 30)
			expect(t, "acked", c.Acked, tc.acked)
			expect(t, "failed", c.Failed, tc.failed)
			expect(t, "received", c.Received, tc.received)
			expect(t, "lost", c.Lost, tc.lost)
			expect(t, "duplicates", c.Duplicates, 0)
			expect(t, "driver nacked", res.DriverStats["nacked"], tc.failed)
			expect(t, "driver confirmed", res.DriverStats["confirmed"], tc.acked)
			expect(t, "driver delivered", res.DriverStats["delivered"], 10)
			expect(t, "queue depth at the end", res.DriverStats["queue_depth"], 0)
		})
	}
}
