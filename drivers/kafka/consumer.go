package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spate-dev/spate/drivers"
)

// maxPoll bounds the records handed to one Handler call.
const maxPoll = 4096

// consumer is one Consumer: a franz-go client in the run's group.
type consumer struct {
	d      *Driver
	id     int
	sub    int    // its subscription (Env.SubscriptionOf)
	group  string // its subscription's consumer group
	cl     *kgo.Client
	dial   *dialer
	marks  bool // commit: after-processing
	cancel context.CancelFunc

	crash       chan struct{} // closed by Crash
	crashOnce   sync.Once
	stop        chan struct{} // closed by shut: Consume returns
	running     atomic.Bool   // Consume was called
	consumeDone chan struct{} // closed when Consume returns
	shutOnce    sync.Once
	shutDone    chan struct{}
	assignments chan struct{} // signalled on every assignment the consumer gets

	// mu guards the partitions the consumer owns and what it delivered
	// from each since the last commit it saw confirmed.
	mu      sync.Mutex
	crashed bool
	parts   map[int32]*partition
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
		d:           d,
		id:          id,
		sub:         d.env.SubscriptionOf(id),
		group:       d.groupOf(d.env.SubscriptionOf(id)),
		marks:       o.Commit == "after-processing",
		crash:       make(chan struct{}),
		stop:        make(chan struct{}),
		consumeDone: make(chan struct{}),
		shutDone:    make(chan struct{}),
		assignments: make(chan struct{}, 1),
		parts:       map[int32]*partition{},
	}
	c.dial = newDialer(drivers.ConsumerSide, d.env.Dial, d.tls, o.ConnectTimeout)
	cctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	heartbeat := min(3*time.Second, max(100*time.Millisecond, o.SessionTimeout/10))
	reset := kgo.NewOffset().AtStart()
	if o.Start == "latest" {
		reset = kgo.NewOffset().AtEnd()
	}
	opts := append(d.clientOpts(c.dial, fmt.Sprintf("consumer-%d", id)),
		kgo.WithContext(cctx),
		kgo.ConsumerGroup(c.group),
		kgo.ConsumeTopics(o.Topic),
		kgo.ConsumeResetOffset(reset),
		kgo.SessionTimeout(o.SessionTimeout),
		kgo.HeartbeatInterval(heartbeat),
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
	if o.Isolation == "read_committed" {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("kafka: consumer %d: %w", id, err)
	}
	c.cl = cl
	if err := d.track(nil, c); err != nil {
		cl.Close()
		cancel()
		return nil, err
	}
	if err := c.waitJoined(ctx); err != nil {
		c.shut()
		return nil, err
	}
	return c, nil
}

// waitJoined waits until the consumer owns partitions, or has joined the
// group when the group has more members than the topic has partitions, so
// that a run's first messages do not wait for the group to form. It gives
// up quietly after connect-timeout: with start: run no message is missed
// either way.
func (c *consumer) waitJoined(ctx context.Context) error {
	timer := time.NewTimer(c.d.opts.ConnectTimeout)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka: consumer %d: waiting to join group %q: %w", c.id, c.group, ctx.Err())
		case <-timer.C:
			c.d.log.Debug("consumer has no partitions yet; going on", "consumer", c.id, "group", c.group)
			return nil
		case <-c.assignments:
		}
		c.mu.Lock()
		owned := len(c.parts)
		c.mu.Unlock()
		if owned > 0 || c.d.consumerCount(c.sub) > c.d.partitions {
			return nil
		}
	}
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
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("kafka: Consume called twice on one consumer; make a new consumer")
	}
	err := c.consume(ctx, h)
	c.cl.AllowRebalance() // no poll is outstanding any more
	close(c.consumeDone)
	if err == nil || !(errors.Is(err, drivers.ErrCrashed) || errors.Is(err, ErrClosed)) {
		c.shut() // a last commit and LeaveGroup
	}
	return err
}

