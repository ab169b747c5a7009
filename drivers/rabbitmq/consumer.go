package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
)

// consumer is one Consumer: a subscription per consumer channel on the
// queue of its scenario subscription (Env.SubscriptionOf), and one on that
// subscription's dead-letter queue. Each subscription's reader
// goroutine gathers deliveries into batches; Consume hands them to the
// Handler and acknowledges them.
type consumer struct {
	d    *Driver
	id   int
	sub  int // its subscription (Env.SubscriptionOf): the queues it reads
	slot *connSlot
	rng  *rand.Rand // reject decisions; used by Consume only

	life    context.Context // ends on Crash and when the driver closes
	stop    context.CancelFunc
	batches chan *inBatch
	failed  chan error // a reader gave up reconnecting

	crashOnce sync.Once
	crashCh   chan struct{}
	crashed   atomic.Bool
	running   atomic.Bool

	subs []*subscription
	out  []drivers.Delivery // scratch for the Handler
}

// subscription is one basic.consume on one channel (not a scenario's
// subscription, which is consumer.sub: a queue of its own).
type subscription struct {
	c      *consumer
	queue  string
	stream int32
	dead   bool // the dead-letter queue
	manual bool // deliveries are acknowledged
	log    bool // a stream: deliveries carry their offset
	free   chan []amqp.Delivery
	// next is, on a stream, the offset after the last delivery pump queued
	// for Consume (-1: none yet): where to read on after a reconnection,
	// so that nothing is read twice or skipped.
	next atomic.Int64
}

// inBatch is deliveries of one channel, in delivery-tag order.
type inBatch struct {
	sub *subscription
	ch  *amqp.Channel
	ds  []amqp.Delivery
}

// NewConsumer returns consumer id, subscribed to the queue (and the
// dead-letter queue) of its subscription, Env.SubscriptionOf(id): from then
// on the broker delivers to it. Consumer ids
// may repeat (a new consumer replacing a crashed one); a consumer with the
// same id shares the same connection slot.
func (d *Driver) NewConsumer(ctx context.Context, id int) (drivers.Consumer, error) {
	if d.isClosed() {
		return nil, ErrClosed
	}
	if id < 0 {
		return nil, fmt.Errorf("rabbitmq: consumer id %d is negative", id)
	}
	c := &consumer{
		d:       d,
		id:      id,
		sub:     d.env.SubscriptionOf(id),
		slot:    d.consumerSlot(id),
		rng:     rand.New(rand.NewPCG(uint64(d.opts.Seed), uint64(id))),
		batches: make(chan *inBatch), // unbuffered: see pump
		failed:  make(chan error, 1),
		crashCh: make(chan struct{}),
	}
	c.life, c.stop = context.WithCancel(d.ctx)
	for range d.opts.ConsumerChannels {
		c.subs = append(c.subs, &subscription{c: c, queue: d.queues[c.sub], stream: QueueStream, manual: !d.opts.AutoAck})
	}
	for _, s := range c.subs {
		s.log = d.opts.Queue.Type == StreamQueue
		s.next.Store(-1)
	}
	if dlq := d.dlqs[c.sub]; dlq != "" {
		c.subs = append(c.subs, &subscription{c: c, queue: dlq, stream: DeadLetterStream, dead: true, manual: true})
	}
	type started struct {
		ch   *amqp.Channel
		dels <-chan amqp.Delivery
	}
	var ok []started
	for _, s := range c.subs {
		s.free = make(chan []amqp.Delivery, 4)
		ch, dels, err := s.subscribe(ctx)
		if err != nil {
			c.stop()
			for _, st := range ok {
				_ = st.ch.Close()
			}
			return nil, fmt.Errorf("rabbitmq: consumer %d: %w", id, err)
		}
		ok = append(ok, started{ch, dels})
	}
	for i, s := range c.subs {
		go s.read(ok[i].ch, ok[i].dels)
	}
	return c, nil
}

// subscribe opens a channel on the consumer's connection (one attempt),
// declares the topology, sets the prefetch and starts consuming.
func (s *subscription) subscribe(ctx context.Context) (*amqp.Channel, <-chan amqp.Delivery, error) {
	c := s.c
	d := c.d
	ch, err := c.slot.channel(ctx)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*amqp.Channel, <-chan amqp.Delivery, error) {
		_ = ch.Close()
		return nil, nil, err
	}
	if err := d.declare(ch, true, d.transient()); err != nil {
		return fail(err)
	}
	if s.manual && d.opts.Prefetch > 0 {
		if err := ch.Qos(d.opts.Prefetch, 0, false); err != nil {
			return fail(fmt.Errorf("rabbitmq: set prefetch %d: %w", d.opts.Prefetch, err))
		}
	}
	d.mu.Lock()
	d.consumed++
	tag := fmt.Sprintf("spate-%s-c%d-%d", stampRun(d.env.RunID), c.id, d.consumed)
	d.mu.Unlock()
	var args amqp.Table
	if s.log {
		args = amqp.Table{"x-stream-offset": s.startOffset()}
	}
	dels, err := ch.Consume(s.queue, tag, !s.manual, false, false, false, args)
	if err != nil {
		return fail(fmt.Errorf("rabbitmq: consume from queue %q: %w", s.queue, err))
	}
	return ch, dels, nil
}

