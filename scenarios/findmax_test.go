package scenarios_test

import (
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spate-dev/spate/scenarios"
)

func TestFindMaxDecodes(t *testing.T) {
	sc, err := newLoader().Parse("fm.yaml", []byte(`driver: memory
traffic:
  - {name: warm-up, constant: {rate: 100/s, for: 5s}}
  - name: capacity
    find-max: {start: 1000/s, max: 500000/s, step: 1.5x, hold: 20s, slo: "e2e.p99 < 100ms", backlog: must-drain, precision: 5%}
thresholds:
  - headroom >= 2
`))
	if err != nil {
		t.Fatal(err)
	}
	f := sc.Traffic[1].FindMax
	if f == nil || f.Start != 1000 || f.Max != 500000 || f.Step != 1.5 || f.Hold.D() != 20*time.Second ||
		f.Precision != 0.05 || f.Backlog != "must-drain" || len(f.SLO) != 1 || f.SLO[0].Expr != "e2e.p99 < 100ms" {
		t.Fatalf("find-max = %+v", f)
	}
	if f.SettleTime().D() != 10*time.Second {
		t.Errorf("settle defaults to %s, want the hold capped at 10s", f.SettleTime())
	}
	// 1000 × 1.5^k reaches 500,000 at k = 16 (capped): 17 rates; bisecting
	// a 50% interval to 5% takes 4 halvings.
	if f.ClimbSteps() != 17 || f.BisectSteps() != 4 || f.MaxSteps() != 21 {
		t.Errorf("climb %d bisect %d max %d, want 17, 4, 21", f.ClimbSteps(), f.BisectSteps(), f.MaxSteps())
	}
	if f.Bound() != 21*30*time.Second {
		t.Errorf("bound %s, want 21 × (20s + 10s)", f.Bound())
	}
	p := sc.Profile()
	if p.Duration != 5*time.Second+f.Bound() {
		t.Errorf("profile lasts %s, want the warm-up plus the bound", p.Duration)
	}
	seg, ok := p.Search()
	if !ok || seg.Start != 5*time.Second || seg.Count() != 0 {
		t.Errorf("search segment %+v %v", seg, ok)
	}
	if !strings.Contains(f.Plan(), "the search ends within 10m30s") {
		t.Errorf("plan: %s", f.Plan())
	}

	// Defaults: step 2x, hold 20s, precision 5%, must-drain.
	sc, err = newLoader().Parse("fm.yaml", []byte("driver: memory\ntraffic:\n  - find-max: {start: 1k/s, max: 8k/s, slo: [e2e.p99 < 10ms, loss == 0]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f = sc.Traffic[0].FindMax
	if f.Step != 2 || f.Hold.D() != 20*time.Second || f.Precision != 0.05 || f.Backlog != "must-drain" || len(f.SLO) != 2 {
		t.Errorf("defaults: %+v", f)
	}
	if f.ClimbSteps() != 4 || f.BisectSteps() != 5 {
		t.Errorf("climb %d bisect %d, want 4 (1k, 2k, 4k, 8k) and 5 (100%% to 5%%)", f.ClimbSteps(), f.BisectSteps())
	}
}

func TestFindMaxProblems(t *testing.T) {
	cases := []struct{ src, want string }{
		{`  - find-max: {start: 0/s, max: 1k/s, slo: "e2e.p99 < 1s"}`, "s.yaml:3:23: traffic[0].find-max.start: must be more than 0/s"},
		{`  - find-max: {start: 2k/s, max: 1k/s, slo: "e2e.p99 < 1s"}`, "s.yaml:3:34: traffic[0].find-max.max: max 1000/s must be above start 2000/s"},
		{`  - find-max: {start: 1k/s, max: 2k/s, step: 1x, slo: "e2e.p99 < 1s"}`, "s.yaml:3:46: traffic[0].find-max.step: must be a factor above 1x and at most 100x, e.g. 1.5x; got 1x"},
		{`  - find-max: {start: 1k/s, max: 2k/s, step: fast, slo: "e2e.p99 < 1s"}`, `s.yaml:3:46: traffic[0].find-max.step: "fast" is not a factor such as 1.5x or 2x`},
		{`  - find-max: {start: 1k/s, max: 2k/s, precision: 0%, slo: "e2e.p99 < 1s"}`, "s.yaml:3:51: traffic[0].find-max.precision: must be between 0.1% and 50%, got 0%"},
		{`  - find-max: {start: 1k/s, max: 2k/s, backlog: drain, slo: "e2e.p99 < 1s"}`, `s.yaml:3:49: traffic[0].find-max.backlog: unknown value "drain"; valid: must-drain, ignore`},
		{`  - find-max: {start: 1k/s, max: 2k/s, settle: 1ms, slo: "e2e.p99 < 1s"}`, "s.yaml:3:48: traffic[0].find-max.settle: must be at least 100ms (the time between steps for the backlog to drain), got 1ms"},
		{`  - find-max: {start: 1k/s, max: 2k/s, slo: "reordered == 0"}`, "s.yaml:3:45: traffic[0].find-max.slo: reordered is not measured per step; an SLO can name latencies (e2e, service, publish followed by .pNN, .min, .mean or .max) and lost, loss, duplicates, failed, lost.ratio, loss.ratio, duplicates.ratio, failed.ratio, target_rate, achieved_rate"},
		{`  - find-max: {start: 1k/s, max: 2k/s, slo: ["e2e.p99 < 1s", "headroom > 1"]}`, "s.yaml:3:62: traffic[0].find-max.slo[1]: headroom is not measured per step; an SLO can name latencies (e2e, service, publish followed by .pNN, .min, .mean or .max) and lost, loss, duplicates, failed, lost.ratio, loss.ratio, duplicates.ratio, failed.ratio, target_rate, achieved_rate"},
		{`  - find-max: {start: 1k/s, max: 2k/s, slo: "e2e.p99 < 100"}`, `s.yaml:3:45: traffic[0].find-max.slo: "e2e.p99 < 100" compares the latency e2e.p99 with 100, which is not a duration; give it a time unit, e.g. 100ms`},
		{`  - find-max: {start: 1k/s, max: 2k/s, backlog: ignore}`, "s.yaml:3:15: traffic[0].find-max.slo: with backlog: ignore a step needs an slo to be judged by, e.g. slo: \"e2e.p99 < 100ms\""},
		{`  - find-max: {start: 1/s, max: 1M/s, step: 1.001x, slo: "e2e.p99 < 1s"}`, "s.yaml:3:45: traffic[0].find-max.step: the search could take 1001 steps (at most 1000): raise the step factor, the start rate or the precision"},
		{"  - find-max: {start: 1k/s, max: 2k/s}\n  - constant: {rate: 1/s, for: 1s}", "s.yaml:3:15: traffic[0].find-max: a find-max phase must be the last phase: it lasts as long as its search takes, so the phases after it (from traffic[1]) cannot be timed; run them before it or in another scenario"},
	}
	for _, c := range cases {
		got := problems(t, newLoader(), "driver: memory\ntraffic:\n"+c.src+"\n")
		if strings.Join(got, "\n") != c.want {
			t.Errorf("%s\ngot:  %s\nwant: %s", c.src, strings.Join(got, "\n      "), c.want)
		}
	}
}

// TestSearchConverges drives the search against systems that pass exactly
// up to a capacity: it ends with good ≤ capacity < bad, bad − good within
// the precision, never more steps than MaxSteps, and says so clearly when
// the start rate fails or the max passes.
func TestSearchConverges(t *testing.T) {
	for _, fm := range []scenarios.FindMax{
		{Start: 1000, Max: 500000, Step: 1.5, Precision: 0.05},
		{Start: 1000, Max: 100000, Step: 2, Precision: 0.01},
		{Start: 10, Max: 1e6, Step: 10, Precision: 0.001},
		{Start: 5000, Max: 6000, Step: 3, Precision: 0.05},
	} {
		for _, capacity := range []float64{500, 1000, 1234, 4999, 5000, 5001, 12345, 99999, 250000, 499999, 1e6} {
			s := fm.NewSearch()
			var rates []float64
			for {
				rate, bisect, ok := s.Next()
				if !ok {
					break
				}
				if bisect && len(rates) == 0 {
					t.Fatal("bisected before any step")
				}
				rates = append(rates, rate)
				s.Record(rate, rate <= capacity)
			}
			outcome, good, bad := s.Outcome()
			if len(rates) > fm.MaxSteps() {
				t.Errorf("%+v capacity %v: %d steps, more than MaxSteps %d", fm, capacity, len(rates), fm.MaxSteps())
			}
			switch {
			case capacity < float64(fm.Start):
				if outcome != scenarios.SearchNeverMet || good != 0 || len(rates) != 1 {
					t.Errorf("capacity %v below start %v: %s good %v after %v", capacity, fm.Start, outcome, good, rates)
				}
			case capacity >= float64(fm.Max):
				if outcome != scenarios.SearchCeiling || good != float64(fm.Max) || bad != 0 {
					t.Errorf("capacity %v above max %v: %s good %v bad %v", capacity, fm.Max, outcome, good, bad)
				}
			default:
				if outcome != scenarios.SearchConverged || good > capacity || bad <= capacity || bad-good > float64(fm.Precision)*good*(1+1e-9) {
					t.Errorf("%+v capacity %v: %s good %v bad %v after %v", fm, capacity, outcome, good, bad, rates)
				}
			}
		}
	}
}

// TestTimelineGrowsExactly: producers following a timeline that is built
// segment by segment while they run are due at exactly the times they
// would be on the finished profile.
func TestTimelineGrowsExactly(t *testing.T) {
	for _, c := range profiles {
		whole := scenarios.NewProfile(c.phases)
		want := allDues(t, whole, 3)

		open := scenarios.Profile{Segments: []scenarios.Segment{{Search: true, Dur: whole.Duration + time.Hour}}, Duration: whole.Duration + time.Hour}
		tl := open.Timeline()
		if !tl.Open() || tl.End() != 0 {
			t.Fatalf("a profile that starts with a search gives an open timeline at 0, got open %v end %v", tl.Open(), tl.End())
		}
		var mu sync.Mutex
		var got []time.Duration
		var wg sync.WaitGroup
		for i := range 3 {
			sched := tl.NewSchedule(i, 3)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					due, ok := sched.Next()
					if ok {
						mu.Lock()
						got = append(got, due)
						mu.Unlock()
						continue
					}
					if seg, more := sched.Segment(); more {
						if seg.Max {
							t.Error("a growing timeline yielded a max segment")
							return
						}
						continue // appended since Next looked
					}
					w := sched.Pending()
					if w == nil {
						return
					}
					<-w
				}
			}()
		}
		for _, s := range whole.Segments {
			if err := tl.Append(s); err != nil {
				t.Fatal(err)
			}
		}
		tl.Close()
		wg.Wait()
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: a growing timeline gave %d due times, the profile %d (or different times)", c.name, len(got), len(want))
		}
		if p := tl.Profile(); p.Duration != whole.Duration || p.Scheduled(p.Duration) != whole.Scheduled(whole.Duration) {
			t.Errorf("%s: closed timeline profile %v / %v, want %v / %v", c.name, p.Duration, p.Scheduled(p.Duration), whole.Duration, whole.Scheduled(whole.Duration))
		}
	}
}

