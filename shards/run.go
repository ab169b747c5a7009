package shards

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/drivers/stamp"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// Config says which shard this process is and how to reach the others.
type Config struct {
	// Index and Count: this process is shard Index of Count (Count >= 2).
	Index, Count int
	// Coordinator is shard 0's HOST:PORT, where the other shards reach
	// it.
	Coordinator string
	// Listen is the address shard 0 listens on (default Coordinator):
	// ":7070" listens on every interface, as in a Kubernetes pod, whose
	// port-forward reaches it on loopback and the other pods on its own.
	Listen string
	// Scenario is the scenario file's content: every shard must run the
	// same (its digest is compared).
	Scenario []byte
	// Dir is the report directory: the shard's artifact goes to
	// Dir/shards/<Index>, and on the coordinator every shard's.
	Dir string
	// Host names this shard in results (default: the host name).
	Host string
	// RunID is the run's id, used by the coordinator (default: random);
	// the other shards learn it when they join.
	RunID uint64
	// JoinTimeout bounds the wait for every shard to register and be
	// ready, and a shard's wait for the coordinator to answer at first
	// (default DefaultJoinTimeout).
	JoinTimeout time.Duration
	// LostAfter is how long without a report (or, for a shard, without an
	// answer) before the coordinator gives up on a shard (or the shard on
	// the coordinator) (default DefaultLostAfter).
	LostAfter time.Duration
	// Progress receives, on the coordinator, the run's progress every
	// interval (merged from every shard's); on the other shards, the
	// shard's own.
	Progress func(engine.Progress)
	// IntervalHistograms receives, on the coordinator, the run's interval
	// histograms (merged), for interval logs.
	IntervalHistograms func(kind string, start, end time.Time, h *hdr.Histogram)
	// Listening, when set, is told the coordinator's address once it
	// listens (shard 0).
	Listening func(addr string)
	// ClockSkew shifts this process's clock readings: a test plays a host
	// whose clock is off with it. Zero otherwise.
	ClockSkew time.Duration
	Log       *slog.Logger
	// Files, on the coordinator, serves every path of its port that the
	// API does not: the report files (ReportFiles), for fetching them
	// after the run.
	Files http.Handler
	// KeepServing, when set on the coordinator, keeps its port answering
	// (Files included) after Run returns, until KeepServing is closed:
	// the caller writes the report, then serves it for a while. The
	// caller must close it.
	KeepServing <-chan struct{}
}

// Defaults of Config.
const (
	DefaultJoinTimeout = 2 * time.Minute
	DefaultLostAfter   = 10 * time.Second
)

// finalTimeout bounds the coordinator's wait, after its own traffic and
// drain, for the other shards' final accounts: their drain ends with its
// (the coordinator ends it), then they close (bounded by the engine's
// close timeout) and send.
const finalTimeout = 45 * time.Second

// startMargin is the least time between setting T0 and T0, for the news
// to reach every shard.
const startMargin = 300 * time.Millisecond

// Digest is the scenario digest shards compare.
func Digest(scenario []byte) string {
	sum := sha256.Sum256(scenario)
	return hex.EncodeToString(sum[:])
}

