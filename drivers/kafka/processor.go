package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spate-dev/spate/drivers"
)

// The built-in processor is the consume-transform-produce service of a
// pipeline scenario (`processor: builtin`): it reads the input topic (the
// driver's) in a consumer group of its own, spate-<run id>-processor, and
// writes every record again to the output topic, key, value and headers
// (the stamp) unchanged, to the output partition of the same number (so a
// producer's records keep their order when both topics have as many
// partitions). It is written the way applications that claim exactly-once
// are written:
//
//   - exactly-once: franz-go's GroupTransactSession. Records are read with
//     read_committed; a transaction holds what was produced and the
//     consumed offsets (TxnOffsetCommit) and commits both at once, every
//     commit-interval (100ms). A rebalance during a transaction aborts it,
//     and the records are processed again from the committed offsets.
//     Each instance's transactional id is <prefix>-processor-<id>, so a
//     restarted instance fences its dead predecessor and aborts what it
//     left open.
//   - at-least-once: produce, wait until every record is confirmed, mark
//     the consumed offsets, and commit them every commit-interval (the
//     consumers' commit-interval, 5s). A crash after producing and before
//     the next commit leaves records that are produced again.
//
// Crash kills an instance as kill -9 would: connections reset, nothing
// committed or aborted, no leave-group.

// processor is one instance of the built-in processor.
//
// Its client (member.cl) is the session's, or the at-least-once client.
type processor struct {
	*member
	eos        bool
	interval   time.Duration
	outTopic   string
	outParts   int32
	opts       []kgo.Opt
	sess       *kgo.GroupTransactSession // exactly-once
	produceErr atomic.Pointer[error]     // at least once: a record that could not be written

	// What the instance owns and what it wrote without committing the
	// input offsets, guarded by mu.
	owned map[int32]bool
	inTxn int64 // exactly-once: records written in the open transaction
	// At least once, per partition: the offset after the last record
	// processed, and the offset committed (or where processing started).
	next, base map[int32]int64
}

var _ drivers.Crasher = (*processor)(nil)

