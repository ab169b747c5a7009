package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spate-dev/spate/drivers"
)

// maxPoll bounds the records handed to one Handler call.
const maxPoll = 4096

// consumer is one Consumer: a franz-go client in the run's group.
type consumer struct {
	*member
	sub   int    // its subscription (Env.SubscriptionOf)
	group string // its subscription's consumer group
	marks bool   // commit: after-processing

	// The partitions the consumer owns and what it delivered from each
	// since the last commit it saw confirmed, guarded by mu.
	parts map[int32]*partition
}

// partition is what a consumer knows of one partition it owns.
type partition struct {
	fresh bool   // assigned, nothing delivered from it yet
	sent  []span // offsets delivered since the last confirmed commit, ascending
}

// span is the offsets from first to first+n-1. Offsets a consumer delivers
// from a partition increase, nearly always by one, so a few spans hold
// them all.
type span struct{ first, n int64 }

// add records offset o, delivered after every offset already recorded.
func (ps *partition) add(o int64) {
	if k := len(ps.sent); k > 0 && ps.sent[k-1].first+ps.sent[k-1].n == o {
		ps.sent[k-1].n++
		return
	}
	ps.sent = append(ps.sent, span{o, 1})
}

// trim forgets the offsets below o.
func (ps *partition) trim(o int64) {
	i := 0
	for i < len(ps.sent) && ps.sent[i].first+ps.sent[i].n <= o {
		i++
	}
	ps.sent = ps.sent[:copy(ps.sent, ps.sent[i:])]
	if len(ps.sent) > 0 && ps.sent[0].first < o {
		ps.sent[0].n -= o - ps.sent[0].first
		ps.sent[0].first = o
	}
}

// count is the number of offsets in spans at or after o.
func count(spans []span, o int64) int64 {
	var n int64
	for _, s := range spans {
		switch {
		case s.first >= o:
			n += s.n
		case s.first+s.n > o:
			n += s.first + s.n - o
		}
	}
	return n
}

var _ drivers.Crasher = (*consumer)(nil)

// NewConsumer returns consumer id, a member of the run's consumer group;
// with several subscriptions (fan-out), of its subscription's group, each
// of which reads every record.
// With start: run (the default) the group's offsets were set at Open to
// the ends of the partitions, so every message sent after Open, and so
// after NewConsumer returns, is delivered to the group, whenever the
// member gets its partitions. NewConsumer still waits, up to
// connect-timeout, until the member has partitions (or has joined, when the
// group has more members than partitions), so that traffic does not start
// while the group forms. Its connections go through Env.Dial with
// drivers.ConsumerSide.
func (d *Driver) NewConsumer(ctx context.Context, id int) (drivers.Consumer, error) {
	if id < 0 {
		return nil, fmt.Errorf("kafka: consumer id %d is negative", id)
	}
	if d.isClosed() {
		return nil, ErrClosed
	}
	o := &d.opts
	c := &consumer{
		sub:   d.env.SubscriptionOf(id),
		group: d.groupOf(d.env.SubscriptionOf(id)),
		marks: o.Commit == CommitAfterProcessing,
		parts: map[int32]*partition{},
	}
	c.member = d.newMember("consumer", id, func() { d.untrack(nil, c) },
		kerr.TopicAuthorizationFailed, kerr.GroupAuthorizationFailed,
		kerr.SaslAuthenticationFailed, kerr.ClusterAuthorizationFailed)
	opts := append(c.groupOpts(c.group),
		kgo.AutoCommitInterval(o.CommitInterval),
		kgo.AutoCommitCallback(c.committed),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
	)
	if c.marks {
		opts = append(opts, kgo.AutoCommitMarks())
	}
	if o.Isolation == ReadCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		c.cancel()
		return nil, fmt.Errorf("kafka: consumer %d: %w", id, err)
	}
	c.cl = cl
	if err := d.track(nil, c); err != nil {
		cl.Close()
		c.cancel()
		return nil, err
	}
	if err := c.waitJoined(ctx, c.group, c.joined); err != nil {
		c.shut()
		return nil, err
	}
	return c, nil
}

// joined tells whether the consumer owns partitions, or has joined the
// group when the group has more members than the topic has partitions
// (waitJoined).
func (c *consumer) joined() bool {
	c.mu.Lock()
	owned := len(c.parts)
	c.mu.Unlock()
	return owned > 0 || c.d.consumerCount(c.sub) > c.d.partitions
}

// Consume polls records and hands them to h until ctx is done; then the
// consumer commits what h processed, leaves the group and returns nil. A
// consumer consumes once: after Consume returns it has left the group. A
// record's Delivery has the spate-stamp header's value as Stamp (nil when
// the record has none), its partition as Stream and its offset as Offset. With commit:
// after-processing, a record's offset is committed only after h returned
// for it. Rebalances wait until h returns, so a partition moves between
// consumers only at a batch boundary.
func (c *consumer) Consume(ctx context.Context, h drivers.Handler) error {
	return c.consumeOnce(func() error { return c.consume(ctx, h) })
}