// startOffset is where a stream subscription starts reading: after what
// it queued already (it reconnects), else after what the last consumer
// with its id handled (it replaces a crashed one), else queue.offset.
func (s *subscription) startOffset() any {
	if n := s.next.Load(); n >= 0 {
		return n
	}
	d := s.c.d
	d.mu.Lock()
	n, ok := d.resume[s.c.id]
	d.mu.Unlock()
	if ok {
		return n
	}
	if d.opts.Queue.Offset == "" {
		return string(OffsetNext)
	}
	v, _ := streamOffset(d.opts.Queue.Offset) // checked by Options.check
	return v
}

// streamOffsetOf returns a stream delivery's offset (its x-stream-offset
// header).
func streamOffsetOf(h amqp.Table) (int64, bool) {
	switch v := h["x-stream-offset"].(type) {
	case int64:
		return v, true
	case int32:
		return int64(v), true
	case int:
		return int64(v), true
	}
	return 0, false
}

func stampRun(id uint64) string { return stamp.RunIDString(id) }

// read gathers deliveries into batches for Consume until the consumer's
// life ends, subscribing again whenever the channel or connection is lost.
func (s *subscription) read(ch *amqp.Channel, dels <-chan amqp.Delivery) {
	c := s.c
	for {
		s.pump(ch, dels)
		if c.life.Err() != nil {
			return
		}
		_ = ch.Close()
		var err error
		ch, dels, err = s.resubscribe()
		if err != nil {
			if c.life.Err() == nil {
				select {
				case c.failed <- fmt.Errorf("rabbitmq: consumer %d lost its subscription to %q: %w", c.id, s.queue, err):
				default:
				}
			}
			return
		}
	}
}

// pump moves deliveries to Consume in batches until dels closes or the
// consumer's life ends. A batch grows, up to MaxBatch, for as long as
// Consume is busy with the one before, and is handed over the moment
// Consume is ready: a batch is what arrived meanwhile, as in a plain
// receive loop that acks what it gathered after each batch. (Handing each
// delivery over as it came made batches of one or two at 100 B, and as
// many acks, which the broker pays for.)
func (s *subscription) pump(ch *amqp.Channel, dels <-chan amqp.Delivery) {
	c := s.c
	done := c.life.Done()
	for {
		var dv amqp.Delivery
		var ok bool
		select {
		case dv, ok = <-dels:
		case <-done:
			return
		}
		if !ok {
			return
		}
		var buf []amqp.Delivery
		select {
		case buf = <-s.free:
		default:
			buf = make([]amqp.Delivery, 0, 64)
		}
		b := &inBatch{sub: s, ch: ch, ds: append(buf, dv)}
		open := true
		for handed := false; !handed; {
			// (Read before the batch is handed over: Consume recycles it.)
			off, hasOffset := int64(0), false
			if s.log {
				off, hasOffset = streamOffsetOf(b.ds[len(b.ds)-1].Headers)
			}
			more := dels
			if !open || len(b.ds) >= MaxBatch {
				more = nil // full (or no more to come): wait for Consume
			}
			select {
			case c.batches <- b:
				handed = true
				if hasOffset {
					s.next.Store(off + 1)
				}
			case dv, ok = <-more:
				if ok {
					b.ds = append(b.ds, dv)
				} else {
					open = false
				}
			case <-done:
				return
			}
		}
		if !open {
			return
		}
	}
}

// resubscribe subscribes again, reconnecting as needed, for up to the
// reconnect window.
func (s *subscription) resubscribe() (*amqp.Channel, <-chan amqp.Delivery, error) {
	c := s.c
	d := c.d
	if d.opts.Reconnect == 0 {
		return nil, nil, errors.New("the channel was closed and reconnect is 0")
	}
	deadline := time.Now().Add(d.opts.Reconnect)
	wait := 50 * time.Millisecond
	for {
		_, err := c.slot.getRetry(c.life)
		if err == nil {
			var ch *amqp.Channel
			var dels <-chan amqp.Delivery
			ch, dels, err = s.subscribe(c.life)
			if err == nil {
				d.log.Info("rabbitmq: consumer subscribed again", "consumer", c.id, "queue", s.queue)
				return ch, dels, nil
			}
		}
		if c.life.Err() != nil || errors.Is(err, ErrClosed) || time.Now().After(deadline) {
			return nil, nil, err
		}
		if err := d.sleep(c.life, wait); err != nil {
			return nil, nil, err
		}
		wait = min(2*wait, time.Second)
	}
}

