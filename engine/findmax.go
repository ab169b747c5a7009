package engine

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// searcher runs a find-max phase. The producers follow the run's timeline,
// which ends, while the search runs, at the last step decided; the searcher
// decides each step's rate (scenarios.Search), appends the step to the
// timeline just ahead of the run clock (so it is scheduled exactly like a
// constant phase, open model and all), measures it, lets the backlog drain,
// judges it, and closes the timeline when the search is over, which ends
// the traffic.
//
// A step's figures are its own: the tracker attributes every message whose
// intended send time falls in the step to it (accounting.StepWindow), however
// late it arrives. The backlog is sampled at the step's start, middle and
// end, and messages received while it ran give its achieved rate. After
// the step nothing is scheduled until the backlog and the messages in
// flight are back to zero, for at most the settle time, so one step's
// backlog does not poison the next; then the step is judged.
type searcher struct {
	r     *run
	fm    *scenarios.FindMax
	phase int
	name  string
	begin time.Duration // the end of the phases before the search
	done  chan struct{}
	res   report.FindMaxResult // owned by run until done is closed
}

// drainPoll is how often the searcher checks whether a step's backlog has
// drained.
const drainPoll = 5 * time.Millisecond

func newSearcher(r *run) *searcher {
	seg, ok := r.sc.Profile().Search()
	if !ok {
		return nil
	}
	ph := &r.sc.Traffic[seg.Phase]
	fm := ph.FindMax
	name := ph.Name
	if name == "" {
		name = ph.Kind()
	}
	s := &searcher{r: r, fm: fm, phase: seg.Phase, name: name, begin: seg.Start, done: make(chan struct{})}
	s.res = report.FindMaxResult{
		Phase: seg.Phase, Name: name, SLO: fm.SLO.Exprs(), Backlog: fm.Backlog,
		StartRate: fm.Start.PerSecond(), MaxRate: fm.Max.PerSecond(), StepFactor: float64(fm.Step),
		HoldS: fm.Hold.D().Seconds(), SettleS: fm.SettleTime().D().Seconds(), Precision: float64(fm.Precision),
		MaxSteps: fm.MaxSteps(), TimeBoundS: fm.Bound().Seconds(), StartS: seg.Start.Seconds(),
		Steps: []report.FindMaxStep{},
	}
	return s
}

// stop waits for the search to end (the caller has ended the traffic, or
// the search has closed the timeline).
func (s *searcher) stop() { <-s.done }

// result returns the search's figures with the knee and the headroom over
// peak (0: none given); call it after stop.
func (s *searcher) result(peak float64) *report.FindMaxResult {
	res := s.res
	res.Finish(peak)
	return &res
}

func (s *searcher) run(ctx context.Context) {
	defer close(s.done)
	r := s.r
	defer r.tl.Close()
	search := s.fm.NewSearch()
	hold := s.fm.Hold.D()
	deadline := s.begin + s.fm.Bound()
	r.log.Info("find-max search", "phase", s.name, "plan", s.fm.Plan())
	for {
		rate, bisect, ok := search.Next()
		if !ok {
			break
		}
		// The step starts just ahead of the run clock, or at the end of
		// the phases before the search.
		start := max(r.tl.End(), r.elapsed()+scenarios.SettleLead)
		if start+hold+scenarios.SettleLead > deadline {
			search.Stop(scenarios.SearchTimeBound)
			break
		}
		kind := report.StepClimb
		if bisect {
			kind = report.StepBisect
		}
		seg := scenarios.Segment{Phase: s.phase, Start: start, Dur: hold, From: rate, To: rate, Step: search.Steps() + 1}
		win := r.tracker.OpenStep(r.baseNS+int64(start), r.baseNS+int64(start+hold))
		if err := r.tl.Append(seg); err != nil {
			r.tracker.CloseStep(win)
			r.fail(fmt.Errorf("find-max: %w", err))
			search.Stop(scenarios.SearchInterrupted)
			break
		}
		r.log.Info("find-max step", "step", seg.Step, "kind", kind, "rate", rate, "at", start)
		step, ok := s.measure(ctx, win, seg, kind, deadline)
		if !ok {
			search.Stop(scenarios.SearchInterrupted)
			break
		}
		search.Record(rate, step.OK)
		s.res.Steps = append(s.res.Steps, step)
		r.log.Info("find-max verdict", "step", seg.Step, "rate", rate, "ok", step.OK, "why", step.Why)
	}
	s.res.EndS = r.elapsed().Seconds()
	outcome, good, bad := search.Outcome()
	s.res.Outcome = outcome
	if good > 0 {
		s.res.SustainedRate = &good
	}
	if bad > 0 {
		s.res.FailedRate = &bad
	}
	s.res.Message = s.message(outcome, good, bad)
}

