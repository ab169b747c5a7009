// Package engine runs one scenario: it opens the driver, starts consumers and
// producers, paces messages on the scenario's open-model schedule, feeds
// outcomes and deliveries to the tracker, closes intervals, drains, and
// returns the results with thresholds evaluated. A find-max phase is a
// capacity search that decides the schedule as it runs (findmax.go); Sweep
// runs a scenario over a grid of values (sweep.go). It never prints;
// progress goes to a callback and logs to a slog.Logger the caller provides.
//
// A pipeline scenario has two ends: the producers write to the input's
// driver, the consumers read the output's (opened on the input's system
// through drivers.PeerOpener when both are of one kind), and the built-in
// processor, when the scenario asks for it, runs between them as instances
// made by the input's driver (drivers.ProcessorMaker). The instances are
// managed like consumers (paused, throttled, crashed and restarted by
// chaos's consumer actions) but what they process is not counted: the
// tracker counts what reaches the output, against what the input
// confirmed, and times each message's pipeline latency.
package engine

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/chaos"
	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// Option configures Run.
type Option func(*config)

type config struct {
	kinds    map[string]drivers.Kind
	log      *slog.Logger
	progress func(Progress)
	runID    uint64
	hists    func(kind string, start, end time.Time, h *hdr.Histogram)
	peak     float64
	dist     Distribution
}

// WithDrivers makes driver kinds available to scenarios.
func WithDrivers(kinds ...drivers.Kind) Option {
	return func(c *config) {
		for _, k := range kinds {
			c.kinds[k.Name] = k
		}
	}
}

// WithLogger sends the run's log lines to l (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithProgress calls fn at the end of every report interval, from one
// goroutine; fn must return quickly.
func WithProgress(fn func(Progress)) Option { return func(c *config) { c.progress = fn } }

// WithIntervalHistograms calls fn at the end of every report interval with
// each latency kind's histogram of that interval (accounting.E2E, accounting.Service,
// accounting.Publish; microseconds), and the interval's start and end, e.g. to
// write HdrHistogram interval logs as the run goes. fn is called from one
// goroutine, before the progress callback of the same interval; h is valid
// only until fn returns.
func WithIntervalHistograms(fn func(kind string, start, end time.Time, h *hdr.Histogram)) Option {
	return func(c *config) { c.hists = fn }
}

// WithRunID fixes the run id (default: random), e.g. to resume accounting.
func WithRunID(id uint64) Option { return func(c *config) { c.runID = id } }

// WithPeak gives today's observed peak rate (messages per second), so that
// a run with a find-max phase reports its headroom: the sustained rate ÷
// the peak (the threshold metric headroom).
func WithPeak(perSecond float64) Option { return func(c *config) { c.peak = perSecond } }

// Progress is a run's state at the end of an interval.
type Progress struct {
	Elapsed, Total time.Duration // Total is the traffic duration
	Draining       bool
	Phase          string  // name or kind of the current phase
	TargetRate     float64 // messages/s now; 0 in max and pause phases
	Interval       accounting.Interval
	Live           accounting.Counts
	InFlight       int64 // sent, outcome not yet reported
	// Subscriptions is how many subscriptions each message is owed to
	// (1 unless fan-out): received counts them all.
	Subscriptions int
	// ProduceOnly is set when the run has no consumers: received, the
	// backlog and e2e latency are not measured.
	ProduceOnly bool
	// ActiveFaults names the chaos actions in effect at Elapsed, in the
	// order they started (empty when none is).
	ActiveFaults []string
}

// InterruptDrain bounds the drain after the run is interrupted.
const InterruptDrain = 3 * time.Second

// lateGrace is how far behind its schedule a producer may still send once
// the traffic has ended; messages it has not sent by then count as unsent.
const lateGrace = time.Second

// maxBatch bounds the messages handed to a producer in one Send.
const maxBatch = 1024

// closeTimeout bounds stopping consumers and closing the driver.
const closeTimeout = 15 * time.Second