// NewProcessor returns instance id of the built-in processor
// (drivers.ProcessorMaker), a member of the processor's group, once it
// owns partitions (or after connect-timeout). spec.Output must be Kafka
// options naming the output topic on this driver's cluster, a topic other
// than the input's. Its connections go through Env.Dial with
// drivers.ConsumerSide.
func (d *Driver) NewProcessor(ctx context.Context, id int, spec drivers.ProcessorSpec) (drivers.Consumer, error) {
	if id < 0 {
		return nil, fmt.Errorf("kafka: processor id %d is negative", id)
	}
	if d.isClosed() {
		return nil, ErrClosed
	}
	out, ok := asOptions(spec.Output)
	if !ok {
		return nil, fmt.Errorf("kafka: processor output options of type %T, want kafka.Options", spec.Output)
	}
	out.fillDefaults()
	if out.Topic == d.opts.Topic {
		return nil, fmt.Errorf("kafka: the processor's output topic is its input %q; give the output a topic of its own", out.Topic)
	}
	o := &d.opts
	p := &processor{
		outTopic: out.Topic,
		owned:    map[int32]bool{}, next: map[int32]int64{}, base: map[int32]int64{},
	}
	p.member = d.newMember("processor", id, func() { d.untrackProcessor(p) },
		kerr.TopicAuthorizationFailed, kerr.GroupAuthorizationFailed,
		kerr.TransactionalIDAuthorizationFailed, kerr.SaslAuthenticationFailed)
	switch spec.Mode {
	case drivers.ExactlyOnce:
		p.eos, p.interval = true, DefaultProcessorTxnInterval
	case drivers.AtLeastOnce:
		p.interval = o.CommitInterval
	default:
		return nil, fmt.Errorf("kafka: processor mode %q is not %s or %s", spec.Mode, drivers.ExactlyOnce, drivers.AtLeastOnce)
	}
	if spec.CommitInterval > 0 {
		p.interval = spec.CommitInterval
	}
	parts, err := d.topicPartitions(ctx, out.Topic)
	if err != nil {
		return nil, err
	}
	p.outParts = int32(parts)
	d.procStart.Do(func() {
		if o.Start == StartRun {
			d.procStartErr = d.commitStart(ctx, d.processorGroup())
		}
	})
	if d.procStartErr != nil {
		return nil, d.procStartErr
	}

	p.opts = append(p.groupOpts(d.processorGroup()),
		kgo.OnPartitionsAssigned(p.assigned),
		kgo.OnPartitionsLost(p.dropped),
		kgo.DefaultProduceTopic(out.Topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(o.Linger),
		kgo.ProducerBatchCompression(o.Compression.codec()),
	)
	if p.eos {
		timeout := DefaultTxnTimeout
		if t := o.Transactions; t != nil {
			timeout = t.Timeout
		}
		p.opts = append(p.opts,
			kgo.TransactionalID(d.txnPrefix()+"-processor-"+strconv.Itoa(id)),
			kgo.TransactionTimeout(timeout),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.RequireStableFetchOffsets(),
			kgo.OnPartitionsRevoked(p.dropped),
		)
		if p.sess, err = kgo.NewGroupTransactSession(p.opts...); err == nil {
			p.cl = p.sess.Client()
		}
	} else {
		p.opts = append(p.opts,
			kgo.AutoCommitMarks(),
			kgo.AutoCommitInterval(p.interval),
			kgo.AutoCommitCallback(p.committed),
			kgo.BlockRebalanceOnPoll(),
			kgo.OnPartitionsRevoked(p.revoked),
		)
		if o.Isolation == ReadCommitted {
			p.opts = append(p.opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		}
		p.cl, err = kgo.NewClient(p.opts...)
	}
	if err != nil {
		p.cancel()
		return nil, fmt.Errorf("kafka: processor %d: %w", id, err)
	}
	if err := d.trackProcessor(p); err != nil {
		p.cl.Close()
		p.cancel()
		return nil, err
	}
	if err := p.waitJoined(ctx, d.processorGroup(), p.joined); err != nil {
		p.shut()
		return nil, err
	}
	return p, nil
}

// processorGroup is the built-in processor's consumer group.
func (d *Driver) processorGroup() string { return d.group + "-processor" }

// topicPartitions is the number of partitions of topic.
func (d *Driver) topicPartitions(ctx context.Context, topic string) (int, error) {
	ends, err := d.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("kafka: looking up topic %q: %w", topic, err)
	}
	if len(ends[topic]) == 0 {
		return 0, fmt.Errorf("kafka: topic %q does not exist", topic)
	}
	return len(ends[topic]), nil
}

func (d *Driver) trackProcessor(p *processor) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	d.processors[p] = struct{}{}
	return nil
}

func (d *Driver) untrackProcessor(p *processor) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.processors, p)
}

func (d *Driver) processorCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.processors)
}

// joined tells whether the instance owns partitions, or the group has
// more instances than the input has partitions (waitJoined).
func (p *processor) joined() bool {
	p.mu.Lock()
	owned := len(p.owned)
	p.mu.Unlock()
	return owned > 0 || p.d.processorCount() > p.d.partitions
}

func (p *processor) assigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	p.mu.Lock()
	for _, part := range m[p.d.opts.Topic] {
		p.owned[part] = true
		delete(p.next, part)
		delete(p.base, part)
	}
	p.mu.Unlock()
	p.signalAssigned()
}

// revoked commits what was processed before the partitions go (at least
// once), as the consumers do.
func (p *processor) revoked(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	p.commitRevoked(ctx, cl, cl.MarkedOffsets, p.committed)
	p.dropped(ctx, cl, m)
}

func (p *processor) dropped(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, part := range m[p.d.opts.Topic] {
		delete(p.owned, part)
		delete(p.next, part)
		delete(p.base, part)
	}
}

