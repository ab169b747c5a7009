package benchcompare

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spate-dev/spate/chaos"
	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// Spate makes spate's sides of one driver's pairs: whole runs through
// engine.Run of scenarios written around the driver block Driver, as a
// user would run them (report interval and all). The driver is wrapped so
// that the side sees, without the engine's help, each confirmation the
// engine's AckFunc is given and each batch the engine's Handler has
// processed, and when: its window is the traffic's, not a report
// interval's.
type Spate struct {
	Kind drivers.Kind // the driver, possibly wrapped (a test's own node)
	// Driver is the scenario's driver field, e.g. "{kafka: {partitions: 12}}".
	Driver    string
	Producers int // default 1
	Consumers int // for max and consume; default 1
	// InFlight is the max phase's in-flight window (default 1000).
	InFlight int
	// Drain bounds the wait for what is still in flight after the
	// traffic, and a consume side's catch-up (default 60s).
	Drain time.Duration
	// Settle is how long a consume side's consumers stay paused after
	// the backlog's max phase, so that every message the phase sent is
	// confirmed before they start (default 1s).
	Settle time.Duration
	Log    *slog.Logger // default: discarded
}

func (s Spate) withDefaults() Spate {
	if s.Producers == 0 {
		s.Producers = 1
	}
	if s.Consumers == 0 {
		s.Consumers = 1
	}
	if s.InFlight == 0 {
		s.InFlight = 1000
	}
	if s.Drain == 0 {
		s.Drain = time.Minute
	}
	if s.Settle == 0 {
		s.Settle = time.Second
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Warmup is the start of a produce loop that no side times: connections
// and metadata settle. Every produce and max side, spate's and the bare
// clients', counts from Warmup after its first send to the end of its
// traffic.
const Warmup = 100 * time.Millisecond

// Produce is a produce-only max phase of d (consumers: 0): the messages
// confirmed per second from Warmup to d.
func (s Spate) Produce(size int, d time.Duration) Side {
	s = s.withDefaults()
	return func(ctx context.Context) (Sample, error) {
		o := newObserver(d)
		_, err := s.run(ctx, o, fmt.Sprintf(`producers: %d
consumers: 0
message: {size: %dB}
traffic:
  - max: {for: %v, in-flight: %d}
drain: %v
`, s.Producers, size, d, s.InFlight, s.Drain))
		if err != nil {
			return Sample{}, err
		}
		return o.window(func(m mark) int64 { return m.acked })
	}
}

// Max is a max phase of d with consumers: the messages received per second
// from Warmup to d.
func (s Spate) Max(size int, d time.Duration) Side {
	s = s.withDefaults()
	return func(ctx context.Context) (Sample, error) {
		o := newObserver(d)
		_, err := s.run(ctx, o, fmt.Sprintf(`producers: %d
consumers: %d
message: {size: %dB}
traffic:
  - max: {for: %v, in-flight: %d}
drain: %v
`, s.Producers, s.Consumers, size, d, s.InFlight, s.Drain))
		if err != nil {
			return Sample{}, err
		}
		return o.window(func(m mark) int64 { return m.received })
	}
}

// Consume builds a backlog with a max phase of d followed by a pause of
// Settle, while every consumer is paused (chaos consumer-pause for both),
// then measures the catch-up: the messages processed after the first
// batch the pause held (which the engine processes the moment the pause
// ends), over the time from then to the last batch. The backlog must be
// complete (every message confirmed) when the consumers start, or the
// catch-up would wait for producers. It records the backlog's size in b.
func (s Spate) Consume(size int, d time.Duration, b *Backlog) Side {
	s = s.withDefaults()
	return func(ctx context.Context) (Sample, error) {
		o := newObserver(d)
		o.consume = true
		res, err := s.run(ctx, o, fmt.Sprintf(`producers: %d
consumers: %d
message: {size: %dB}
traffic:
  - max: {for: %v, in-flight: %d}
  - pause: {for: %v}
chaos:
  - {action: consumer-pause, at: 0s, for: %v}
drain: %v
`, s.Producers, s.Consumers, size, d, s.InFlight, s.Settle, d+s.Settle, s.Drain))
		if err != nil {
			return Sample{}, err
		}
		o.mu.Lock()
		started := o.started
		o.mu.Unlock()
		lastAck := time.Unix(0, o.lastAck.Load())
		first := o.catchUp.First()
		switch {
		case first.IsZero():
			return Sample{}, fmt.Errorf("nothing was received (%+v)", res.Counts)
		case first.Sub(started) < d+s.Settle-Warmup:
			return Sample{}, fmt.Errorf("a batch was processed %v into the traffic, before the pause ended at %v", first.Sub(started), d+s.Settle)
		case lastAck.After(first):
			return Sample{}, fmt.Errorf("messages were still being confirmed %v after the consumers started: lower the in-flight window (%d) or settle longer than %v",
				lastAck.Sub(first), s.InFlight, s.Settle)
		}
		b.Set(o.catchUp.Received())
		return o.catchUp.Sample(), nil
	}
}

// CatchUp times a drain the way every consume side does: from the first
// batch of messages in hand (spate's: held by the pause, processed the
// moment it ends) to the last, counting the messages after the first
// batch. It is safe for concurrent use.
type CatchUp struct {
	mu          sync.Mutex
	n           int64
	first, last mark
}

// Batch records that n more messages were received and processed now.
func (c *CatchUp) Batch(n int) {
	at, cpu := time.Now(), CPUTime()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += int64(n)
	m := mark{at: at, received: c.n, cpu: cpu}
	if c.first.at.IsZero() {
		c.first = m
	}
	c.last = m
}

// Received is how many messages Batch has counted.
func (c *CatchUp) Received() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// First is when the first batch came; zero before one did.
func (c *CatchUp) First() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.first.at
}

// Sample is the messages after the first batch, over the time from it to
// the last one.
func (c *CatchUp) Sample() Sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Sample{Messages: c.last.received - c.first.received, Elapsed: c.last.at.Sub(c.first.at), CPU: c.last.cpu - c.first.cpu}
}