// Run executes sc and returns its results. Cancelling ctx interrupts the run:
// traffic stops, a short drain follows, and the results are marked
// interrupted. Results are returned whenever traffic started, together with
// a non-nil error if the run failed at runtime (the driver could not be
// opened, a producer or consumer broke).
func Run(ctx context.Context, sc *scenarios.Scenario, opts ...Option) (*report.Results, error) {
	c := config{kinds: map[string]drivers.Kind{}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, o := range opts {
		o(&c)
	}
	if c.runID == 0 {
		var b [8]byte
		_, _ = crand.Read(b[:])
		c.runID = binary.LittleEndian.Uint64(b[:]) | 1
	}
	kind, ok := c.kinds[sc.Driver.Kind]
	if !ok {
		return nil, fmt.Errorf("driver %q is not built into this spate", sc.Driver.Kind)
	}
	r := &run{config: c, sc: sc, traffic: traffic{tl: sc.Profile().Timeline(), producers: sc.Producers}}
	if p := sc.Pipeline; p != nil {
		if r.outKind, ok = c.kinds[p.Output.Kind]; !ok {
			return nil, fmt.Errorf("driver %q (the pipeline's output) is not built into this spate", p.Output.Kind)
		}
	}
	return r.execute(ctx, kind)
}

// run is one scenario's execution, in parts: the traffic the producer
// loops share (clock, tracker, timeline, injected faults), the system
// (drivers and processor), the consumers, the chaos timeline and the
// capacity search; execute runs them in phases.
type run struct {
	config
	traffic
	sc *scenarios.Scenario
	// env is what the drivers were told about the run.
	env       drivers.Env
	search    *searcher // nil without a find-max phase
	loops     []*producerLoop
	consumers *consumerSet
	// In a pipeline run: the output's driver kind, and the built-in
	// processor's instances (nil with an external processor).
	outKind    drivers.Kind
	processors *consumerSet
	chaos      *chaos.Runner // nil without faults
	// shard and shards say which producers and consumers this process
	// runs: those whose id mod shards is shard (0 and 1 alone).
	shard, shards int

	errMu       sync.Mutex
	err         error
	stopTraffic context.CancelFunc

	intervals []report.IntervalResult
	lastTick  int64 // Unix ns of the previous tick (the run's start at first)
}

// fail records the first runtime error and stops the traffic.
func (r *run) fail(err error) {
	r.errMu.Lock()
	first := r.err == nil
	if first {
		r.err = err
		r.log.Error("run failed", "err", err)
	}
	r.errMu.Unlock()
	if first && r.dist != nil {
		r.dist.Failed(err)
	}
	r.stopTraffic()
}

func (r *run) failure() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.err
}

func (r *run) execute(ctx context.Context, kind drivers.Kind) (*report.Results, error) {
	r.shard, r.shards = 0, 1
	if r.dist != nil {
		r.shard, r.shards = r.dist.Shard()
	}
	r.chaos = chaos.NewRunner(r.sc, r.shard, r.shards)
	// Deferred first, so it runs last: faults are reverted however the run
	// ends, and the proxies outlive the driver's connections.
	defer r.chaos.Close()
	sys, err := r.openSystem(ctx, kind)
	if err != nil {
		return nil, err
	}
	defer sys.close(r)
	consumers, err := r.makeActors(ctx, sys)
	if err != nil {
		return nil, err
	}
	if err := r.startClock(ctx); err != nil {
		r.closeProducers(context.Background())
		return nil, err
	}
	res := r.newResults(kind)

	trafficCtx, stopTraffic := context.WithCancel(ctx)
	defer stopTraffic()
	r.stopTraffic = stopTraffic
	consumeCtx, stopConsumers := context.WithCancel(context.Background())
	defer stopConsumers()
	r.consumers = newConsumerSet(&r.traffic, r.env, sys.out, consumeCtx, consumers, r.fail)
	// Chaos's consumer actions act on the consumers of the system under
	// test: the built-in processor's instances in a pipeline that has one
	// (spate's own consumers of the output are its measuring instrument).
	var chaosConsumers chaos.Consumers = r.consumers
	processCtx, stopProcessors := context.WithCancel(context.Background())
	defer stopProcessors()
	if sys.procs != nil {
		r.processors = newProcessorSet(processCtx, sys.procs, sys.makeProc, r.fail)
		chaosConsumers = r.processors
	}
	if r.dist != nil {
		// Every shard starts its intervals and its schedule at T0.
		if err := sleepUntil(ctx, r.base); err != nil {
			r.log.Info("interrupted before the start")
		}
		r.dist.Running(r.tracker)
	}
	ticks := r.startTicker()
	if r.chaos != nil {
		r.tracker.EnableSlices()
		slices := r.startSlices()
		defer slices.stop()
		r.chaos.Start(ctx, &chaos.Env{Driver: sys.in, Consumers: chaosConsumers, Producers: &r.traffic, Log: r.log}, r.tracker, r.elapsed)
	}

	trafficEnd, atTrafficEnd := r.runTraffic(trafficCtx)
	interrupted := ctx.Err() != nil && r.failure() == nil
	r.log.Info("traffic ended", "after", trafficEnd.Round(time.Millisecond), "interrupted", interrupted)
	drainEnd := r.drain(interrupted)

	r.chaos.Stop()
	if err := r.chaos.Failure(); err != nil && !interrupted {
		r.fail(err) // the experiment did not happen as declared
	}
	if r.processors != nil && !r.processors.stopAll(stopProcessors, closeTimeout) {
		r.fail(errors.New("a processor did not stop within " + closeTimeout.String()))
	}
	if !r.consumers.stopAll(stopConsumers, closeTimeout) {
		r.fail(errors.New("a consumer did not stop within " + closeTimeout.String()))
	}
	ticks.stop()
	return r.finish(res, sys, trafficEnd, drainEnd, atTrafficEnd, interrupted)
}

