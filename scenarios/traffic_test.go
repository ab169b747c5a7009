package scenarios_test

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/spate-dev/spate/scenarios"
)

func dur(d time.Duration) scenarios.Duration   { return scenarios.Duration(d) }
func pdur(d time.Duration) *scenarios.Duration { v := scenarios.Duration(d); return &v }

func constant(rate float64, d time.Duration) scenarios.Phase {
	return scenarios.Phase{Constant: &scenarios.Constant{Rate: scenarios.Rate(rate), For: dur(d)}}
}

func ramp(from, to float64, d time.Duration) scenarios.Phase {
	return scenarios.Phase{Ramp: &scenarios.Ramp{From: scenarios.Rate(from), To: scenarios.Rate(to), For: dur(d)}}
}

func step(from, to float64, steps int, each time.Duration) scenarios.Phase {
	return scenarios.Phase{Step: &scenarios.Step{From: scenarios.Rate(from), To: scenarios.Rate(to), Steps: steps, Each: dur(each)}}
}

func spike(base, peak float64, d, rise, hold time.Duration) scenarios.Phase {
	return scenarios.Phase{Spike: &scenarios.Spike{Base: scenarios.Rate(base), Peak: scenarios.Rate(peak), For: dur(d), Rise: dur(rise), Hold: dur(hold)}}
}

func maxPhase(d time.Duration, inFlight int) scenarios.Phase {
	return scenarios.Phase{Max: &scenarios.Max{For: dur(d), InFlight: inFlight}}
}

func pause(d time.Duration) scenarios.Phase {
	return scenarios.Phase{Pause: &scenarios.Pause{For: dur(d)}}
}

// drive runs producer i of n's schedule to the end the way the engine does,
// skipping max segments, and returns its due times and the max segments met.
func drive(t testing.TB, p scenarios.Profile, i, n int) (dues []time.Duration, maxes []scenarios.Segment) {
	t.Helper()
	s := p.NewSchedule(i, n)
	for {
		due, ok := s.Next()
		if ok {
			dues = append(dues, due)
			continue
		}
		seg, more := s.Segment()
		if !more {
			return dues, maxes
		}
		if !seg.Max {
			t.Fatalf("Next returned ok=false in a scheduled segment %+v", seg)
		}
		maxes = append(maxes, seg)
		s.Skip()
	}
}

// allDues merges the due times of n producers.
func allDues(t testing.TB, p scenarios.Profile, n int) []time.Duration {
	var all []time.Duration
	for i := 0; i < n; i++ {
		d, _ := drive(t, p, i, n)
		all = append(all, d...)
	}
	slices.Sort(all)
	return all
}

var profiles = []struct {
	name   string
	phases []scenarios.Phase
}{
	{"constant 10/s", []scenarios.Phase{constant(10, 10*time.Second)}},
	{"constant 1000/s", []scenarios.Phase{constant(1000, 5*time.Second)}},
	{"constant 200,000/s", []scenarios.Phase{constant(200000, 3*time.Second)}},
	{"ramp up", []scenarios.Phase{ramp(1000, 5000, 10*time.Second)}},
	{"ramp down", []scenarios.Phase{ramp(5000, 1000, 10*time.Second)}},
	{"ramp from zero", []scenarios.Phase{ramp(0, 20000, 5*time.Second)}},
	{"step", []scenarios.Phase{step(1000, 4000, 4, 2*time.Second)}},
	{"spike", []scenarios.Phase{spike(1000, 10000, 10*time.Second, time.Second, 2*time.Second)}},
	{"sequence", []scenarios.Phase{
		constant(1000, 2*time.Second), spike(1000, 8000, 6*time.Second, 500*time.Millisecond, time.Second),
		pause(time.Second), ramp(8000, 2000, 3*time.Second), step(2000, 500, 3, time.Second)}},
}

