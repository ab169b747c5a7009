package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
)

// producer is one Producer: a franz-go client of its own, so each spate
// producer has its own connections and, when idempotent, its own producer id.
type producer struct {
	d           *Driver
	id          int
	ack         drivers.AckFunc
	cl          *kgo.Client
	unconfirmed bool // acks: none

	// res is the promise's scratch: franz-go calls all promises of a
	// client serially, from one goroutine at a time.
	res [1]drivers.Result
	// promiseFn is promise as a func value, made once: a method value
	// made per record would cost an allocation each.
	promiseFn func(*kgo.Record, error)

	// Backpressure: at most limit records without an outcome. Send waits
	// for space itself, so that its ctx bounds the wait while records keep
	// the producer's own context (a record's context cancels it in
	// franz-go, and Send's ctx ends when Send returns).
	limit    int64
	inflight atomic.Int64
	waiting  atomic.Bool
	space    chan struct{}
	ctx      context.Context // the records' context, ended by a timed-out Close
	// unlingered is when wait last had lingering batches sent; only Send's
	// goroutine uses it.
	unlingered time.Time
	cancel     context.CancelFunc

	mu     sync.Mutex
	closed bool
	done   chan struct{} // closed once the client is closed

	// txn is the transaction state of a transactional producer, nil
	// otherwise (txn.go); opts are its client's options, to replace a
	// client that failed.
	txn  *txnState
	opts []kgo.Opt
}

// NewProducer returns producer id, which reports outcomes to ack. Its
// connections go through Env.Dial with drivers.ProducerSide.
func (d *Driver) NewProducer(_ context.Context, id int, ack drivers.AckFunc) (drivers.Producer, error) {
	if id < 0 {
		return nil, fmt.Errorf("kafka: producer id %d is negative", id)
	}
	if ack == nil {
		return nil, errors.New("kafka: producer needs an AckFunc")
	}
	if d.isClosed() {
		return nil, ErrClosed
	}
	o := &d.opts
	dial := newDialer(drivers.ProducerSide, d.env.Dial, d.tls, o.ConnectTimeout)
	opts := append(d.clientOpts(dial, fmt.Sprintf("producer-%d", id)),
		kgo.DefaultProduceTopic(o.Topic),
		kgo.ProducerLinger(o.Linger),
		kgo.ProducerBatchMaxBytes(int32(o.BatchMaxBytes)),
		kgo.MaxBufferedRecords(o.MaxBufferedRecords+1024), // Send keeps to MaxBufferedRecords
		kgo.ProducerBatchCompression(o.Compression.codec()),
		kgo.RequiredAcks(o.Acks.kgo()),
	)
	if o.MaxBufferedBytes > 0 {
		opts = append(opts, kgo.MaxBufferedBytes(o.MaxBufferedBytes))
	}
	if !o.Idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	if o.BatchMaxBytes > DefaultBatchMaxBytes {
		opts = append(opts, kgo.BrokerMaxWriteBytes(int32(max(100<<20, o.BatchMaxBytes+1<<20))))
	}
	if t := o.Transactions; t != nil {
		opts = append(opts, kgo.TransactionalID(d.txnPrefix()+"-producer-"+strconv.Itoa(id)), kgo.TransactionTimeout(t.Timeout))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: producer %d: %w", id, err)
	}
	p := &producer{
		d: d, id: id, ack: ack, cl: cl, unconfirmed: o.Acks == AcksNone,
		limit: int64(o.MaxBufferedRecords), space: make(chan struct{}, 1), done: make(chan struct{}),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.promiseFn = p.promise
	if t := o.Transactions; t != nil {
		p.txn = newTxnState(t, id)
		p.promiseFn = p.txnPromise
		p.opts = opts
	}
	if err := d.track(p, nil); err != nil {
		cl.Close()
		return nil, err
	}
	if p.txn != nil {
		go p.txnTimer()
	}
	return p, nil
}

// Send hands msgs to franz-go, which batches them per partition. A message
// becomes one record: its Key, the value Body[stamp.Size:] and the header
// spate-stamp = Body[:stamp.Size], so the record is as large as the
// message. Send blocks while max-buffered-records records have no outcome;
// if ctx ends meanwhile, the messages not handed over yet fail with ctx's
// error. With max-buffered-bytes it also blocks in franz-go while the
// client holds that many bytes, until records get their outcomes (ctx does
// not end that wait). Each outcome is reported from the record's promise.
func (p *producer) Send(ctx context.Context, msgs []drivers.Message) error {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return errors.New("kafka: producer closed")
	}
	if p.txn != nil {
		return p.sendTxn(ctx, msgs)
	}
	// One allocation for the records of the call and one for their
	// headers; franz-go keeps each record until its promise runs.
	recs := make([]kgo.Record, len(msgs))
	hdrs := make([]kgo.RecordHeader, len(msgs))
	for i := range msgs {
		if err := p.wait(ctx); err != nil {
			p.fail(msgs[i:], err)
			return nil
		}
		m, r, h := &msgs[i], &recs[i], &hdrs[i]
		if len(m.Head) < stamp.Size { // the promise could not tell whose outcome it has
			p.inflight.Add(-1)
			p.fail(msgs[i:i+1], fmt.Errorf("kafka: message stamp of %d bytes is shorter than a stamp (%d bytes)", len(m.Head), stamp.Size))
			continue
		}
		h.Key = StampHeader
		h.Value = m.Head[:stamp.Size:stamp.Size]
		r.Value = m.Tail
		r.Key = m.Key
		r.Headers = hdrs[i : i+1 : i+1]
		r.Timestamp = time.Unix(0, m.Stamp.Sent) // the stamp's send time, and no clock read per record
		p.cl.Produce(p.ctx, r, p.promiseFn)
	}
	return nil
}

