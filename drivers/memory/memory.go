// Package memory is an in-process broker for spate: no network, no setup,
// seeded fault knobs, and a ground truth of what it did to the traffic, so
// spate's own accounting can be checked against it message for message. It
// is also the fastest driver, which measures the harness's own overhead.
//
// # Options
//
// A scenario selects it as `driver: memory` (all defaults) or with an options
// block, `driver: {memory: {streams: 8, drop: 0.01}}`:
//
//	streams     ordered streams, like Kafka partitions (1..65536, default 4)
//	drop        fraction of messages acked but never delivered (0..1, default 0)
//	duplicate   fraction of messages delivered twice (0..1, default 0)
//	reorder     fraction of messages delivered after the next message of the
//	            same producer on the same stream (0..1, default 0)
//	latency     fixed delivery latency, e.g. 20ms (default 0)
//	jitter      extra latency drawn uniformly from [0, jitter) (default 0)
//	capacity    most deliveries per second across the broker, e.g. 50k/s;
//	            absent: unlimited. Beyond it a backlog builds up.
//	max-queued  message copies held before a send is rejected (default 10,000,000)
//	seed        seeds the fault decisions (default 1)
//	dead-letter route poison messages (chaos `poison`) to a dead-letter
//	            stream instead of discarding them (default false)
//
// # Semantics
//
// A message with a Key goes to stream FNV-1a(key) mod streams; one without
// goes round-robin per producer, starting at stream (producer id mod streams).
//
// Every decision is made in Producer.Send from a random source seeded by
// (seed, producer id), drawn in this order per message: drop; then, if not
// dropped, reorder, duplicate and the jitter. The same producer sending the
// same messages therefore meets the same faults in every run.
//
//   - drop: the message is acked (Err nil) and never enqueued.
//   - reject: a message whose copies would take the broker past max-queued
//     held copies is rejected with ErrFull. Dropped messages hold nothing and
//     are never rejected.
//   - reorder: the message is held back in a slot per producer per stream
//     (one slot; when it is taken, the message is not held). The next
//     message of that producer to that stream that is enqueued is followed
//     by the held one, so the held one arrives after a higher sequence
//     number; that counts one "reordered". Held messages still waiting at
//     Producer.Close are enqueued then, in order, and do not count.
//   - duplicate: the message is enqueued twice in a row (twice when released,
//     if it was also held); that counts one "duplicated".
//
// Send reports every message's outcome with one call of the AckFunc after
// enqueueing. Consumer i of Env.Consumers owns the streams s with
// s mod Consumers = i; consumers beyond the number of streams get nothing, as
// in a Kafka group. With several subscriptions (Env.Subscriptions, the
// driver lists drivers.AbilityFanOut) the broker keeps a full set of
// streams per subscription and enqueues every admitted message, with the
// same fault decisions, into each set: consumer i serves subscription
// i mod Subscriptions, sharing its streams with the other consumers of
// that subscription as above. Each stream is FIFO: a message becomes deliverable at
// max(enqueue time + latency + jitter draw, the previous message's
// deliverable time), so latency never reorders. Capacity is a token bucket
// shared by all consumers with a burst of max(1, capacity × 100 ms), so a
// consumer woken late by a busy machine does not lose capacity. Handlers
// get batches of up to 1024 deliveries; Delivery.Stamp holds the message's
// 48-byte stamp, copied at Send, so the broker keeps no Body after the send.
//
// # Ground truth
//
// The Driver is a drivers.StatsReporter. Stats returns:
//
//	accepted    messages acked with Err nil (dropped ones included)
//	rejected    messages refused with ErrFull
//	dropped     messages acked and never enqueued
//	duplicated  messages enqueued twice
//	reordered   held messages released after a later one
//	delivered   copies handed to handlers
//	queued      copies still held (in streams and in reorder slots)
//
// Every stream has one owning consumer, so after a complete drain spate's
// tracker must report lost = dropped, duplicates = duplicated and reordered =
// reordered, exactly; with N subscriptions, N times each (the decisions are
// per message, the deliveries per subscription). delivered and queued
// count copies in every subscription's streams.
//
// A message whose stamp carries stamp.FlagPoison is rejected by its
// consumer instead of handed to the Handler, as an application rejects what
// it cannot process. With dead-letter the broker routes it to the
// dead-letter stream (Stream = streams, Delivery.DeadLetter set) and counts
// it dead_lettered; without, it is gone and counts poison_discarded (spate
// then reports it lost).
//
// The hot path allocates nothing per message: each stream is a ring of
// 64-byte entries that grows by doubling (and is released once a drained
// backlog left it over a million entries), guarded by one lock taken once
// per Send and once per delivered batch; producers reuse their scratch
// slices; waiting consumers are woken through a channel and timers, never
// by polling. One message held costs 64 bytes whatever its size.
package memory

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
)