// TestScheduleFollowsProfile checks the due times of one producer against
// the profile's integral: in every 1-second window, the count is within 1%
// of the integral of the target rate (in fact exact, up to how the boundary
// messages round), the total is ceil(Scheduled), and times never decrease.
func TestScheduleFollowsProfile(t *testing.T) {
	for _, c := range profiles {
		t.Run(c.name, func(t *testing.T) {
			p := scenarios.NewProfile(c.phases)
			dues, maxes := drive(t, p, 0, 1)
			if len(maxes) != 0 {
				t.Fatalf("met max segments %v", maxes)
			}
			total := p.Scheduled(p.Duration)
			if want := int(math.Ceil(total)); len(dues) != want {
				t.Fatalf("%d due times, want ceil(%v) = %d", len(dues), total, want)
			}
			for i, d := range dues {
				if d < 0 || d > p.Duration || (i > 0 && d < dues[i-1]) {
					t.Fatalf("due[%d] = %v (previous %v, profile %v)", i, d, dues[max(i-1, 0)], p.Duration)
				}
			}
			for w := time.Duration(0); w < p.Duration; w += time.Second {
				end := min(w+time.Second, p.Duration)
				got := countIn(dues, w, end)
				integral := p.Scheduled(end) - p.Scheduled(w)
				if math.Abs(float64(got)-integral) > 0.01*integral {
					t.Errorf("window [%v, %v): %d due, integral %.2f", w, end, got, integral)
				}
				if want := int(math.Ceil(p.Scheduled(end)) - math.Ceil(p.Scheduled(w))); got != want {
					t.Errorf("window [%v, %v): %d due, want ceil(Scheduled) difference %d", w, end, got, want)
				}
			}
		})
	}
}

func countIn(dues []time.Duration, from, to time.Duration) int {
	lo, _ := slices.BinarySearch(dues, from)
	hi, _ := slices.BinarySearch(dues, to)
	return hi - lo
}

// TestScheduleSplitsAmongProducers checks that n producers together are due
// at exactly the times one producer would be.
func TestScheduleSplitsAmongProducers(t *testing.T) {
	for _, c := range profiles {
		p := scenarios.NewProfile(c.phases)
		one := allDues(t, p, 1)
		for _, n := range []int{2, 3, 7, 64, 1000} {
			if got := allDues(t, p, n); !slices.Equal(got, one) {
				t.Errorf("%s: %d producers are due %d times, one producer %d times (or at different times)", c.name, n, len(got), len(one))
			}
		}
	}
}

// TestScheduleProducersKeepTheirShare checks each producer of n gets its
// k = i, i+n, ... share: counts differ by at most one, lower ids first.
func TestScheduleProducersKeepTheirShare(t *testing.T) {
	p := scenarios.NewProfile([]scenarios.Phase{constant(1000, 1050*time.Millisecond), ramp(0, 100, 2*time.Second)})
	const n = 16
	first := -1
	for i := 0; i < n; i++ {
		dues, _ := drive(t, p, i, n)
		if first < 0 {
			first = len(dues)
		}
		if len(dues) != first && len(dues) != first-1 {
			t.Errorf("producer %d: %d messages, producer 0: %d", i, len(dues), first)
		}
	}
}

// TestScheduleFloatDrift is a regression test: counts that are whole numbers
// in decimal but not in binary (50/s for 560ms is 28.000000000000004) used to
// schedule one message too many.
func TestScheduleFloatDrift(t *testing.T) {
	cases := []struct {
		phases []scenarios.Phase
		want   int
	}{
		{[]scenarios.Phase{constant(50, 560*time.Millisecond)}, 28},
		{[]scenarios.Phase{constant(225, 560*time.Millisecond)}, 126},
		{[]scenarios.Phase{constant(750, 1340*time.Millisecond)}, 1005},
		{[]scenarios.Phase{constant(7.0/60, time.Minute)}, 7},
		{[]scenarios.Phase{step(10, 1000, 22, 100*time.Millisecond)}, 1111},
		{[]scenarios.Phase{constant(0.1, 10*time.Second), constant(0.1, 20*time.Second), constant(0.7, 10*time.Second)}, 10},
	}
	for i, c := range cases {
		p := scenarios.NewProfile(c.phases)
		if got := p.Scheduled(p.Duration); got != float64(c.want) {
			t.Errorf("case %d: Scheduled = %v, want %d", i, got, c.want)
		}
		for _, n := range []int{1, 3} {
			if got := len(allDues(t, p, n)); got != c.want {
				t.Errorf("case %d, %d producers: %d due times, want %d", i, n, got, c.want)
			}
		}
	}
}