// system is the system under test as the run opened it: the driver spate's
// producers write to (in) and the one its consumers read (out: in itself,
// or a pipeline's output), and a pipeline's built-in processor instances
// (procs, made again by makeProc), nil without one.
type system struct {
	in, out  drivers.Driver
	procs    []drivers.Consumer
	makeProc func(ctx context.Context, id int) (drivers.Consumer, error)
}

// openSystem tells the drivers what the run is (drivers.Env), joins a
// distributed run, and opens the driver, a pipeline's output and its
// built-in processor. On error what it opened is closed.
func (r *run) openSystem(ctx context.Context, kind drivers.Kind) (sys *system, err error) {
	sc := r.sc
	env := drivers.Env{
		RunID: r.runID, Scenario: sc.Name, Producers: sc.Producers, Consumers: sc.Consumers,
		Subscriptions: sc.Subscriptions, Log: r.log, Dial: r.chaos.Dial(),
	}
	if r.dist != nil {
		if env.Attach, err = r.dist.Join(ctx); err != nil {
			return nil, err
		}
	}
	r.env = env
	r.log.Info("opening driver", "driver", kind.Name, "run", stamp.RunIDString(r.runID))
	sys = &system{}
	if sys.in, err = kind.Open(ctx, sc.Driver.Options, env); err != nil {
		return nil, fmt.Errorf("open %s driver: %w", kind.Name, err)
	}
	defer func() {
		if err != nil {
			sys.close(r)
		}
	}()
	// In a pipeline, spate's producers write to the input and its
	// consumers read the output; the built-in processor, if any, runs in
	// between on the input's driver.
	sys.out = sys.in
	p := sc.Pipeline
	if p == nil {
		return sys, nil
	}
	if sys.out, err = r.openOutput(ctx, sys.in, env); err != nil {
		sys.out = sys.in
		return nil, fmt.Errorf("open %s driver (the pipeline's output): %w", r.outKind.Name, err)
	}
	if !p.Processor.Builtin() {
		return sys, nil
	}
	if sys.makeProc, err = processorMaker(sys.in, p); err != nil {
		return nil, err
	}
	sys.procs = make([]drivers.Consumer, p.Processor.Instances)
	for i := range sys.procs {
		if sys.procs[i], err = sys.makeProc(ctx, i); err != nil {
			return nil, fmt.Errorf("processor %d: %w", i, err)
		}
	}
	return sys, nil
}

// close closes the output (which may share the input's system) and then
// the input, each bounded by closeTimeout.
func (sys *system) close(r *run) {
	if sys.out != nil && sys.out != sys.in {
		r.closeDriver(sys.out)
	}
	r.closeDriver(sys.in)
}