func (c *consumer) consume(ctx context.Context, h drivers.Handler) error {
	pctx, stop := c.pollContext(ctx)
	defer stop()
	batch := make([]drivers.Delivery, 0, maxPoll)
	last := make([]*kgo.Record, 0, 16)
	for {
		if err := c.stopping(); err != nil {
			return err
		}
		fetches := c.cl.PollRecords(pctx, maxPoll)
		if done, err := c.afterPoll(ctx, pctx, fetches); done || err != nil {
			return err
		}
		if err := c.fetchErrors(fetches); err != nil {
			return err
		}

		batch, last = batch[:0], last[:0]
		var unstamped int64
		c.mu.Lock()
		if c.crashed {
			c.mu.Unlock()
			return drivers.ErrCrashed
		}
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			if len(fp.Records) == 0 {
				return
			}
			ps := c.parts[fp.Partition]
			if ps == nil {
				ps = &partition{}
				c.parts[fp.Partition] = ps
			}
			if ps.fresh {
				ps.fresh = false
				c.d.takeover(groupPartition{c.sub, fp.Partition}, fp.Records[0].Offset)
			}
			for _, r := range fp.Records {
				ps.add(r.Offset)
				st := stampOf(r)
				if st == nil {
					unstamped++
				}
				batch = append(batch, drivers.Delivery{Stamp: st, Stream: fp.Partition, HasOffset: true, Offset: r.Offset})
			}
			last = append(last, fp.Records[len(fp.Records)-1])
		})
		c.mu.Unlock()
		if len(batch) > 0 {
			c.d.stats.Delivered.Add(int64(len(batch)))
			if unstamped > 0 {
				c.d.stats.Unstamped.Add(unstamped)
			}
			h(batch)
			if c.marks {
				c.cl.MarkCommitRecords(last...)
			}
			clear(batch) // drop references to the records' headers
		}
		c.cl.AllowRebalance()
	}
}

// stampOf returns the record's spate-stamp header value, or nil.
func stampOf(r *kgo.Record) []byte {
	for i := range r.Headers {
		if r.Headers[i].Key == StampHeader {
			return r.Headers[i].Value
		}
	}
	return nil
}

// assigned, revoked and lost are the group callbacks. With
// BlockRebalanceOnPoll they never run while a batch is being handled.
func (c *consumer) assigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range m[c.d.opts.Topic] {
		c.parts[p] = &partition{fresh: true}
		c.d.stats.Assigned.Add(1)
	}
	c.signalAssigned()
}

func (c *consumer) revoked(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	offsets := cl.UncommittedOffsets
	if c.marks {
		offsets = cl.MarkedOffsets
	}
	c.commitRevoked(ctx, cl, offsets, c.committed)
	c.drop(m, &c.d.stats.Revoked)
}

func (c *consumer) lost(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	c.drop(m, &c.d.stats.Lost)
}

func (c *consumer) drop(m map[string][]int32, count *drivers.Counter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range m[c.d.opts.Topic] {
		if _, ok := c.parts[p]; ok {
			delete(c.parts, p)
			count.Add(1)
		}
	}
}

// committed sees every commit's outcome and forgets the deliveries that
// committed offsets cover.
func (c *consumer) committed(_ *kgo.Client, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
	if err != nil {
		if !errors.Is(err, context.Canceled) && !c.isCrashed() {
			c.d.log.Warn("offset commit failed", "consumer", c.id, "err", err)
		}
		return
	}
	failed := map[int32]bool{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				failed[p.Partition] = true
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.crashed {
		return
	}
	for _, t := range req.Topics {
		if t.Topic != c.d.opts.Topic && t.Topic != "" {
			continue
		}
		for _, p := range t.Partitions {
			ps := c.parts[p.Partition]
			if ps == nil || failed[p.Partition] {
				continue
			}
			ps.trim(p.Offset)
		}
	}
}

// Crash kills the consumer as kill -9 would its process: its connections
// are reset and no further ones open, so nothing is committed and no
// LeaveGroup is sent; Consume returns drivers.ErrCrashed promptly. The
// group gives its partitions to the other members once the session
// timeout passes, and they read again from the last committed offsets:
// Stats counts the records delivered after that commit (crash_uncommitted)
// and those delivered again (crash_redelivered). Crash is safe to call
// more than once and concurrently with Consume.
func (c *consumer) Crash() {
	c.crashWith(func() {
		parts := c.parts
		c.parts = map[int32]*partition{}
		c.d.registerCrash(c.sub, parts)
	})
}

// registerCrash keeps what a crashed consumer delivered after its last
// confirmed commit, per partition, until another consumer takes the
// partition over.
func (d *Driver) registerCrash(sub int, parts map[int32]*partition) {
	d.stats.Crashes.Add(1)
	d.crashMu.Lock()
	defer d.crashMu.Unlock()
	for p, ps := range parts {
		if len(ps.sent) == 0 {
			continue
		}
		d.stats.CrashUncommitted.Add(count(ps.sent, 0))
		gp := groupPartition{sub, p}
		d.crashed[gp] = append(d.crashed[gp], ps.sent...)
	}
}

// takeover is called when a consumer delivers the first records of a
// partition it was newly assigned, starting at offset first (the group's
// committed offset). Records a crashed consumer delivered from first on are
// delivered again: they are counted as crash_redelivered.
func (d *Driver) takeover(p groupPartition, first int64) {
	d.crashMu.Lock()
	defer d.crashMu.Unlock()
	sent, ok := d.crashed[p]
	if !ok {
		return
	}
	delete(d.crashed, p)
	d.stats.CrashRedelivered.Add(count(sent, first))
}
