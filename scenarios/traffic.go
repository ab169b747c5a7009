package scenarios

import (
	"math"
	"time"

	"gopkg.in/yaml.v3"
)

// Phase is one entry of the traffic list. Exactly one of the shapes is set.
type Phase struct {
	Name     string    `yaml:"name"`
	Constant *Constant `yaml:"constant"`
	Ramp     *Ramp     `yaml:"ramp"`
	Step     *Step     `yaml:"step"`
	Spike    *Spike    `yaml:"spike"`
	Max      *Max      `yaml:"max"`
	Pause    *Pause    `yaml:"pause"`
	FindMax  *FindMax  `yaml:"find-max"`
}

// Constant sends at one rate for a duration.
type Constant struct {
	Rate Rate     `yaml:"rate,required"`
	For  Duration `yaml:"for,required"`
}

// Ramp changes the rate linearly from From to To over For.
type Ramp struct {
	From Rate     `yaml:"from,required"`
	To   Rate     `yaml:"to,required"`
	For  Duration `yaml:"for,required"`
}

// Step is a staircase of Steps equal stairs from From to To (both included),
// each held for Each.
type Step struct {
	From  Rate     `yaml:"from,required"`
	To    Rate     `yaml:"to,required"`
	Steps int      `yaml:"steps,required"`
	Each  Duration `yaml:"each,required"`
}

// Spike runs at Base for For, except for a burst at Peak: it starts At into the
// phase, climbs for Rise, holds for Hold, and falls back over Fall.
type Spike struct {
	Base Rate      `yaml:"base,required"`
	Peak Rate      `yaml:"peak,required"`
	For  Duration  `yaml:"for,required"`
	Hold Duration  `yaml:"hold,required"`
	Rise Duration  `yaml:"rise"`
	Fall *Duration `yaml:"fall"` // default: same as Rise
	At   *Duration `yaml:"at"`   // default: the burst is centred in the phase
}

// Max sends as fast as the system accepts, bounded by InFlight unconfirmed
// messages across all producers. It is a closed loop: intended time equals
// send time, so e2e latency equals service latency in this phase.
type Max struct {
	For      Duration `yaml:"for,required"`
	InFlight int      `yaml:"in-flight"` // default 1000
}

// Pause sends nothing for For, to watch a system recover.
type Pause struct {
	For Duration `yaml:"for,required"`
}

// DefaultInFlight bounds a max phase when the scenario does not.
const DefaultInFlight = 1000

// MaxSteps bounds a step phase; a finer staircase is better written as a ramp.
const MaxSteps = 10000

// PhaseKinds are the shapes a traffic phase can take, in the order of Phase's fields.
var PhaseKinds = []string{"constant", "ramp", "step", "spike", "max", "pause", "find-max"}

// addDurations sums ds, reporting false if the sum overflows.
func addDurations(ds ...Duration) (Duration, bool) {
	var sum Duration
	for _, d := range ds {
		if d > 0 && sum > Duration(math.MaxInt64)-d {
			return 0, false
		}
		sum += d
	}
	return sum, true
}

// Segment is a stretch of the traffic profile over which the target rate
// changes linearly from From to To (messages per second). A Max segment has
// no schedule; InFlight bounds it instead. A Search segment stands for a
// find-max phase in a compiled Profile: it schedules nothing itself, and
// lasts the search's time bound; a Timeline replaces it with the steps the
// search decides, as it decides them (each with Step set) and the pauses
// between them.
type Segment struct {
	Phase    int // index into Scenario.Traffic
	Start    time.Duration
	Dur      time.Duration
	From, To float64
	Max      bool
	InFlight int
	Search   bool
	Step     int // 1, 2, ... for the steps of a find-max phase; 0 otherwise
}

// Count is the number of messages the segment schedules (0 for Max and
// Search). It is fractional when the rate does not divide the duration; the
// fraction carries over to the next segment.
func (s Segment) Count() float64 {
	if s.Max || s.Search {
		return 0
	}
	return (s.From + s.To) / 2 * s.Dur.Seconds()
}

// countBefore is how many messages the segment schedules in its first t.
func (s Segment) countBefore(t time.Duration) float64 {
	if s.Max || s.Search || t <= 0 {
		return 0
	}
	if t >= s.Dur {
		return s.Count()
	}
	x := t.Seconds()
	return s.From*x + (s.To-s.From)/(2*s.Dur.Seconds())*x*x
}

// RateAt returns the target rate at offset t into the segment.
func (s Segment) RateAt(t time.Duration) float64 {
	if s.Dur <= 0 {
		return s.From
	}
	return s.From + (s.To-s.From)*t.Seconds()/s.Dur.Seconds()
}

