package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
)

// maxKeyCache bounds the message keys a producer remembers as strings.
const maxKeyCache = 1 << 16

// producer is one Producer: a channel (or several) on its connection slot.
// Send is called by one goroutine at a time; the confirm listeners run on
// their own goroutines.
type producer struct {
	d     *Driver
	id    int
	ack   drivers.AckFunc
	chans []*pubChan
	next  int // the channel of the next message

	rr        int               // next round-robin routing key
	rrKeys    []string          // routing-keys keys
	keys      map[string]string // message keys seen (and bound), as strings
	results   []drivers.Result  // scratch for fire-and-forget outcomes
	published int64             // published by the Send in progress
	closed    bool
	exchange  string
}

// pubChan is one channel of a producer and the messages it has published
// without an outcome yet.
type pubChan struct {
	p    *producer
	slot *connSlot
	// tokens holds one token per message published on this channel and
	// not yet reported: its capacity is the confirm window.
	tokens  chan struct{}
	cur     *pubGen // the open channel; replaced after a loss by Send only
	headers amqp.Table
	// body is the scratch a message's body is assembled in (stamp and
	// filler): Publish writes it out before it returns and keeps no
	// reference, and only Send's goroutine publishes, so one buffer
	// serves every message instead of an allocation each.
	body []byte
}

// pubGen is one AMQP channel of a pubChan, from open to loss, with the
// stamps of the messages published on it and not confirmed yet, in
// delivery-tag order.
type pubGen struct {
	ch   *amqp.Channel
	dead chan struct{} // closed once the listener reported everything

	mu       sync.Mutex
	pending  []stamp.Stamp
	head     int
	returned map[uint64]bool // seqs returned as unroutable, not yet confirmed
	done     bool            // the listener finished; nothing more is pushed
}

// NewProducer returns producer id, connected, with its channels open in
// confirm mode (unless confirms is off) and the topology declared.
func (d *Driver) NewProducer(ctx context.Context, id int, ack drivers.AckFunc) (drivers.Producer, error) {
	if d.isClosed() {
		return nil, ErrClosed
	}
	if id < 0 {
		return nil, fmt.Errorf("rabbitmq: producer id %d is negative", id)
	}
	if ack == nil {
		return nil, errors.New("rabbitmq: producer needs an AckFunc")
	}
	p := &producer{d: d, id: id, ack: ack, keys: map[string]string{}, exchange: d.opts.Exchange.Name}
	if n := d.opts.RoutingKeys; n > 0 {
		p.rrKeys = d.staticKeys()
		p.rr = id % n
	}
	slot := d.producerSlot(id)
	window := 1
	if d.opts.Confirms {
		window = d.opts.ConfirmWindow
	}
	for range d.opts.ProducerChannels {
		pc := &pubChan{p: p, slot: slot, tokens: make(chan struct{}, window)}
		if d.opts.Stamp == StampInHeader {
			pc.headers = amqp.Table{}
		}
		g, err := pc.open(ctx)
		if err != nil {
			p.closeChannels(time.Now().Add(time.Second))
			return nil, fmt.Errorf("rabbitmq: producer %d: %w", id, err)
		}
		pc.cur = g
		p.chans = append(p.chans, pc)
	}
	return p, nil
}

// open opens a channel on the slot's connection (one attempt), puts it in
// confirm mode, declares the topology and starts its listener.
func (pc *pubChan) open(ctx context.Context) (*pubGen, error) {
	d := pc.p.d
	ch, err := pc.slot.channel(ctx)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*pubGen, error) {
		_ = ch.Close()
		return nil, err
	}
	// Producers declare the queue too (unless another connection owns it),
	// so that after a broker restart nothing is published before a
	// transient queue exists again.
	if err := d.declare(ch, !d.opts.Queue.Exclusive, d.transient()); err != nil {
		return fail(err)
	}
	g := &pubGen{ch: ch, dead: make(chan struct{})}
	var confirms chan amqp.Confirmation
	var returns chan amqp.Return
	if d.opts.Confirms {
		if err := ch.Confirm(false); err != nil {
			return fail(fmt.Errorf("rabbitmq: put the channel in confirm mode: %w", err))
		}
		// Buffers as large as the window: the connection's reader never
		// waits on this producer's listener.
		confirms = ch.NotifyPublish(make(chan amqp.Confirmation, cap(pc.tokens)))
	}
	if d.opts.Mandatory {
		returns = ch.NotifyReturn(make(chan amqp.Return, cap(pc.tokens)+16))
		g.returned = map[uint64]bool{}
	}
	if confirms != nil {
		go pc.listen(g, confirms, returns)
	} else {
		closes := ch.NotifyClose(make(chan *amqp.Error, 1))
		go pc.watch(g, closes, returns)
	}
	return g, nil
}

