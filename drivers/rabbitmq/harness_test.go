package rabbitmq_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spate-dev/spate/chaos"
	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/rabbitmq"
	"github.com/spate-dev/spate/drivers/stamp"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// harness runs a scenario through engine.Run with a Kind that wraps the
// rabbitmq driver, so the test reaches the driver mid-run and steers its
// producers and consumers:
//
//   - the producers' Send can be gated (held before reaching the driver),
//     and their messages and outcomes are counted;
//   - consumers can be lazy: subscribed only once released, so a backlog
//     builds in the queue;
//   - a consumer can crash inside its Handler after some deliveries, and be
//     replaced by a new consumer with the same id, as chaos would;
//   - every delivery handed to the run is seen by onBatch.
type harness struct {
	t     *testing.T
	tweak func(*rabbitmq.Options)
	// onCluster runs the scenario on the shared 3-node cluster instead of
	// the shared node.
	onCluster bool
	// ctx, when not nil, is the run's context: cancelling it interrupts
	// the run (traffic stops, a short drain follows).
	ctx context.Context

	drvMu sync.Mutex
	drv   *rabbitmq.ManagedDriver

	// gate is read-locked by every Send for its whole call; closeGate
	// write-locks it, which waits for the Sends in progress and holds back
	// the next ones until openGate.
	gate sync.RWMutex

	handed   atomic.Int64 // messages handed to the driver's Send
	outcomes atomic.Int64
	acked    atomic.Int64

	lazy    bool
	release chan struct{} // closed: lazy consumers subscribe

	crashID    atomic.Int64 // consumer to crash; -1: none
	crashAfter int64
	crashed    atomic.Bool
	crashBatch atomic.Int64 // deliveries in the batch handed when it crashed

	mu        sync.Mutex
	perStream map[int32]int64
	perCons   map[int]int64
	onBatch   func(consumer int, batch []drivers.Delivery)
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, release: make(chan struct{}), perStream: map[int32]int64{}, perCons: map[int]int64{}}
	h.crashID.Store(-1)
	return h
}

func (h *harness) kind() drivers.Kind {
	return drivers.Kind{
		Name:    "rabbitmq",
		Options: rabbitmq.Kind.Options,
		Open: func(ctx context.Context, options any, env drivers.Env) (drivers.Driver, error) {
			o := options.(rabbitmq.Options)
			if h.onCluster {
				o.Cluster = cluster(h.t)
			} else {
				o.Node = node(h.t)
			}
			if h.tweak != nil {
				h.tweak(&o)
			}
			d, err := rabbitmq.Kind.Open(ctx, o, env)
			if err != nil {
				return nil, err
			}
			h.drvMu.Lock()
			h.drv = d.(*rabbitmq.ManagedDriver)
			h.drvMu.Unlock()
			return &hDriver{Driver: d, h: h}, nil
		},
	}
}

func (h *harness) driver() *rabbitmq.ManagedDriver {
	h.drvMu.Lock()
	defer h.drvMu.Unlock()
	return h.drv
}

// run parses src (its driver block must be rabbitmq) and runs it.
func (h *harness) run(src string) *report.Results {
	h.t.Helper()
	res, err := h.runErr(src)
	if err != nil {
		h.t.Fatalf("run: %v", err)
	}
	return res
}

func (h *harness) runErr(src string) (*report.Results, error) {
	h.t.Helper()
	l := &scenarios.Loader{}
	l.Driver("rabbitmq", rabbitmq.Kind.Options)
	chaos.Register(l)
	sc, err := l.Parse(h.t.Name()+".yaml", []byte(src))
	if err != nil {
		h.t.Fatalf("scenario: %v", err)
	}
	ctx := h.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	return engine.Run(ctx, sc, engine.WithDrivers(h.kind()), engine.WithLogger(testLogger(h.t)))
}

// start runs src in the background; wait returns its results.
func (h *harness) start(src string) (wait func() *report.Results) {
	h.t.Helper()
	type out struct {
		res *report.Results
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := h.runErr(src)
		done <- out{res, err}
	}()
	return func() *report.Results {
		h.t.Helper()
		select {
		case o := <-done:
			if o.err != nil {
				h.t.Fatalf("run: %v", o.err)
			}
			return o.res
		case <-time.After(3 * time.Minute):
			h.t.Fatal("the run did not end within 3 minutes")
			return nil
		}
	}
}

// closeGate returns once no Send is in progress; later ones wait for
// openGate.
func (h *harness) closeGate() { h.gate.Lock() }

