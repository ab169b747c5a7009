package shards

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
)

// role is what differs between the coordinator's own shard and the
// others: how it joins the run, starts, reports and hands over its
// artifact.
type role interface {
	// join blocks until the shard may open its driver; attach says to
	// open it attached.
	join(ctx context.Context) (attach bool, err error)
	// start reports the shard ready (with its clock offset) and blocks
	// until T0 is set.
	start(ctx context.Context, o offset) (t0 int64, err error)
	// sync sends a report with the set pages written since the last one
	// (d); a role that may fail keeps what was not acknowledged for the
	// next.
	sync(ctx context.Context, req syncRequest, d *accounting.State) (syncResponse, error)
	final(ctx context.Context, a *Artifact) error
}

// member is one shard's side of a distributed run: the
// engine.Distribution its engine runs with. It collects the shard's
// intervals, reports them with its running counts and set deltas every
// syncEvery (fast once its traffic has ended, so the drain's end is
// known promptly), learns the run's backlog and whether to stop or has
// drained, and stops the shard's traffic when it loses the coordinator.
type member struct {
	index, count int
	nonce        uint64
	clock        clock
	offset       offset
	role         role
	log          *slog.Logger
	syncEvery    time.Duration
	lostAfter    time.Duration
	// stopRun ends the engine's run: the coordinator said stop, or it
	// cannot be reached.
	stopRun context.CancelCauseFunc
	// local receives this shard's own progress (not the run's).
	local func(engine.Progress)
	// onShow, on the coordinator, keeps each local progress report for
	// the run's merged progress line.
	onShow func(index int, p engine.Progress)

	at time.Time // the local instant of T0
	t0 int64

	mu              sync.Mutex
	tracker         *accounting.Tracker
	started         int64
	atEnd           accounting.Counts
	ended, closed   bool
	stopWhy, errMsg string
	cur             map[string][]byte // histograms of the interval being closed
	intervals       []intervalReport
	unsent          int // intervals[len-unsent:] not yet acknowledged
	inflight        int64
	lastAck         time.Time
	lostCoordinator error

	backlog atomic.Int64
	kick    chan struct{}
	drained chan struct{}
	drainOK sync.Once
	quit    chan struct{}
	done    chan struct{}
}

func newMember(index, count int, nonce uint64, c clock, log *slog.Logger) *member {
	return &member{
		index: index, count: count, nonce: nonce, clock: c, log: log,
		syncEvery: 250 * time.Millisecond, lostAfter: 10 * time.Second,
		kick: make(chan struct{}, 1), drained: make(chan struct{}), quit: make(chan struct{}), done: make(chan struct{}),
		lastAck: time.Now(),
	}
}

var _ engine.Distribution = (*member)(nil)

// Shard implements engine.Distribution.
func (m *member) Shard() (int, int) { return m.index, m.count }

// Join implements engine.Distribution.
func (m *member) Join(ctx context.Context) (bool, error) { return m.role.join(ctx) }

// Start implements engine.Distribution: T0 is on the coordinator's clock;
// the local instant of T0 is now plus how far T0 lies ahead of the
// coordinator's clock now, which is this shard's clock plus its offset.
func (m *member) Start(ctx context.Context) (time.Time, int64, error) {
	t0, err := m.role.start(ctx, m.offset)
	if err != nil {
		return time.Time{}, 0, err
	}
	now := time.Now()
	m.at = now.Add(time.Duration(t0 - (m.clock.now() + m.offset.ns)))
	m.t0 = t0
	return m.at, t0, nil
}

// runClock is the run clock: Unix ns on the coordinator's clock.
func (m *member) runClock() int64 { return m.t0 + int64(time.Since(m.at)) }

// Running implements engine.Distribution: it starts reporting.
func (m *member) Running(t *accounting.Tracker) {
	m.mu.Lock()
	m.tracker, m.started = t, m.runClock()
	m.mu.Unlock()
	go m.syncLoop()
}

// Ended implements engine.Distribution.
func (m *member) Ended() {
	m.mu.Lock()
	if m.tracker != nil {
		m.atEnd = m.tracker.Live()
	}
	m.ended = true
	m.mu.Unlock()
	m.syncNow()
}

// Drain implements engine.Distribution.
func (m *member) Drain(ctx context.Context, quiet time.Duration) {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	if r, ok := m.role.(*coordinatorRole); ok {
		r.co.mu.Lock()
		r.co.quiet = quiet
		r.co.mu.Unlock()
	}
	m.syncNow()
	select {
	case <-ctx.Done():
	case <-m.drained:
	}
}

// Backlog implements engine.Distribution.
func (m *member) Backlog() int64 { return m.backlog.Load() }

// Failed implements engine.Distribution.
func (m *member) Failed(err error) {
	m.mu.Lock()
	if m.errMsg == "" {
		m.errMsg = err.Error()
	}
	m.mu.Unlock()
	m.syncNow()
}

// interrupted tells the others this shard was interrupted.
func (m *member) interrupted(why string) {
	m.mu.Lock()
	if m.stopWhy == "" {
		m.stopWhy = why
	}
	m.mu.Unlock()
	m.syncNow()
}