// TestScheduleRampFromZero is a regression test: the first message of a ramp
// from 0/s used to be due at 0/0 seconds, which converts to a time far in the past.
func TestScheduleRampFromZero(t *testing.T) {
	p := scenarios.NewProfile([]scenarios.Phase{constant(10, time.Second), ramp(0, 100, time.Second)})
	dues := allDues(t, p, 1)
	if len(dues) != 60 {
		t.Fatalf("%d due times, want 60", len(dues))
	}
	if dues[10] != time.Second {
		t.Errorf("first message of the ramp due at %v, want 1s", dues[10])
	}
	// Message k of the ramp is due where 50·t² = k: t = sqrt(k/50).
	for k := 1; k < 50; k++ {
		want := time.Second + time.Duration(math.Round(math.Sqrt(float64(k)/50)*1e9))
		if got := dues[10+k]; got != want {
			t.Errorf("ramp message %d due at %v, want %v", k, got, want)
		}
	}
}

// TestScheduleBoundaries checks messages due exactly on a segment boundary
// fall on it, for whole and fractional counts carried over.
func TestScheduleBoundaries(t *testing.T) {
	p := scenarios.NewProfile([]scenarios.Phase{constant(10, 250*time.Millisecond), constant(4, time.Second)})
	// 2.5 messages in the first segment: due at 0, 100ms, 200ms; then the
	// second segment owes half a message: due 125ms after it starts.
	want := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond}
	for k := 0; k < 4; k++ {
		want = append(want, 250*time.Millisecond+125*time.Millisecond+time.Duration(k)*250*time.Millisecond)
	}
	if got := allDues(t, p, 1); !slices.Equal(got, want) {
		t.Errorf("due times %v, want %v", got, want)
	}
	if got := allDues(t, p, 2); !slices.Equal(got, want) {
		t.Errorf("2 producers: due times %v, want %v", got, want)
	}
}

func TestScheduleMaxPhase(t *testing.T) {
	p := scenarios.NewProfile([]scenarios.Phase{
		constant(100, time.Second), maxPhase(2*time.Second, 50), constant(100, time.Second), maxPhase(time.Second, 7),
	})
	if !p.HasMax() {
		t.Fatal("HasMax = false")
	}
	for _, n := range []int{1, 3} {
		var all []time.Duration
		for i := 0; i < n; i++ {
			s := p.NewSchedule(i, n)
			for {
				due, ok := s.Next()
				if !ok {
					break
				}
				all = append(all, due)
			}
			seg, more := s.Segment()
			if !more || !seg.Max || seg.InFlight != 50 || seg.Start != time.Second || seg.Dur != 2*time.Second {
				t.Fatalf("producer %d stopped at %+v, %v; want the max segment", i, seg, more)
			}
			if _, ok := s.Next(); ok {
				t.Fatal("Next went on into a max segment without Skip")
			}
			s.Skip()
			for {
				due, ok := s.Next()
				if !ok {
					break
				}
				all = append(all, due)
			}
			if seg, more := s.Segment(); !more || !seg.Max || seg.InFlight != 7 {
				t.Fatalf("producer %d stopped at %+v, %v; want the second max segment", i, seg, more)
			}
			s.Skip()
			if _, ok := s.Next(); ok {
				t.Fatal("Next returned a time past the end")
			}
			if _, more := s.Segment(); more {
				t.Fatal("Segment reports more past the end")
			}
		}
		slices.Sort(all)
		if len(all) != 200 || countIn(all, time.Second, 3*time.Second) != 0 || all[100] != 3*time.Second {
			t.Errorf("%d producers: %d due times, %d inside the max phase, first after it at %v",
				n, len(all), countIn(all, time.Second, 3*time.Second), all[min(100, len(all)-1)])
		}
	}
	if got := p.Scheduled(2 * time.Second); got != 100 {
		t.Errorf("Scheduled inside the max phase = %v, want 100", got)
	}
	if _, ok := p.RateAt(2 * time.Second); ok {
		t.Error("RateAt inside a max phase reports a rate")
	}
}

