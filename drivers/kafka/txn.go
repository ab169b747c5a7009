package kafka

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
)

// A transactional producer (the scenario's `transactions:` block) writes
// its messages in transactions: it begins one before the first message,
// adds messages until it holds `records` of them or has been open
// `max-duration`, then flushes and ends it: committed, or aborted when the
// seeded draw made at its beginning says so, or when one of its records
// failed. Only then are the outcomes of its messages reported: confirmed
// (Err nil) once the commit is, drivers.ErrAborted when it was aborted (on
// purpose, after a failure, or never asked to commit), and the commit's
// error when its outcome is unknown (the commit request failed in flight:
// the transaction may or may not have committed). Every message's stamp
// carries its transaction's number, 1, 2, ... per producer.
//
// One transaction is open at a time per producer: Send blocks while one
// ends (a flush and the EndTxn round trip), which the open load model sees
// as latency, as an application would.

// txnState is one producer's transaction state. mu is held by whoever
// produces into the transaction or ends it: Send, or the timer that ends
// a transaction that has been open too long while Send is idle.
type txnState struct {
	mu          sync.Mutex
	records     int
	maxDuration time.Duration
	abortRate   float64
	rng         *rand.Rand

	next    uint64 // the next transaction's number
	open    bool
	num     uint64 // the open transaction's number
	abort   bool   // it will be aborted on purpose
	started time.Time
	stamps  []stamp.Stamp // its messages, in send order
	// failed is set by a promise when one of its records failed.
	failed atomic.Bool

	stop, stopped chan struct{} // the timer goroutine
	stopOnce      sync.Once
}

func newTxnState(o *TransactionOptions, producer int) *txnState {
	return &txnState{
		records:     o.Records,
		maxDuration: o.MaxDuration,
		abortRate:   o.Abort,
		rng:         rand.New(rand.NewPCG(uint64(o.Seed), uint64(producer))),
		next:        1,
		stop:        make(chan struct{}),
		stopped:     make(chan struct{}),
	}
}

// txnPrefix is the prefix of the run's transactional ids.
func (d *Driver) txnPrefix() string {
	if t := d.opts.Transactions; t != nil && t.IDPrefix != "" {
		return t.IDPrefix
	}
	return "spate-" + stamp.RunIDString(d.env.RunID)
}

// sendTxn is Send for a transactional producer. Each message becomes a
// record as in Send, with a copy of its stamp that carries the transaction
// number (the engine's stamp is shared between a message and its chaos
// re-sends, which may land in another transaction).
func (p *producer) sendTxn(ctx context.Context, msgs []drivers.Message) error {
	t := p.txn
	t.mu.Lock()
	defer t.mu.Unlock()
	recs := make([]kgo.Record, len(msgs))
	hdrs := make([]kgo.RecordHeader, len(msgs))
	heads := make([]byte, stamp.Size*len(msgs))
	for i := range msgs {
		if t.open && (len(t.stamps) >= t.records || time.Since(t.started) >= t.maxDuration) {
			p.endTxn()
		}
		if !t.open {
			if err := p.beginTxn(); err != nil {
				p.fail(msgs[i:], err)
				return fmt.Errorf("kafka: producer %d: %w", p.id, err)
			}
		}
		if err := p.wait(ctx); err != nil {
			p.fail(msgs[i:], err)
			return nil
		}
		m, r, h := &msgs[i], &recs[i], &hdrs[i]
		s := m.Stamp
		s.Txn = t.num
		head := heads[i*stamp.Size : (i+1)*stamp.Size : (i+1)*stamp.Size]
		s.Put(head)
		h.Key, h.Value = StampHeader, head
		r.Value, r.Key = m.Tail, m.Key
		r.Headers = hdrs[i : i+1 : i+1]
		r.Timestamp = time.Unix(0, m.Stamp.Sent)
		t.stamps = append(t.stamps, s)
		p.cl.Produce(p.ctx, r, p.promiseFn)
	}
	if t.open && len(t.stamps) >= t.records {
		p.endTxn()
	}
	return nil
}

// txnPromise sees each transactional record's write: a failure dooms its
// transaction. The record's outcome is reported when the transaction ends.
func (p *producer) txnPromise(_ *kgo.Record, err error) {
	if err != nil {
		if !p.txn.failed.Load() {
			p.d.log.Warn("transactional write failed; the transaction will abort", "producer", p.id, "err", err)
		}
		p.txn.failed.Store(true)
		p.d.stats.ProduceErrors.Add(1)
	} else {
		p.d.stats.Produced.Add(1)
	}
	p.release()
}