// Consume hands batches of deliveries to h until ctx is done (then it
// returns nil), the consumer crashes (drivers.ErrCrashed), the driver
// closes (ErrClosed) or the consumer cannot subscribe again within the
// reconnect window. After h returns, the batch is acknowledged (unless
// auto-ack); rejected deliveries are nacked before and never reach h. Only
// one Consume may run at a time on a consumer.
func (c *consumer) Consume(ctx context.Context, h drivers.Handler) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("rabbitmq: Consume is already running on this consumer")
	}
	defer c.running.Store(false)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.crashCh:
			return drivers.ErrCrashed
		case <-c.d.closed:
			return ErrClosed
		case err := <-c.failed:
			select {
			case c.failed <- err: // later calls fail too
			default:
			}
			return err
		case b := <-c.batches:
			if c.crashed.Load() {
				return drivers.ErrCrashed
			}
			if ctx.Err() != nil {
				c.requeue(b)
				return nil
			}
			c.handle(b, h)
			if c.crashed.Load() {
				return drivers.ErrCrashed
			}
		}
	}
}

// handle rejects what the reject fraction (or a poison flag) says, hands
// the rest to h, then acknowledges them.
func (c *consumer) handle(b *inBatch, h drivers.Handler) {
	d := c.d
	st := &d.stats
	reject := d.opts.Reject
	out := c.out[:0]
	var last uint64 // the highest delivery tag handed to h
	var redelivered int64
	next := int64(-1) // on a stream, the offset after the last delivery handed
	for i := range b.ds {
		dv := &b.ds[i]
		s := stampOf(dv.Headers, dv.Body)
		if !b.sub.dead && b.sub.manual && (isPoison(s) || reject > 0 && c.rng.Float64() < reject) {
			if err := b.ch.Nack(dv.DeliveryTag, false, false); err == nil {
				st.Rejected.Add(1)
			}
			continue
		}
		dl := drivers.Delivery{Stamp: s, Stream: b.sub.stream, Redelivered: dv.Redelivered, DeadLetter: b.sub.dead}
		if b.sub.log {
			if off, ok := streamOffsetOf(dv.Headers); ok {
				dl.HasOffset, dl.Offset = true, off
				next = off + 1
			}
		}
		out = append(out, dl)
		last = dv.DeliveryTag
		if dv.Redelivered {
			redelivered++
		}
	}
	c.out = out
	if len(out) > 0 {
		h(out)
		if b.sub.dead {
			st.DeadLettered.Add(int64(len(out)))
		} else {
			st.Delivered.Add(int64(len(out)))
			st.Redelivered.Add(redelivered)
		}
	}
	if !c.crashed.Load() && b.sub.manual && last > 0 {
		// One ack for the batch: every tag up to last that is not
		// nacked already. A failure means the channel is gone, and the
		// broker requeues the batch.
		_ = b.ch.Ack(last, true)
		if next >= 0 {
			// The stream offset a replacement of this consumer
			// reads from: it was handled, like an acked batch.
			d.mu.Lock()
			d.resume[c.id] = next
			d.mu.Unlock()
		}
	}
	for i := range out {
		out[i] = drivers.Delivery{}
	}
	b.sub.recycle(b.ds)
}

// requeue gives an unhandled batch back to the broker.
func (c *consumer) requeue(b *inBatch) {
	if b.sub.manual && len(b.ds) > 0 {
		_ = b.ch.Nack(b.ds[len(b.ds)-1].DeliveryTag, true, true)
	}
	b.sub.recycle(b.ds)
}

// recycle clears a batch buffer (so bodies can be freed) and keeps it.
func (s *subscription) recycle(ds []amqp.Delivery) {
	clear(ds)
	select {
	case s.free <- ds[:0]:
	default:
	}
}

// Crash makes Consume return drivers.ErrCrashed promptly (after the
// Handler call in progress, whose batch is not acknowledged) and closes the
// consumer's socket without an AMQP goodbye: the broker requeues every
// delivery it had not acked, and delivers them again, flagged redelivered,
// to the other consumers or to a new consumer made with the same id. It is
// safe to call from any goroutine, including from the Handler, and more
// than once.
func (c *consumer) Crash() {
	c.crashOnce.Do(func() {
		c.crashed.Store(true)
		close(c.crashCh)
		c.stop()
		c.slot.crash()
		c.d.stats.Crashes.Add(1)
		c.d.log.Info("rabbitmq: consumer crashed", "consumer", c.id, "queue", c.subs[0].queue)
	})
}

// stampOf returns the stamp of a message: the header if it has one, else
// the body (whose first bytes are the stamp).
func stampOf(h amqp.Table, body []byte) []byte {
	if h != nil {
		if v, ok := h[HeaderName].([]byte); ok {
			return v
		}
	}
	return body
}

// isPoison reports whether s is a stamp flagged stamp.FlagPoison.
func isPoison(s []byte) bool { return stamp.HasFlag(s, stamp.FlagPoison) }
