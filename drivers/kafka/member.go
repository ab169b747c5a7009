package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spate-dev/spate/drivers"
)

// member is the lifecycle a consumer and an instance of the built-in
// processor share as members of a consumer group, each on a franz-go
// client of its own: Consume once; the poll loop's stop checks and
// fetch-error warnings; Crash as kill -9 would; shut cleanly (a last
// commit, LeaveGroup). consumer and processor embed it, and its mu also
// guards their own state. Its methods are safe for concurrent use, except
// those of the poll loop (pollContext, stopping, afterPoll, fetchErrors),
// which only Consume's goroutine calls.
type member struct {
	d       *Driver
	kind    string // "consumer" or "processor", in errors and logs
	id      int
	cl      *kgo.Client // the processor's restart replaces it, under mu
	dial    *dialer
	cancel  context.CancelFunc // cancels the client's context
	untrack func()             // removes the member from the driver's set
	fatal   []error            // fetch errors that end Consume

	crash       chan struct{} // closed by Crash
	crashOnce   sync.Once
	stop        chan struct{} // closed by shut: Consume returns
	running     atomic.Bool   // Consume was called
	consumeDone chan struct{} // closed when Consume returns
	shutOnce    sync.Once
	shutDone    chan struct{}
	assignments chan struct{} // signalled on every assignment the member gets
	lastWarn    time.Time     // when the poll loop last logged a fetch error

	mu      sync.Mutex
	crashed bool
}

// newMember returns member id of kind, whose client is still to be made
// with groupOpts; untrack removes it from the driver's set for Close, and
// fetch errors matching fatal end its Consume with the error.
func (d *Driver) newMember(kind string, id int, untrack func(), fatal ...error) *member {
	return &member{
		d: d, kind: kind, id: id, untrack: untrack, fatal: fatal,
		crash:       make(chan struct{}),
		stop:        make(chan struct{}),
		consumeDone: make(chan struct{}),
		shutDone:    make(chan struct{}),
		assignments: make(chan struct{}, 1),
	}
}

// groupOpts are the options of the member's client as a member of group
// reading the driver's topic: the driver's client options, its own dialer
// (drivers.ConsumerSide, severed by Crash) and a context cancelled by
// Crash and at the end of shut, where to start reading and the session.
func (m *member) groupOpts(group string) []kgo.Opt {
	d := m.d
	o := &d.opts
	m.dial = newDialer(drivers.ConsumerSide, d.env.Dial, d.tls, o.ConnectTimeout)
	cctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	heartbeat := min(3*time.Second, max(100*time.Millisecond, o.SessionTimeout/10))
	reset := kgo.NewOffset().AtStart()
	if o.Start == StartLatest {
		reset = kgo.NewOffset().AtEnd()
	}
	return append(d.clientOpts(m.dial, fmt.Sprintf("%s-%d", m.kind, m.id)),
		kgo.WithContext(cctx),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(o.Topic),
		kgo.ConsumeResetOffset(reset),
		kgo.SessionTimeout(o.SessionTimeout),
		kgo.HeartbeatInterval(heartbeat),
	)
}

// waitJoined waits until joined, asked at each assignment, says the member
// has joined (it owns partitions, or its group has more members than the
// topic has partitions), so that a run's first messages do not wait for
// the group to form. It gives up quietly after connect-timeout: with
// start: run no message is missed either way.
func (m *member) waitJoined(ctx context.Context, group string, joined func() bool) error {
	timer := time.NewTimer(m.d.opts.ConnectTimeout)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka: %s %d: waiting to join group %q: %w", m.kind, m.id, group, ctx.Err())
		case <-timer.C:
			m.d.log.Debug(m.kind+" has no partitions yet; going on", m.kind, m.id, "group", group)
			return nil
		case <-m.assignments:
		}
		if joined() {
			return nil
		}
	}
}

// signalAssigned wakes waitJoined; the group's assigned callbacks call it.
func (m *member) signalAssigned() {
	select {
	case m.assignments <- struct{}{}:
	default:
	}
}

// commitRevoked commits offsets() before revoked partitions go, unless the
// member crashed: what franz-go does by default when autocommitting, so
// their next owner starts after what was processed here. The commit is
// bounded by closeWait; done sees its outcome.
func (m *member) commitRevoked(ctx context.Context, cl *kgo.Client, offsets func() map[string]map[int32]kgo.EpochOffset,
	done func(*kgo.Client, *kmsg.OffsetCommitRequest, *kmsg.OffsetCommitResponse, error),
) {
	if m.isCrashed() {
		return
	}
	if offsets := offsets(); len(offsets) > 0 {
		cctx, cancel := context.WithTimeout(ctx, closeWait)
		cl.CommitOffsetsSync(cctx, offsets, done)
		cancel()
	}
}