// timeOf returns the offset into the segment at which the segment has
// scheduled x messages, solving From*t + (To-From)/(2*Dur)*t² = x, rounded to
// the nearest nanosecond and kept within [0, Dur].
func (s Segment) timeOf(x float64) time.Duration {
	if x <= 0 {
		return 0 // also keeps a ramp from 0/s away from 0/0
	}
	d := s.Dur.Seconds()
	a := (s.To - s.From) / (2 * d)
	b := s.From
	var t float64
	if math.Abs(a) < 1e-12 {
		t = x / b
	} else {
		disc := b*b + 4*a*x
		if disc < 0 {
			disc = 0
		}
		t = 2 * x / (b + math.Sqrt(disc)) // stable form of the quadratic root
	}
	if !(t < d) { // also catches NaN and +Inf
		return s.Dur
	}
	return time.Duration(math.Round(t * float64(time.Second)))
}

// snap removes floating-point noise from a running message count: a count
// within a hair of a whole number is that number, so that 50/s for 560ms
// schedules 28 messages, not 29 (28.000000000000004 rounds up).
func snap(x float64) float64 {
	r := math.Round(x)
	if math.Abs(x-r) <= 1e-9+1e-13*math.Abs(x) {
		return r
	}
	return x
}

// DecodeNode decodes a phase and checks it has exactly one valid shape.
func (p *Phase) DecodeNode(d *Decoder, n *yaml.Node, field string) {
	type plain Phase
	if !d.Decode(n, field, (*plain)(p)) {
		return
	}
	var set []string
	for i, ok := range []bool{p.Constant != nil, p.Ramp != nil, p.Step != nil, p.Spike != nil, p.Max != nil, p.Pause != nil, p.FindMax != nil} {
		if ok {
			set = append(set, PhaseKinds[i])
		}
	}
	switch len(set) {
	case 1:
	case 0:
		d.Errorf(n, field, "a phase needs one shape: %s", joinList(PhaseKinds))
		return
	default:
		d.Errorf(at(n, set[1]), field, "a phase has exactly one shape, found %d: %s; put each in its own list entry",
			len(set), joinList(set))
		return
	}
	shape := p.Kind()
	sn := Child(n, shape)
	pos := func(key string) (*yaml.Node, string) { return at(sn, key), join(field, shape+"."+key) }
	positive := func(key string, r Rate) {
		if r <= 0 {
			node, f := pos(key)
			d.Errorf(node, f, "must be more than 0/s (for silence use a pause phase)")
		}
	}
	nonZero := func(key string, v Duration) {
		if v <= 0 {
			node, f := pos(key)
			d.Errorf(node, f, "must be longer than 0s")
		}
	}
	switch {
	case p.Constant != nil:
		positive("rate", p.Constant.Rate)
		nonZero("for", p.Constant.For)
	case p.Ramp != nil:
		nonZero("for", p.Ramp.For)
		if p.Ramp.From == 0 && p.Ramp.To == 0 {
			node, f := pos("to")
			d.Errorf(node, f, "a ramp from 0/s to 0/s sends nothing; use a pause phase")
		}
	case p.Step != nil:
		s := p.Step
		switch {
		case s.Steps < 2:
			node, f := pos("steps")
			d.Errorf(node, f, "must be at least 2, got %d (for one rate use a constant phase)", s.Steps)
		case s.Steps > MaxSteps:
			node, f := pos("steps")
			d.Errorf(node, f, "must be at most %d, got %d (for a smooth change use a ramp phase)", MaxSteps, s.Steps)
		case s.Each > 0 && s.Each > Duration(math.MaxInt64)/Duration(s.Steps):
			node, f := pos("each")
			d.Errorf(node, f, "%d steps of %s last longer than spate can schedule", s.Steps, s.Each)
		}
		nonZero("each", s.Each)
		if s.From == 0 && s.To == 0 {
			node, f := pos("to")
			d.Errorf(node, f, "a step from 0/s to 0/s sends nothing; use a pause phase")
		}
	case p.Spike != nil:
		s := p.Spike
		positive("base", s.Base)
		if s.Peak <= s.Base {
			node, f := pos("peak")
			d.Errorf(node, f, "peak %s must be above base %s", s.Peak, s.Base)
		}
		nonZero("for", s.For)
		nonZero("hold", s.Hold)
		burst, ok := addDurations(s.Rise, s.Hold, s.fall())
		if !ok || burst > s.For {
			node, f := pos("hold")
			d.Errorf(node, f, "the burst (rise %s + hold %s + fall %s) is longer than the phase (for: %s)", s.Rise, s.Hold, s.fall(), s.For)
		} else if s.At != nil && *s.At > s.For-burst {
			node, f := pos("at")
			d.Errorf(node, f, "the burst starting at %s lasts %s and ends after the phase (for: %s); start it at %s or earlier", *s.At, burst, s.For, s.For-burst)
		}
	case p.Max != nil:
		nonZero("for", p.Max.For)
		if Child(sn, "in-flight") != nil && p.Max.InFlight < 1 {
			node, f := pos("in-flight")
			d.Errorf(node, f, "must be at least 1, got %d", p.Max.InFlight)
		}
		if p.Max.InFlight == 0 {
			p.Max.InFlight = DefaultInFlight
		}
	case p.Pause != nil:
		nonZero("for", p.Pause.For)
	case p.FindMax != nil:
		p.FindMax.validate(d, sn, field)
	}
}

