package engine_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/spate-dev/spate/drivers/memory"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// findMax runs sc on virtual time and returns the results and how long the
// run took on the virtual clock.
func findMax(t *testing.T, sc *scenarios.Scenario, opts ...engine.Option) (*report.Results, time.Duration) {
	t.Helper()
	var res *report.Results
	var took time.Duration
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		res = run(t, sc, opts...)
		took = time.Since(start)
	})
	if res.FindMax == nil {
		t.Fatal("no find_max in the results")
	}
	return res, took
}

// checkBound: the search ended within its time bound, and the run within
// the bound plus the drain (and the phases before the search).
func checkBound(t *testing.T, sc *scenarios.Scenario, res *report.Results, took time.Duration) {
	t.Helper()
	f := res.FindMax
	if f.EndS-f.StartS > f.TimeBoundS+1e-9 {
		t.Errorf("the search took %.3fs, over its bound of %.3fs", f.EndS-f.StartS, f.TimeBoundS)
	}
	if limit := sc.Profile().Duration + sc.DrainTimeout() + time.Second; took > limit {
		t.Errorf("the run took %s on the virtual clock, more than the profile's bound + drain (%s)", took, limit)
	}
	if len(f.Steps) > f.MaxSteps {
		t.Errorf("%d steps, more than max_steps %d", len(f.Steps), f.MaxSteps)
	}
}

// TestFindMaxFindsCapacity: against a broker that delivers at most
// 5000/s, the search sustains a rate within 10% of 5000/s (in fact within
// its 5% precision below it), fails the one above, and ends within its
// time bound. Every step's figures are its own, and the producers followed
// the steps exactly.
func TestFindMaxFindsCapacity(t *testing.T) {
	sc := load(t, `
driver: {memory: {capacity: 5000/s, latency: 1ms, streams: 4}}
producers: 2
consumers: 2
traffic:
  - name: capacity
    find-max: {start: 1000/s, max: 50000/s, step: 2x, hold: 2s, settle: 2s, slo: "e2e.p99 < 100ms", precision: 5%}
drain: 2s
`)
	res, took := findMax(t, sc)
	f := res.FindMax
	checkBound(t, sc, res, took)
	if f.Outcome != scenarios.SearchConverged || f.SustainedRate == nil || f.FailedRate == nil {
		t.Fatalf("outcome %s (%s)", f.Outcome, f.Message)
	}
	if got := *f.SustainedRate; got < 4500 || got > 5500 {
		t.Errorf("sustained %v/s, want within 10%% of the capacity 5000/s", got)
	}
	if *f.FailedRate-*f.SustainedRate > 0.05**f.SustainedRate+1e-9 {
		t.Errorf("sustained %v and failed %v are not within the 5%% precision", *f.SustainedRate, *f.FailedRate)
	}
	if !strings.Contains(f.Message, "sustained") || f.Name != "capacity" {
		t.Errorf("message %q name %q", f.Message, f.Name)
	}
	var scheduled int64
	for i, s := range f.Steps {
		scheduled += s.Scheduled
		if want := int64(math.Round(s.Rate * 2)); s.Scheduled != want {
			t.Errorf("step %d at %v/s scheduled %d, want %d", s.Step, s.Rate, s.Scheduled, want)
		}
		if s.Step != i+1 || (i > 0 && s.StartS < f.Steps[i-1].JudgedS) || math.Abs(s.EndS-s.StartS-2) > 1e-9 {
			t.Errorf("step %d: %v..%v (previous judged at %v)", s.Step, s.StartS, s.EndS, f.Steps[max(i-1, 0)].JudgedS)
		}
		if s.Rate <= 5000 {
			// Below capacity: every message of the step received, fast,
			// at the rate asked, and the backlog did not grow.
			if !s.OK || s.BacklogGrowing || s.Received != s.Scheduled || s.LatencyUS.E2E.P99 > 20000 || math.Abs(s.AchievedRate-s.Rate) > 0.02*s.Rate {
				t.Errorf("step %d at %v/s below capacity: %+v", s.Step, s.Rate, s)
			}
		} else if s.OK || !s.BacklogGrowing {
			t.Errorf("step %d at %v/s above capacity passed or kept its backlog: %+v", s.Step, s.Rate, s)
		}
		// The broker's bucket holds 100 ms of capacity, full after the pause.
		if s.Rate > 5000 && s.AchievedRate > 5000+500/2 {
			t.Errorf("step %d at %v/s achieved %v/s, more than the capacity", s.Step, s.Rate, s.AchievedRate)
		}
	}
	// Nothing is scheduled between steps: the producers sent exactly what
	// the steps scheduled.
	if res.Counts.Sent != scheduled || res.Counts.Lost != 0 || res.Counts.Unsent != 0 {
		t.Errorf("sent %d, steps scheduled %d; lost %d unsent %d", res.Counts.Sent, scheduled, res.Counts.Lost, res.Counts.Unsent)
	}
	if testing.Verbose() {
		var b strings.Builder
		_ = report.WriteText(&b, res)
		t.Log("\n" + b.String())
	}
	kinds := ""
	for _, s := range f.Steps {
		kinds += s.Kind[:1]
	}
	if !strings.HasPrefix(kinds, "cccc") || !strings.Contains(kinds, "b") || strings.Contains(strings.TrimLeft(kinds, "c"), "c") {
		t.Errorf("step kinds %s: want climbs, then bisections", kinds)
	}
	if f.KneeRate == nil || *f.KneeRate < 4000 || *f.KneeRate > 5500 {
		t.Errorf("knee %v, want the last rate before latency turns up (about the capacity)", f.KneeRate)
	}
}

