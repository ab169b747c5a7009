package shards

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/drivers/stamp"
	"github.com/spate-dev/spate/engine"
)

// errClockStepped: no clock exchange gave a usable round trip.
var errClockStepped = errors.New("shards: every clock exchange ran backwards (a clock stepped); try again")

// refusal is an error the coordinator answers a shard with; fatal ones
// mean the shard cannot take part in this run.
type refusal struct {
	msg   string
	fatal bool
}

func (r *refusal) Error() string { return r.msg }

func refuse(format string, args ...any) error {
	return &refusal{msg: fmt.Sprintf(format, args...), fatal: true}
}

// coordinator is shard 0's side of the protocol: the state of the run as
// the shards report it. Its methods are safe for concurrent use.
type coordinator struct {
	count, producers, subs int
	digest                 string
	runID                  uint64
	clock                  clock
	log                    func(msg string, args ...any)
	// progress and hists receive the run's merged intervals (the user's
	// callbacks); interval is the report interval.
	progress func(engine.Progress)
	hists    func(kind string, start, end time.Time, h *hdr.Histogram)
	interval time.Duration

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change long polls wait for
	members map[int]*memberState
	// The run's phases: provisioned (shards may open), t0 (set once every
	// shard is ready), stop (why the run's traffic stops, when it does),
	// drained (the drain is over for everyone).
	provisioned bool
	t0          int64
	stop        string
	drained     bool
	// union holds every shard's acked and received sets as reported: the
	// run's backlog, exactly.
	union *accounting.Tracker
	// quietSince is when the run's deliveries last changed during the
	// drain; deliveries their total then.
	quietSince time.Time
	deliveries int64
	quiet      time.Duration
	obs        Observations
	// pending intervals by index, until every live shard has reported
	// one; next is the lowest index not yet shown.
	pending map[int]map[int]intervalReport
	local   map[int]engine.Progress // the coordinator's own progress, by index
	next    int
	finals  map[int]*Artifact
}

// memberState is what the coordinator knows of one shard.
type memberState struct {
	index     int
	host      string
	nonce     uint64
	ready     bool
	offset    offset
	lastSync  time.Time
	live      accounting.Counts
	inflight  int64
	started   int64
	ended     bool
	closed    bool
	lost      string // why the coordinator gave up on it
	intervals []intervalReport
	hasFinal  bool
	told      bool // it has been answered that the run stopped
}

func newCoordinator(count, producers, subs int, digest string, runID uint64, c clock) *coordinator {
	co := &coordinator{
		count: count, producers: producers, subs: max(subs, 1), digest: digest, runID: runID, clock: c,
		log: func(string, ...any) {}, changed: make(chan struct{}), members: map[int]*memberState{},
		pending: map[int]map[int]intervalReport{}, local: map[int]engine.Progress{}, finals: map[int]*Artifact{},
	}
	co.obs.Backlog = map[int]int64{}
	co.union = accounting.NewTracker(runID, producers, 0)
	co.union.SetSubscriptions(co.subs)
	return co
}

// notify wakes long polls. Called with co.mu held.
func (co *coordinator) notify() {
	close(co.changed)
	co.changed = make(chan struct{})
}

// wait blocks until cond (called with co.mu held) holds, ctx ends, or
// limit passes; it reports whether cond held.
func (co *coordinator) wait(ctx context.Context, limit time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		co.mu.Lock()
		ok, ch := cond(), co.changed
		co.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		case <-ch:
		}
	}
}

// member returns the member a request names. Called with co.mu held.
func (co *coordinator) member(req memberRequest) (*memberState, error) {
	m, ok := co.members[req.Index]
	switch {
	case !ok:
		return nil, refuse("shard %d has not registered", req.Index)
	case m.nonce != req.Nonce:
		return nil, refuse("shard %d has registered again since (another process of it): this one is out of the run", req.Index)
	case m.lost != "":
		return nil, refuse("shard %d is out of the run: %s", req.Index, m.lost)
	}
	return m, nil
}