// current returns the open channel, opening a new one (reconnecting when
// needed) after a loss, for up to the reconnect window.
func (pc *pubChan) current(ctx context.Context) (*pubGen, error) {
	if g := pc.cur; g != nil && !g.ch.IsClosed() {
		return g, nil
	}
	d := pc.p.d
	if d.opts.Reconnect == 0 {
		return nil, errors.New("rabbitmq: the producer's channel was closed and reconnect is 0")
	}
	var deadline time.Time
	wait := 50 * time.Millisecond
	for {
		if _, err := pc.slot.getRetry(ctx); err != nil {
			return nil, err
		}
		g, err := pc.open(ctx)
		if err == nil {
			pc.cur = g
			return g, nil
		}
		if errors.Is(err, ErrClosed) || ctx.Err() != nil {
			return nil, err
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(d.opts.Reconnect)
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		if err := d.sleep(ctx, wait); err != nil {
			return nil, err
		}
		wait = min(2*wait, time.Second)
	}
}

// routingKey picks the routing key of m.
func (p *producer) routingKey(ctx context.Context, m *drivers.Message) (string, error) {
	d := p.d
	switch {
	case p.exchange == "":
		return d.queue, nil
	case m.Key != nil:
		if k, ok := p.keys[string(m.Key)]; ok {
			return k, nil
		}
		k := string(m.Key)
		if d.opts.Exchange.Kind == DirectExchange {
			if err := d.bindKey(ctx, k); err != nil {
				return "", err
			}
		}
		if len(p.keys) < maxKeyCache {
			p.keys[k] = k
		}
		return k, nil
	case p.rrKeys != nil:
		k := p.rrKeys[p.rr]
		p.rr++
		if p.rr == len(p.rrKeys) {
			p.rr = 0
		}
		return k, nil
	}
	return d.routingKey(), nil
}

// Send publishes msgs in order. With confirms it returns once every message
// is published (blocking while the confirm window is full or the client
// reconnects); the listeners report outcomes as confirms arrive. Without,
// it reports every outcome (ErrUnconfirmed, or the publish error) before
// returning. It returns an error only when the producer cannot go on: the
// driver closed, reconnecting failed for longer than reconnect, or ctx
// ended; messages not published then are reported as failed.
func (p *producer) Send(ctx context.Context, msgs []drivers.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if p.closed {
		return errors.New("rabbitmq: Send after Close")
	}
	d := p.d
	confirms := d.opts.Confirms
	p.results = p.results[:0]
	for i := range msgs {
		m := &msgs[i]
		key, err := p.routingKey(ctx, m)
		if err == nil {
			pc := p.chans[p.next]
			p.next++
			if p.next == len(p.chans) {
				p.next = 0
			}
			var perr error
			perr, err = pc.publish(ctx, m, key)
			if !confirms && err == nil {
				r := drivers.Result{Stamp: m.Stamp, Err: drivers.ErrUnconfirmed}
				if perr != nil {
					r.Err = perr
				}
				p.results = append(p.results, r)
			}
		}
		if err != nil {
			for j := i; j < len(msgs); j++ {
				p.results = append(p.results, drivers.Result{Stamp: msgs[j].Stamp, Err: fmt.Errorf("rabbitmq: not sent: %w", err)})
			}
			d.stats.PublishFailed.Add(int64(len(msgs) - i))
			p.flushCounts()
			p.ack(p.results)
			p.results = p.results[:0]
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("rabbitmq: producer %d: %w", p.id, err)
		}
	}
	p.flushCounts()
	if len(p.results) > 0 {
		p.ack(p.results)
	}
	return nil
}

// flushCounts adds the messages published by the last Send to the
// driver's counters (once per Send, not per message: the counters are
// shared by every producer).
func (p *producer) flushCounts() {
	if p.published == 0 {
		return
	}
	p.d.stats.Published.Add(p.published)
	if !p.d.opts.Confirms {
		p.d.stats.Unconfirmed.Add(p.published)
	}
	p.published = 0
}

// publish publishes m on the channel. With confirms, its outcome is
// reported later by the listener, or at once (as a failure) when the
// publish itself fails. Without, the publish error, if any, is returned as
// perr for Send to report. err means the producer cannot go on; m then has
// no outcome yet.
func (pc *pubChan) publish(ctx context.Context, m *drivers.Message, key string) (perr, err error) {
	d := pc.p.d
	confirms := d.opts.Confirms
	if confirms {
		select {
		case pc.tokens <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-d.closed:
			return nil, ErrClosed
		}
	}
	release := func() {
		if confirms {
			<-pc.tokens
		}
	}
	pc.body = m.AppendBody(pc.body[:0])
	msg := amqp.Publishing{Body: pc.body, DeliveryMode: amqp.Transient}
	if d.opts.Persistent {
		msg.DeliveryMode = amqp.Persistent
	}
	if pc.headers != nil && len(m.Head) >= stamp.Size {
		pc.headers[HeaderName] = m.Head[:stamp.Size]
		msg.Headers = pc.headers
	}
	for {
		g, err := pc.current(ctx)
		if err != nil {
			release()
			return nil, err
		}
		if confirms {
			g.mu.Lock()
			if g.done {
				// The listener already gave up on this channel.
				g.mu.Unlock()
				pc.cur = nil
				continue
			}
			g.pending = append(g.pending, m.Stamp)
			g.mu.Unlock()
		}
		perr = g.ch.Publish(pc.p.exchange, key, d.opts.Mandatory, false, msg)
		if perr == nil {
			pc.p.published++
			return nil, nil
		}
		perr = fmt.Errorf("rabbitmq: publish: %w", perr)
		if !confirms {
			d.stats.PublishFailed.Add(1)
			return perr, nil
		}
		g.mu.Lock()
		if g.done {
			// The listener saw the channel close first and reported this
			// message with the others in flight, as unconfirmed.
			g.mu.Unlock()
			return nil, nil
		}
		g.pending = g.pending[:len(g.pending)-1]
		g.mu.Unlock()
		release()
		d.stats.PublishFailed.Add(1)
		pc.p.ack([]drivers.Result{{Stamp: m.Stamp, Err: perr}})
		return nil, nil
	}
}

// listen reports the outcome of every message published on g as its
// confirm arrives, in batches, and everything still pending as
// ErrUnconfirmed once the channel is gone.
func (pc *pubChan) listen(g *pubGen, confirms <-chan amqp.Confirmation, returns <-chan amqp.Return) {
	defer close(g.dead)
	p := pc.p
	d := p.d
	results := make([]drivers.Result, 0, 256)
	for {
		c, ok := <-confirms
		if !ok {
			break
		}
		results = results[:0]
		for {
			// A return comes before the confirm of the same message, on
			// another Go channel: take every return waiting first.
			pc.takeReturns(g, returns)
			results = pc.settle(g, c, results)
			if len(results) == cap(results) {
				break
			}
			select {
			case c, ok = <-confirms:
			default:
				ok = false
			}
			if !ok {
				break
			}
		}
		if len(results) > 0 {
			var confirmed, nacked int64
			for i := range results {
				switch results[i].Err {
				case nil:
					confirmed++
				case ErrNacked:
					nacked++
				}
			}
			d.stats.Confirmed.Add(confirmed)
			if nacked > 0 {
				d.stats.Nacked.Add(nacked)
			}
			p.ack(results)
		}
		for range results {
			<-pc.tokens
		}
	}
	// The channel is gone: what is pending may or may not have reached
	// the broker.
	pc.takeReturns(g, returns)
	g.mu.Lock()
	g.done = true
	rest := g.pending[g.head:]
	g.pending, g.head = nil, 0
	returned := g.returned
	g.mu.Unlock()
	if len(rest) == 0 {
		return
	}
	results = results[:0]
	var unconfirmed int64
	for _, s := range rest {
		r := drivers.Result{Stamp: s, Err: drivers.ErrUnconfirmed}
		if returned[s.Seq] {
			r.Err = ErrReturned
		} else {
			unconfirmed++
		}
		results = append(results, r)
	}
	d.stats.Unconfirmed.Add(unconfirmed)
	d.log.Warn("rabbitmq: producer channel lost with messages in flight", "producer", p.id, "unconfirmed", len(rest))
	p.ack(results)
	for range rest {
		<-pc.tokens
	}
}

// settle pops the message confirmed by c and appends its outcome.
func (pc *pubChan) settle(g *pubGen, c amqp.Confirmation, results []drivers.Result) []drivers.Result {
	d := pc.p.d
	g.mu.Lock()
	if g.head == len(g.pending) {
		g.mu.Unlock()
		d.log.Error("rabbitmq: a confirm for no pending message", "tag", c.DeliveryTag, "producer", pc.p.id)
		return results
	}
	s := g.pending[g.head]
	g.head++
	if g.head >= 1024 && g.head*2 >= len(g.pending) {
		n := copy(g.pending, g.pending[g.head:])
		g.pending, g.head = g.pending[:n], 0
	}
	ret := false
	if g.returned != nil && g.returned[s.Seq] {
		delete(g.returned, s.Seq)
		ret = true
	}
	g.mu.Unlock()
	r := drivers.Result{Stamp: s}
	switch {
	case !c.Ack:
		r.Err = ErrNacked
	case ret:
		r.Err = ErrReturned
	}
	return append(results, r)
}

// takeReturns records the returns waiting on returns (nil: none expected).
func (pc *pubChan) takeReturns(g *pubGen, returns <-chan amqp.Return) {
	if returns == nil {
		return
	}
	for {
		select {
		case r, ok := <-returns:
			if !ok {
				return
			}
			pc.p.d.stats.Returned.Add(1)
			s, err := stamp.Parse(stampOf(r.Headers, r.Body))
			if err != nil || s.Producer != uint32(pc.p.id) {
				continue
			}
			g.mu.Lock()
			g.returned[s.Seq] = true
			g.mu.Unlock()
		default:
			return
		}
	}
}

// watch follows a fire-and-forget channel: it counts returns and marks the
// generation done when the channel closes.
func (pc *pubChan) watch(g *pubGen, closes <-chan *amqp.Error, returns <-chan amqp.Return) {
	defer close(g.dead)
	for {
		select {
		case _, ok := <-returns:
			if ok {
				pc.p.d.stats.Returned.Add(1)
				continue
			}
			returns = nil
		case <-closes:
			g.mu.Lock()
			g.done = true
			g.mu.Unlock()
			return
		}
	}
}

// Close waits until every published message has an outcome or ctx ends,
// then closes the producer's channels; outcomes still missing then are
// reported as ErrUnconfirmed before Close returns.
func (p *producer) Close(ctx context.Context) error {
	if p.closed {
		return nil
	}
	p.closed = true
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for _, pc := range p.chans {
		for len(pc.tokens) > 0 && ctx.Err() == nil && !p.d.isClosed() {
			select {
			case <-ctx.Done():
			case <-p.d.closed:
			case <-t.C:
			}
		}
	}
	p.closeChannels(time.Now().Add(5 * time.Second))
	return nil
}

// closeChannels closes every channel and waits for its listener to report
// what is left, until deadline.
func (p *producer) closeChannels(deadline time.Time) {
	for _, pc := range p.chans {
		g := pc.cur
		if g == nil {
			continue
		}
		closed := make(chan struct{})
		go func() { _ = g.ch.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(time.Until(deadline)):
		}
		select {
		case <-g.dead:
		case <-time.After(time.Until(deadline)):
			p.d.log.Warn("rabbitmq: producer channel did not finish closing", "producer", p.id)
		}
	}
}