func (c *consumer) consume(ctx context.Context, h drivers.Handler) error {
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-c.crash:
		case <-c.stop:
		case <-pctx.Done():
		}
		stop()
	}()
	batch := make([]drivers.Delivery, 0, maxPoll)
	last := make([]*kgo.Record, 0, 16)
	var lastWarn time.Time
	for {
		select {
		case <-c.stop:
			return ErrClosed
		default:
		}
		fetches := c.cl.PollRecords(pctx, maxPoll)
		if c.isCrashed() {
			return drivers.ErrCrashed
		}
		if ctx.Err() != nil {
			return nil
		}
		if pctx.Err() != nil || c.d.isClosed() || fetches.IsClientClosed() {
			return ErrClosed
		}
		var fatal error
		fetches.EachError(func(topic string, p int32, err error) {
			switch {
			case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.GroupAuthorizationFailed),
				errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed):
				fatal = fmt.Errorf("kafka: consumer %d: %w", c.id, err)
			default:
				if time.Since(lastWarn) > time.Second {
					lastWarn = time.Now()
					c.d.log.Warn("fetch error", "consumer", c.id, "topic", topic, "partition", p, "err", err)
				}
			}
		})
		if fatal != nil {
			return fatal
		}

		batch, last = batch[:0], last[:0]
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
				batch = append(batch, drivers.Delivery{Stamp: stampOf(r), Stream: fp.Partition, HasOffset: true, Offset: r.Offset})
			}
			last = append(last, fp.Records[len(fp.Records)-1])
		})
		c.mu.Unlock()
		if len(batch) > 0 {
			c.d.stats.Delivered.Add(int64(len(batch)))
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

func (c *consumer) isCrashed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.crashed
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
	select {
	case c.assignments <- struct{}{}:
	default:
	}
}

func (c *consumer) revoked(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	if !c.isCrashed() {
		// What franz-go does by default when autocommitting: commit
		// before the partitions go, so their next owner starts after
		// what was processed here.
		var offsets map[string]map[int32]kgo.EpochOffset
		if c.marks {
			offsets = cl.MarkedOffsets()
		} else {
			offsets = cl.UncommittedOffsets()
		}
		if len(offsets) > 0 {
			cctx, cancel := context.WithTimeout(ctx, closeWait)
			cl.CommitOffsetsSync(cctx, offsets, c.committed)
			cancel()
		}
	}
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
	c.crashOnce.Do(func() {
		c.mu.Lock()
		c.crashed = true
		parts := c.parts
		c.parts = map[int32]*partition{}
		c.mu.Unlock()
		c.dial.sever()
		c.cancel()
		close(c.crash)
		c.d.registerCrash(c.sub, parts)
		c.d.untrack(nil, c)
		c.d.bg.Add(1)
		go func() {
			defer c.d.bg.Done()
			if c.running.Load() {
				<-c.consumeDone // Consume returns at once
			}
			c.cl.CloseAllowingRebalance() // quick: every request fails at once
			c.shutOnce.Do(func() { close(c.shutDone) })
		}()
	})
}

// shut closes the consumer cleanly: it stops Consume, then makes a last
// commit and leaves the group, each bounded by closeWait.
func (c *consumer) shut() {
	if c.isCrashed() {
		return
	}
	c.shutOnce.Do(func() {
		defer close(c.shutDone)
		c.d.untrack(nil, c)
		close(c.stop)
		if c.running.Load() {
			<-c.consumeDone
		}
		timer := time.AfterFunc(3*closeWait, c.cancel) // a dead cluster cannot hold Close
		defer timer.Stop()
		c.cl.AllowRebalance()
		lctx, cancel := context.WithTimeout(context.Background(), 2*closeWait)
		_ = c.cl.LeaveGroupContext(lctx)
		cancel()
		c.cl.Close()
		c.cancel()
	})
	<-c.shutDone
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
