package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spate-dev/spate/drivers"
)

// consumerSet runs the scenario's consumers, or the built-in processor's
// instances in a pipeline, and gives chaos its controls over them
// (chaos.Consumers): pause, throttle, stop (crash) and start. Each id has a
// slot that keeps its pause and throttle state across restarts. It is safe
// for concurrent use.
type consumerSet struct {
	what string // "consumer" or "processor", for errors
	// fail ends the run with a consumer's error.
	fail func(error)
	// make opens a new consumer for a slot, to restart it.
	make func(ctx context.Context, id int) (drivers.Consumer, error)
	// record is called with every batch processed: the tracker's Received
	// for consumers, nothing for processors (their output is what counts).
	record func(id int, batch []drivers.Delivery)
	ctx    context.Context // ends every consumer
	wg     sync.WaitGroup
	slots  []*slot
}

type slot struct {
	id int
	// owned is false for a consumer another shard of a distributed run
	// runs: its slot stays empty.
	owned    bool
	gate     gate
	limit    atomic.Pointer[limiter]
	mu       sync.Mutex
	current  *consumerRunner // nil while stopped
	stopping bool
	// turn is held through a Stop or a Start, so that one waits for the
	// other: a second crash that comes while the first's restart is still
	// opening its consumer (slow on a loaded host) crashes the new one
	// rather than finding the slot empty.
	turn chan struct{}
}

// consumerRunner is one consumer's Consume loop.
type consumerRunner struct {
	cons   drivers.Consumer
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	// expected is set before the engine or chaos stops it on purpose, so
	// its Consume returning is not a failure.
	expected atomic.Bool
}

// newConsumerSet runs consumers (by id; nil: another shard's), made
// again by drv when chaos restarts one, recording what each processes
// into the traffic's tracker as its subscription's (env.SubscriptionOf)
// until ctx ends; fail ends the run with a consumer's error.
func newConsumerSet(t *traffic, env drivers.Env, drv drivers.Driver, ctx context.Context, consumers []drivers.Consumer, fail func(error)) *consumerSet {
	s := &consumerSet{what: "consumer", make: drv.NewConsumer, ctx: ctx, fail: fail}
	s.record = func(id int, batch []drivers.Delivery) { t.tracker.Received(env.SubscriptionOf(id), batch, t.now()) }
	s.start(consumers)
	return s
}

// newProcessorSet runs the built-in processor's instances: make opens
// instance id. Their batches are paced and paused like consumers' but not
// recorded: the tracker counts what reaches the pipeline's output.
func newProcessorSet(ctx context.Context, procs []drivers.Consumer, make func(ctx context.Context, id int) (drivers.Consumer, error), fail func(error)) *consumerSet {
	s := &consumerSet{what: "processor", make: make, record: func(int, []drivers.Delivery) {}, ctx: ctx, fail: fail}
	s.start(procs)
	return s
}

// start runs consumers, indexed by id; a nil one is another shard's.
func (s *consumerSet) start(consumers []drivers.Consumer) {
	for i, c := range consumers {
		sl := &slot{id: i, owned: c != nil, turn: make(chan struct{}, 1)}
		s.slots = append(s.slots, sl)
		if sl.owned {
			s.launch(sl, c)
		}
	}
}

func (s *consumerSet) launch(sl *slot, cons drivers.Consumer) {
	ctx, cancel := context.WithCancel(s.ctx)
	cr := &consumerRunner{cons: cons, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	sl.mu.Lock()
	sl.current = cr
	sl.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(cr.done)
		defer cancel()
		err := cons.Consume(ctx, func(batch []drivers.Delivery) { s.handle(sl, cr, batch) })
		if cr.expected.Load() || s.ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("stopped on its own")
		}
		s.fail(fmt.Errorf("%s %d: %w", s.what, sl.id, err))
	}()
}

// handle is every consumer's Handler: it waits while the consumer is paused,
// paces it while throttled, and records deliveries at the moment they are
// processed. A batch in hand when the consumer is stopped is dropped
// unrecorded: it was never processed.
func (s *consumerSet) handle(sl *slot, cr *consumerRunner, batch []drivers.Delivery) {
	if !sl.gate.wait(cr.ctx) {
		return
	}
	for len(batch) > 0 {
		lim := sl.limit.Load() // re-read: a throttle may end mid-batch
		if lim == nil {
			s.record(sl.id, batch)
			return
		}
		if !lim.wait(cr.ctx) || !sl.gate.wait(cr.ctx) {
			return
		}
		s.record(sl.id, batch[:1])
		batch = batch[1:]
	}
}

