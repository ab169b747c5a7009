package benchcompare

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/spate-dev/spate/chaos"
	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// Spate makes spate's sides of one driver's pairs: whole runs through
// engine.Run of scenarios written around the driver block Driver, as a
// user would run them. Each side's window and counts come from the run's
// progress reports, which the engine makes every report interval from the
// tracker's live counts.
type Spate struct {
	Kind drivers.Kind // the driver, possibly wrapped (a test's own node)
	// Driver is the scenario's driver field, e.g. "{kafka: {partitions: 12}}".
	Driver    string
	Producers int // default 1
	Consumers int // for max and consume; default 1
	// InFlight is the max phase's in-flight window (default 1000).
	InFlight int
	// Drain bounds the wait for what is still in flight after the
	// traffic, and a consume side's catch-up (default 60s).
	Drain time.Duration
	Log   *slog.Logger // default: discarded
}

func (s Spate) withDefaults() Spate {
	if s.Producers == 0 {
		s.Producers = 1
	}
	if s.Consumers == 0 {
		s.Consumers = 1
	}
	if s.InFlight == 0 {
		s.InFlight = 1000
	}
	if s.Drain == 0 {
		s.Drain = time.Minute
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Warmup is the start of a produce loop that no side times: connections
// and metadata settle. spate's produce and max sides take their window
// from progress reports every Warmup, the first at Warmup; the bare sides
// start theirs at Warmup too.
const Warmup = 100 * time.Millisecond

// Produce is a produce-only max phase of d (consumers: 0): the messages
// confirmed per second while the traffic ran, from Warmup on.
func (s Spate) Produce(size int, d time.Duration) Side {
	s = s.withDefaults()
	return func(ctx context.Context) (Sample, error) {
		ticks, res, err := s.run(ctx, fmt.Sprintf(`producers: %d
consumers: 0
message: {size: %dB}
traffic:
  - max: {for: %v, in-flight: %d}
drain: %v
report: {interval: %v}
`, s.Producers, size, d, s.InFlight, s.Drain, Warmup))
		if err != nil {
			return Sample{}, err
		}
		return trafficWindow(ticks, res, func(t tick) int64 { return t.acked })
	}
}

// Max is a max phase of d with consumers: the messages received per second
// while the traffic ran, from Warmup on.
func (s Spate) Max(size int, d time.Duration) Side {
	s = s.withDefaults()
	return func(ctx context.Context) (Sample, error) {
		ticks, res, err := s.run(ctx, fmt.Sprintf(`producers: %d
consumers: %d
message: {size: %dB}
traffic:
  - max: {for: %v, in-flight: %d}
drain: %v
report: {interval: %v}
`, s.Producers, s.Consumers, size, d, s.InFlight, s.Drain, Warmup))
		if err != nil {
			return Sample{}, err
		}
		return trafficWindow(ticks, res, func(t tick) int64 { return t.received })
	}
}

// catchUpInterval is the report interval of a consume side: the catch-up's
// start and end are known to within one.
const catchUpInterval = 20 * time.Millisecond

// Consume builds a backlog with a max phase of d while every consumer is
// paused (chaos consumer-pause for the whole phase), then measures the
// catch-up: the messages received from the end of the pause until the
// backlog is gone, over that time.
func (s Spate) Consume(size int, d time.Duration) Side {
	s = s.withDefaults()
	return func(ctx context.Context) (Sample, error) {
		ticks, _, err := s.run(ctx, fmt.Sprintf(`producers: %d
consumers: %d
message: {size: %dB}
traffic:
  - max: {for: %v, in-flight: %d}
chaos:
  - {action: consumer-pause, at: 0s, for: %v}
drain: %v
report: {interval: %v}
`, s.Producers, s.Consumers, size, d, s.InFlight, d, s.Drain, catchUpInterval))
		if err != nil {
			return Sample{}, err
		}
		start := -1
		for i, t := range ticks {
			if start < 0 && t.at >= d {
				if t.backlog == 0 {
					return Sample{}, fmt.Errorf("no backlog when the consumers started at %v", t.at)
				}
				start = i
			}
			if start >= 0 && i > start && t.backlog == 0 {
				return window(ticks[start], t, t.received-ticks[start].received), nil
			}
		}
		return Sample{}, fmt.Errorf("the backlog never drained (%d progress reports)", len(ticks))
	}
}

// tick is what a progress report said, and the process's CPU time then.
type tick struct {
	at                       time.Duration
	acked, received, backlog int64
	cpu                      time.Duration
}

// window is the sample of n messages between two progress reports.
func window(from, to tick, n int64) Sample {
	return Sample{Messages: n, Elapsed: to.at - from.at, CPU: to.cpu - from.cpu}
}

// trafficWindow is the sample of count between the first progress report
// and the last one within the traffic.
func trafficWindow(ticks []tick, res *report.Results, count func(tick) int64) (Sample, error) {
	end := time.Duration(res.TrafficS * float64(time.Second))
	last := -1
	for i, t := range ticks {
		if t.at <= end {
			last = i
		}
	}
	if last < 1 {
		return Sample{}, fmt.Errorf("%d progress reports within the traffic of %v: too short to measure", last+1, end)
	}
	return window(ticks[0], ticks[last], count(ticks[last])-count(ticks[0])), nil
}

// run runs a scenario of the body given (everything but the driver),
// checks that it completed without failures or loss, and returns its
// progress reports.
func (s Spate) run(ctx context.Context, body string) ([]tick, *report.Results, error) {
	l := &scenarios.Loader{}
	l.Driver(s.Kind.Name, s.Kind.Options)
	for _, a := range chaos.Actions() {
		l.Action(a.Name, a.Decode)
	}
	sc, err := l.Parse("bench-compare.yaml", []byte("driver: "+s.Driver+"\n"+body))
	if err != nil {
		return nil, nil, err
	}
	var mu sync.Mutex
	var ticks []tick
	progress := func(p engine.Progress) {
		t := tick{at: p.Elapsed, acked: p.Live.Acked, received: p.Live.Received, backlog: p.Interval.Backlog, cpu: CPUTime()}
		mu.Lock()
		ticks = append(ticks, t)
		mu.Unlock()
	}
	res, err := engine.Run(ctx, sc, engine.WithDrivers(s.Kind), engine.WithLogger(s.Log), engine.WithProgress(progress))
	if err != nil {
		return nil, nil, err
	}
	if c := res.Counts; c.Failed != 0 || c.Lost != 0 || c.Unsent != 0 {
		return nil, nil, fmt.Errorf("the run failed %d, lost %d and left %d unsent messages", c.Failed, c.Lost, c.Unsent)
	}
	mu.Lock() // Run has returned, and with it the reports
	defer mu.Unlock()
	return ticks, res, nil
}