// Run runs this process's shard of sc (loaded from cfg.Scenario) with the
// engine options opts (drivers, logger, peak; not progress or run id,
// which Run sets). On the coordinator it returns the run's results,
// merged from every shard's artifact, with the verdict; on another shard,
// its own account once the coordinator has it. The error is the run's
// runtime error, if any: a shard that could not join, failed, or lost the
// coordinator.
func Run(ctx context.Context, cfg Config, sc *scenarios.Scenario, opts ...engine.Option) (*report.Results, error) {
	if cfg.Count < 2 || cfg.Index < 0 || cfg.Index >= cfg.Count {
		return nil, fmt.Errorf("shards: shard %d of %d", cfg.Index, cfg.Count)
	}
	if cfg.JoinTimeout <= 0 {
		cfg.JoinTimeout = DefaultJoinTimeout
	}
	if cfg.LostAfter <= 0 {
		cfg.LostAfter = DefaultLostAfter
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	log := cfg.Log.With("shard", cfg.Index)
	c := clock{skew: cfg.ClockSkew}
	digest := Digest(cfg.Scenario)
	m := newMember(cfg.Index, cfg.Count, rand.Uint64()|1, c, log)
	m.lostAfter = cfg.LostAfter
	meta := Meta{
		Version: ProtocolVersion, Digest: digest, Index: cfg.Index, Count: cfg.Count, Host: cfg.Host,
		Producers: ownedIDs(sc.Producers, cfg.Index, cfg.Count), Consumers: ownedIDs(sc.Consumers, cfg.Index, cfg.Count),
	}

	var runID uint64
	var co *coordinator
	if cfg.Index == 0 {
		runID = cfg.RunID
		if runID == 0 {
			runID = rand.Uint64() | 1
		}
		co = newCoordinator(cfg.Count, sc.Producers, sc.Subscriptions, digest, runID, c)
		co.log = func(msg string, args ...any) { log.Info(msg, args...) }
		co.progress, co.hists, co.interval = cfg.Progress, cfg.IntervalHistograms, sc.Report.Interval.D()
		co.members[0] = &memberState{index: 0, host: cfg.Host, nonce: m.nonce, ready: true, lastSync: time.Now()}
		listen := cfg.Listen
		if listen == "" {
			listen = cfg.Coordinator
		}
		srv, err := serve(listen, co, cfg.Files)
		if err != nil {
			return nil, err
		}
		if cfg.KeepServing != nil {
			go func() { <-cfg.KeepServing; srv.close() }()
		} else {
			defer srv.close()
		}
		if cfg.Listening != nil {
			cfg.Listening(srv.Addr())
		}
		watchCtx, stopWatch := context.WithCancel(context.Background())
		defer stopWatch()
		go co.watch(watchCtx, cfg.LostAfter)
		log.Info("waiting for the shards to register", "coordinator", srv.Addr(), "shards", cfg.Count)
		if !co.wait(ctx, cfg.JoinTimeout, func() bool { return len(co.unregistered(false)) == 0 }) {
			co.mu.Lock()
			missing := co.unregistered(false)
			co.halt("the run did not start")
			co.mu.Unlock()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("interrupted while waiting for %s", describeMissing(missing, "to register"))
			}
			return nil, fmt.Errorf("%s within %s at %s", describeMissing(missing, "did not register"), cfg.JoinTimeout, cfg.Coordinator)
		}
		m.role = &coordinatorRole{co: co, joinTimeout: cfg.JoinTimeout}
		m.onShow = func(index int, p engine.Progress) {
			co.mu.Lock()
			if index >= co.next {
				co.local[index] = p
			}
			co.mu.Unlock()
		}
	} else {
		r := &remoteRole{c: newClient(cfg.Coordinator), index: cfg.Index, nonce: m.nonce, lostAfter: cfg.LostAfter}
		var err error
		runID, err = r.register(ctx, registerRequest{
			Version: ProtocolVersion, Index: cfg.Index, Count: cfg.Count, Digest: digest, Host: cfg.Host, Nonce: m.nonce,
		}, cfg.JoinTimeout)
		if err != nil {
			return nil, err
		}
		if m.offset, err = measureOffset(ctx, c, r.clock); err != nil {
			return nil, fmt.Errorf("measuring the clock offset from the coordinator: %w", err)
		}
		log.Info("joined", "run", stamp.RunIDString(runID), "clock_offset", time.Duration(m.offset.ns), "uncertainty", time.Duration(m.offset.uncertainty))
		m.role = r
		m.local = cfg.Progress
	}
	meta.RunID = stamp.RunIDString(runID)

	runCtx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	m.stopRun = stopRun
	go func() { // an interrupt here stops the whole run
		<-runCtx.Done()
		if ctx.Err() != nil {
			m.interrupted("interrupted")
		}
	}()
	opts = append(opts, engine.WithRunID(runID), engine.WithDistribution(m),
		engine.WithProgress(m.onProgress), engine.WithIntervalHistograms(m.onHistogram))
	res, runErr := engine.Run(runCtx, sc, opts...)
	m.finish()
	if cause := context.Cause(runCtx); runErr == nil && m.lostCoordinator != nil {
		runErr = m.lostCoordinator
	} else if runErr == nil && cause != nil && ctx.Err() == nil && !errors.Is(cause, context.Canceled) && res != nil {
		res.Error = "" // stopped by the coordinator: the run's reason is on the shard that stopped it
	}
	if res == nil {
		if co == nil {
			m.abort(runErr)
			return nil, runErr
		}
		co.mu.Lock()
		co.halt(fmt.Sprintf("the coordinator failed: %v", runErr))
		co.mu.Unlock()
		co.tellStop(longPoll + time.Second)
		return nil, runErr
	}
	art, err := m.artifact(res, meta)
	if err != nil {
		return res, errors.Join(runErr, err)
	}
	dir := ShardDir(cfg.Dir, cfg.Index)
	if err := art.Write(dir); err != nil {
		return res, errors.Join(runErr, fmt.Errorf("writing the shard's artifact: %w", err))
	}
	if co == nil {
		if m.lostCoordinator != nil {
			return res, runErr
		}
		fctx, cancel := context.WithTimeout(context.Background(), finalTimeout)
		defer cancel()
		if err := m.role.final(fctx, art); err != nil {
			return res, errors.Join(runErr, fmt.Errorf("handing the shard's account to the coordinator: %w (it is in %s: spate merge can use it)", err, dir))
		}
		return res, runErr
	}
	return co.merge(cfg, art)
}