func (m *member) isCrashed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.crashed
}

// consumeOnce is Consume: it runs loop, the member's poll loop, once in
// the member's life; then, no poll being outstanding, lets rebalances go
// on and, unless the member crashed or is being shut, shuts it (a last
// commit and LeaveGroup).
func (m *member) consumeOnce(loop func() error) error {
	if !m.running.CompareAndSwap(false, true) {
		return fmt.Errorf("kafka: Consume called twice on one %s; make a new %[1]s", m.kind)
	}
	err := loop()
	m.cl.AllowRebalance() // no poll is outstanding any more
	close(m.consumeDone)
	if err == nil || !(errors.Is(err, drivers.ErrCrashed) || errors.Is(err, ErrClosed)) {
		m.shut()
	}
	return err
}

// pollContext is ctx, also cancelled when the member crashes or is shut,
// for the poll loop's polls; stop releases it.
func (m *member) pollContext(ctx context.Context) (pctx context.Context, stop context.CancelFunc) {
	pctx, stop = context.WithCancel(ctx)
	go func() {
		select {
		case <-m.crash:
		case <-m.stop:
		case <-pctx.Done():
		}
		stop()
	}()
	return pctx, stop
}

// stopping is ErrClosed once shut has begun: the poll loop checks it
// before each poll.
func (m *member) stopping() error {
	select {
	case <-m.stop:
		return ErrClosed
	default:
		return nil
	}
}

// afterPoll tells the poll loop, after a poll with pctx (pollContext of
// ctx) returned fetches, whether it must end: done when ctx is done (the
// engine asked it to end), err when the member crashed
// (drivers.ErrCrashed) or is being shut, the driver closed or the client
// closed (ErrClosed).
func (m *member) afterPoll(ctx, pctx context.Context, fetches kgo.Fetches) (done bool, err error) {
	switch {
	case m.isCrashed():
		return false, drivers.ErrCrashed
	case ctx.Err() != nil:
		return true, nil
	case pctx.Err() != nil || m.d.isClosed() || fetches.IsClientClosed():
		return false, ErrClosed
	}
	return false, nil
}

// fetchErrors logs the fetch errors of fetches at most once a second and
// returns the fatal ones.
func (m *member) fetchErrors(fetches kgo.Fetches) error {
	var fatal error
	fetches.EachError(func(topic string, p int32, err error) {
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		case m.isFatal(err):
			fatal = fmt.Errorf("kafka: %s %d: %w", m.kind, m.id, err)
		default:
			if time.Since(m.lastWarn) > time.Second {
				m.lastWarn = time.Now()
				m.d.log.Warn("fetch error", m.kind, m.id, "topic", topic, "partition", p, "err", err)
			}
		}
	})
	return fatal
}

func (m *member) isFatal(err error) bool {
	for _, f := range m.fatal {
		if errors.Is(err, f) {
			return true
		}
	}
	return false
}

// crashWith kills the member as kill -9 would its process (Crash): under
// mu it is marked crashed and seize runs, to take and count what the crash
// leaves behind; then its connections are reset and no further ones open,
// so nothing is committed or aborted and no LeaveGroup is sent; Consume
// returns drivers.ErrCrashed promptly, and the client closes in the
// background. Only the first call does anything.
func (m *member) crashWith(seize func()) {
	m.crashOnce.Do(func() {
		m.mu.Lock()
		m.crashed = true
		seize()
		m.mu.Unlock()
		m.dial.sever()
		m.cancel()
		close(m.crash)
		m.untrack()
		m.d.bg.Add(1)
		go func() {
			defer m.d.bg.Done()
			if m.running.Load() {
				<-m.consumeDone // Consume returns at once
			}
			m.cl.CloseAllowingRebalance() // quick: every request fails at once
			m.shutOnce.Do(func() { close(m.shutDone) })
		}()
	})
}

// shut closes the member cleanly: it stops Consume, then leaves the group
// (committing what was processed as its partitions are revoked) and closes
// the client, each bounded by closeWait. It does nothing after a crash.
func (m *member) shut() {
	if m.isCrashed() {
		return
	}
	m.shutOnce.Do(func() {
		defer close(m.shutDone)
		m.untrack()
		close(m.stop)
		if m.running.Load() {
			<-m.consumeDone
		}
		timer := time.AfterFunc(3*closeWait, m.cancel) // a dead cluster cannot hold Close
		defer timer.Stop()
		m.cl.AllowRebalance()
		lctx, cancel := context.WithTimeout(context.Background(), 2*closeWait)
		_ = m.cl.LeaveGroupContext(lctx)
		cancel()
		m.cl.Close()
		m.cancel()
	})
	<-m.shutDone
}