// register admits a shard. Before the start, a shard that registers again
// (a new process for the same index) replaces its earlier self; after it,
// it is refused: it would send sequence numbers its earlier self used.
func (co *coordinator) register(_ context.Context, req registerRequest) (registerResponse, error) {
	co.mu.Lock()
	defer co.mu.Unlock()
	switch {
	case req.Version != ProtocolVersion:
		return registerResponse{}, refuse("shard %d speaks protocol version %d, the coordinator %d: run the same spate on every shard", req.Index, req.Version, ProtocolVersion)
	case req.Count != co.count:
		return registerResponse{}, refuse("shard %d was started as one of %d shards, the coordinator as one of %d", req.Index, req.Count, co.count)
	case req.Index <= 0 || req.Index >= co.count:
		return registerResponse{}, refuse("shard index %d: the other shards are 1..%d", req.Index, co.count-1)
	case req.Digest != co.digest:
		return registerResponse{}, refuse("shard %d runs another scenario file than the coordinator (sha256 %.12s, coordinator %.12s): give every shard the same file", req.Index, req.Digest, co.digest)
	}
	if old, ok := co.members[req.Index]; ok && old.nonce != req.Nonce && co.t0 != 0 {
		return registerResponse{}, refuse("shard %d already started in this run (on %s); a restarted shard cannot rejoin a run in progress: its producers would send sequence numbers again", req.Index, old.host)
	}
	if co.stop != "" && co.t0 == 0 {
		return registerResponse{}, refuse("the run stopped before it started: %s", co.stop)
	}
	co.members[req.Index] = &memberState{index: req.Index, host: req.Host, nonce: req.Nonce, lastSync: time.Now()}
	co.log("shard registered", "shard", req.Index, "host", req.Host)
	co.notify()
	return registerResponse{RunID: co.runID}, nil
}

// clockReading answers a clock exchange: t2 as early and t3 as late as
// the coordinator can take them, so the round trip excludes its work.
func (co *coordinator) clockReading(t2 int64) clockResponse {
	return clockResponse{Received: t2, Replied: co.clock.now()}
}

// open blocks until the system is provisioned (or limit).
func (co *coordinator) open(ctx context.Context, req memberRequest, limit time.Duration) (bool, error) {
	co.mu.Lock()
	_, err := co.member(req)
	co.mu.Unlock()
	if err != nil {
		return false, err
	}
	return co.wait(ctx, limit, func() bool { return co.provisioned || co.stop != "" }), co.stopped(req.Index)
}

// stopped returns the run's stop as an error when it stopped before the
// start, and notes that the shard asking has been told.
func (co *coordinator) stopped(index int) error {
	co.mu.Lock()
	defer co.mu.Unlock()
	if co.stop != "" && co.t0 == 0 {
		co.markTold(index)
		return refuse("the run stopped before it started: %s", co.stop)
	}
	return nil
}

// markTold notes that shard index knows the run stopped. Called with
// co.mu held.
func (co *coordinator) markTold(index int) {
	if m, ok := co.members[index]; ok {
		m.told = true
		co.notify()
	}
}

// tellStop waits, bounded by limit, until every shard that registered
// has been answered that the run stopped (or is lost), so that a
// coordinator that fails does not vanish before the others know why.
func (co *coordinator) tellStop(limit time.Duration) {
	co.wait(context.Background(), limit, func() bool {
		for i, m := range co.members {
			if i != 0 && !m.told && m.lost == "" && !m.hasFinal {
				return false
			}
		}
		return true
	})
}

// ready records that a shard is ready, and blocks until T0 is set.
func (co *coordinator) ready(ctx context.Context, req readyRequest, limit time.Duration) (startResponse, bool, error) {
	co.mu.Lock()
	m, err := co.member(req.memberRequest)
	if err == nil {
		m.ready, m.offset, m.lastSync = true, offset{req.OffsetNS, req.UncertaintyNS}, time.Now()
		co.log("shard ready", "shard", req.Index, "clock_offset", time.Duration(req.OffsetNS), "uncertainty", time.Duration(req.UncertaintyNS))
		co.notify()
	}
	co.mu.Unlock()
	if err != nil {
		return startResponse{}, false, err
	}
	ok := co.wait(ctx, limit, func() bool { return co.t0 != 0 || co.stop != "" })
	if err := co.stopped(req.Index); err != nil {
		return startResponse{}, false, err
	}
	co.mu.Lock()
	defer co.mu.Unlock()
	return startResponse{T0: co.t0}, ok, nil
}

// decodeDeltas reads the deltas of a sync request.
func decodeDeltas(req syncRequest) ([]*accounting.State, error) {
	var deltas []*accounting.State
	for _, b := range req.Deltas {
		d, err := accounting.ReadState(bytes.NewReader(b), maxStateBytes)
		if err != nil {
			return nil, &refusal{msg: "delta: " + err.Error()}
		}
		deltas = append(deltas, d)
	}
	return deltas, nil
}