// ownedIDs lists the ids of n that shard index of count runs.
func ownedIDs(n, index, count int) []int {
	ids := []int{}
	for id := index; id < n; id += count {
		ids = append(ids, id)
	}
	return ids
}

// merge waits for every shard's final account (bounded), makes a partial
// one from the last report of each shard that sent none, writes them all
// under cfg.Dir, and merges what it reads back, exactly as spate merge
// would from the same directory.
func (co *coordinator) merge(cfg Config, own *Artifact) (*report.Results, error) {
	// Not bounded by the run's context: an interrupted run still collects
	// the accounts of the shards it stopped (a second interrupt kills).
	co.wait(context.Background(), finalTimeout, func() bool {
		for i := 1; i < co.count; i++ {
			if m := co.members[i]; !m.hasFinal && m.lost == "" {
				return false
			}
		}
		return true
	})
	co.mu.Lock()
	own.Run = &Observations{Backlog: co.obs.Backlog, ReceivedAtTrafficEnd: co.obs.ReceivedAtTrafficEnd}
	co.mu.Unlock()
	if err := own.Write(ShardDir(cfg.Dir, 0)); err != nil {
		return nil, err
	}
	for i, why := range co.missing() {
		partial, err := co.partial(i, why, own)
		if err != nil {
			return nil, err
		}
		if err := partial.Write(ShardDir(cfg.Dir, i)); err != nil {
			return nil, err
		}
	}
	co.mu.Lock()
	finals := co.finals
	co.mu.Unlock()
	for i, a := range finals {
		if err := a.Write(ShardDir(cfg.Dir, i)); err != nil {
			return nil, err
		}
	}
	var arts []*Artifact
	for i := range co.count {
		a, err := ReadArtifact(ShardDir(cfg.Dir, i))
		if err != nil {
			return nil, err
		}
		arts = append(arts, a)
	}
	return Merge(arts)
}

// partial makes shard i's artifact from what it reported before it was
// lost: its last running counts, its intervals, and, as its sets, the
// union of every shard's (merging sets is idempotent, so this adds what
// it reported and nothing else).
func (co *coordinator) partial(i int, why string, own *Artifact) (*Artifact, error) {
	state, err := co.union.State()
	if err != nil {
		return nil, err
	}
	co.mu.Lock()
	defer co.mu.Unlock()
	m := co.members[i]
	meta := own.Meta
	meta.Index, meta.Partial = i, why
	meta.Producers, meta.Consumers = ownedIDs(own.Results.Producers, i, co.count), ownedIDs(own.Results.Consumers, i, co.count)
	res := &report.Results{} // no final results: the run is incomplete (Meta.Partial) rather than in error
	var intervals []intervalReport
	state.Shard, state.Shards, state.Start, state.Partial = i, co.count, own.State.Start, true
	state.ReadCommitted = own.State.ReadCommitted
	state.Histograms, state.Spans, state.Examples = map[string][]byte{}, nil, nil
	if m != nil {
		meta.Host, meta.Started, meta.OffsetNS, meta.UncertaintyNS = m.host, m.started, m.offset.ns, m.offset.uncertainty
		meta.AtTrafficEnd = m.live
		state.Live = m.live
		intervals = m.intervals
		hists := map[string]*hdr.Histogram{}
		for _, iv := range m.intervals {
			for kind, b := range iv.Histograms {
				h, err := hdr.Decode(b)
				if err != nil {
					return nil, err
				}
				if hists[kind] == nil {
					hists[kind] = accounting.NewHistogram()
				}
				hists[kind].Merge(h)
			}
		}
		for kind, h := range hists {
			b, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
			if err != nil {
				return nil, err
			}
			state.Histograms[kind] = b
		}
	} else {
		state.Live = accounting.Counts{}
	}
	return &Artifact{Meta: meta, Results: res, Intervals: intervals, Faults: []Fault{}, State: state}, nil
}

