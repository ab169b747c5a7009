package chaos

import (
	"slices"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// SliceWidth is the resolution of recovery measurements: the engine feeds
// the Runner one slice of e2e latencies and the backlog this often.
const SliceWidth = 100 * time.Millisecond

// slicesPerSecond slices make the sliding second recovery is judged over.
const slicesPerSecond = int(time.Second / SliceWidth)

// baselineSeconds is how much traffic before a fault its baselines are
// taken from. A second's p99 at 1,000 msgs/s is its tenth-largest latency,
// which on a busy host swings by 2-3× from one second to the next; over
// five seconds the baseline holds the host's ordinary hiccups, so recovery
// is judged against normal, not against the quietest second.
const baselineSeconds = 5

// recovery follows one fault from its start until the traffic is healthy
// again. A fault has recovered at the first slice after its end where e2e p99
// over the sliding second is within 1.5× the p99 of the baselineSeconds
// before the fault (or 1 ms above it, whichever is larger, so microsecond
// baselines do not demand the impossible), and the backlog is back to at
// most 1.5× its peak over those seconds plus 10 messages.
type recovery struct {
	baseP99     int64 // µs; -1 when nothing was received in those seconds
	baseBacklog int64
	peak        int64
	after       time.Duration
}

func (rc *recovery) begin(p99, backlog int64) {
	rc.baseP99, rc.baseBacklog, rc.peak = p99, backlog, backlog
}

// healthy reports whether the traffic meets the recovery criteria. It
// asks p99 for the sliding p99 only when the backlog meets its criterion:
// working it out merges a second of slices, and while a backlog drains
// after a fault (every slice of the drain) the answer would not matter.
func (rc *recovery) healthy(p99 func() int64, backlog int64) bool {
	if backlog > rc.baseBacklog*3/2+10 {
		return false
	}
	v := p99()
	if v < 0 {
		return false // nothing is getting through
	}
	return rc.baseP99 < 0 || v <= max(rc.baseP99*3/2, rc.baseP99+1000)
}

// slidingWindow holds the last second of slices, the baselineSeconds
// before it merged a second each (while a fault is due), and the backlog of
// every slice in them.
// Its p99 is worked out when asked for, once per slice at most: merging ten
// slices is the costliest thing the slicer does, and most slices nobody
// asks (no fault is starting or being judged).
type slidingWindow struct {
	mu         sync.Mutex
	ring       [slicesPerSecond]*hdr.Histogram
	next       int
	seconds    [baselineSeconds]*hdr.Histogram // whole seconds, merged as the ring fills
	kept       [baselineSeconds]bool           // seconds[i] holds its second (merged while a fault was due)
	nextSecond int
	backlog    [baselineSeconds * slicesPerSecond]int64
	nextB      int
	merged     *hdr.Histogram
	lastP99    int64
	current    bool // lastP99 is the p99 of the ring as it is
}

// add stores a slice and returns the one it replaces (reset, for reuse; nil
// at first). A whole second is merged for baselines only when keep says a
// fault may start within baselineSeconds: merging ten slices costs about
// 2 ms, and most seconds of a run precede no fault.
func (s *slidingWindow) add(h *hdr.Histogram, backlog int64, keep bool) (old *hdr.Histogram) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old = s.ring[s.next]
	s.ring[s.next] = h
	s.next = (s.next + 1) % slicesPerSecond
	s.backlog[s.nextB] = backlog
	s.nextB = (s.nextB + 1) % len(s.backlog)
	s.current = false
	if s.next == 0 { // the ring holds one whole second: keep it for baselines
		i := s.nextSecond
		s.nextSecond = (i + 1) % baselineSeconds
		s.kept[i] = keep
		if keep {
			if s.seconds[i] == nil {
				s.seconds[i] = hdr.New(h.LowestTrackableValue(), h.HighestTrackableValue(), int(h.SignificantFigures()))
			}
			s.seconds[i].Reset()
			for _, x := range s.ring {
				s.seconds[i].Merge(x)
			}
		}
	}
	if old != nil {
		old.Reset()
	}
	return old
}

// baselineP99 is the e2e p99 of the last baselineSeconds kept (and the
// slices since the last whole second), or of the last second when none was
// kept; -1 when nothing was received.
func (s *slidingWindow) baselineP99() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	hs := slices.Clone(s.ring[:s.next])
	for i, sec := range s.seconds {
		if s.kept[i] {
			hs = append(hs, sec)
		}
	}
	if len(hs) == s.next { // no second kept (no fault was due): the last second
		hs = s.ring[:]
	}
	return s.p99Of(hs)
}

// p99Of merges hs (nil ones are skipped) for their p99, -1 when they are
// empty.
func (s *slidingWindow) p99Of(hs []*hdr.Histogram) int64 {
	p := int64(-1)
	for _, x := range hs {
		if x == nil {
			continue
		}
		if s.merged == nil {
			s.merged = hdr.New(x.LowestTrackableValue(), x.HighestTrackableValue(), int(x.SignificantFigures()))
		}
		s.merged.Merge(x)
	}
	if s.merged != nil {
		if s.merged.TotalCount() > 0 {
			p = s.merged.ValueAtQuantile(99)
		}
		s.merged.Reset()
	}
	return p
}

// p99 is the e2e p99 of the last second, -1 when nothing was received.
func (s *slidingWindow) p99() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.current {
		s.lastP99, s.current = s.p99Of(s.ring[:]), true
	}
	return s.lastP99
}

// maxBacklog is the largest backlog sampled in the last baselineSeconds.
func (s *slidingWindow) maxBacklog() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var m int64
	for _, b := range s.backlog {
		m = max(m, b)
	}
	return m
}

// faultDue reports whether a fault is to start within baselineSeconds
// (and a slice) of now, so the seconds before it are kept for its
// baseline.
func (r *Runner) faultDue(now time.Duration) bool {
	for _, o := range r.occ {
		if until := o.at - now; until > -SliceWidth && until <= baselineSeconds*time.Second+SliceWidth {
			return true
		}
	}
	return false
}

// Slice feeds one SliceWidth of measurements: h holds the e2e latencies of
// messages received in it (the Runner keeps it), backlog is the backlog at
// its end and peak the largest backlog within it. It returns an empty
// histogram for the next slice.
func (r *Runner) Slice(h *hdr.Histogram, backlog, peak int64) *hdr.Histogram {
	if r == nil {
		return h
	}
	now := r.clock()
	old := r.slices.add(h, backlog, r.faultDue(now))
	for _, o := range r.occ {
		o.mu.Lock()
		if o.started && !o.recovered {
			o.rec.peak = max(o.rec.peak, peak)
			if o.ended && now >= o.endAt && o.rec.healthy(r.slices.p99, backlog) {
				o.recovered = true
				o.rec.after = now - o.endAt
			}
		}
		o.mu.Unlock()
	}
	if old == nil {
		old = hdr.New(h.LowestTrackableValue(), h.HighestTrackableValue(), int(h.SignificantFigures()))
	}
	return old
}