// Kind is the memory driver as scenarios name it: `driver: memory`.
var Kind = drivers.Kind{Name: "memory", Options: decodeOptions, Open: open}

// ErrFull is the outcome of a message refused because the broker already
// holds max-queued message copies.
var ErrFull = errors.New("memory: broker full (max-queued reached)")

// ErrClosed is returned by every method called after Driver.Close, and by
// Consume when the driver is closed under it.
var ErrClosed = errors.New("memory: driver closed")

// MaxBatch is the most deliveries handed to one Handler call.
const MaxBatch = 1024

func open(_ context.Context, options any, env drivers.Env) (drivers.Driver, error) {
	var o Options
	switch v := options.(type) {
	case nil:
		o = DefaultOptions()
	case Options:
		o = v
	case *Options:
		if v == nil {
			o = DefaultOptions()
		} else {
			o = *v
		}
	default:
		return nil, fmt.Errorf("memory: options of type %T, want memory.Options", options)
	}
	return New(o, env)
}

// Driver is the in-process broker. Its methods are safe for concurrent use.
type Driver struct {
	opts  Options
	env   drivers.Env
	start time.Time
	// streams holds subs sets of nstreams streams: subscription k's
	// stream s is streams[k*nstreams+s].
	streams  []stream
	nstreams int
	subs     int
	wake     []chan struct{} // per consumer: a message was enqueued
	slots    []int           // per subscription: its consumers (at least 1)
	latency  int64
	bucket   *bucket // nil: unlimited capacity
	closed   chan struct{}
	once     sync.Once

	_         [64]byte
	queued    atomic.Int64 // copies held, including reserved ones
	_         [56]byte
	delivered atomic.Int64
	_         [56]byte
	accepted  atomic.Int64
	rejected  atomic.Int64
	dropped   atomic.Int64
	dupl      atomic.Int64
	reordered atomic.Int64

	deadLettered, poisonDiscarded atomic.Int64
}

var (
	_ drivers.Driver        = (*Driver)(nil)
	_ drivers.StatsReporter = (*Driver)(nil)
)

// New starts a broker with options o for the run env. It starts no goroutines.
func New(o Options, env drivers.Env) (*Driver, error) {
	o.fillDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	subs, consumers := max(1, env.Subscriptions), max(1, env.Consumers)
	if subs > consumers {
		return nil, fmt.Errorf("memory: %d subscriptions need at least as many consumers, got %d", subs, consumers)
	}
	d := &Driver{
		opts:     o,
		env:      env,
		start:    time.Now(),
		streams:  make([]stream, subs*o.Streams),
		nstreams: o.Streams,
		subs:     subs,
		slots:    make([]int, subs),
		latency:  int64(o.Latency),
		closed:   make(chan struct{}),
	}
	for k := range subs { // consumers i with i mod subs = k
		d.slots[k] = (consumers - k + subs - 1) / subs
	}
	d.wake = make([]chan struct{}, consumers)
	for i := range d.wake {
		d.wake[i] = make(chan struct{}, 1)
	}
	if o.Capacity > 0 {
		d.bucket = newBucket(o.Capacity)
	}
	return d, nil
}

