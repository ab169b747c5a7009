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

// Segment is a stretch of the traffic profile over which the target rate
// changes linearly from From to To (messages per second). A Max segment has
// no schedule; InFlight bounds it instead.
type Segment struct {
	Phase    int // index into Scenario.Traffic
	Start    time.Duration
	Dur      time.Duration
	From, To float64
	Max      bool
	InFlight int
}

// Count is the number of messages the segment schedules (0 for Max).
func (s Segment) Count() float64 {
	if s.Max {
		return 0
	}
	return (s.From + s.To) / 2 * s.Dur.Seconds()
}

// RateAt returns the target rate at offset t into the segment.
func (s Segment) RateAt(t time.Duration) float64 {
	if s.Dur <= 0 {
		return s.From
	}
	return s.From + (s.To-s.From)*t.Seconds()/s.Dur.Seconds()
}

// timeOf returns the offset into the segment at which the x-th message of it
// is due, solving From*t + (To-From)/(2*Dur)*t² = x.
func (s Segment) timeOf(x float64) time.Duration {
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
	return time.Duration(t * float64(time.Second))
}

// DecodeNode decodes a phase and checks it has exactly one valid shape.
func (p *Phase) DecodeNode(d *Decoder, n *yaml.Node, field string) {
	type plain Phase
	if !d.Decode(n, field, (*plain)(p)) {
		return
	}
	shapes := []string{"constant", "ramp", "step", "spike", "max", "pause"}
	set := 0
	for _, ok := range []bool{p.Constant != nil, p.Ramp != nil, p.Step != nil, p.Spike != nil, p.Max != nil, p.Pause != nil} {
		if ok {
			set++
		}
	}
	if set != 1 {
		d.Errorf(n, field, "a phase needs exactly one of: %s (found %d)", joinList(shapes), set)
		return
	}
	shape := p.Kind()
	sn := Child(n, shape)
	pos := func(key string) (*yaml.Node, string) { return at(sn, key), join(field, shape+"."+key) }
	positive := func(key string, r Rate) {
		if r <= 0 {
			node, f := pos(key)
			d.Errorf(node, f, "rate must be greater than 0 (use a pause phase for silence)")
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
		if s.Steps < 2 {
			node, f := pos("steps")
			d.Errorf(node, f, "needs at least 2 steps, got %d", s.Steps)
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
		burst := s.Rise + s.Hold + s.fall()
		if burst > s.For {
			node, f := pos("hold")
			d.Errorf(node, f, "rise+hold+fall (%s) is longer than for (%s)", burst, s.For)
		} else if s.At != nil && *s.At+burst > s.For {
			node, f := pos("at")
			d.Errorf(node, f, "the burst starting at %s ends after the phase (for: %s)", *s.At, s.For)
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
		for i := 0; i < s.Steps; i++ {
			r := s.From.PerSecond() + (s.To.PerSecond()-s.From.PerSecond())*float64(i)/float64(s.Steps-1)
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
// (max phases schedule none).
func (p Profile) Scheduled(t time.Duration) float64 {
	var n float64
	for _, s := range p.Segments {
		if t <= s.Start {
			break
		}
		if s.Max {
			continue
		}
		if end := s.Start + s.Dur; t >= end {
			n += s.Count()
		} else {
			x := (t - s.Start).Seconds()
			n += s.From*x + (s.To-s.From)/(2*s.Dur.Seconds())*x*x
		}
	}
	return n
}

// RateAt returns the target rate at offset t, and false inside a max phase
// or past the end.
func (p Profile) RateAt(t time.Duration) (float64, bool) {
	for _, s := range p.Segments {
		if t >= s.Start && t < s.Start+s.Dur {
			if s.Max {
				return 0, false
			}
			return s.RateAt(t - s.Start), true
		}
	}
	return 0, false
}

// Schedule yields the intended send offsets of one producer's messages.
// Message k of the whole profile (counting scheduled segments only) is due
// when the profile has scheduled exactly k messages; producer i of n takes
// k = i, i+n, i+2n, ... so that together the producers follow the profile
// exactly. A Schedule is not safe for concurrent use; each producer owns one.
type Schedule struct {
	segs      []Segment
	seg       int
	before    float64 // messages scheduled before segs[seg]
	next, inc int64   // next k, and the stride
}

// NewSchedule returns producer i's schedule of n producers.
func (p Profile) NewSchedule(i, n int) *Schedule {
	return &Schedule{segs: p.Segments, next: int64(i), inc: int64(n)}
}

// Segment returns the segment the schedule is in, and false past the end.
func (s *Schedule) Segment() (Segment, bool) {
	if s.seg >= len(s.segs) {
		return Segment{}, false
	}
	return s.segs[s.seg], true
}

// Skip moves past the current segment (used to leave a max phase).
func (s *Schedule) Skip() {
	if s.seg < len(s.segs) {
		s.before += s.segs[s.seg].Count()
		s.seg++
	}
}

// Next returns the intended offset of this producer's next message in the
// current scheduled segment and advances; ok is false when the segment holds
// no more of its messages (call Segment to see what comes next).
func (s *Schedule) Next() (due time.Duration, ok bool) {
	for s.seg < len(s.segs) {
		seg := s.segs[s.seg]
		if seg.Max {
			return 0, false
		}
		x := float64(s.next) - s.before
		if x < seg.Count() {
			s.next += s.inc
			return seg.Start + seg.timeOf(x), true
		}
		s.Skip()
		if s.seg < len(s.segs) && s.segs[s.seg].Max {
			return 0, false
		}
	}
	return 0, false
}