// sync takes a shard's report, its deltas decoded, and answers with the
// run's state.
func (co *coordinator) sync(req syncRequest, deltas []*accounting.State) (syncResponse, error) {
	co.mu.Lock()
	defer co.mu.Unlock()
	m, err := co.member(req.memberRequest)
	if err != nil {
		return syncResponse{}, err
	}
	for _, d := range deltas {
		if err := co.union.MergeSets(d); err != nil {
			return syncResponse{}, &refusal{msg: "delta: " + err.Error(), fatal: true}
		}
	}
	m.lastSync, m.live, m.inflight = time.Now(), req.Live, req.InFlight
	if req.StartedNS != 0 {
		m.started = req.StartedNS
	}
	if req.Ended && !m.ended {
		m.ended = true
		if co.allEnded() {
			co.obs.ReceivedAtTrafficEnd = co.union.Live().Received
		}
	}
	m.closed = m.closed || req.Closed
	switch {
	case req.Error != "":
		co.halt(fmt.Sprintf("shard %d failed: %s", req.Index, req.Error))
	case req.Stop != "":
		co.halt(fmt.Sprintf("shard %d: %s", req.Index, req.Stop))
	}
	for _, iv := range req.Intervals {
		m.intervals = append(m.intervals, iv)
		if iv.Index >= co.next {
			if co.pending[iv.Index] == nil {
				co.pending[iv.Index] = map[int]intervalReport{}
			}
			co.pending[iv.Index][m.index] = iv
		}
	}
	co.settle()
	if co.stop != "" {
		m.told = true
	}
	return syncResponse{Backlog: co.backlog(), Stop: co.stop, Drained: co.drained}, nil
}

// allEnded reports whether every live shard's traffic has ended. Called
// with co.mu held.
func (co *coordinator) allEnded() bool {
	for _, m := range co.members {
		if m.lost == "" && !m.ended {
			return false
		}
	}
	return len(co.members) == co.count
}

// backlog is the run's backlog. Called with co.mu held.
func (co *coordinator) backlog() int64 { return co.union.Backlog() }

// halt stops the run's traffic on every shard. Called with co.mu held.
func (co *coordinator) halt(why string) {
	if co.stop == "" {
		co.stop = why
		co.log("stopping the run", "why", why)
		co.notify()
	}
}

// settle shows the intervals every live shard has reported, and decides
// whether the drain is over. Called with co.mu held.
func (co *coordinator) settle() {
	for {
		reports := co.pending[co.next]
		if len(reports) == 0 || len(reports) < co.live() {
			break
		}
		co.show(co.next, reports)
		delete(co.pending, co.next)
		co.next++
	}
	co.judgeDrain()
}

// live counts the shards still in the run. Called with co.mu held.
func (co *coordinator) live() int {
	n := 0
	for _, m := range co.members {
		if m.lost == "" {
			n++
		}
	}
	return n
}

// flushLate shows intervals some shard is late with (or will never send)
// once the next one is complete, so progress never stalls on a lost
// shard. Called with co.mu held.
func (co *coordinator) flushLate() {
	for len(co.pending[co.next+1]) >= co.live() && len(co.pending[co.next]) > 0 {
		co.show(co.next, co.pending[co.next])
		delete(co.pending, co.next)
		co.next++
	}
	co.settle()
}

// show merges interval index from reports and hands it to the progress
// callbacks. Called with co.mu held.
func (co *coordinator) show(index int, reports map[int]intervalReport) {
	backlog := co.backlog()
	co.obs.Backlog[index] = backlog
	iv := accounting.Interval{Backlog: backlog}
	hists := map[string]*hdr.Histogram{}
	first := true
	for _, r := range reports {
		if first || r.Start < iv.Start {
			iv.Start = r.Start
		}
		iv.End = max(iv.End, r.End)
		first = false
		iv.Counts = addCounts(iv.Counts, r.Counts)
		for kind, b := range r.Histograms {
			h, err := hdr.Decode(b)
			if err != nil {
				continue // refused at the merge; progress goes on
			}
			if hists[kind] == nil {
				hists[kind] = accounting.NewHistogram()
			}
			hists[kind].Merge(h)
		}
	}
	summary := func(kind string) accounting.LatencySummary {
		if h := hists[kind]; h != nil {
			return accounting.Summarize(h)
		}
		return accounting.LatencySummary{}
	}
	iv.Latency = accounting.LatencySet{E2E: summary(accounting.E2E), Service: summary(accounting.Service), Publish: summary(accounting.Publish)}
	if co.hists != nil {
		from, to := time.Unix(0, co.t0+int64(iv.Start)), time.Unix(0, co.t0+int64(iv.End))
		for _, kind := range accounting.Kinds {
			h := hists[kind]
			if h == nil {
				h = accounting.NewHistogram()
			}
			h.SetStartTimeMs(from.UnixMilli())
			h.SetEndTimeMs(to.UnixMilli())
			co.hists(kind, from, to, h)
		}
	}
	if co.progress == nil {
		return
	}
	p := co.local[index] // phase, target and faults: the coordinator's, the run's
	delete(co.local, index)
	p.Elapsed, p.Interval, p.Live, p.InFlight = iv.End, iv, co.liveCounts(), 0
	for _, m := range co.members {
		if m.lost == "" {
			p.InFlight += m.inflight
		}
	}
	co.progress(p)
}

