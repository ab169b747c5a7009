// Package chaos injects faults into a running scenario on a timeline and
// always takes them back: at the end of each fault's window, at the end of
// the run, on Ctrl-C and on a runtime error. Each fault runs on real traffic
// through the engine's controls (pause, throttle, crash and restart
// consumers; make producers re-send) or a driver's optional abilities
// (drivers.BrokerRestarter, BrokerPauser, BrokerPartitioner, LeaderLocator,
// LeaderMover, ProtocolFaulter, Crasher, Env.Dial), found by type
// assertion: chaos never imports a concrete driver.
//
// Every fault becomes a report.FaultResult: when it started and ended,
// whether it worked, the action's own details (injected counts, command
// output), and what it did to the traffic: e2e latency inside the window,
// lost and duplicated messages sent inside it, the peak backlog and the time
// to recover.
package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// Consumers is the engine's control over its consumers. Ids are 0..Count-1,
// the run's consumers; in a distributed run a process runs some of them
// (Owns), and acts only on those. Implementations are safe for concurrent
// use.
type Consumers interface {
	Count() int
	// Owns reports whether consumer id runs in this process.
	Owns(id int) bool
	// Pause stops the consumers from processing: their handlers block, so
	// the system under test sees consumers that stopped consuming.
	Pause(ids []int)
	Resume(ids []int)
	// Throttle caps each consumer at perSecond deliveries; 0 lifts the cap.
	Throttle(ids []int, perSecond float64)
	// Stop stops consumer id: abruptly through drivers.Crasher (no commit,
	// no ack, no leave) unless graceful.
	Stop(ctx context.Context, id int, graceful bool) error
	// Start makes a new consumer for a stopped id and starts it.
	Start(ctx context.Context, id int) error
}

// Producers is the engine's control over its producers.
type Producers interface {
	// Duplicate makes producers re-send fraction of the messages they send,
	// right after the original, with the same stamp, as a client retry would;
	// 0 stops it.
	Duplicate(fraction float64)
	// Duplicated is how many re-sends producers made so far.
	Duplicated() int64
	// Poison flags fraction of the messages producers send as poison:
	// spate's consumers fail to process them (reject them, or skip them to
	// a dead-letter topic, as the driver does); 0 stops it.
	Poison(fraction float64)
	// Poisoned is how many messages producers flagged so far.
	Poisoned() int64
}

// Env is what faults act on.
type Env struct {
	Driver    drivers.Driver
	Consumers Consumers
	Producers Producers
	Network   *Network // nil unless the scenario has network faults
	Log       *slog.Logger

	restarts restarts
}

// restarts follows the consumers crashes stopped until each crash's window
// ends and its restart is done. A crash of a consumer an earlier crash
// stopped waits for it to be back rather than finding it gone: on a loaded
// host a restart (a group join, a retry after a refusal) can outlast the
// gap between two crashes.
type restarts struct {
	mu      sync.Mutex
	pending map[int]chan struct{}
}

// begin marks consumer id as stopped by a crash that will restart it.
func (r *restarts) begin(id int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = map[int]chan struct{}{}
	}
	r.pending[id] = make(chan struct{})
}

// end marks the restart of consumer id done (whether it worked or not).
func (r *restarts) end(id int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ch := r.pending[id]; ch != nil {
		close(ch)
		delete(r.pending, id)
	}
}