// TestTimelineGaps: a segment appended after the end leaves a pause
// before it; segments cannot go back in time, past the bound, or onto a
// closed timeline.
func TestTimelineGaps(t *testing.T) {
	p := scenarios.NewProfile([]scenarios.Phase{constant(100, time.Second), {FindMax: &scenarios.FindMax{Start: 10, Max: 20, Step: 2, Hold: dur(time.Second), Precision: 0.5}}})
	tl := p.Timeline()
	if !tl.Open() || tl.End() != time.Second || tl.Duration() != p.Duration {
		t.Fatalf("open %v end %v duration %v (profile %v)", tl.Open(), tl.End(), tl.Duration(), p.Duration)
	}
	if err := tl.Append(scenarios.Segment{Phase: 1, Start: 3 * time.Second, Dur: time.Second, From: 50, To: 50, Step: 1}); err != nil {
		t.Fatal(err)
	}
	got := tl.Profile()
	if len(got.Segments) != 3 || got.Segments[1].Count() != 0 || got.Segments[1].Start != time.Second || got.Segments[1].Dur != 2*time.Second {
		t.Errorf("segments %+v", got.Segments)
	}
	if n := got.Scheduled(4 * time.Second); n != 150 {
		t.Errorf("scheduled %v, want 100 + 50", n)
	}
	if r, ok := got.RateAt(2 * time.Second); !ok || r != 0 {
		t.Errorf("rate in the gap %v %v", r, ok)
	}
	for _, bad := range []scenarios.Segment{
		{Phase: 1, Start: 3500 * time.Millisecond, Dur: time.Second, From: 1, To: 1},
		{Phase: 1, Start: 4 * time.Second, Dur: time.Hour, From: 1, To: 1},
		{Phase: 1, Start: 4 * time.Second, Dur: time.Second, Max: true},
	} {
		if err := tl.Append(bad); err == nil {
			t.Errorf("appended %+v", bad)
		}
	}
	tl.Close()
	if err := tl.Append(scenarios.Segment{Phase: 1, Start: 5 * time.Second, Dur: time.Second, From: 1, To: 1}); err == nil {
		t.Error("appended to a closed timeline")
	}
	if tl.Duration() != 4*time.Second {
		t.Errorf("closed duration %v", tl.Duration())
	}
	// A schedule that reached the end of a closed timeline is over.
	s := tl.NewSchedule(0, 1)
	n := 0
	for {
		if _, ok := s.Next(); !ok {
			break
		}
		n++
	}
	if n != 150 || s.Pending() != nil {
		t.Errorf("%d due, pending %v", n, s.Pending())
	}
	// A static profile's timeline is closed and schedules like the profile.
	static := scenarios.NewProfile([]scenarios.Phase{constant(10, time.Second)}).Timeline()
	if static.Open() || static.End() != time.Second {
		t.Errorf("static timeline open %v end %v", static.Open(), static.End())
	}
	if math.IsNaN(static.Profile().Scheduled(time.Second)) {
		t.Error("NaN")
	}
}

func TestBacklogGrew(t *testing.T) {
	for _, c := range []struct {
		n        float64
		mid, end int64
		want     bool
	}{
		{100000, 500, 2000, true},    // above 1% of 100,000 and rising
		{100000, 500, 900, false},    // rising but under 1%
		{100000, 3000, 2500, false},  // above 1% but falling
		{1000, 20, 90, false},        // under the floor of 100
		{1000, 20, 150, true},        // above the floor, 1% is 10
		{100000, 2000, 2000, false},  // flat
		{1e6, 9000, 10001, true},     // just above 1%
		{1e6, 10001, 10001, false},   // flat above 1%
		{0, 0, 0, false},             // nothing sent
		{50000, 400, 501, true},      // 1% is 500, above the floor
		{50000, 400, 499, false},     // under 500
		{100000, 0, 1_000_000, true}, // runaway
	} {
		if got := scenarios.BacklogGrew(c.n, c.mid, c.end); got != c.want {
			t.Errorf("BacklogGrew(%v, %d, %d) = %v, want %v", c.n, c.mid, c.end, got, c.want)
		}
	}
}
