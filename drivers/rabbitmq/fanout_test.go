package rabbitmq_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/rabbitmq"
	"github.com/spate-dev/spate/scenarios"
)

// These tests run scenarios with several subscriptions (fan-out): each
// subscription is a queue of its own, "<queue>-<n>", bound to the exchange
// like the single queue, so every message reaches every subscription.

// msgKey names one message within one subscription.
type msgKey struct {
	sub      int
	producer uint32
	seq      uint64
}

// fanOutCounts tallies, per subscription, the deliveries the run was
// handed: consumer i belongs to subscription i mod subs.
type fanOutCounts struct {
	subs        int
	deliveries  []int64 // per subscription
	redelivered []int64 // per subscription, flagged by the broker
	dead        []int64 // per subscription, from its dead-letter queue
	seen        map[msgKey]int
}

func newFanOutCounts(h *harness, subs int) *fanOutCounts {
	f := &fanOutCounts{subs: subs, deliveries: make([]int64, subs), redelivered: make([]int64, subs), dead: make([]int64, subs), seen: map[msgKey]int{}}
	h.onBatch = func(id int, batch []drivers.Delivery) {
		sub := id % subs
		for _, d := range batch {
			s := stampOf(h.t, d)
			f.seen[msgKey{sub, s.Producer, s.Seq}]++
			f.deliveries[sub]++
			if d.Redelivered {
				f.redelivered[sub]++
			}
			if d.DeadLetter {
				f.dead[sub]++
			}
		}
	}
	return f
}

// distinct returns how many distinct messages subscription sub received,
// and how many of its deliveries were duplicates.
func (f *fanOutCounts) distinct(sub int) (n, dups int64) {
	for k, c := range f.seen {
		if k.sub == sub {
			n++
			dups += int64(c - 1)
		}
	}
	return n, dups
}

// gone fails t if any of queues still exists on the node.
func gone(t *testing.T, queues []string) {
	t.Helper()
	for _, q := range queues {
		if _, err := rawChannel(t).QueueDeclarePassive(q, false, false, false, false, nil); err == nil {
			t.Errorf("queue %s still exists after the run", q)
			_, _ = rawChannel(t).QueueDelete(q, false, false, false)
		}
	}
}

// TestFanOut: four consumers in two subscriptions; each subscription's
// queue receives every message once, in order.
func TestFanOut(t *testing.T) {
	for _, tc := range []struct {
		name      string
		options   string
		consumers int
	}{
		// Message keys are bound one by one as they appear, to both
		// queues; single-active keeps each queue's FIFO order although
		// two consumers share it.
		{"direct exchange keys single-active", `{exchange: {name: %s, kind: direct}, single-active: true}`, 4},
		// Exclusive queues all belong to the consumers' one connection;
		// one consumer per subscription.
		{"fanout exchange exclusive queues", `{exchange: {name: %s, kind: fanout}, queue: {exclusive: true, durable: false}, connections: {consumers: 1}}`, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node(t)
			h := newHarness(t)
			f := newFanOutCounts(h, 2)
			res := h.run(fmt.Sprintf(`
driver:
  rabbitmq: `+tc.options+`
producers: 2
consumers: %d
subscriptions: 2
message: {size: 200B, keys: {strategy: round-robin, count: 4}}
traffic:
  - constant: {rate: 1000/s, for: 1500ms}
drain: 20s
`, uniqueName("spate-fan"), tc.consumers))
			c, st := res.Counts, res.DriverStats
			queues := h.driver().Queues()
			t.Logf("queues %v\ncounts %+v\nstats %v\nper subscription %v", queues, c, st, f.deliveries)
			stem := h.driver().Queue()
			if want := []string{stem + "-0", stem + "-1"}; !slices.Equal(queues, want) {
				t.Errorf("queues %v, want %v", queues, want)
			}
			if c.Acked < 1000 {
				t.Fatalf("acked %d, want about 1500", c.Acked)
			}
			expect(t, "results subscriptions", int64(res.Subscriptions), 2)
			expect(t, "lost", c.Lost, 0)
			expect(t, "duplicates", c.Duplicates, 0)
			expect(t, "reordered", c.Reordered, 0)
			expect(t, "failed", c.Failed, 0)
			expect(t, "acked", c.Acked, c.Sent)
			expect(t, "received", c.Received, 2*c.Acked)
			expect(t, "driver delivered", st["delivered"], 2*c.Acked)
			h.mu.Lock()
			for sub := range 2 {
				n, dups := f.distinct(sub)
				expect(t, fmt.Sprintf("messages subscription %d received", sub), n, c.Acked)
				expect(t, fmt.Sprintf("duplicates in subscription %d", sub), dups, 0)
			}
			h.mu.Unlock()
			if !strings.Contains(tc.options, "exclusive") {
				expect(t, "queue depth at the end", st["queue_depth"], 0)
				expect(t, "queue_depth_0", st["queue_depth_0"], 0)
				expect(t, "queue_depth_1", st["queue_depth_1"], 0)
			}
			gone(t, queues)
		})
	}
}