// measure runs one step appended to the timeline as seg, lets the backlog
// drain, and judges it; ok is false when ctx ended first.
func (s *searcher) measure(ctx context.Context, win *accounting.StepWindow, seg scenarios.Segment, kind string, deadline time.Duration) (step report.FindMaxStep, ok bool) {
	r := s.r
	defer func() {
		if !ok {
			r.tracker.CloseStep(win)
		}
	}()
	start, end := seg.Start, seg.Start+seg.Dur
	if !s.sleepUntil(ctx, start) {
		return step, false
	}
	backlogStart, recvStart := r.tracker.Backlog(), r.tracker.Live().Received
	if !s.sleepUntil(ctx, start+seg.Dur/2) {
		return step, false
	}
	backlogMid := r.tracker.Backlog()
	if !s.sleepUntil(ctx, end) {
		return step, false
	}
	backlogEnd, recvEnd := r.tracker.Backlog(), r.tracker.Live().Received

	// Settle: nothing is scheduled until the next step; wait for the
	// backlog and the messages in flight to drain, at most the settle
	// time (less the lead of the next step), and never past the bound.
	until := min(end+s.fm.SettleTime().D()-scenarios.SettleLead, deadline)
	for r.elapsed() < until && !s.drained() {
		if !s.sleepUntil(ctx, min(r.elapsed()+drainPoll, until)) {
			return step, false
		}
	}
	judged := r.elapsed()
	fig := r.tracker.CloseStep(win)
	// A message still missing has waited at least since the step ended:
	// count that much, a lower bound of its latency, rather than nothing.
	fig.ImputeMissing(int64((judged - end) / time.Microsecond))

	step = report.NewFindMaxStep(seg.Step, kind, seg.From, fig)
	step.StartS, step.EndS, step.JudgedS = start.Seconds(), end.Seconds(), judged.Seconds()
	step.Scheduled = int64(math.Round(seg.Count()))
	// With several subscriptions each is owed every message: the rate is
	// per subscription, and the backlog (owed deliveries) is judged
	// against the deliveries the step owed.
	subs := float64(max(r.sc.Subscriptions, 1))
	step.AchievedRate = float64(recvEnd-recvStart) / seg.Dur.Seconds() / subs
	step.BacklogStart, step.BacklogMid, step.BacklogEnd = backlogStart, backlogMid, backlogEnd
	step.BacklogGrowing = scenarios.BacklogGrew(seg.Count()*subs, backlogMid, backlogEnd)
	step.Judge(s.fm.SLO, s.fm.Backlog)
	return step, true
}

// drained reports whether every acked message has been received and no
// send awaits its outcome.
func (s *searcher) drained() bool {
	if s.r.tracker.Backlog() > 0 {
		return false
	}
	for _, pl := range s.r.loops {
		if pl.inflight.Load() > 0 {
			return false
		}
	}
	return true
}

// sleepUntil waits until the run clock reaches t; false if ctx ends first.
func (s *searcher) sleepUntil(ctx context.Context, t time.Duration) bool {
	d := t - s.r.elapsed()
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// message says how the search ended, in a sentence a report can quote.
func (s *searcher) message(outcome string, good, bad float64) string {
	within := strings.Join(s.fm.SLO.Exprs(), ", ")
	if s.fm.Backlog == scenarios.BacklogMustDrain {
		if within != "" {
			within += " with a draining backlog"
		} else {
			within = "a draining backlog"
		}
	}
	rate := func(v float64) string { return report.FormatRate(v) + "/s" }
	why := func(v float64) string {
		for _, st := range s.res.Steps {
			if st.Rate == v {
				return st.Why
			}
		}
		return ""
	}
	switch outcome {
	case scenarios.SearchConverged:
		return fmt.Sprintf("sustained %s within %s; %s was too much (%s); the two are within %s of each other",
			rate(good), within, rate(bad), why(bad), percent(float64(s.fm.Precision)))
	case scenarios.SearchCeiling:
		return fmt.Sprintf("sustained %s, the search's max, within %s: the system may take more; raise max to find its limit", rate(good), within)
	case scenarios.SearchNeverMet:
		return fmt.Sprintf("never met the SLO even at the start rate %s (%s); lower start to find a rate it sustains", rate(bad), why(bad))
	}
	var sofar string
	switch {
	case good > 0 && bad > 0:
		sofar = fmt.Sprintf("; %s passed, %s failed", rate(good), rate(bad))
	case good > 0:
		sofar = fmt.Sprintf("; %s passed", rate(good))
	case bad > 0:
		sofar = fmt.Sprintf("; no rate passed (%s failed)", rate(bad))
	}
	n := len(s.res.Steps)
	switch outcome {
	case scenarios.SearchStepLimit:
		return fmt.Sprintf("stopped after %d steps, the most the search plans, without converging: the system's verdicts are not monotone in rate%s", n, sofar)
	case scenarios.SearchTimeBound:
		return fmt.Sprintf("stopped at the search's time bound of %s after %d steps (the machine could not keep the settle times)%s", s.fm.Bound(), n, sofar)
	}
	return fmt.Sprintf("interrupted after %d steps%s", n, sofar)
}

func percent(f float64) string { return strings.TrimSuffix(fmt.Sprintf("%.4g", f*100), ".") + "%" }