// beginTxn begins the next transaction and draws whether it is to be
// aborted. A client in a fatal state (after a failed end) is replaced by a
// new one with the same transactional id, which fences the old and aborts
// what it left open, as an application restarting its producer would.
// Called with t.mu held.
func (p *producer) beginTxn() error {
	t := p.txn
	err := p.cl.BeginTransaction()
	if err != nil {
		p.d.log.Warn("transactional producer failed; starting a new client", "producer", p.id, "err", err)
		if rerr := p.reopen(); rerr != nil {
			return fmt.Errorf("begin transaction: %v; new client: %w", err, rerr)
		}
		if err = p.cl.BeginTransaction(); err != nil {
			return fmt.Errorf("begin transaction: %w", err)
		}
	}
	t.open, t.num, t.started = true, t.next, time.Now()
	t.next++
	t.abort = t.abortRate > 0 && t.rng.Float64() < t.abortRate
	t.failed.Store(false)
	return nil
}

// reopen replaces the producer's client with a new one of the same options.
func (p *producer) reopen() error {
	cl, err := kgo.NewClient(p.opts...)
	if err != nil {
		return err
	}
	old := p.cl
	p.cl = cl
	old.Close()
	return nil
}

// endTxn flushes the open transaction and ends it, then reports the
// outcome of every message in it (see the top of this file). Called with
// t.mu held.
func (p *producer) endTxn() {
	t := p.txn
	t.open = false
	ctx := p.ctx
	flushErr := p.cl.Flush(ctx)
	var outcome error
	switch {
	case t.abort || t.failed.Load() || flushErr != nil:
		outcome = drivers.ErrAborted // never asked to commit: it cannot have committed
		if err := p.cl.EndTransaction(ctx, kgo.TryAbort); err != nil && ctx.Err() == nil {
			p.d.log.Warn("aborting a transaction failed; the coordinator aborts it at its timeout or when the producer restarts",
				"producer", p.id, "txn", t.num, "err", err)
		}
	default:
		err := p.cl.EndTransaction(ctx, kgo.TryCommit)
		switch {
		case err == nil:
		case errors.Is(err, kerr.OperationNotAttempted), errors.Is(err, kerr.TransactionAbortable):
			// The commit was not sent, or the coordinator refused the
			// transaction: it aborts.
			outcome = drivers.ErrAborted
			_ = p.cl.EndTransaction(ctx, kgo.TryAbort)
		default:
			// The commit request failed in flight: it may have committed.
			// Aborting now (franz-go's advice) fences whatever is still
			// open, but cannot undo a commit that happened.
			outcome = fmt.Errorf("kafka: producer %d transaction %d: commit outcome unknown: %w", p.id, t.num, err)
			_ = p.cl.EndTransaction(ctx, kgo.TryAbort)
		}
	}
	st := &p.d.stats.txn
	switch {
	case len(t.stamps) == 0: // nothing was written in it
	case outcome == nil:
		st.Committed.Add(1)
		st.CommittedRecords.Add(int64(len(t.stamps)))
	case errors.Is(outcome, drivers.ErrAborted):
		st.Aborted.Add(1)
		st.AbortedRecords.Add(int64(len(t.stamps)))
		if t.abort {
			st.AbortedOnPurpose.Add(1)
		}
	default:
		st.Unknown.Add(1)
	}
	if len(t.stamps) > 0 {
		rs := make([]drivers.Result, len(t.stamps))
		for i := range t.stamps {
			rs[i] = drivers.Result{Stamp: t.stamps[i], Err: outcome}
		}
		p.ack(rs)
	}
	t.stamps = t.stamps[:0]
}

// txnTimer ends a transaction that has been open max-duration while Send
// is idle, so that a slow schedule's messages are not held back.
func (p *producer) txnTimer() {
	t := p.txn
	defer close(t.stopped)
	every := max(t.maxDuration/4, time.Millisecond)
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tk.C:
		}
		if !t.mu.TryLock() { // Send is busy; it ends transactions itself
			continue
		}
		if t.open && time.Since(t.started) >= t.maxDuration {
			p.endTxn()
		}
		t.mu.Unlock()
	}
}

// closeTxn stops the timer and ends the open transaction as it was meant
// to end. If ctx ends first, the records' context is cancelled, the
// transaction is aborted by the coordinator, and its messages are reported
// as aborted.
func (p *producer) closeTxn(ctx context.Context) {
	t := p.txn
	t.stopOnce.Do(func() { close(t.stop) })
	<-t.stopped
	stop := context.AfterFunc(ctx, p.cancel)
	defer stop()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.open {
		p.endTxn()
	}
}