// mark is the observer's counts, clock and the process's CPU time at one
// moment.
type mark struct {
	at              time.Time
	acked, received int64
	cpu             time.Duration
}

// observer counts what a run's producers had confirmed and its consumers
// processed, and marks the window [Warmup, d] after the first send; its
// catchUp times the batches processed.
type observer struct {
	d               time.Duration
	acked, received atomic.Int64
	once            sync.Once
	catchUp         CatchUp

	// consume makes it time the catch-up and keep lastAck, the time of
	// the last confirmation (Unix ns): clock and CPU reads per batch that
	// only consume sides need.
	consume bool
	lastAck atomic.Int64

	mu       sync.Mutex
	started  time.Time // the first send
	from, to mark
	timers   []*time.Timer
}

func newObserver(d time.Duration) *observer { return &observer{d: d} }

func (o *observer) now() mark {
	return mark{at: time.Now(), acked: o.acked.Load(), received: o.received.Load(), cpu: CPUTime()}
}

// sending is called before every Send: the first starts the window's
// clock.
func (o *observer) sending() {
	o.once.Do(func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.started = time.Now()
		set := func(m *mark) func() {
			return func() {
				n := o.now()
				o.mu.Lock()
				*m = n
				o.mu.Unlock()
			}
		}
		o.timers = append(o.timers, time.AfterFunc(Warmup, set(&o.from)), time.AfterFunc(o.d, set(&o.to)))
	})
}

// processed is called after the engine's Handler returned for a batch.
func (o *observer) processed(n int) {
	o.received.Add(int64(n))
	if o.consume {
		o.catchUp.Batch(n)
	}
}

// window is the sample of count between the marks at Warmup and at d.
func (o *observer) window(count func(mark) int64) (Sample, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, t := range o.timers {
		t.Stop()
	}
	if o.from.at.IsZero() || o.to.at.IsZero() {
		return Sample{}, fmt.Errorf("the traffic ended before its window [%v, %v] was marked", Warmup, o.d)
	}
	return Sample{Messages: count(o.to) - count(o.from), Elapsed: o.to.at.Sub(o.from.at), CPU: o.to.cpu - o.from.cpu}, nil
}

// kind wraps k so that o sees its producers' sends and confirmations and
// its consumers' processed batches.
func (o *observer) kind(k drivers.Kind) drivers.Kind {
	return drivers.Kind{Name: k.Name, Options: k.Options,
		Open: func(ctx context.Context, options any, env drivers.Env) (drivers.Driver, error) {
			d, err := k.Open(ctx, options, env)
			if err != nil {
				return nil, err
			}
			return observedDriver{Driver: d, o: o}, nil
		}}
}

type observedDriver struct {
	drivers.Driver
	o *observer
}

func (d observedDriver) NewProducer(ctx context.Context, id int, ack drivers.AckFunc) (drivers.Producer, error) {
	p, err := d.Driver.NewProducer(ctx, id, func(rs []drivers.Result) {
		ack(rs)
		var ok int64
		for i := range rs {
			if rs[i].Err == nil {
				ok++
			}
		}
		d.o.acked.Add(ok)
		if d.o.consume {
			d.o.lastAck.Store(time.Now().UnixNano())
		}
	})
	if err != nil {
		return nil, err
	}
	return observedProducer{Producer: p, o: d.o}, nil
}

func (d observedDriver) NewConsumer(ctx context.Context, id int) (drivers.Consumer, error) {
	c, err := d.Driver.NewConsumer(ctx, id)
	if err != nil {
		return nil, err
	}
	return observedConsumer{Consumer: c, o: d.o}, nil
}

type observedProducer struct {
	drivers.Producer
	o *observer
}

func (p observedProducer) Send(ctx context.Context, msgs []drivers.Message) error {
	p.o.sending()
	return p.Producer.Send(ctx, msgs)
}

type observedConsumer struct {
	drivers.Consumer
	o *observer
}

func (c observedConsumer) Consume(ctx context.Context, h drivers.Handler) error {
	return c.Consumer.Consume(ctx, func(batch []drivers.Delivery) {
		h(batch)
		c.o.processed(len(batch))
	})
}

// run runs a scenario of the body given (everything but the driver) on
// the driver o observes, and checks that it completed without failures,
// loss or unsent messages.
func (s Spate) run(ctx context.Context, o *observer, body string) (*report.Results, error) {
	kind := o.kind(s.Kind)
	l := &scenarios.Loader{}
	l.Driver(kind.Name, kind.Options)
	chaos.Register(l)
	sc, err := l.Parse("bench-compare.yaml", []byte("driver: "+s.Driver+"\n"+body))
	if err != nil {
		return nil, err
	}
	res, err := engine.Run(ctx, sc, engine.WithDrivers(kind), engine.WithLogger(s.Log))
	if err != nil {
		return nil, err
	}
	if c := res.Counts; c.Failed != 0 || c.Lost != 0 || c.Unsent != 0 {
		return nil, fmt.Errorf("the run failed %d, lost %d and left %d unsent messages", c.Failed, c.Lost, c.Unsent)
	}
	return res, nil
}