// liveCounts are the run's running totals: sums of the shards' counts,
// but received, the union of their sets, and duplicates, every delivery
// beyond it. Called with co.mu held.
func (co *coordinator) liveCounts() accounting.Counts {
	var sum accounting.Counts
	var deliveries int64
	for _, m := range co.members {
		sum = addCounts(sum, m.live)
		deliveries += m.live.Received + m.live.Duplicates
	}
	sum.Received = co.union.Live().Received
	sum.Duplicates = max(deliveries-sum.Received, 0)
	return sum
}

// judgeDrain decides whether the run has drained: every live shard's
// producers are closed, no acked message is owed, and no delivery has
// arrived anywhere for quiet. Called with co.mu held.
func (co *coordinator) judgeDrain() {
	if co.drained || co.quiet == 0 || len(co.members) < co.count {
		return
	}
	var deliveries int64
	for _, m := range co.members {
		if m.lost == "" && !m.closed {
			return
		}
		deliveries += m.live.Received + m.live.Duplicates + m.live.Foreign + m.live.Malformed
	}
	if deliveries != co.deliveries || co.quietSince.IsZero() {
		co.deliveries, co.quietSince = deliveries, time.Now()
	}
	if co.backlog() == 0 && time.Since(co.quietSince) >= co.quiet {
		co.drained = true
		co.log("the run has drained")
		co.notify()
	}
}

// watch marks shards that stopped reporting as lost (stopping the run),
// shows late intervals, and judges the drain, until ctx ends.
func (co *coordinator) watch(ctx context.Context, lostAfter time.Duration) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		co.mu.Lock()
		if co.t0 != 0 {
			for _, m := range co.members {
				if m.lost == "" && !m.hasFinal && time.Since(m.lastSync) > lostAfter {
					m.lost = fmt.Sprintf("stopped reporting %.1fs into the run", time.Duration(co.clock.now()-co.t0-int64(time.Since(m.lastSync))).Seconds())
					co.log("shard lost", "shard", m.index, "why", m.lost)
					co.halt(fmt.Sprintf("shard %d %s", m.index, m.lost))
				}
			}
		}
		if len(co.pending) > 0 && time.Since(co.lastInterval()) > 2*co.interval {
			co.flushLate()
		}
		co.judgeDrain()
		co.mu.Unlock()
	}
}

// lastInterval is when the oldest pending interval ended, on this host's
// clock. Called with co.mu held.
func (co *coordinator) lastInterval() time.Time {
	var end time.Duration = -1
	for _, r := range co.pending[co.next] {
		end = max(end, r.End)
	}
	if end < 0 {
		return time.Now()
	}
	return time.Unix(0, co.t0+int64(end)-int64(co.clock.skew))
}

// final takes a shard's artifact.
func (co *coordinator) final(req memberRequest, a *Artifact) error {
	co.mu.Lock()
	defer co.mu.Unlock()
	m, ok := co.members[req.Index]
	switch {
	case !ok || m.nonce != req.Nonce:
		return refuse("shard %d is not in this run", req.Index)
	case a.Meta.Index != req.Index || a.Meta.RunID != stamp.RunIDString(co.runID):
		return refuse("shard %d sent the artifact of shard %d of run %s", req.Index, a.Meta.Index, a.Meta.RunID)
	}
	m.hasFinal, m.lost = true, "" // a late shard's final account still counts
	co.finals[req.Index] = a
	co.notify()
	return nil
}

// missing lists the shards whose final account has not come, with why.
func (co *coordinator) missing() map[int]string {
	co.mu.Lock()
	defer co.mu.Unlock()
	out := map[int]string{}
	for i := 1; i < co.count; i++ {
		m, ok := co.members[i]
		switch {
		case !ok:
			out[i] = "never registered"
		case !m.hasFinal && m.lost != "":
			out[i] = m.lost
		case !m.hasFinal:
			out[i] = "its final account never came"
		}
	}
	return out
}

// unregistered lists the shards that have not registered (or not said
// they are ready, when ready is set). Called with co.mu held.
func (co *coordinator) unregistered(ready bool) []string {
	var out []string
	for i := 1; i < co.count; i++ {
		if m, ok := co.members[i]; !ok || (ready && !m.ready) {
			out = append(out, fmt.Sprint(i))
		}
	}
	sort.Strings(out)
	return out
}

// describeMissing says which shards a wait was for.
func describeMissing(ids []string, what string) string {
	s := "shard"
	if len(ids) > 1 {
		s = "shards"
	}
	return fmt.Sprintf("%s %s %s", s, strings.Join(ids, ", "), what)
}
