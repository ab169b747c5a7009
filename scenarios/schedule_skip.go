package scenarios

import (
	"math"
	"sort"
	"time"
)

// SkipBefore moves the schedule past every one of its messages due before
// limit and returns how many it passed, so a producer that stops (the
// traffic is over, the run was interrupted) can count what it will never
// send. It is arithmetic, whatever the count: a few steps per segment
// known so far, never one per message. A limit past the end (such as
// math.MaxInt64) passes every message the schedule knows of; a growing
// timeline's later segments are not known yet.
func (s *Schedule) SkipBefore(limit time.Duration) int64 {
	if s.tl != nil {
		s.segs, s.ends = s.tl.snapshot()
	}
	if len(s.segs) == 0 || s.next >= beyond {
		return 0
	}
	// k counts the messages of the whole profile due before limit: message
	// k is due when the profile has scheduled k, so first a close guess
	// from the running count, then the exact due times settle the edges.
	k := math.Ceil(s.scheduledBefore(limit))
	if k > beyond {
		k = beyond
	}
	due := int64(k)
	// The guess is off by rounding at most: a few steps either way.
	for i := 0; i < maxSettle && due > 0 && s.dueOf(due-1) >= limit; i++ {
		due--
	}
	for i := 0; i < maxSettle && due < beyond && s.dueOf(due) < limit; i++ {
		due++
	}
	var passed int64
	if due > s.next {
		passed = (due - s.next + s.inc - 1) / s.inc
		s.next = min(s.next+passed*s.inc, beyond)
	}
	// Leave the segments that ended before limit, max phases included.
	for s.seg < len(s.segs) && s.segs[s.seg].Start+s.segs[s.seg].Dur <= limit {
		s.seg++
	}
	return passed
}

// maxSettle bounds the steps SkipBefore takes from its guess.
const maxSettle = 64

// scheduledBefore is the running count of messages the known segments
// schedule before t, as Profile.Scheduled.
func (s *Schedule) scheduledBefore(t time.Duration) float64 {
	before := 0.0
	for j, seg := range s.segs {
		if t < seg.Start+seg.Dur {
			if t <= seg.Start {
				return before
			}
			return snap(before + seg.countBefore(t-seg.Start))
		}
		before = s.ends[j]
	}
	return before
}

// dueOf is the intended offset of message k of the whole profile, or the
// largest Duration when the known segments schedule fewer than k+1.
func (s *Schedule) dueOf(k int64) time.Duration {
	x := float64(k)
	j := sort.Search(len(s.ends), func(j int) bool { return x < s.ends[j] })
	if j == len(s.ends) {
		return math.MaxInt64
	}
	before := 0.0
	if j > 0 {
		before = s.ends[j-1]
	}
	seg := s.segs[j]
	return seg.Start + seg.timeOf(x-before)
}