// now is the broker clock: monotonic nanoseconds since New.
func (d *Driver) now() int64 { return int64(time.Since(d.start)) }

func (d *Driver) isClosed() bool {
	select {
	case <-d.closed:
		return true
	default:
		return false
	}
}

// signal wakes the consumers that own stream s in every subscription.
func (d *Driver) signal(s int) {
	for k := range d.subs {
		rank := s % d.slots[k] // the rank-th consumer of subscription k
		select {
		case d.wake[rank*d.subs+k] <- struct{}{}:
		default:
		}
	}
}

// Stats returns the broker's ground truth; see the package documentation.
func (d *Driver) Stats() map[string]int64 {
	return map[string]int64{
		"accepted":   d.accepted.Load(),
		"rejected":   d.rejected.Load(),
		"dropped":    d.dropped.Load(),
		"duplicated": d.dupl.Load(),
		"reordered":  d.reordered.Load(),
		"delivered":  d.delivered.Load(),
		"queued":     d.queued.Load(),

		"dead_lettered":    d.deadLettered.Load(),
		"poison_discarded": d.poisonDiscarded.Load(),
	}
}

// Close stops the broker: consumers return ErrClosed, further sends fail.
// Messages still queued are discarded. Close is idempotent.
func (d *Driver) Close(context.Context) error {
	d.once.Do(func() { close(d.closed) })
	return nil
}

// reserve takes up to want units of queue room and returns how many it took.
func (d *Driver) reserve(want int64) int64 {
	limit := int64(d.opts.MaxQueued)
	for {
		cur := d.queued.Load()
		r := min(want, limit-cur)
		if r <= 0 {
			return 0
		}
		if d.queued.CompareAndSwap(cur, cur+r) {
			return r
		}
	}
}

// entry is one queued message copy: 64 bytes, a cache line.
type entry struct {
	at    int64 // deliverable time on the broker clock
	n     uint8 // length of the stamp (shorter only for malformed bodies)
	stamp [stamp.Size]byte
}

// stream is one ordered FIFO of entries.
type stream struct {
	mu   sync.Mutex
	ring []entry // length is zero or a power of two
	head int
	n    int
	last int64 // deliverable time of the newest entry
	_    [64]byte
}

// lock locks stream s of every subscription, in subscription order.
func (d *Driver) lock(s int) {
	for k := range d.subs {
		d.streams[k*d.nstreams+s].mu.Lock()
	}
}

func (d *Driver) unlock(s int) {
	for k := range d.subs {
		d.streams[k*d.nstreams+s].mu.Unlock()
	}
}

// push enqueues copies of body's stamp on stream s of every subscription,
// whose locks are held.
func (d *Driver) push(s int, at int64, body []byte, copies int) {
	for k := range d.subs {
		d.streams[k*d.nstreams+s].push(at, body, copies)
	}
}

// minRing is the smallest ring a stream allocates.
const minRing = 256

// releaseRing is the ring length above which an emptied ring is released,
// so the memory of a drained backlog (64 bytes a copy) goes back to the
// heap. It is large so that steady traffic never regrows its ring.
var releaseRing = 1 << 20

// push enqueues copies of the stamp at the start of body, deliverable at at
// or after the previous entry. s.mu must be held.
func (s *stream) push(at int64, body []byte, copies int) {
	if at < s.last {
		at = s.last
	}
	s.last = at
	for range copies {
		if s.n == len(s.ring) {
			s.grow()
		}
		e := &s.ring[(s.head+s.n)&(len(s.ring)-1)]
		e.at = at
		e.n = uint8(copy(e.stamp[:], body))
		s.n++
	}
}

func (s *stream) grow() {
	ring := make([]entry, max(minRing, 2*len(s.ring)))
	if s.n > 0 {
		k := copy(ring, s.ring[s.head:])
		copy(ring[k:], s.ring[:s.head])
	}
	s.ring, s.head = ring, 0
}

