package engine_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"testing/synctest"

	"github.com/spate-dev/spate/drivers/memory"
	"github.com/spate-dev/spate/engine"
)

// TestPacerHoldsRate runs the whole engine on virtual time (testing/synctest),
// so the pacer's arithmetic and loop are checked without a flaky wall clock:
// over every window of at least 100 expected messages, the count sent is
// within 1% of the target, from 10/s to 200,000/s.
func TestPacerHoldsRate(t *testing.T) {
	for _, tc := range []struct {
		rate      float64
		producers int
		secs      int
	}{
		{10, 1, 20},
		{10, 3, 20},
		{1000, 1, 3},
		{1000, 4, 3},
		{50000, 2, 2},
		{200000, 1, 2},
		{200000, 4, 2},
	} {
		t.Run(fmt.Sprintf("%.0f/s×%d", tc.rate, tc.producers), func(t *testing.T) {
			sc := load(t, fmt.Sprintf(`
driver: {memory: {streams: 4}}
producers: %d
consumers: 2
message: {size: 64B}
traffic:
  - constant: {rate: %g/s, for: %ds}
drain: 1s
`, tc.producers, tc.rate, tc.secs))
			synctest.Test(t, func(t *testing.T) {
				res, err := engine.Run(context.Background(), sc, engine.WithDrivers(memory.Kind))
				if err != nil {
					t.Fatal(err)
				}
				want := tc.rate * float64(tc.secs)
				if got := float64(res.Counts.Sent); math.Abs(got-want) > want*0.01 {
					t.Errorf("sent %v in total, want %v ±1%%", got, want)
				}
				// Per window of ≥100 expected messages.
				window := max(1, int(math.Ceil(100/tc.rate)))
				ivs := res.Intervals
				for i := 0; i+window <= tc.secs; i += window {
					var n int64
					for _, iv := range ivs[i : i+window] {
						n += iv.Counts.Sent
					}
					want := tc.rate * float64(window)
					if math.Abs(float64(n)-want) > want*0.01 {
						t.Errorf("seconds %d..%d: sent %d, want %v ±1%%", i, i+window, n, want)
					}
				}
				if res.Counts.Unsent != 0 || res.Counts.Lost != 0 {
					t.Errorf("unsent %d lost %d", res.Counts.Unsent, res.Counts.Lost)
				}
			})
		})
	}
}

// TestPacerFollowsProfile checks ramps, steps and spikes on virtual time:
// each interval's sent count matches the profile's integral over it.
func TestPacerFollowsProfile(t *testing.T) {
	sc := load(t, `
driver: memory
producers: 3
traffic:
  - ramp: {from: 0/s, to: 10000/s, for: 4s}
  - step: {from: 1000/s, to: 4000/s, steps: 4, each: 1s}
  - spike: {base: 2000/s, peak: 20000/s, for: 6s, rise: 1s, hold: 2s, fall: 1s, at: 1s}
drain: 1s
`)
	synctest.Test(t, func(t *testing.T) {
		res, err := engine.Run(context.Background(), sc, engine.WithDrivers(memory.Kind))
		if err != nil {
			t.Fatal(err)
		}
		prof := sc.Profile()
		for _, iv := range res.Intervals {
			if iv.TargetRate == nil || iv.EndS > prof.Duration.Seconds() {
				continue
			}
			want := *iv.TargetRate * (iv.EndS - iv.StartS)
			if math.Abs(float64(iv.Counts.Sent)-want) > math.Max(want*0.01, 3) {
				t.Errorf("[%.0fs,%.0fs): sent %d, want %.0f", iv.StartS, iv.EndS, iv.Counts.Sent, want)
			}
		}
		if total := prof.Scheduled(prof.Duration); math.Abs(float64(res.Counts.Sent)-total) > 3 {
			t.Errorf("sent %d, profile schedules %.0f", res.Counts.Sent, total)
		}
	})
}