// TestFindMaxNeverMet: a broker slower than the start rate fails the first
// step, and the search says so rather than reporting a rate.
func TestFindMaxNeverMet(t *testing.T) {
	sc := load(t, `
driver: {memory: {capacity: 500/s}}
traffic:
  - find-max: {start: 1000/s, max: 100000/s, hold: 2s, slo: "e2e.p99 < 50ms"}
drain: 5s
thresholds:
  - headroom >= 2
`)
	res, took := findMax(t, sc, engine.WithPeak(800))
	f := res.FindMax
	checkBound(t, sc, res, took)
	if f.Outcome != scenarios.SearchNeverMet || f.SustainedRate != nil || len(f.Steps) != 1 || f.Steps[0].OK {
		t.Fatalf("outcome %s sustained %v steps %+v", f.Outcome, f.SustainedRate, f.Steps)
	}
	if !strings.Contains(f.Message, "never met the SLO even at the start rate 1,000/s") {
		t.Errorf("message %q", f.Message)
	}
	if f.Headroom != nil || res.Verdict != report.Fail || !strings.Contains(res.Thresholds[0].Error, "sustained no rate") {
		t.Errorf("headroom %v verdict %s threshold %+v", f.Headroom, res.Verdict, res.Thresholds[0])
	}
	if line := res.HeadroomLine(); !strings.Contains(line, "sustained no rate") {
		t.Errorf("headroom line %q", line)
	}
}

// TestFindMaxCeilingAndHeadroom: a fast broker passes the search's max;
// with a peak the headroom is max ÷ peak and a threshold on it is judged.
func TestFindMaxCeilingAndHeadroom(t *testing.T) {
	sc := load(t, `
driver: {memory: {latency: 1ms}}
traffic:
  - {name: warm-up, constant: {rate: 500/s, for: 1s}}
  - find-max: {start: 1000/s, max: 4000/s, step: 2x, hold: 1s, slo: ["e2e.p99 < 50ms", "loss == 0", "achieved_rate >= 0.95 * target_rate"]}
drain: 1s
thresholds:
  - headroom >= 2
  - headroom >= 5
`)
	res, took := findMax(t, sc, engine.WithPeak(1000))
	f := res.FindMax
	checkBound(t, sc, res, took)
	if f.Outcome != scenarios.SearchCeiling || f.SustainedRate == nil || *f.SustainedRate != 4000 || len(f.Steps) != 3 {
		t.Fatalf("outcome %s sustained %v steps %d: %s", f.Outcome, f.SustainedRate, len(f.Steps), f.Message)
	}
	if f.StartS != 1 || f.Steps[0].StartS < 1 {
		t.Errorf("the search started at %v (first step %v), after the 1s warm-up", f.StartS, f.Steps[0].StartS)
	}
	if f.Headroom == nil || *f.Headroom != 4 || f.PeakRate == nil || *f.PeakRate != 1000 {
		t.Errorf("headroom %v peak %v", f.Headroom, f.PeakRate)
	}
	if !res.Thresholds[0].OK || res.Thresholds[1].OK || res.Verdict != report.Fail {
		t.Errorf("thresholds %+v", res.Thresholds)
	}
	line := res.HeadroomLine()
	for _, want := range []string{"headroom 4× today's peak", "sustained 4,000/s", "peak 1,000/s", "meets headroom >= 2", "does NOT meet headroom >= 5"} {
		if !strings.Contains(line, want) {
			t.Errorf("headroom line %q lacks %q", line, want)
		}
	}
	for _, s := range f.Steps {
		if len(s.SLO) != 3 || !s.OK {
			t.Errorf("step %d: %+v", s.Step, s)
		}
	}
}

// TestFindMaxWithoutPeak: headroom is undefined, and says how to define it.
func TestFindMaxWithoutPeak(t *testing.T) {
	sc := load(t, `
driver: memory
traffic:
  - find-max: {start: 1000/s, max: 2000/s, hold: 500ms, slo: "e2e.p99 < 50ms"}
drain: 1s
thresholds:
  - headroom >= 2
`)
	res, _ := findMax(t, sc)
	if res.Thresholds[0].OK || !strings.Contains(res.Thresholds[0].Error, "--peak") {
		t.Errorf("threshold %+v", res.Thresholds[0])
	}
	// Without a find-max phase headroom can never be defined: validation
	// refuses the threshold.
	l := &scenarios.Loader{}
	l.Driver(memory.Kind.Name, memory.Kind.Options)
	_, err := l.Parse("plain.yaml", []byte("driver: memory\ntraffic:\n  - constant: {rate: 10/s, for: 1s}\nthresholds:\n  - headroom >= 2\n"))
	if err == nil || !strings.Contains(err.Error(), "plain.yaml:5:5: thresholds[0]: headroom is the rate a find-max phase sustained") {
		t.Errorf("without find-max: %v", err)
	}
}

// TestFindMaxInterrupted: interrupting the run ends the search at once,
// marked interrupted.
func TestFindMaxInterrupted(t *testing.T) {
	sc := load(t, `
driver: {memory: {capacity: 2000/s}}
traffic:
  - find-max: {start: 1000/s, max: 100000/s, step: 1.1x, hold: 10s, slo: "e2e.p99 < 50ms"}
drain: 1s
`)
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(25*time.Second, cancel)
		start := time.Now()
		res, err := engine.Run(ctx, sc, engine.WithDrivers(memory.Kind))
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 30*time.Second {
			t.Errorf("took %s after an interrupt at 25s", took)
		}
		f := res.FindMax
		if !res.Interrupted || f.Outcome != scenarios.SearchInterrupted || len(f.Steps) < 1 || !strings.HasPrefix(f.Message, "interrupted after") {
			t.Errorf("interrupted %v outcome %s steps %d message %q", res.Interrupted, f.Outcome, len(f.Steps), f.Message)
		}
	})
}