// bucket is a token bucket of deliveries shared by all consumers.
type bucket struct {
	mu     sync.Mutex
	perNS  float64 // tokens per nanosecond
	burst  float64
	tokens float64
	last   int64
}

func newBucket(perSecond float64) *bucket {
	burst := max(1, perSecond*0.100)
	return &bucket{perNS: perSecond / 1e9, burst: burst, tokens: burst}
}

// take grants up to want tokens at now.
func (b *bucket) take(now int64, want int) int {
	b.mu.Lock()
	if now > b.last {
		b.tokens = min(b.burst, b.tokens+float64(now-b.last)*b.perNS)
		b.last = now
	}
	n := min(want, int(b.tokens))
	b.tokens -= float64(n)
	b.mu.Unlock()
	return n
}

// giveBack returns tokens granted but not used.
func (b *bucket) giveBack(n int) {
	b.mu.Lock()
	b.tokens = min(b.burst, b.tokens+float64(n))
	b.mu.Unlock()
}

// minTokenWait bounds how often a consumer starved of tokens wakes up.
const minTokenWait = int64(time.Millisecond)

// wait is how long until a token is available, but at least minTokenWait
// (at most one wake-up per millisecond; the burst absorbs the difference).
func (b *bucket) wait() int64 {
	b.mu.Lock()
	need := 1 - b.tokens
	b.mu.Unlock()
	w := int64(math.Ceil(need / b.perNS))
	return max(w, minTokenWait)
}

// producer is one Producer. Its scratch space is reused by every Send.
type producer struct {
	d      *Driver
	id     int
	ack    drivers.AckFunc
	mu     sync.Mutex
	closed bool
	rng    *rand.Rand
	rr     int // next round-robin stream

	held    []held // per stream
	results []drivers.Result
	plans   []plan
	order   []int32 // message indexes grouped by stream
	count   []int   // per stream, scratch for grouping
	touched []int   // streams with messages in this Send
}

type plan struct {
	stream int32
	copies int32 // 1 or 2; 0 when dropped or rejected
	hold   bool  // drawn for reordering
	jitter int64
}

type held struct {
	ok     bool
	copies int32
	jitter int64
	n      uint8
	stamp  [stamp.Size]byte
}

// NewProducer returns producer id, which reports outcomes to ack.
func (d *Driver) NewProducer(_ context.Context, id int, ack drivers.AckFunc) (drivers.Producer, error) {
	if d.isClosed() {
		return nil, ErrClosed
	}
	if id < 0 {
		return nil, fmt.Errorf("memory: producer id %d is negative", id)
	}
	if ack == nil {
		return nil, errors.New("memory: producer needs an AckFunc")
	}
	n := d.nstreams
	return &producer{
		d:     d,
		id:    id,
		ack:   ack,
		rng:   rand.New(rand.NewPCG(uint64(d.opts.Seed), uint64(id))),
		rr:    id % n,
		held:  make([]held, n),
		count: make([]int, n),
	}, nil
}

// streamOf picks the stream of a message.
func (p *producer) streamOf(key []byte) int {
	n := p.d.nstreams
	if key == nil {
		s := p.rr
		p.rr++
		if p.rr == n {
			p.rr = 0
		}
		return s
	}
	h := uint32(2166136261) // FNV-1a, 32 bits
	for _, c := range key {
		h ^= uint32(c)
		h *= 16777619
	}
	return int(h % uint32(n))
}

