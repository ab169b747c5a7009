package engine

import (
	"time"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/scenarios"
)

// clock is a run's clock: wall time at the start (distributed: T0, on the
// coordinator's clock) plus monotonic time since, so NTP steps during a
// run do not bend latencies.
type clock struct {
	base   time.Time // the local instant the traffic starts
	baseNS int64     // the run clock's reading then, Unix ns
}

// now is the run clock in Unix nanoseconds.
func (c *clock) now() int64 { return c.baseNS + int64(time.Since(c.base)) }

// elapsed is the time since the start.
func (c *clock) elapsed() time.Duration { return time.Since(c.base) }

// traffic is what the producer loops share: the clock, the tracker they
// report sends and outcomes to, the timeline they follow, and the faults
// chaos injects into what they send (chaos.Producers). The clock and the
// tracker are set before any loop runs.
type traffic struct {
	clock
	tracker *accounting.Tracker
	// tl is the traffic profile the producers follow: closed from the
	// start for fixed phases, grown by the search of a find-max phase.
	tl        *scenarios.Timeline
	producers int // in the whole run: loops take their share of the schedule
	dup       dupState
	poison    poisonState
}

// profile is the traffic profile as far as it is known now.
func (t *traffic) profile() scenarios.Profile { return t.tl.Profile() }