// committed sees the at-least-once commits.
func (p *processor) committed(_ *kgo.Client, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
	if err != nil {
		return
	}
	failed := map[int32]bool{}
	for _, t := range resp.Topics {
		for _, pp := range t.Partitions {
			if pp.ErrorCode != 0 {
				failed[pp.Partition] = true
			}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range req.Topics {
		if t.Topic != p.d.opts.Topic {
			continue
		}
		for _, pp := range t.Partitions {
			if !failed[pp.Partition] && p.owned[pp.Partition] {
				p.base[pp.Partition] = pp.Offset
			}
		}
	}
}

// pending is what the instance wrote without committing its input
// offsets. Called with p.mu held.
func (p *processor) pending() int64 {
	if p.eos {
		return p.inTxn
	}
	var n int64
	for part, next := range p.next {
		if b, ok := p.base[part]; ok && next > b {
			n += next - b
		}
	}
	return n
}

// Consume runs the processing loop until ctx is done, then commits what
// was processed (exactly-once: ends the open transaction with a commit),
// leaves the group and returns nil. h sees each batch of input records
// (their stamps, partitions and offsets) before they are written to the
// output.
func (p *processor) Consume(ctx context.Context, h drivers.Handler) error {
	return p.consumeOnce(func() error { return p.consume(ctx, h) })
}

func (p *processor) consume(ctx context.Context, h drivers.Handler) error {
	pctx, stop := p.pollContext(ctx)
	defer stop()
	batch := make([]drivers.Delivery, 0, maxPoll)
	var recs []*kgo.Record
	var inTxn bool
	var started time.Time
	for {
		if err := p.stopping(); err != nil {
			return err
		}
		pollCtx, cancelPoll := pctx, context.CancelFunc(func() {})
		if inTxn {
			pollCtx, cancelPoll = context.WithDeadline(pctx, started.Add(p.interval))
		}
		var fetches kgo.Fetches
		if p.eos {
			fetches = p.sess.PollRecords(pollCtx, maxPoll)
		} else {
			fetches = p.cl.PollRecords(pollCtx, maxPoll)
		}
		cancelPoll()
		recs = recs[:0]
		fetches.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
		if done, err := p.afterPoll(ctx, pctx, fetches); err != nil {
			return err
		} else if done {
			// The records of this last poll are not processed: at least
			// once they are not marked; exactly-once the transaction,
			// whose offsets would cover them, aborts.
			return p.finish(inTxn, len(recs) == 0)
		}
		if err := p.fetchErrors(fetches); err != nil {
			return err
		}
		if len(recs) > 0 {
			batch = batch[:0]
			for _, r := range recs {
				batch = append(batch, drivers.Delivery{Stamp: stampOf(r), Stream: r.Partition, HasOffset: true, Offset: r.Offset})
			}
			h(batch)
			clear(batch)
			if p.isCrashed() {
				return drivers.ErrCrashed
			}
			if p.eos && !inTxn {
				if err := p.sess.Begin(); err != nil {
					if rerr := p.restart(err); rerr != nil {
						return rerr
					}
					continue // the new session reads from the committed offsets
				}
				inTxn, started = true, time.Now()
			}
			// The client keeps each record until its promise: a fresh
			// slice per batch.
			outs := make([]kgo.Record, len(recs))
			for i, r := range recs {
				outs[i] = kgo.Record{Key: r.Key, Value: r.Value, Headers: r.Headers, Partition: r.Partition % p.outParts}
				if p.eos {
					p.sess.Produce(pctx, &outs[i], p.promise)
				} else {
					p.cl.Produce(pctx, &outs[i], p.promise)
				}
			}
			if p.eos {
				p.mu.Lock()
				p.inTxn += int64(len(outs))
				p.mu.Unlock()
			} else if err := p.confirm(pctx, recs); err != nil {
				return err
			}
		}
		if inTxn && time.Since(started) >= p.interval {
			inTxn = false
			if err := p.endTxn(pctx); err != nil {
				if errors.Is(err, drivers.ErrCrashed) || errors.Is(err, ErrClosed) {
					return err
				}
				if rerr := p.restart(err); rerr != nil {
					return rerr
				}
			}
		}
		if !p.eos {
			p.cl.AllowRebalance()
		}
	}
}

// restart replaces a failed exactly-once session (a transaction that
// could not end: fenced, timed out while the instance was paused, the
// retries exhausted during an outage) with a new one of the same
// transactional id, as an application's supervisor restarts a failed
// service: it leaves the group, and the new session aborts whatever is
// still open and reads again from the committed offsets.
func (p *processor) restart(cause error) error {
	p.d.log.Warn("processor failed; starting it again", "processor", p.id, "err", cause)
	p.d.stats.proc.Restarts.Add(1)
	old := p.sess
	p.d.bg.Add(1)
	go func() { // leaving the group may wait on a cluster in trouble
		defer p.d.bg.Done()
		old.CloseAllowingRebalance()
	}()
	sess, err := kgo.NewGroupTransactSession(p.opts...)
	if err != nil {
		return fmt.Errorf("kafka: processor %d: restarting after %v: %w", p.id, cause, err)
	}
	p.mu.Lock()
	p.sess, p.cl = sess, sess.Client()
	p.inTxn = 0
	p.mu.Unlock()
	return nil
}

// promise sees each output record's write. A failure at least once stops
// the instance (its input offsets are not committed, so the records are
// processed again by whoever takes its partitions); exactly-once, the
// session aborts the transaction.
func (p *processor) promise(_ *kgo.Record, err error) {
	if err != nil && !p.eos && !errors.Is(err, context.Canceled) {
		p.produceErr.CompareAndSwap(nil, &err)
	}
}

// confirm waits until the batch's output records are confirmed, then marks
// its input offsets for the next commit (at least once).
func (p *processor) confirm(ctx context.Context, recs []*kgo.Record) error {
	if err := p.cl.Flush(ctx); err != nil {
		if p.isCrashed() {
			return drivers.ErrCrashed
		}
		return nil // stopping: left unmarked, the batch is processed again
	}
	if perr := p.produceErr.Load(); perr != nil {
		return fmt.Errorf("kafka: processor %d: writing to %q: %w", p.id, p.outTopic, *perr)
	}
	last := map[int32]*kgo.Record{}
	p.mu.Lock()
	for _, r := range recs {
		if _, ok := p.base[r.Partition]; !ok {
			p.base[r.Partition] = r.Offset // where this owner started
		}
		p.next[r.Partition] = r.Offset + 1
		last[r.Partition] = r
	}
	p.mu.Unlock()
	marks := make([]*kgo.Record, 0, len(last))
	for _, r := range last {
		marks = append(marks, r)
	}
	p.cl.MarkCommitRecords(marks...)
	p.d.stats.proc.Processed.Add(int64(len(recs)))
	return nil
}

// endTxn ends the open transaction with a commit: committed, or aborted by
// the session (after a rebalance, a failed write or a fenced commit), in
// which case the records are read again from the committed offsets.
func (p *processor) endTxn(ctx context.Context) error {
	committed, err := p.sess.End(ctx, kgo.TryCommit)
	p.mu.Lock()
	n := p.inTxn
	p.inTxn = 0
	crashed := p.crashed
	p.mu.Unlock()
	switch {
	case crashed:
		return drivers.ErrCrashed
	case err != nil && ctx.Err() != nil:
		return ErrClosed
	case err != nil:
		return fmt.Errorf("kafka: processor %d: ending a transaction: %w", p.id, err)
	case committed:
		p.d.stats.proc.TxnCommitted.Add(1)
		p.d.stats.proc.Processed.Add(n)
	default:
		p.d.stats.proc.TxnAborted.Add(1)
	}
	return nil
}

// finish ends cleanly after the engine asked the instance to stop: the
// open transaction commits (aborts when its offsets would cover records
// polled and not processed, !commit), or the marked offsets are
// committed.
func (p *processor) finish(inTxn, commit bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*closeWait)
	defer cancel()
	if p.eos {
		if !inTxn {
			return nil
		}
		if !commit {
			_, err := p.sess.End(ctx, kgo.TryAbort)
			p.mu.Lock()
			p.inTxn = 0
			p.mu.Unlock()
			p.d.stats.proc.TxnAborted.Add(1)
			if err != nil {
				p.d.log.Warn("processor's last abort failed", "processor", p.id, "err", err)
			}
			return nil
		}
		if err := p.endTxn(ctx); err != nil && !errors.Is(err, drivers.ErrCrashed) {
			p.d.log.Warn("processor's last commit failed", "processor", p.id, "err", err)
		}
		return nil
	}
	if err := p.cl.CommitMarkedOffsets(ctx); err != nil && !p.isCrashed() {
		p.d.log.Warn("processor's last commit failed", "processor", p.id, "err", err)
	}
	return nil
}

// Crash kills the instance as kill -9 would: connections reset, no
// further ones, nothing committed or aborted, no LeaveGroup; Consume
// returns drivers.ErrCrashed promptly. Its open transaction stays open
// until a new instance with its id fences it or the transaction timeout
// aborts it; its partitions move after the session timeout, and their new
// owner reads from the last committed offsets (exactly-once: once the
// open transaction is resolved). Stats count what it had written without
// committing its input offsets (processor_crash_pending). Crash is safe to
// call more than once and concurrently with Consume.
func (p *processor) Crash() {
	p.crashWith(func() {
		p.d.stats.proc.Crashes.Add(1)
		p.d.stats.proc.CrashPending.Add(p.pending())
	})
}