func (h *harness) openGate() { h.gate.Unlock() }

// quiet waits until every message handed to the driver has its outcome.
// The gate must be closed.
func (h *harness) quiet(timeout time.Duration) {
	h.t.Helper()
	waitFor(h.t, "every outcome reported", timeout, func() bool {
		return h.outcomes.Load() == h.handed.Load()
	})
}

type hDriver struct {
	drivers.Driver
	h *harness
}

// Stats passes the driver's figures on to the results.
func (w *hDriver) Stats() map[string]int64 {
	return w.Driver.(drivers.StatsReporter).Stats()
}

// The managed driver's abilities, passed on so that chaos finds them.

func (w *hDriver) Brokers() []int { return w.h.driver().Brokers() }

func (w *hDriver) RestartBroker(ctx context.Context, id int, mode drivers.RestartMode, down time.Duration) error {
	return w.h.driver().RestartBroker(ctx, id, mode, down)
}

func (w *hDriver) PauseBroker(ctx context.Context, id int) (func() error, error) {
	return w.h.driver().PauseBroker(ctx, id)
}

func (w *hDriver) PartitionBroker(ctx context.Context, id int) (func() error, error) {
	return w.h.driver().PartitionBroker(ctx, id)
}

func (w *hDriver) Leaders(ctx context.Context) (map[string]int, error) {
	return w.h.driver().Leaders(ctx)
}

func (w *hDriver) NewProducer(ctx context.Context, id int, ack drivers.AckFunc) (drivers.Producer, error) {
	h := w.h
	p, err := w.Driver.NewProducer(ctx, id, func(rs []drivers.Result) {
		var ok int64
		for _, r := range rs {
			if r.Err == nil {
				ok++
			}
		}
		h.acked.Add(ok)
		h.outcomes.Add(int64(len(rs)))
		ack(rs)
	})
	if err != nil {
		return nil, err
	}
	return &hProducer{Producer: p, h: h}, nil
}

type hProducer struct {
	drivers.Producer
	h *harness
}

func (p *hProducer) Send(ctx context.Context, msgs []drivers.Message) error {
	h := p.h
	h.gate.RLock()
	defer h.gate.RUnlock()
	h.handed.Add(int64(len(msgs)))
	return p.Producer.Send(ctx, msgs)
}

func (w *hDriver) NewConsumer(ctx context.Context, id int) (drivers.Consumer, error) {
	c := &hConsumer{d: w.Driver, h: w.h, id: id}
	if !w.h.lazy {
		var err error
		if c.inner, err = w.Driver.NewConsumer(ctx, id); err != nil {
			return nil, err
		}
	}
	return c, nil
}

type hConsumer struct {
	d     drivers.Driver
	h     *harness
	id    int
	inner drivers.Consumer
}

func (c *hConsumer) Consume(ctx context.Context, hd drivers.Handler) error {
	h := c.h
	if c.inner == nil {
		select {
		case <-h.release:
		case <-ctx.Done():
			return nil
		}
		var err error
		if c.inner, err = c.d.NewConsumer(ctx, c.id); err != nil {
			return err
		}
	}
	var seen int64
	for {
		inner := c.inner
		err := inner.Consume(ctx, func(batch []drivers.Delivery) {
			h.mu.Lock()
			h.perCons[c.id] += int64(len(batch))
			for _, d := range batch {
				h.perStream[d.Stream]++
			}
			if h.onBatch != nil {
				h.onBatch(c.id, batch)
			}
			h.mu.Unlock()
			hd(batch)
			seen += int64(len(batch))
			if int64(c.id) == h.crashID.Load() && seen >= h.crashAfter && h.crashed.CompareAndSwap(false, true) {
				h.crashBatch.Store(int64(len(batch)))
				inner.(drivers.Crasher).Crash()
			}
		})
		if !errors.Is(err, drivers.ErrCrashed) {
			return err
		}
		// Replace the crashed consumer, as a chaos action would.
		for {
			c.inner, err = c.d.NewConsumer(ctx, c.id)
			if err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// stampOf decodes a delivery's stamp or fails the test.
func stampOf(t *testing.T, d drivers.Delivery) stamp.Stamp {
	s, err := stamp.Parse(d.Stamp)
	if err != nil {
		t.Errorf("delivery without a stamp: %v", err)
	}
	return s
}

func expect(t *testing.T, what string, got, want int64) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %d, want %d", what, got, want)
	}
}