func (s *Spike) fall() Duration {
	if s.Fall != nil {
		return *s.Fall
	}
	return s.Rise
}

// Duration is how long the phase runs.
func (p *Phase) Duration() time.Duration {
	switch {
	case p.Constant != nil:
		return p.Constant.For.D()
	case p.Ramp != nil:
		return p.Ramp.For.D()
	case p.Step != nil:
		return time.Duration(p.Step.Steps) * p.Step.Each.D()
	case p.Spike != nil:
		return p.Spike.For.D()
	case p.Max != nil:
		return p.Max.For.D()
	case p.Pause != nil:
		return p.Pause.For.D()
	case p.FindMax != nil:
		return p.FindMax.Bound()
	}
	return 0
}

// Kind names the phase's shape.
func (p *Phase) Kind() string {
	switch {
	case p.Constant != nil:
		return "constant"
	case p.Ramp != nil:
		return "ramp"
	case p.Step != nil:
		return "step"
	case p.Spike != nil:
		return "spike"
	case p.Max != nil:
		return "max"
	case p.Pause != nil:
		return "pause"
	case p.FindMax != nil:
		return "find-max"
	}
	return ""
}

// segments appends the phase's linear pieces starting at start.
func (p *Phase) segments(idx int, start time.Duration, out []Segment) []Segment {
	add := func(d time.Duration, from, to float64) {
		if d > 0 {
			out = append(out, Segment{Phase: idx, Start: start, Dur: d, From: from, To: to})
			start += d
		}
	}
	switch {
	case p.Constant != nil:
		add(p.Constant.For.D(), p.Constant.Rate.PerSecond(), p.Constant.Rate.PerSecond())
	case p.Ramp != nil:
		add(p.Ramp.For.D(), p.Ramp.From.PerSecond(), p.Ramp.To.PerSecond())
	case p.Step != nil:
		s := p.Step
		from, to := s.From.PerSecond(), s.To.PerSecond()
		for i := 0; i < min(s.Steps, MaxSteps); i++ {
			r := from + (to-from)*float64(i)/float64(max(s.Steps-1, 1))
			if i == s.Steps-1 {
				r = to // exactly, whatever the rounding above
			}
			add(s.Each.D(), r, r)
		}
	case p.Spike != nil:
		s := p.Spike
		base, peak := s.Base.PerSecond(), s.Peak.PerSecond()
		burst := s.Rise + s.Hold + s.fall()
		lead := (s.For - burst) / 2
		if s.At != nil {
			lead = *s.At
		}
		add(lead.D(), base, base)
		add(s.Rise.D(), base, peak)
		add(s.Hold.D(), peak, peak)
		add(s.fall().D(), peak, base)
		add((s.For - lead - burst).D(), base, base)
	case p.Max != nil:
		out = append(out, Segment{Phase: idx, Start: start, Dur: p.Max.For.D(), Max: true, InFlight: p.Max.InFlight})
	case p.Pause != nil:
		add(p.Pause.For.D(), 0, 0)
	case p.FindMax != nil:
		if d := p.FindMax.Bound(); d > 0 {
			out = append(out, Segment{Phase: idx, Start: start, Dur: d, Search: true})
		}
	}
	return out
}

// Profile is the traffic of a scenario as a list of linear segments.
type Profile struct {
	Segments []Segment
	Duration time.Duration
}

// NewProfile compiles phases into segments.
func NewProfile(phases []Phase) Profile {
	var p Profile
	for i := range phases {
		p.Segments = phases[i].segments(i, p.Duration, p.Segments)
		p.Duration += phases[i].Duration()
	}
	return p
}

// Search returns the find-max placeholder segment, if the profile has one.
func (p Profile) Search() (Segment, bool) {
	for _, s := range p.Segments {
		if s.Search {
			return s, true
		}
	}
	return Segment{}, false
}

// HasMax reports whether any segment is a closed-loop max phase.
func (p Profile) HasMax() bool {
	for _, s := range p.Segments {
		if s.Max {
			return true
		}
	}
	return false
}