// makeActors makes this process's consumers, indexed by their ids in the
// run (nil: another shard's), and producer loops.
func (r *run) makeActors(ctx context.Context, sys *system) ([]drivers.Consumer, error) {
	sc := r.sc
	consumers := make([]drivers.Consumer, sc.Consumers)
	var err error
	for _, i := range owned(sc.Consumers, r.shard, r.shards) {
		if consumers[i], err = sys.out.NewConsumer(ctx, i); err != nil {
			return nil, fmt.Errorf("consumer %d: %w", i, err)
		}
	}
	for _, i := range owned(sc.Producers, r.shard, r.shards) {
		pl := newProducerLoop(&r.traffic, sc, r.runID, i)
		if pl.prod, err = sys.in.NewProducer(ctx, i, pl.ack); err != nil {
			r.closeProducers(context.Background())
			return nil, fmt.Errorf("producer %d: %w", i, err)
		}
		r.loops = append(r.loops, pl)
	}
	return consumers, nil
}

// startClock starts the run's clock now (or, distributed, at T0, once
// every shard is ready): schedule offsets and intervals are relative to
// it; and makes the tracker that accounts for the run.
func (r *run) startClock(ctx context.Context) error {
	sc := r.sc
	r.base = time.Now()
	r.baseNS = r.base.UnixNano()
	if r.dist != nil {
		var err error
		if r.base, r.baseNS, err = r.dist.Start(ctx); err != nil {
			return err
		}
	}
	r.tracker = accounting.NewTracker(r.runID, sc.Producers, r.baseNS)
	r.tracker.SetShard(r.shard, r.shards)
	r.tracker.SetSubscriptions(owedSubscriptions(sc))
	if sc.Pipeline != nil {
		// A message of an aborted input transaction must never come out
		// of a pipeline, whatever the output's isolation.
		r.tracker.SetReadCommitted(true)
		r.tracker.EnablePipeline()
	} else {
		r.tracker.SetReadCommitted(drivers.HasAbility(sc.Driver.Options, scenarios.AbilityReadCommitted))
	}
	r.lastTick = r.baseNS
	return nil
}

// newResults is the results' head: what was run, and when.
func (r *run) newResults(kind drivers.Kind) *report.Results {
	sc := r.sc
	res := &report.Results{
		SchemaVersion: report.SchemaVersion,
		Scenario:      sc.Name,
		File:          sc.File,
		Description:   sc.Description,
		Driver:        kind.Name,
		RunID:         stamp.RunIDString(r.runID),
		StartedAt:     time.Unix(0, r.baseNS).UTC(),
		Producers:     sc.Producers,
		Consumers:     sc.Consumers,
		Chaos:         []report.FaultResult{},
		ProduceOnly:   sc.Consumers == 0,
	}
	if sc.Subscriptions > 1 {
		res.Subscriptions = sc.Subscriptions
	}
	if p := sc.Pipeline; p != nil {
		res.Pipeline = &report.PipelineResult{Input: kind.Name, Output: r.outKind.Name, Processor: p.Processor.Kind}
		if p.Processor.Builtin() {
			res.Pipeline.Mode, res.Pipeline.Instances = p.Processor.Mode, p.Processor.Instances
		}
	}
	return res
}

// runTraffic runs the producer loops (and a find-max search) until the
// traffic ends or ctx is done, and returns when it ended and the running
// counts then.
func (r *run) runTraffic(ctx context.Context) (end time.Duration, atEnd accounting.Counts) {
	r.log.Info("traffic started", "duration", r.tl.Duration(), "producers", r.sc.Producers, "consumers", r.sc.Consumers)
	if r.search = newSearcher(r); r.search != nil {
		go r.search.run(ctx)
	}
	var pacers sync.WaitGroup
	for _, pl := range r.loops {
		pacers.Add(1)
		go func() {
			defer pacers.Done()
			if err := pl.run(ctx); err != nil {
				r.fail(fmt.Errorf("producer %d: %w", pl.id, err))
			}
		}()
	}
	pacers.Wait()
	if r.search != nil {
		r.search.stop() // the pacers end when the search closes the timeline, or on interrupt
	}
	end = r.waitTrafficEnd(ctx)
	atEnd = r.tracker.Live()
	if r.dist != nil {
		r.dist.Ended()
	}
	return end, atEnd
}

// drain closes the producers and waits for what is owed to arrive, for
// the scenario's drain time (after an interrupt or a failure, at most
// InterruptDrain, with every fault taken back first), and returns when it
// ended.
func (r *run) drain(interrupted bool) time.Duration {
	drain := r.sc.DrainTimeout()
	if interrupted || r.failure() != nil {
		r.chaos.Stop() // take every fault back before the short drain
		drain = min(drain, InterruptDrain)
	}
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	r.closeProducers(ctx)
	if r.dist != nil {
		r.dist.Drain(ctx, drainQuiet)
	} else {
		r.waitDrained(ctx)
	}
	return r.elapsed()
}

