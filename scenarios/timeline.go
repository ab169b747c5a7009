package scenarios

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Timeline is a traffic profile that can grow while producers follow it.
// A profile without a find-max phase gives a closed timeline holding its
// segments, whose schedules are exactly the profile's. With a find-max
// phase, the timeline starts with the segments before it and stays open:
// the search appends each step as it decides it (Append), with a pause
// filling any gap, and closes the timeline when it is done. Segments are
// only ever added at the end, so message k is due at the same time
// whether its segment was known from the start or appended later, and a
// schedule that runs out of segments waits (Schedule.Pending) rather than
// ending. A Timeline is safe for concurrent use.
type Timeline struct {
	mu    sync.Mutex
	segs  []Segment
	ends  []float64 // as Schedule.ends
	end   time.Duration
	bound time.Duration // the profile's planned length: the end at the latest
	open  bool
	grown chan struct{} // closed and replaced whenever segments are added or the timeline closes
	// dur is Duration, readable without the lock (producers check it on
	// every batch).
	dur atomic.Int64
}

// Timeline returns a timeline that follows p: closed when p has no
// find-max phase, otherwise open at the start of it.
func (p Profile) Timeline() *Timeline {
	tl := &Timeline{bound: p.Duration, grown: make(chan struct{})}
	for _, s := range p.Segments {
		if s.Search {
			tl.open = true
			tl.end = s.Start
			tl.dur.Store(int64(tl.bound))
			return tl
		}
		tl.add(s)
	}
	tl.end = p.Duration
	tl.dur.Store(int64(tl.end))
	return tl
}

func (tl *Timeline) add(s Segment) {
	n := 0.0
	if len(tl.ends) > 0 {
		n = tl.ends[len(tl.ends)-1]
	}
	tl.segs = append(tl.segs, s)
	tl.ends = append(tl.ends, snap(n+s.Count()))
	tl.end = s.Start + s.Dur
}

// Append adds seg, which must be a scheduled segment (not max or search)
// starting at or after End: a gap before it becomes a pause of the same
// phase, so the time line has no holes. It fails when the timeline is
// closed, when seg would start before the end, or when it would end after
// the timeline's bound.
func (tl *Timeline) Append(seg Segment) error {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	switch {
	case !tl.open:
		return fmt.Errorf("scenarios: the timeline is closed")
	case seg.Max || seg.Search || seg.Dur <= 0 || seg.From < 0 || seg.To < 0:
		return fmt.Errorf("scenarios: cannot append %+v", seg)
	case seg.Start < tl.end:
		return fmt.Errorf("scenarios: a segment at %s would start before the timeline's end %s", seg.Start, tl.end)
	case seg.Start+seg.Dur > tl.bound:
		return fmt.Errorf("scenarios: a segment ending at %s would end after the timeline's bound %s", seg.Start+seg.Dur, tl.bound)
	}
	if gap := seg.Start - tl.end; gap > 0 {
		tl.add(Segment{Phase: seg.Phase, Start: tl.end, Dur: gap})
	}
	tl.add(seg)
	close(tl.grown)
	tl.grown = make(chan struct{})
	return nil
}

// Close ends the timeline: schedules that reach its end are over. Closing
// twice does nothing.
func (tl *Timeline) Close() {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if tl.open {
		tl.open = false
		tl.dur.Store(int64(tl.end))
		close(tl.grown)
	}
}

// End is the end of the last segment.
func (tl *Timeline) End() time.Duration {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.end
}

// Open reports whether segments may still be appended.
func (tl *Timeline) Open() bool {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.open
}

// Duration is how long the traffic lasts: the end once the timeline is
// closed, and its bound (the longest it can last) while it is open.
func (tl *Timeline) Duration() time.Duration { return time.Duration(tl.dur.Load()) }

// Profile returns the segments so far as a Profile, whose Duration is
// Duration. It does not change as the timeline grows.
func (tl *Timeline) Profile() Profile {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	d := tl.end
	if tl.open {
		d = tl.bound
	}
	return Profile{Segments: tl.segs[:len(tl.segs):len(tl.segs)], Duration: d}
}

// NewSchedule returns producer i's schedule of n producers (0 <= i < n),
// following the timeline as it grows.
func (tl *Timeline) NewSchedule(i, n int) *Schedule {
	checkProducer(i, n)
	s := &Schedule{tl: tl, next: int64(i), inc: int64(n)}
	s.segs, s.ends = tl.snapshot()
	return s
}

// snapshot returns the segments and their running counts so far. The
// slices are never written again below their length (appends go past it),
// so a reader may keep them without the lock.
func (tl *Timeline) snapshot() ([]Segment, []float64) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	n := len(tl.segs)
	return tl.segs[:n:n], tl.ends[:n:n]
}

// closedChan is returned by pending when there is more to read at once.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// pending returns nil when a schedule that has seen known segments is over
// for good, a closed channel when there are more segments already, and
// otherwise a channel closed when the timeline next changes.
func (tl *Timeline) pending(known int) <-chan struct{} {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	switch {
	case len(tl.segs) > known:
		return closedChan
	case !tl.open:
		return nil
	}
	return tl.grown
}