// Scheduled returns how many messages the profile schedules before offset t
// (max phases schedule none): the integral of the target rate from 0 to t.
// Message k (counting from 0) is due when Scheduled reaches k, so exactly
// ceil(Scheduled(t)) messages are due before t.
func (p Profile) Scheduled(t time.Duration) float64 {
	var n float64
	for _, s := range p.Segments {
		if t <= s.Start {
			break
		}
		if t < s.Start+s.Dur {
			return snap(n + s.countBefore(t-s.Start))
		}
		n = snap(n + s.Count())
	}
	return n
}

// ends returns, for each segment, how many messages the profile schedules
// before the segment's end, summed the way Scheduled sums them.
func ends(segs []Segment) []float64 {
	out := make([]float64, len(segs))
	var n float64
	for i, s := range segs {
		n = snap(n + s.Count())
		out[i] = n
	}
	return out
}

// RateAt returns the target rate at offset t, and false inside a max phase,
// a find-max placeholder, or past the end.
func (p Profile) RateAt(t time.Duration) (float64, bool) {
	for _, s := range p.Segments {
		if t >= s.Start && t < s.Start+s.Dur {
			if s.Max || s.Search {
				return 0, false
			}
			return s.RateAt(t - s.Start), true
		}
	}
	return 0, false
}

// Schedule yields the intended send offsets of one producer's messages.
// Message k of the whole profile (counting scheduled segments only, from 0)
// is due when the profile has scheduled exactly k messages (see Scheduled);
// producer i of n takes k = i, i+n, i+2n, ... so that together the producers
// follow the profile exactly. Offsets never decrease. A schedule made from
// a Timeline follows it as it grows: segments appended before the schedule
// reaches them are scheduled exactly as if they had been there from the
// start. A Schedule is not safe for concurrent use; each producer owns one.
type Schedule struct {
	tl        *Timeline // nil: a fixed profile
	segs      []Segment
	ends      []float64 // ends[j]: messages scheduled before segs[j] ends
	seg       int
	next, inc int64 // next k, and the stride
}

// beyond is a message number past any count a run could reach.
const beyond = math.MaxInt64 / 2

// NewSchedule returns producer i's schedule of n producers (0 <= i < n).
func (p Profile) NewSchedule(i, n int) *Schedule {
	checkProducer(i, n)
	return &Schedule{segs: p.Segments, ends: ends(p.Segments), next: int64(i), inc: int64(n)}
}

func checkProducer(i, n int) {
	if n < 1 || i < 0 || i >= n {
		panic("scenarios: NewSchedule needs 0 <= i < n")
	}
}

// refresh takes the segments the timeline gained since the schedule last
// looked, once the schedule has run through those it knew.
func (s *Schedule) refresh() {
	if s.tl == nil || s.seg < len(s.segs) {
		return
	}
	s.segs, s.ends = s.tl.snapshot()
}

// Segment returns the segment the schedule is in, and false past the end
// (of what a growing timeline holds so far: see Pending). After Next
// returned false it is a max segment, or, on a growing timeline, a
// scheduled one appended since: Next then yields its messages.
func (s *Schedule) Segment() (Segment, bool) {
	s.refresh()
	if s.seg >= len(s.segs) {
		return Segment{}, false
	}
	return s.segs[s.seg], true
}

// Pending is for a schedule that has run out of segments (Segment returned
// false): it returns nil when the schedule is over for good, or a channel
// that is closed when the timeline it follows grows or is closed, after
// which Next may yield more.
func (s *Schedule) Pending() <-chan struct{} {
	if s.tl == nil {
		return nil
	}
	return s.tl.pending(len(s.segs))
}

// Skip moves past the current segment (used to leave a max phase). This
// producer's messages still due in a skipped scheduled segment are dropped.
func (s *Schedule) Skip() {
	s.refresh()
	if s.seg >= len(s.segs) {
		return
	}
	if end := math.Ceil(s.ends[s.seg]); end >= beyond {
		s.next = beyond
	} else if gap := int64(end) - s.next; gap > 0 {
		// Move to the first of this producer's k at or past end.
		if strides := (gap-1)/s.inc + 1; strides > (beyond-s.next)/s.inc {
			s.next = beyond
		} else {
			s.next += strides * s.inc
		}
	}
	s.seg++
}

// Next returns the intended offset of this producer's next message and
// advances, moving on through scheduled segments as they run out. ok is false
// when the schedule reaches a max segment or its end: call Segment to see
// which, and Skip to leave a max segment.
func (s *Schedule) Next() (due time.Duration, ok bool) {
	for {
		s.refresh()
		if s.seg >= len(s.segs) {
			return 0, false
		}
		seg := s.segs[s.seg]
		if seg.Max {
			return 0, false
		}
		if k := float64(s.next); k < s.ends[s.seg] {
			before := 0.0
			if s.seg > 0 {
				before = s.ends[s.seg-1]
			}
			s.next = min(s.next, beyond-s.inc) + s.inc // no overflow, whatever n
			return seg.Start + seg.timeOf(k-before), true
		}
		s.seg++
	}
}