// Send enqueues msgs and reports their outcomes before returning. It never
// blocks on consumers: a full broker rejects instead.
func (p *producer) Send(_ context.Context, msgs []drivers.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.d
	if p.closed {
		return errors.New("memory: producer closed")
	}
	if d.isClosed() {
		return ErrClosed
	}
	now := d.now()
	o := &d.opts

	// Decide each message's fate. Every random draw happens here, before
	// anything timing-dependent (room in the broker), so the decisions of
	// a producer depend only on the seed and its messages.
	if cap(p.plans) < len(msgs) {
		p.plans = make([]plan, len(msgs))
		p.order = make([]int32, len(msgs))
		p.results = make([]drivers.Result, len(msgs))
	}
	plans, results := p.plans[:len(msgs)], p.results[:len(msgs)]
	var want, dropped int64
	for i := range msgs {
		pl := plan{stream: -1}
		if o.Drop > 0 && p.rng.Float64() < o.Drop {
			dropped++
		} else {
			pl.stream = int32(p.streamOf(msgs[i].Key))
			pl.copies = 1
			if o.Reorder > 0 && p.rng.Float64() < o.Reorder {
				pl.hold = true
			}
			if o.Duplicate > 0 && p.rng.Float64() < o.Duplicate {
				pl.copies = 2
			}
			if o.Jitter > 0 {
				pl.jitter = p.rng.Int64N(int64(o.Jitter))
			}
			want += int64(pl.copies) * int64(d.subs)
		}
		plans[i] = pl
	}
	// Take room for the copies, then admit messages in order while it lasts.
	room := int64(0)
	if want > 0 {
		room = d.reserve(want)
	}
	var rejected, duplicated int64
	p.touched = p.touched[:0]
	for i := range msgs {
		results[i] = drivers.Result{Stamp: msgs[i].Stamp}
		pl := &plans[i]
		if pl.copies == 0 {
			continue
		}
		need := int64(pl.copies) * int64(d.subs) // a copy in every subscription
		if need > room {
			pl.copies = 0
			results[i].Err = ErrFull
			rejected++
			continue
		}
		room -= need
		if pl.copies == 2 {
			duplicated++
		}
		if p.count[pl.stream] == 0 {
			p.touched = append(p.touched, int(pl.stream))
		}
		p.count[pl.stream]++
	}
	if room > 0 {
		d.queued.Add(-room)
	}

	// Group the admitted messages by stream (a counting sort) so each
	// stream's lock is taken once per Send.
	off := 0
	for _, s := range p.touched {
		c := p.count[s]
		p.count[s] = off
		off += c
	}
	order := p.order[:off]
	for i := range plans {
		if s := plans[i].stream; plans[i].copies > 0 {
			order[p.count[s]] = int32(i)
			p.count[s]++
		}
	}

	var reordered int64
	begin := 0
	for _, s := range p.touched {
		end := p.count[s]
		p.count[s] = 0
		h := &p.held[s]
		d.lock(s)
		for _, i := range order[begin:end] {
			pl := &plans[i]
			if pl.hold && !h.ok {
				h.ok, h.copies, h.jitter = true, pl.copies, pl.jitter
				h.n = uint8(copy(h.stamp[:], msgs[i].Head))
				continue
			}
			d.push(s, now+d.latency+pl.jitter, msgs[i].Head, int(pl.copies))
			if h.ok {
				d.push(s, now+d.latency+h.jitter, h.stamp[:h.n], int(h.copies))
				h.ok = false
				reordered++
			}
		}
		d.unlock(s)
		d.signal(s)
		begin = end
	}

	if n := int64(len(msgs)) - rejected; n > 0 {
		d.accepted.Add(n)
	}
	if rejected > 0 {
		d.rejected.Add(rejected)
	}
	if dropped > 0 {
		d.dropped.Add(dropped)
	}
	if duplicated > 0 {
		d.dupl.Add(duplicated)
	}
	if reordered > 0 {
		d.reordered.Add(reordered)
	}
	p.ack(results)
	return nil
}

// Close enqueues the messages still held back for reordering. Every outcome
// was already reported by Send, so it returns at once.
func (p *producer) Close(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	d := p.d
	now := d.now()
	for s := range p.held {
		h := &p.held[s]
		if !h.ok {
			continue
		}
		d.lock(s)
		d.push(s, now+d.latency+h.jitter, h.stamp[:h.n], int(h.copies))
		d.unlock(s)
		h.ok = false
		d.signal(s)
	}
	return nil
}