// wait takes room for one record, waiting while there is none. While it
// waits it has franz-go send the batches that are lingering, as franz-go
// does itself for a client blocked at its buffer limit: a full producer
// does not linger. It asks again every unlingerEvery, for records that were
// still waiting for metadata when it first asked.
func (p *producer) wait(ctx context.Context) error {
	var timer *time.Timer
	for p.inflight.Load() >= p.limit {
		p.waiting.Store(true)
		if p.inflight.Load() < p.limit { // a promise may have run before waiting was set
			break
		}
		if now := time.Now(); now.Sub(p.unlingered) >= unlingerGap {
			p.unlingered = now
			_ = p.cl.Flush(expired) // starts sending at once, returns at once
		}
		if timer == nil {
			timer = time.NewTimer(unlingerEvery)
			defer timer.Stop()
		} else {
			timer.Reset(unlingerEvery)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.space:
		case <-timer.C:
		}
	}
	p.inflight.Add(1)
	return nil
}

// unlingerEvery is how often a waiting Send has lingering batches sent;
// unlingerGap is the least time between two such requests, which are not
// free (a Send blocks for nearly every record at max rate).
const (
	unlingerEvery = 2 * time.Millisecond
	unlingerGap   = time.Millisecond
)

// expired is a context that is already done.
var expired = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// fail reports msgs as failed with err without sending them.
func (p *producer) fail(msgs []drivers.Message, err error) {
	rs := make([]drivers.Result, len(msgs))
	for i := range msgs {
		rs[i] = drivers.Result{Stamp: msgs[i].Stamp, Err: err}
	}
	p.d.stats.ProduceErrors.Add(int64(len(msgs)))
	p.ack(rs)
}

// promise reports one record's outcome.
func (p *producer) promise(r *kgo.Record, err error) {
	res := &p.res[0]
	res.Stamp, _ = stamp.Parse(r.Headers[0].Value)
	switch {
	case err != nil:
		res.Err = err
		p.d.stats.ProduceErrors.Add(1)
	case p.unconfirmed:
		res.Err = drivers.ErrUnconfirmed
	default:
		res.Err = nil
		p.d.stats.Produced.Add(1)
	}
	p.ack(p.res[:])
	p.release()
}

// release gives back the room one record held and wakes a waiting Send.
func (p *producer) release() {
	if p.inflight.Add(-1) < p.limit && p.waiting.Load() {
		p.waiting.Store(false)
		select {
		case p.space <- struct{}{}:
		default:
		}
	}
}

// Close waits until every record sent has its outcome or ctx is done; then
// records still unconfirmed fail with franz-go's client-closed error, and
// the producer's connections close.
func (p *producer) Close(ctx context.Context) error {
	p.d.untrack(p, nil)
	return p.shut(ctx)
}

func (p *producer) shut(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	defer close(p.done)
	if p.txn != nil {
		p.closeTxn(ctx)
	}
	err := p.cl.Flush(ctx)
	p.cancel()
	p.cl.Close()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("kafka: producer %d: flush: %w", p.id, err)
	}
	return nil
}