// TestFanOutConsumerCrash: a consumer of subscription 0 crashes inside
// its Handler; the broker redelivers what it held to its subscription's
// other consumer (or its replacement). The duplicates are all in
// subscription 0, all redeliveries; subscription 1 is untouched.
func TestFanOutConsumerCrash(t *testing.T) {
	node(t)
	h := newHarness(t)
	f := newFanOutCounts(h, 2)
	h.crashID.Store(0)
	h.crashAfter = 300
	res := h.run(fmt.Sprintf(`
driver: {rabbitmq: {exchange: {name: %s, kind: fanout}, prefetch: 100}}
producers: 1
consumers: 4
subscriptions: 2
traffic:
  - constant: {rate: 1000/s, for: 2s}
drain: 30s
`, uniqueName("spate-fancrash")))
	c, st := res.Counts, res.DriverStats
	h.mu.Lock()
	defer h.mu.Unlock()
	t.Logf("crashed batch %d\ncounts %+v\nstats %v\nper subscription %v, redelivered %v", h.crashBatch.Load(), c, st, f.deliveries, f.redelivered)
	if !h.crashed.Load() {
		t.Fatal("consumer 0 never crashed; the test proves nothing")
	}
	expect(t, "lost", c.Lost, 0)
	expect(t, "received", c.Received, 2*c.Acked)
	expect(t, "driver crashes", st["crashes"], 1)
	if c.Duplicates < h.crashBatch.Load() {
		t.Errorf("duplicates %d, want at least the %d deliveries of the batch being handled at the crash", c.Duplicates, h.crashBatch.Load())
	}
	if c.Redelivered < c.Duplicates {
		t.Errorf("redelivered %d < duplicates %d: every duplicate here is a redelivery", c.Redelivered, c.Duplicates)
	}
	expect(t, "redelivered (run) vs the driver's", c.Redelivered, st["redelivered"])
	_, dups0 := f.distinct(0)
	_, dups1 := f.distinct(1)
	expect(t, "duplicates in subscription 0", dups0, c.Duplicates)
	expect(t, "duplicates in subscription 1", dups1, 0)
	expect(t, "redelivered in subscription 1", f.redelivered[1], 0)
	if dups0 > f.redelivered[0] {
		t.Errorf("subscription 0: %d duplicates, only %d redeliveries", dups0, f.redelivered[0])
	}
}

// TestFanOutDeadLetter: each subscription's consumers reject a tenth of
// their deliveries; each subscription's queue dead-letters into a queue of
// its own, so every subscription gets every message exactly once, either
// from its queue or from its dead-letter queue.
func TestFanOutDeadLetter(t *testing.T) {
	node(t)
	h := newHarness(t)
	f := newFanOutCounts(h, 2)
	dlq := uniqueName("spate-fandlq")
	res := h.run(fmt.Sprintf(`
driver: {rabbitmq: {exchange: {name: %s, kind: fanout}, reject: 0.1, dead-letter: %s, seed: 7}}
producers: 1
consumers: 2
subscriptions: 2
traffic:
  - constant: {rate: 1000/s, for: 1500ms}
drain: 20s
`, uniqueName("spate-fandl"), dlq))
	c, st := res.Counts, res.DriverStats
	dlqs := h.driver().DeadLetterQueues()
	h.mu.Lock()
	defer h.mu.Unlock()
	t.Logf("dead-letter queues %v\ncounts %+v\nstats %v\nper subscription %v, dead-lettered %v", dlqs, c, st, f.deliveries, f.dead)
	if want := []string{dlq + "-0", dlq + "-1"}; !slices.Equal(dlqs, want) {
		t.Errorf("dead-letter queues %v, want %v", dlqs, want)
	}
	expect(t, "lost", c.Lost, 0)
	expect(t, "duplicates", c.Duplicates, 0)
	expect(t, "received", c.Received, 2*c.Acked)
	for sub := range 2 {
		n, dups := f.distinct(sub)
		expect(t, fmt.Sprintf("messages subscription %d received", sub), n, c.Acked)
		expect(t, fmt.Sprintf("duplicates in subscription %d", sub), dups, 0)
		if d := f.dead[sub]; d < c.Acked/20 || d > c.Acked/5 {
			t.Errorf("subscription %d: %d of %d dead-lettered, want about a tenth", sub, d, c.Acked)
		}
	}
	expect(t, "driver dead_lettered", st["dead_lettered"], st["rejected"])
	expect(t, "dead-lettered deliveries", f.dead[0]+f.dead[1], st["rejected"])
	expect(t, "dead_letter_depth", st["dead_letter_depth"], 0)
	expect(t, "dead_letter_depth_1", st["dead_letter_depth_1"], 0)
	gone(t, append(dlqs, h.driver().Queues()...))
}