// finish fills res with the tracker's account, the timings, rates,
// intervals, faults, search and driver figures, and judges it.
func (r *run) finish(res *report.Results, sys *system, trafficEnd, drainEnd time.Duration, atTrafficEnd accounting.Counts, interrupted bool) (*report.Results, error) {
	for _, pl := range r.loops {
		res.Counts.Unsent += pl.unsent
	}
	if err := res.SetSummary(r.tracker.Summary()); err != nil {
		r.fail(err)
	}
	res.TrafficS = trafficEnd.Seconds()
	res.DrainS = (drainEnd - trafficEnd).Seconds()
	res.DurationS = drainEnd.Seconds()
	res.Interrupted = interrupted
	res.Intervals = r.intervals
	res.Chaos = r.chaos.Results()
	if r.search != nil {
		res.FindMax = r.search.result(r.peak)
	}
	if secs := trafficEnd.Seconds(); secs > 0 {
		prof := r.profile() // with a find-max phase, the steps the search ran
		if !prof.HasMax() {
			target := prof.Scheduled(min(trafficEnd, prof.Duration)) / secs
			res.Rate.TargetMean = &target
		}
		// Per subscription: each receives the whole traffic.
		res.Rate.AchievedMean = float64(atTrafficEnd.Received) / secs / float64(res.Subs())
		res.Rate.SentMean = float64(atTrafficEnd.Sent) / secs
		res.Rate.AckedMean = float64(atTrafficEnd.Acked) / secs
	}
	if sr, ok := sys.in.(drivers.StatsReporter); ok {
		res.DriverStats = sr.Stats()
	}
	if sr, ok := sys.out.(drivers.StatsReporter); ok && sys.out != sys.in {
		if res.DriverStats == nil {
			res.DriverStats = map[string]int64{}
		}
		for k, v := range sr.Stats() {
			res.DriverStats["output."+k] = v
		}
	}
	err := r.failure()
	if err != nil {
		res.Error = err.Error()
	}
	res.Evaluate(r.sc.Thresholds)
	if err != nil || interrupted {
		res.Verdict = report.Fail // an incomplete run never passes
	}
	return res, err
}

// closeDriver closes a driver, bounded by closeTimeout.
func (r *run) closeDriver(d drivers.Driver) {
	cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if err := d.Close(cctx); err != nil {
		r.log.Warn("closing driver", "err", err)
	}
}

// openOutput opens a pipeline's output end: on the input's own system when
// both ends are of one kind and the input's driver can open a peer
// (drivers.PeerOpener), else as a driver of its own.
func (r *run) openOutput(ctx context.Context, in drivers.Driver, env drivers.Env) (drivers.Driver, error) {
	p := r.sc.Pipeline
	r.log.Info("opening the pipeline's output", "driver", r.outKind.Name)
	if po, ok := in.(drivers.PeerOpener); ok && p.Output.Kind == p.Input.Kind {
		return po.OpenPeer(ctx, p.Output.Options, env)
	}
	return r.outKind.Open(ctx, p.Output.Options, env)
}

// processorMaker returns the function that opens the built-in processor's
// instances on the input's driver.
func processorMaker(in drivers.Driver, p *scenarios.Pipeline) (func(context.Context, int) (drivers.Consumer, error), error) {
	pm, ok := in.(drivers.ProcessorMaker)
	if !ok {
		return nil, fmt.Errorf("driver %q cannot run the built-in processor; use processor: external", p.Input.Kind)
	}
	spec := drivers.ProcessorSpec{Mode: p.Processor.Mode, Output: p.Output.Options}
	if ci := p.Processor.CommitInterval; ci != nil {
		spec.CommitInterval = ci.D()
	}
	return func(ctx context.Context, id int) (drivers.Consumer, error) { return pm.NewProcessor(ctx, id, spec) }, nil
}

func (r *run) closeProducers(ctx context.Context) {
	var wg sync.WaitGroup
	for _, pl := range r.loops {
		if pl == nil || pl.prod == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := pl.prod.Close(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("closing producer", "producer", pl.id, "err", err)
			}
		}()
	}
	wg.Wait()
}