// consumer is one Consumer of subscription sub: the rank-th of its
// consumers, it owns the subscription's streams s with
// s mod (its consumers) = rank.
type consumer struct {
	d     *Driver
	sub   int
	owned []int // indexes into d.streams
	wake  chan struct{}
}

// NewConsumer returns consumer id. It is subscribed at once: messages wait in
// their stream until a consumer takes them.
func (d *Driver) NewConsumer(_ context.Context, id int) (drivers.Consumer, error) {
	if d.isClosed() {
		return nil, ErrClosed
	}
	if id < 0 {
		return nil, fmt.Errorf("memory: consumer id %d is negative", id)
	}
	sub := d.env.SubscriptionOf(id)
	c := &consumer{d: d, sub: sub}
	if rank := id / d.subs; id < len(d.wake) && rank < d.slots[sub] {
		c.wake = d.wake[id]
		for s := rank; s < d.nstreams; s += d.slots[sub] {
			c.owned = append(c.owned, sub*d.nstreams+s)
		}
	}
	return c, nil
}

// Consume hands batches of deliverable messages from the consumer's streams
// to h until ctx is done (then it returns nil) or the driver is closed (then
// ErrClosed). Several Consume calls on one Consumer share its streams; each
// calls its own h from one goroutine.
func (c *consumer) Consume(ctx context.Context, h drivers.Handler) error {
	d := c.d
	if len(c.owned) == 0 {
		select {
		case <-ctx.Done():
			return nil
		case <-d.closed:
			return ErrClosed
		}
	}
	batch := make([]drivers.Delivery, MaxBatch)
	stamps := make([][stamp.Size]byte, MaxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	done := ctx.Done()
	first := 0 // the stream scanned first rotates, for fairness under capacity
	for {
		select {
		case <-done:
			return nil
		case <-d.closed:
			return ErrClosed
		default:
		}
		now := d.now()
		limit := MaxBatch
		if d.bucket != nil {
			limit = d.bucket.take(now, MaxBatch)
		}
		k := 0
		wakeAt := int64(math.MaxInt64)
		if limit > 0 {
			for j := range c.owned {
				idx := c.owned[(first+j)%len(c.owned)]
				s := &d.streams[idx]
				s.mu.Lock()
				for k < limit && s.n > 0 {
					e := &s.ring[s.head]
					if e.at > now {
						wakeAt = min(wakeAt, e.at)
						break
					}
					stamps[k] = e.stamp
					batch[k] = drivers.Delivery{Stamp: stamps[k][:e.n], Stream: int32(idx - c.sub*d.nstreams)}
					s.head = (s.head + 1) & (len(s.ring) - 1)
					s.n--
					if stamp.HasFlag(batch[k].Stamp, stamp.FlagPoison) {
						// The consumer rejects it; the broker dead-letters it.
						if !d.opts.DeadLetter {
							d.poisonDiscarded.Add(1)
							d.queued.Add(-1)
							continue
						}
						d.deadLettered.Add(1)
						batch[k].DeadLetter = true
						batch[k].Stream = int32(d.nstreams)
					}
					k++
				}
				if s.n == 0 && len(s.ring) > releaseRing {
					s.ring, s.head = nil, 0
				}
				s.mu.Unlock()
				if k == limit {
					break
				}
			}
			first++
			if d.bucket != nil && k < limit {
				d.bucket.giveBack(limit - k)
			}
		} else {
			wakeAt = now + d.bucket.wait()
		}
		if k > 0 {
			d.queued.Add(-int64(k))
			d.delivered.Add(int64(k))
			h(batch[:k])
			continue
		}
		if wakeAt != math.MaxInt64 {
			timer.Reset(time.Duration(wakeAt - now))
		}
		select {
		case <-done:
			return nil
		case <-d.closed:
			return ErrClosed
		case <-c.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}