// wait returns once consumer id has no restart pending, or ctx's error.
func (r *restarts) wait(ctx context.Context, id int) error {
	r.mu.Lock()
	ch := r.pending[id]
	r.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Action is a kind of fault, as scenarios name it.
type Action struct {
	Name string
	// Decode validates the action's own fields and returns its spec.
	Decode scenarios.ActionFunc
	// Target is what it acts on. In a distributed run, whose shards each
	// run some of the producers and consumers against one system, an
	// action on the system (a command, a broker) is carried out by the
	// coordinator alone, the other shards observing its window to
	// attribute their traffic to it; the others act on what each process
	// runs (its consumers, its producers, its connections through its own
	// proxy), every shard its part: a consumer-crash with count: 1
	// crashes consumer 0 on the shard that runs it, and nowhere else.
	Target scenarios.ActionTarget
}

// Register makes every action known to l.
func Register(l *scenarios.Loader) {
	for _, a := range Actions() {
		l.Action(a.Name, a.Decode, a.Target)
	}
}

// spec is a decoded action, ready to run.
type spec interface {
	// run applies the fault, keeps it until window ends (0: a point event,
	// or until ctx is done for faults that only end with the run), reverts
	// it, and returns. ctx is done when the run ends early; run must still
	// revert before returning. f collects the action's own facts and is told
	// when the revert begins.
	run(ctx context.Context, env *Env, window time.Duration, f *fault) error
}

// fault is one running occurrence as its spec sees it.
type fault struct {
	details map[string]any
	end     func() // closes the window; idempotent
	began   time.Time
}

// applied records, for faults that first ask the driver something (which
// broker leads the queue), how long after the window opened the fault was
// applied (details.applied_after).
func (f *fault) applied() {
	if !f.began.IsZero() {
		f.details["applied_after"] = time.Since(f.began).Round(time.Millisecond).String()
	}
}

// reverting marks the end of the fault's window: traffic after this moment
// is no longer attributed to it. Specs call it just before taking the fault
// back.
func (f *fault) reverting() { f.end() }

var registry = map[string]Action{}

func register(a Action) { registry[a.Name] = a }

// Actions returns every action, sorted by name, for a scenarios.Loader.
func Actions() []Action {
	out := make([]Action, 0, len(registry))
	for _, a := range registry {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// RevertTimeout bounds reverting one fault, so a hung revert cannot hold the
// run forever.
const RevertTimeout = 60 * time.Second

// occurrence is one run of an action: an action with `every` has several.
type occurrence struct {
	index  int // its place in the timeline, the same on every shard
	action *scenarios.Action
	entry  int // its place in the scenario's chaos list
	spec   spec
	// observe: another process carries it out (OnSystem, not the
	// coordinator); this one only opens and closes its window.
	observe bool
	at      time.Duration
	window  time.Duration // 0 for point events
	result  report.FaultResult

	win       *accounting.Span
	mu        sync.Mutex
	started   bool
	ended     bool
	endAt     time.Duration
	rec       recovery
	recovered bool
}

// Runner runs a scenario's faults on its timeline, in a distributed run
// those of its shard (Action.Target). Its methods are safe for concurrent use.
type Runner struct {
	occ      []*occurrence
	network  *Network
	tracker  *accounting.Tracker
	clock    func() time.Duration
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	slices   slidingWindow
}

// NewRunner plans the faults of sc for shard index of count (0 of 1: a
// single process). It returns nil when sc has none.
func NewRunner(sc *scenarios.Scenario, index, count int) *Runner {
	if len(sc.Chaos) == 0 {
		return nil
	}
	r := &Runner{}
	total := scenarios.Duration(sc.Profile().Duration)
	for i := range sc.Chaos {
		a := &sc.Chaos[i]
		s, ok := a.Params.(spec)
		if !ok {
			continue // the loader reported it already
		}
		observe := registry[a.Action].Target == scenarios.OnSystem && index != 0 && count > 1
		for _, w := range a.Window(total) {
			o := &occurrence{action: a, entry: i, spec: s, at: w[0].D(), window: (w[1] - w[0]).D(), observe: observe}
			o.result = report.FaultResult{Action: a.Action, Target: a.Target, Optional: a.Optional, Observer: observe}
			r.occ = append(r.occ, o)
		}
		if _, ok := s.(*networkSpec); ok && r.network == nil {
			r.network = NewNetwork()
		}
	}
	sort.SliceStable(r.occ, func(i, j int) bool { return r.occ[i].at < r.occ[j].at })
	for i, o := range r.occ {
		o.index = i
		o.result.Occurrence = i
	}
	return r
}

// Dial is the DialFunc drivers must use when the scenario has network
// faults, and nil otherwise.
func (r *Runner) Dial() drivers.DialFunc {
	if r == nil || r.network == nil {
		return nil
	}
	return r.network.Dial
}

// Start launches the timeline. clock returns the time since the traffic
// started; the tracker attributes traffic to each fault's window. Start
// returns once every fault due at the start has begun, so that it is under
// way before the first message is sent rather than whenever its goroutine
// first gets a core: with producers busy on both cores of a small machine,
// a consumer-pause at 0s once took effect 32ms into the traffic.
func (r *Runner) Start(ctx context.Context, env *Env, tracker *accounting.Tracker, clock func() time.Duration) {
	if r == nil {
		return
	}
	env.Network = r.network
	r.tracker, r.clock = tracker, clock
	ctx, r.cancel = context.WithCancel(ctx)
	var due sync.WaitGroup
	for _, o := range r.occ {
		begun := func() {}
		if o.at <= 0 {
			due.Add(1)
			begun = sync.OnceFunc(due.Done)
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer begun() // also when the run ends before it is due
			r.runOne(ctx, env, o, begun)
		}()
	}
	due.Wait()
}

// runOne waits until o is due, then carries it out, calling begun just
// before the action runs.
func (r *Runner) runOne(ctx context.Context, env *Env, o *occurrence, begun func()) {
	t := time.NewTimer(max(0, o.at-r.clock()))
	select {
	case <-ctx.Done():
		t.Stop()
		return // the run ended before this fault was due
	case <-t.C:
	}
	o.mu.Lock()
	o.win = r.tracker.OpenSpan(o.index)
	o.result.StartS = r.clock().Seconds()
	o.rec.begin(r.slices.baselineP99(), r.slices.maxBacklog())
	o.started = true
	o.mu.Unlock()
	env.Log.Info("fault started", "action", o.action.Action, "target", o.action.Target)

	var endOnce sync.Once
	f := &fault{details: map[string]any{}, began: time.Now()}
	f.end = func() {
		endOnce.Do(func() {
			r.tracker.CloseSpan(o.win)
			o.mu.Lock()
			o.endAt = r.clock()
			o.result.EndS = o.endAt.Seconds()
			o.mu.Unlock()
		})
	}
	begun()
	var err error
	if o.observe {
		hold(ctx, o.window, false) // as the coordinator holds it
	} else {
		err = o.spec.run(ctx, env, o.window, f)
	}
	f.end()
	details := f.details

	o.mu.Lock()
	o.result.OK = err == nil
	if err != nil {
		o.result.Error = err.Error()
	}
	if len(details) > 0 {
		o.result.Details = details
	}
	o.ended = true
	o.mu.Unlock()
	env.Log.Info("fault ended", "action", o.action.Action, "err", err)
}

// Active names the faults in effect now, for progress displays.
func (r *Runner) Active() []string {
	if r == nil {
		return nil
	}
	var out []string
	for _, o := range r.occ {
		o.mu.Lock()
		if o.started && !o.ended {
			name := o.action.Action
			if o.action.Target != "" {
				name += " " + o.action.Target
			}
			out = append(out, name)
		}
		o.mu.Unlock()
	}
	return out
}

// Stop ends the timeline: faults not yet started never start, and every
// active fault is reverted before Stop returns (each bounded by
// RevertTimeout). The proxies stay up, fault-free, so clients can finish
// cleanly; Close removes them. It is safe to call more than once.
func (r *Runner) Stop() {
	if r == nil {
		return
	}
	r.stopOnce.Do(func() {
		if r.cancel != nil {
			r.cancel()
		}
		r.wg.Wait()
	})
}

// Close stops the timeline and removes the network proxies; call it after
// the driver has closed its connections.
func (r *Runner) Close() {
	if r == nil {
		return
	}
	r.Stop()
	if r.network != nil {
		r.network.Close()
	}
}

// Results returns one FaultResult per fault that started, with its window
// figures; call it after the drain and Stop.
func (r *Runner) Results() []report.FaultResult {
	if r == nil {
		return []report.FaultResult{}
	}
	out := []report.FaultResult{}
	for _, o := range r.occ {
		o.mu.Lock()
		if o.started {
			res := o.result
			f := r.tracker.Figures(o.win)
			if f.E2E.Count > 0 {
				lat := f.E2E
				res.WindowLatencyUS = &lat
			}
			res.LostInWindow, res.DuplicatesInWindow = f.Lost, f.Duplicates
			res.PeakBacklog = o.rec.peak
			if o.recovered {
				s := o.rec.after.Seconds()
				res.RecoveryS = &s
			}
			out = append(out, res)
		}
		o.mu.Unlock()
	}
	return out
}

// errorf makes errors that say which action failed.
func errorf(action, format string, args ...any) error {
	return fmt.Errorf("%s: %s", action, fmt.Sprintf(format, args...))
}

// revertCtx is the context reverts run under: not cancelled by the run's
// end (a fault must be taken back even when the run is interrupted), but
// bounded.
func revertCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), RevertTimeout)
}

// hold waits until window ends, or ctx is done. A zero window holds until
// ctx is done only when untilEnd is set (faults that last for the run).
func hold(ctx context.Context, window time.Duration, untilEnd bool) {
	if window <= 0 && !untilEnd {
		return
	}
	var c <-chan time.Time
	if window > 0 {
		t := time.NewTimer(window)
		defer t.Stop()
		c = t.C
	}
	select {
	case <-ctx.Done():
	case <-c:
	}
}

// node returns the value node of key in an action's own mapping, for positions.
func node(n *yaml.Node, key string) *yaml.Node {
	if c := scenarios.Child(n, key); c != nil {
		return c
	}
	return n
}