// TestFanOutNeedsExchange: the default exchange routes each message to one
// queue, so fan-out needs a named exchange: without one the options do not
// list the ability, validation rejects subscriptions > 1, and Open fails
// saying what to do.
func TestFanOutNeedsExchange(t *testing.T) {
	o := rabbitmq.DefaultOptions()
	if drivers.HasAbility(o, scenarios.AbilityFanOut) {
		t.Error("the default exchange lists fan-out")
	}
	named := o
	named.Exchange.Name = "spate"
	if !drivers.HasAbility(named, scenarios.AbilityFanOut) {
		t.Error("a named exchange does not list fan-out")
	}

	l := &scenarios.Loader{}
	l.Driver("rabbitmq", rabbitmq.Kind.Options)
	const src = `
driver: %s
consumers: 2
subscriptions: 2
traffic:
  - constant: {rate: 10/s, for: 1s}
`
	if _, err := l.Parse("default.yaml", []byte(fmt.Sprintf(src, "rabbitmq"))); err == nil || !strings.Contains(err.Error(), "subscriptions") {
		t.Errorf("subscriptions: 2 on the default exchange: error %v, want one about subscriptions", err)
	}
	if _, err := l.Parse("named.yaml", []byte(fmt.Sprintf(src, "{rabbitmq: {exchange: {name: spate, kind: fanout}}}"))); err != nil {
		t.Errorf("subscriptions: 2 with a named exchange: %v", err)
	}

	env := testEnv(t, 1, 2)
	env.Subscriptions = 2
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := rabbitmq.Kind.Open(ctx, o, env) // fails before starting a node
	if err == nil {
		_ = d.Close(context.Background())
		t.Fatal("Open with subscriptions: 2 on the default exchange succeeded")
	}
	for _, w := range []string{"subscriptions: 2", "named exchange", "exchange: {name:"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

// TestFanOutKill: the broker is killed with SIGKILL mid-run (once the
// queues' declarations have settled: see settleDeclarations); both
// subscriptions' durable queues keep every confirmed persistent message,
// every client reconnects, and each consumer to its own subscription's
// queue, so nothing acked is lost to either subscription, before the kill
// or after. The run is interrupted once 300 more messages are acked after
// the restart, however long the restart took.
func TestFanOutKill(t *testing.T) {
	node(t)
	h := newHarness(t)
	f := newFanOutCounts(h, 2)
	runCtx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	h.ctx = runCtx
	started := time.Now()
	wait := h.start(fmt.Sprintf(`
driver: {rabbitmq: {exchange: {name: %s, kind: fanout}}}
producers: 1
consumers: 2
subscriptions: 2
traffic:
  - constant: {rate: 300/s, for: 2m}
drain: 30s
`, uniqueName("spate-fankill")))
	waitFor(t, "300 acked messages", time.Minute, func() bool { return h.acked.Load() >= 300 })
	settleDeclarations(started)
	ackedBefore := h.acked.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := h.driver().RestartBroker(ctx, 0, drivers.Kill, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "300 more acked messages after the restart", time.Minute, func() bool { return h.acked.Load() >= ackedBefore+300 })
	interrupt()
	res := wait()
	c, st := res.Counts, res.DriverStats
	h.mu.Lock()
	defer h.mu.Unlock()
	t.Logf("acked before the kill %d\ncounts %+v\nstats %v\nper subscription %v", ackedBefore, c, st, f.deliveries)
	expect(t, "lost", c.Lost, 0)
	if c.Received < 2*c.Acked {
		t.Errorf("received %d, want at least twice the %d acked", c.Received, c.Acked)
	}
	if st["reconnects"] == 0 {
		t.Error("the driver counted no reconnects")
	}
	for sub := range 2 {
		if n, _ := f.distinct(sub); n < c.Acked {
			t.Errorf("subscription %d received %d messages, want every one of the %d acked", sub, n, c.Acked)
		}
	}
}