// drainQuiet is how long the drain waits, once every acked message has
// arrived, for deliveries to stop: late copies (a redelivery, a retried
// send that had landed) still count as duplicates or unconfirmed-delivered.
const drainQuiet = 500 * time.Millisecond

// waitDrained returns when every acked message has been received and no
// delivery has arrived for drainQuiet, or when ctx ends.
func (r *run) waitDrained(ctx context.Context) {
	if r.sc.Consumers == 0 {
		return // produce only: nothing to receive
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	deliveries := func() int64 {
		c := r.tracker.Live()
		return c.Received + c.Duplicates + c.Foreign + c.Malformed
	}
	last, lastAt := deliveries(), time.Now()
	for {
		if n := deliveries(); n != last {
			last, lastAt = n, time.Now()
		}
		if r.tracker.Backlog() == 0 && time.Since(lastAt) >= drainQuiet {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// ticker closes an interval every report interval until stopped, then a last one.
type ticker struct {
	quit chan struct{}
	done chan struct{}
}

func (r *run) startTicker() *ticker {
	t := &ticker{quit: make(chan struct{}), done: make(chan struct{})}
	every := r.sc.Report.Interval.D()
	go func() {
		defer close(t.done)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-tk.C:
				r.tick(false)
			case <-t.quit:
				r.tick(true)
				return
			}
		}
	}()
	return t
}

func (t *ticker) stop() {
	close(t.quit)
	<-t.done
}

func (r *run) tick(last bool) {
	now := r.now()
	var visit func(string, *hdr.Histogram)
	if r.hists != nil {
		from, to := time.Unix(0, r.lastTick), time.Unix(0, now)
		visit = func(kind string, h *hdr.Histogram) { r.hists(kind, from, to, h) }
	}
	iv := r.tracker.Tick(now, visit)
	r.lastTick = now
	if last && iv.End <= iv.Start {
		return
	}
	ir := report.IntervalResult{
		StartS:    iv.Start.Seconds(),
		EndS:      iv.End.Seconds(),
		Counts:    iv.Counts,
		Backlog:   iv.Backlog,
		LatencyUS: iv.Latency,
	}
	if target, ok := r.targetOver(r.profile(), iv.Start, iv.End); ok {
		ir.TargetRate = &target
	}
	r.intervals = append(r.intervals, ir)
	if r.progress != nil {
		prof := r.profile()
		p := Progress{
			Elapsed:  iv.End,
			Total:    prof.Duration,
			Draining: iv.End > prof.Duration,
			Interval: iv,
			Live:     r.tracker.Live(),

			Subscriptions: max(r.sc.Subscriptions, 1),
			ProduceOnly:   r.sc.Consumers == 0,
		}
		if seg, ok := r.segmentAt(prof, iv.End); ok {
			p.Phase = r.sc.Traffic[seg.Phase].Name
			if p.Phase == "" {
				p.Phase = r.sc.Traffic[seg.Phase].Kind()
			}
			switch {
			case seg.Step > 0:
				p.Phase += fmt.Sprintf(" step %d", seg.Step)
			case r.sc.Traffic[seg.Phase].FindMax != nil:
				p.Phase += " settling"
			}
			p.TargetRate, _ = prof.RateAt(iv.End)
		} else if r.search != nil && r.tl.Open() && iv.End >= r.search.begin {
			p.Phase = r.search.name + " settling"
		}
		for _, pl := range r.loops {
			p.InFlight += pl.inflight.Load()
		}
		p.ActiveFaults = r.chaos.Active()
		r.progress(p)
	}
}

// targetOver is the mean scheduled rate in [from, to), unless a max phase
// overlaps it.
func (r *run) targetOver(prof scenarios.Profile, from, to time.Duration) (float64, bool) {
	if to <= from {
		return 0, false
	}
	for _, s := range prof.Segments {
		if s.Max && s.Start < to && s.Start+s.Dur > from {
			return 0, false
		}
	}
	n := prof.Scheduled(to) - prof.Scheduled(from)
	return n / (to - from).Seconds(), true
}

func (r *run) segmentAt(prof scenarios.Profile, t time.Duration) (scenarios.Segment, bool) {
	for _, s := range prof.Segments {
		if t >= s.Start && t < s.Start+s.Dur {
			return s, true
		}
	}
	return scenarios.Segment{}, false
}