// Count implements chaos.Consumers.
func (s *consumerSet) Count() int { return len(s.slots) }

// Owns implements chaos.Consumers.
func (s *consumerSet) Owns(id int) bool { return id >= 0 && id < len(s.slots) && s.slots[id].owned }

// Pause implements chaos.Consumers.
func (s *consumerSet) Pause(ids []int) {
	for _, id := range ids {
		s.slots[id].gate.close()
	}
}

// Resume implements chaos.Consumers.
func (s *consumerSet) Resume(ids []int) {
	for _, id := range ids {
		s.slots[id].gate.open()
	}
}

// Throttle implements chaos.Consumers.
func (s *consumerSet) Throttle(ids []int, perSecond float64) {
	for _, id := range ids {
		if perSecond <= 0 {
			s.slots[id].limit.Store(nil)
		} else {
			s.slots[id].limit.Store(newLimiter(perSecond))
		}
	}
}

// Stop implements chaos.Consumers: it returns once the consumer's Consume
// has returned.
func (s *consumerSet) Stop(ctx context.Context, id int, graceful bool) error {
	sl := s.slots[id]
	if !sl.take(ctx) {
		return fmt.Errorf("%s %d: waiting for its restart: %w", s.what, id, ctx.Err())
	}
	defer sl.give()
	sl.mu.Lock()
	cr := sl.current
	sl.current = nil
	sl.mu.Unlock()
	if cr == nil {
		return fmt.Errorf("%s %d is already stopped", s.what, id)
	}
	cr.expected.Store(true)
	if !graceful {
		c, ok := cr.cons.(drivers.Crasher)
		if !ok {
			return fmt.Errorf("%s %d cannot crash abruptly", s.what, id)
		}
		c.Crash()
	}
	cr.cancel() // also wakes a handler blocked on a pause
	select {
	case <-cr.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s %d did not stop: %w", s.what, id, ctx.Err())
	}
}

// Start implements chaos.Consumers.
func (s *consumerSet) Start(ctx context.Context, id int) error {
	sl := s.slots[id]
	if !sl.take(ctx) {
		return fmt.Errorf("%s %d: waiting for its stop: %w", s.what, id, ctx.Err())
	}
	defer sl.give()
	sl.mu.Lock()
	running := sl.current != nil
	sl.mu.Unlock()
	if running {
		return fmt.Errorf("%s %d is running", s.what, id)
	}
	if s.ctx.Err() != nil {
		return nil // the run is over; nothing to consume
	}
	c, err := s.make(ctx, id)
	if err != nil {
		return err
	}
	s.launch(sl, c)
	return nil
}

// take waits for the slot's turn, false if ctx ends first; give ends it.
func (sl *slot) take(ctx context.Context) bool {
	select {
	case sl.turn <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (sl *slot) give() { <-sl.turn }

// stopAll ends every consumer and waits up to d for them.
func (s *consumerSet) stopAll(cancel context.CancelFunc, d time.Duration) bool {
	for _, sl := range s.slots {
		sl.mu.Lock()
		if sl.current != nil {
			sl.current.expected.Store(true)
		}
		sl.mu.Unlock()
	}
	cancel()
	return waitTimeout(&s.wg, d)
}

// gate blocks handlers while closed. The zero gate is open.
type gate struct {
	mu sync.Mutex
	ch chan struct{} // nil when open; closed to release waiters
}

func (g *gate) close() {
	g.mu.Lock()
	if g.ch == nil {
		g.ch = make(chan struct{})
	}
	g.mu.Unlock()
}

func (g *gate) open() {
	g.mu.Lock()
	if g.ch != nil {
		close(g.ch)
		g.ch = nil
	}
	g.mu.Unlock()
}

// wait returns true once the gate is open, false if ctx ends first.
func (g *gate) wait(ctx context.Context) bool {
	for {
		g.mu.Lock()
		ch := g.ch
		g.mu.Unlock()
		if ch == nil {
			return ctx.Err() == nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// limiter spaces deliveries 1/rate apart. It is used by one consumer's
// handler goroutine at a time.
type limiter struct {
	every time.Duration
	mu    sync.Mutex
	next  time.Time
}

func newLimiter(perSecond float64) *limiter {
	return &limiter{every: time.Duration(float64(time.Second) / perSecond)}
}

// wait blocks until the next delivery may be processed; false if ctx ends.
func (l *limiter) wait(ctx context.Context) bool {
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	at := l.next
	l.next = l.next.Add(l.every)
	l.mu.Unlock()
	if d := time.Until(at); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return false
		}
	}
	return ctx.Err() == nil
}