func TestScheduleMaxFirst(t *testing.T) {
	p := scenarios.NewProfile([]scenarios.Phase{maxPhase(time.Second, 10), constant(10, time.Second)})
	dues, maxes := drive(t, p, 0, 1)
	if len(maxes) != 1 || len(dues) != 10 || dues[0] != time.Second {
		t.Errorf("maxes %v, dues %v", maxes, dues)
	}
}

func TestSchedulePause(t *testing.T) {
	p := scenarios.NewProfile([]scenarios.Phase{constant(10, time.Second), pause(2 * time.Second), constant(10, time.Second)})
	dues := allDues(t, p, 1)
	if len(dues) != 20 || countIn(dues, time.Second, 3*time.Second) != 0 || dues[10] != 3*time.Second {
		t.Errorf("due times %v", dues)
	}
	if r, ok := p.RateAt(2 * time.Second); !ok || r != 0 {
		t.Errorf("RateAt in a pause = %v, %v; want 0, true", r, ok)
	}
	if got := p.Scheduled(2 * time.Second); got != 10 {
		t.Errorf("Scheduled in a pause = %v", got)
	}
}

// TestScheduleSkipDropsTheRest checks Skip in a scheduled segment moves the
// producer to the next segment's messages rather than replaying the rest.
func TestScheduleSkipDropsTheRest(t *testing.T) {
	p := scenarios.NewProfile([]scenarios.Phase{constant(10, time.Second), constant(10, time.Second)})
	for _, n := range []int{1, 3} {
		s := p.NewSchedule(0, n)
		if due, ok := s.Next(); !ok || due != 0 {
			t.Fatalf("first due %v, %v", due, ok)
		}
		s.Skip()
		due, ok := s.Next()
		if !ok || due < time.Second || due >= time.Second+time.Duration(n)*100*time.Millisecond {
			t.Errorf("%d producers: after Skip, next due %v, %v; want the first of the second segment", n, due, ok)
		}
	}
}

// TestProfileRateAndScheduledAgree checks Scheduled is the integral of
// RateAt: its slope matches the rate everywhere, and its total matches
// each phase's own arithmetic.
func TestProfileRateAndScheduledAgree(t *testing.T) {
	for _, c := range profiles {
		p := scenarios.NewProfile(c.phases)
		if p.Scheduled(0) != 0 {
			t.Errorf("%s: Scheduled(0) = %v", c.name, p.Scheduled(0))
		}
		const h = time.Millisecond
		prev := 0.0
		for at := h; at < p.Duration-h; at += 50 * time.Millisecond {
			rate, ok := p.RateAt(at)
			if !ok {
				t.Fatalf("%s: RateAt(%v) not ok", c.name, at)
			}
			slope := (p.Scheduled(at+h) - p.Scheduled(at-h)) / (2 * h).Seconds()
			// Rates jump at step boundaries; elsewhere the slope is the rate.
			if r1, _ := p.RateAt(at - h); math.Abs(slope-rate) > 1e-6*max(rate, 1) && r1 == rate {
				t.Errorf("%s: at %v the slope of Scheduled is %v, RateAt %v", c.name, at, slope, rate)
			}
			if s := p.Scheduled(at); s < prev {
				t.Errorf("%s: Scheduled decreases at %v", c.name, at)
			} else {
				prev = s
			}
		}
		if _, ok := p.RateAt(p.Duration); ok {
			t.Errorf("%s: RateAt past the end reports a rate", c.name)
		}
		if got := p.Scheduled(p.Duration + time.Hour); got != p.Scheduled(p.Duration) {
			t.Errorf("%s: Scheduled goes on past the end", c.name)
		}
	}
	p := scenarios.NewProfile(profiles[len(profiles)-1].phases)
	// 1000·2 + (spike: 1000·6 + 7000·(0.5/2 + 1 + 0.5/2)) + 0 + 5000·3 + (2000+1250+500)·1
	if got, want := p.Scheduled(p.Duration), 2000+6000+10500+15000+3750.0; got != want {
		t.Errorf("sequence schedules %v, want %v", got, want)
	}
}