func (m *member) syncNow() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// onHistogram is the engine's interval-histogram callback: it keeps the
// interval's histograms for the next report.
func (m *member) onHistogram(kind string, _, _ time.Time, h *hdr.Histogram) {
	b, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		m.log.Warn("encoding an interval histogram", "kind", kind, "err", err)
		return
	}
	m.mu.Lock()
	if m.cur == nil {
		m.cur = map[string][]byte{}
	}
	m.cur[kind] = b
	m.mu.Unlock()
}

// onProgress is the engine's progress callback: it closes this shard's
// interval.
func (m *member) onProgress(p engine.Progress) {
	m.mu.Lock()
	index := len(m.intervals)
	m.intervals = append(m.intervals, intervalReport{
		Index: index, Start: p.Interval.Start, End: p.Interval.End,
		Counts: p.Interval.Counts, Backlog: p.Interval.Backlog, Histograms: m.cur,
	})
	m.unsent++
	m.inflight = p.InFlight
	m.cur = nil
	m.mu.Unlock()
	if m.onShow != nil {
		m.onShow(index, p)
	}
	if m.local != nil {
		m.local(p)
	}
	m.syncNow()
}

// syncLoop reports every syncEvery (every fastSync once the traffic has
// ended) and when kicked, until finish.
func (m *member) syncLoop() {
	defer close(m.done)
	t := time.NewTimer(m.syncEvery)
	defer t.Stop()
	for {
		select {
		case <-m.quit:
			m.syncOnce() // the last counts and deltas
			return
		case <-m.kick:
		case <-t.C:
		}
		m.syncOnce()
		m.mu.Lock()
		every := m.syncEvery
		if m.ended {
			every = fastSync
		}
		m.mu.Unlock()
		t.Reset(every)
	}
}

// fastSync is how often shards report once their traffic has ended.
const fastSync = 50 * time.Millisecond

// syncOnce sends one report. Intervals the coordinator has not
// acknowledged are sent again.
func (m *member) syncOnce() {
	m.mu.Lock()
	if m.lostCoordinator != nil || m.tracker == nil {
		m.mu.Unlock()
		return
	}
	d := m.tracker.Delta()
	req := syncRequest{
		memberRequest: memberRequest{Index: m.index, Nonce: m.nonce},
		Live:          d.Live, InFlight: m.inflight, StartedNS: m.started, Ended: m.ended, Closed: m.closed,
		Stop: m.stopWhy, Error: m.errMsg,
		Intervals: append([]intervalReport(nil), m.intervals[len(m.intervals)-m.unsent:]...),
	}
	sentIntervals := m.unsent
	m.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	resp, err := m.role.sync(ctx, req, d)
	cancel()

	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		var r *refusal
		if errors.As(err, &r) && r.fatal || time.Since(m.lastAck) > m.lostAfter {
			m.lostCoordinator = fmt.Errorf("lost the coordinator: %w", err)
			m.log.Error("shard stopping", "err", m.lostCoordinator)
			m.stopRun(m.lostCoordinator)
			m.drainOK.Do(func() { close(m.drained) })
		}
		return
	}
	m.lastAck = time.Now()
	m.unsent -= sentIntervals
	m.backlog.Store(resp.Backlog)
	if resp.Stop != "" {
		m.stopRun(errors.New(resp.Stop))
	}
	if resp.Drained {
		m.drainOK.Do(func() { close(m.drained) })
	}
}

// abort tells the coordinator, as well as it can, that this shard failed
// before its traffic ran, so the run stops at once rather than wait for it.
func (m *member) abort(err error) {
	if m.role == nil || err == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	req := syncRequest{memberRequest: memberRequest{Index: m.index, Nonce: m.nonce}, Error: err.Error()}
	if _, serr := m.role.sync(ctx, req, nil); serr != nil {
		m.log.Warn("could not tell the coordinator this shard failed", "err", serr)
	}
}

// requestTimeout bounds one request to the coordinator.
const requestTimeout = 10 * time.Second

// finish stops reporting after a last report.
func (m *member) finish() {
	close(m.quit)
	m.mu.Lock()
	running := m.tracker != nil
	m.mu.Unlock()
	if running {
		<-m.done
	}
}

// artifact is this shard's account of the run, from its engine's results.
func (m *member) artifact(res *report.Results, meta Meta) (*Artifact, error) {
	m.mu.Lock()
	tr := m.tracker
	meta.T0, meta.Started, meta.AtTrafficEnd = m.t0, m.started, m.atEnd
	meta.OffsetNS, meta.UncertaintyNS = m.offset.ns, m.offset.uncertainty
	intervals := append([]intervalReport(nil), m.intervals...)
	m.mu.Unlock()
	if tr == nil {
		return nil, errors.New("the shard's traffic never started")
	}
	state, err := tr.State()
	if err != nil {
		return nil, err
	}
	a := &Artifact{Meta: meta, Results: res, Intervals: intervals, State: state, Faults: []Fault{}}
	for _, f := range res.Chaos {
		a.Faults = append(a.Faults, Fault{Index: f.Occurrence, FaultResult: f})
	}
	return a, nil
}
