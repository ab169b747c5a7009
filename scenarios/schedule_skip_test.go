package scenarios_test

import (
	"math"
	"testing"
	"time"

	"github.com/spate-dev/spate/scenarios"
)

// TestSkipBeforeCountsLikeNext checks SkipBefore against counting one
// message at a time with Next (skipping max phases as the engine does), for
// every profile, several producer counts and limits across the profile,
// and that Next goes on from exactly the first message at or after limit.
func TestSkipBeforeCountsLikeNext(t *testing.T) {
	withMax := []scenarios.Phase{constant(500, time.Second), maxPhase(time.Second, 10), ramp(100, 900, 2*time.Second)}
	cases := append(profiles[:len(profiles):len(profiles)], struct {
		name   string
		phases []scenarios.Phase
	}{"with a max phase", withMax})
	for _, pc := range cases {
		p := scenarios.NewProfile(pc.phases)
		for _, n := range []int{1, 3, 7} {
			for i := 0; i < n; i++ {
				dues, _ := drive(t, p, i, n)
				for _, limit := range []time.Duration{0, 1, 333 * time.Millisecond, time.Second, p.Duration / 3, p.Duration / 2, p.Duration - 1, p.Duration, p.Duration + time.Hour, math.MaxInt64} {
					want := 0
					for want < len(dues) && dues[want] < limit {
						want++
					}
					s := p.NewSchedule(i, n)
					got := s.SkipBefore(limit)
					if got != int64(want) {
						t.Fatalf("%s, producer %d of %d: SkipBefore(%s) = %d, counting one by one gives %d", pc.name, i, n, limit, got, want)
					}
					// The schedule goes on with the first message not passed.
					var next time.Duration
					ok := false
					for {
						if next, ok = s.Next(); ok {
							break
						}
						if seg, more := s.Segment(); !more || !seg.Max {
							break
						}
						s.Skip()
					}
					if want < len(dues) && (!ok || next != dues[want]) {
						t.Fatalf("%s, producer %d of %d, limit %s: next is %s (ok %v), want %s", pc.name, i, n, limit, next, ok, dues[want])
					}
					if want == len(dues) && ok {
						t.Fatalf("%s, producer %d of %d, limit %s: a message due at %s after the end", pc.name, i, n, limit, next)
					}
				}
			}
		}
	}
}

// TestSkipBeforeIsArithmetic passes billions of messages at once: a
// count, not a loop over them (the test would take minutes otherwise).
func TestSkipBeforeIsArithmetic(t *testing.T) {
	p := scenarios.NewProfile([]scenarios.Phase{constant(scenarios.MaxRatePerProcess, time.Hour)})
	start := time.Now()
	s := p.NewSchedule(0, 3)
	got := s.SkipBefore(math.MaxInt64)
	want := int64(math.Ceil(scenarios.MaxRatePerProcess * 3600 / 3))
	if got != want {
		t.Errorf("passed %d messages, want %d", got, want)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("took %s", el)
	}
	if _, ok := s.Next(); ok {
		t.Error("a message after every one was passed")
	}
}