func TestSpikeShape(t *testing.T) {
	s := spike(100, 1100, 10*time.Second, time.Second, 2*time.Second)
	s.Spike.Fall = pdur(3 * time.Second)
	s.Spike.At = pdur(2 * time.Second)
	p := scenarios.NewProfile([]scenarios.Phase{s})
	rates := []struct {
		at   time.Duration
		want float64
	}{
		{0, 100}, {1999 * time.Millisecond, 100}, // before the burst
		{2500 * time.Millisecond, 600},                           // half way up
		{3 * time.Second, 1100}, {4999 * time.Millisecond, 1100}, // hold
		{6500 * time.Millisecond, 600},                         // half way down
		{8 * time.Second, 100}, {9999 * time.Millisecond, 100}, // after
	}
	for _, r := range rates {
		if got, ok := p.RateAt(r.at); !ok || math.Abs(got-r.want) > 1 {
			t.Errorf("RateAt(%v) = %v, %v; want %v", r.at, got, ok, r.want)
		}
	}
	// Centred when at is left out: lead = (10s - 3s) / 2.
	p = scenarios.NewProfile([]scenarios.Phase{spike(100, 1100, 10*time.Second, 0, 3*time.Second)})
	if r, _ := p.RateAt(3499 * time.Millisecond); r != 100 {
		t.Errorf("centred spike: rate %v before 3.5s", r)
	}
	if r, _ := p.RateAt(3500 * time.Millisecond); r != 1100 {
		t.Errorf("centred spike: rate %v at 3.5s", r)
	}
}

func TestStepRates(t *testing.T) {
	p := scenarios.NewProfile([]scenarios.Phase{step(100, 400, 4, time.Second)})
	for i, want := range []float64{100, 200, 300, 400} {
		at := time.Duration(i)*time.Second + 500*time.Millisecond
		if got, _ := p.RateAt(at); got != want {
			t.Errorf("stair %d: rate %v, want %v", i, got, want)
		}
	}
	if p.Duration != 4*time.Second || len(p.Segments) != 4 {
		t.Errorf("duration %v, %d segments", p.Duration, len(p.Segments))
	}
}

func BenchmarkScheduleNext(b *testing.B) {
	p := scenarios.NewProfile([]scenarios.Phase{ramp(1000, 1e6, time.Hour)})
	s := p.NewSchedule(0, 1)
	for b.Loop() {
		if _, ok := s.Next(); !ok {
			b.Fatal("schedule ended")
		}
	}
}

func ExampleProfile_NewSchedule() {
	p := scenarios.NewProfile([]scenarios.Phase{constant(4, time.Second)})
	for i := 0; i < 2; i++ {
		s := p.NewSchedule(i, 2)
		for due, ok := s.Next(); ok; due, ok = s.Next() {
			fmt.Print(i, ":", due, " ")
		}
	}
	fmt.Println()
	// Output: 0:0s 0:500ms 1:250ms 1:750ms
}