// coordinatorRole is shard 0's role: the coordinator is in this process.
type coordinatorRole struct {
	co          *coordinator
	joinTimeout time.Duration
}

// join: the coordinator provisions the system; it opens its driver as is.
func (r *coordinatorRole) join(context.Context) (bool, error) { return false, nil }

// start lets the other shards open their drivers (the coordinator's is
// open: the system is provisioned), waits until every shard is ready, and
// sets T0 far enough ahead for every shard to hear of it in time.
func (r *coordinatorRole) start(ctx context.Context, _ offset) (int64, error) {
	co := r.co
	co.mu.Lock()
	co.provisioned = true
	co.notify()
	co.mu.Unlock()
	if !co.wait(ctx, r.joinTimeout, func() bool { return len(co.unregistered(true)) == 0 || co.stop != "" }) {
		co.mu.Lock()
		missing := co.unregistered(true)
		co.halt("the run did not start")
		co.mu.Unlock()
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("%s within %s", describeMissing(missing, "did not get ready"), r.joinTimeout)
	}
	co.mu.Lock()
	defer co.mu.Unlock()
	if co.stop != "" {
		return 0, errors.New(co.stop)
	}
	margin := startMargin
	for _, m := range co.members {
		margin = max(margin, time.Duration(8*m.offset.uncertainty)) // four round trips
	}
	co.t0 = co.clock.now() + int64(margin)
	co.notify()
	return co.t0, nil
}

func (r *coordinatorRole) sync(_ context.Context, req syncRequest, d *accounting.State) (syncResponse, error) {
	var deltas []*accounting.State
	if d != nil {
		deltas = append(deltas, d)
	}
	return r.co.sync(req, deltas)
}

func (r *coordinatorRole) final(context.Context, *Artifact) error { return nil }

// remoteRole is the role of every shard but 0: the coordinator is reached
// over HTTP.
type remoteRole struct {
	c         *client
	index     int
	nonce     uint64
	lostAfter time.Duration
	// pending are encoded deltas the coordinator has not acknowledged.
	pending [][]byte
}

func (r *remoteRole) member() memberRequest { return memberRequest{Index: r.index, Nonce: r.nonce} }

// register joins the run, retrying while the coordinator is not up yet.
func (r *remoteRole) register(ctx context.Context, req registerRequest, within time.Duration) (uint64, error) {
	var resp registerResponse
	if err := r.c.poll(ctx, pathRegister, req, &resp, within); err != nil {
		return 0, fmt.Errorf("joining the run at %s: %w", r.c.base, err)
	}
	return resp.RunID, nil
}

// clock is one clock exchange.
func (r *remoteRole) clock(ctx context.Context, t1 int64) (int64, int64, error) {
	var resp clockResponse
	_, err := r.c.call(ctx, pathClock, clockRequest{memberRequest: r.member(), Sent: t1}, &resp)
	return resp.Received, resp.Replied, err
}

func (r *remoteRole) join(ctx context.Context) (bool, error) {
	var resp openResponse
	if err := r.c.poll(ctx, pathOpen, r.member(), &resp, r.lostAfter); err != nil {
		return true, fmt.Errorf("waiting for the coordinator to provision the system: %w", err)
	}
	return true, nil
}

func (r *remoteRole) start(ctx context.Context, o offset) (int64, error) {
	var resp startResponse
	req := readyRequest{memberRequest: r.member(), OffsetNS: o.ns, UncertaintyNS: o.uncertainty}
	if err := r.c.poll(ctx, pathReady, req, &resp, r.lostAfter); err != nil {
		return 0, fmt.Errorf("waiting for the run to start: %w", err)
	}
	return resp.T0, nil
}

func (r *remoteRole) sync(ctx context.Context, req syncRequest, d *accounting.State) (syncResponse, error) {
	if d != nil {
		var b bytes.Buffer
		if _, err := d.WriteTo(&b); err != nil {
			return syncResponse{}, err
		}
		r.pending = append(r.pending, b.Bytes())
	}
	req.Deltas = r.pending
	var resp syncResponse
	if _, err := r.c.call(ctx, pathSync, req, &resp); err != nil {
		return resp, err
	}
	r.pending = nil
	return resp, nil
}

func (r *remoteRole) final(ctx context.Context, a *Artifact) error {
	meta, state, err := a.encode()
	if err != nil {
		return err
	}
	req := finalRequest{memberRequest: r.member(), Artifact: meta, State: state}
	var resp finalResponse
	return r.c.poll(ctx, pathFinal, req, &resp, r.lostAfter)
}
