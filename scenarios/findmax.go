package scenarios

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// FindMax searches for the highest rate the system sustains within an SLO.
// It holds each rate for Hold, judges the step by the SLO over the step's
// own messages and by whether the backlog kept growing, then raises the rate
// by Step until a step fails (or Max passes), and bisects between the last
// good and the first bad rate until they are within Precision of each
// other. Between steps nothing is sent until the backlog has drained, for
// at most Settle. The search ends within Bound.
//
// In YAML:
//
//   - find-max: {start: 1000/s, max: 500000/s, step: 1.5x, hold: 20s, slo: "e2e.p99 < 100ms"}
type FindMax struct {
	Start     Rate      `yaml:"start,required"`
	Max       Rate      `yaml:"max,required"`
	Step      Factor    `yaml:"step"`      // default 2x
	Hold      Duration  `yaml:"hold"`      // default 20s
	Settle    *Duration `yaml:"settle"`    // default: hold, at most 10s
	SLO       SLO       `yaml:"slo"`       // per-step conditions
	Backlog   string    `yaml:"backlog"`   // must-drain (default) or ignore
	Precision Fraction  `yaml:"precision"` // default 5%
}

// Find-max defaults and limits.
const (
	DefaultFindMaxStep      = 2.0
	DefaultFindMaxHold      = 20 * time.Second
	DefaultFindMaxPrecision = 0.05
	// MaxSettleDefault caps the default settle time (the hold, at most this).
	MaxSettleDefault = 10 * time.Second
	// MinSettle is the shortest settle a scenario may ask for: the next
	// step is placed SettleLead after the decision, inside the settle.
	MinSettle = 100 * time.Millisecond
	// SettleLead is how far ahead of the run clock a new step is placed,
	// so producers are already waiting when it starts.
	SettleLead = 10 * time.Millisecond
	// MaxFindMaxSteps bounds a search; a finer one is a smaller precision
	// or a larger step factor away.
	MaxFindMaxSteps = 1000
)

// Backlog policies of a find-max phase.
const (
	BacklogMustDrain = "must-drain" // a step whose backlog kept growing fails
	BacklogIgnore    = "ignore"     // the SLO alone judges a step
)

// BacklogPolicies are the valid values of find-max.backlog.
var BacklogPolicies = []string{BacklogMustDrain, BacklogIgnore}

// Backlog growth: a step's backlog "kept growing" when, at the end of the
// step, it is above both BacklogFloor messages and BacklogFraction of the
// messages the step scheduled, and above its value at the middle of the step.
const (
	BacklogFloor    = 100
	BacklogFraction = 0.01
)

// BacklogGrew applies the rule above to a step that scheduled n messages
// and had backlogs mid and end at its middle and end.
func BacklogGrew(n float64, mid, end int64) bool {
	limit := math.Max(BacklogFloor, BacklogFraction*n)
	return float64(end) > limit && end > mid
}

// StepMetrics are the metrics an SLO of a find-max phase can name besides
// latencies (any kind and statistic): they are measured over one step.
// Counts and ratios are of the step's messages (intended send time inside
// the step), as known when the step is judged; a message still missing then
// counts as lost for the step. target_rate is the step's rate; achieved_rate
// is the messages received while the step ran ÷ its hold.
var StepMetrics = []string{
	"lost", "loss", "duplicates", "failed",
	"lost.ratio", "loss.ratio", "duplicates.ratio", "failed.ratio",
	"target_rate", "achieved_rate",
}

// StepLatencyKinds are the latencies measured per find-max step: every
// kind but pipeline.
var StepLatencyKinds = []string{"e2e", "service", "publish"}

// IsStepMetric reports whether a find-max SLO can name metric.
func IsStepMetric(metric string) bool {
	if kind, _, ok := strings.Cut(metric, "."); ok && contains(StepLatencyKinds, kind) {
		return true
	}
	return contains(StepMetrics, metric)
}

// Factor is a multiplier above 1, written 1.5x (or 1.5).
type Factor float64

// DecodeNode parses 1.5x, 1.5× or a bare number.
func (f *Factor) DecodeNode(d *Decoder, n *yaml.Node, field string) {
	if n.Kind != yaml.ScalarNode {
		d.Errorf(n, field, "want a factor such as 1.5x, got %s", describe(n))
		return
	}
	s := strings.TrimSpace(n.Value)
	s = strings.TrimSuffix(strings.TrimSuffix(s, "x"), "×")
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		d.Errorf(n, field, "%q is not a factor such as 1.5x or 2x", n.Value)
		return
	}
	*f = Factor(v)
}

// Fraction is a number between 0 and 1, written as a percentage (5%) or a
// number (0.05).
type Fraction float64

// DecodeNode parses 5% or 0.05.
func (f *Fraction) DecodeNode(d *Decoder, n *yaml.Node, field string) {
	if n.Kind != yaml.ScalarNode {
		d.Errorf(n, field, "want a percentage such as 5%%, got %s", describe(n))
		return
	}
	s := strings.TrimSpace(n.Value)
	div := 1.0
	if p, ok := strings.CutSuffix(s, "%"); ok {
		s, div = strings.TrimSpace(p), 100
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		d.Errorf(n, field, "%q is not a percentage such as 5%% (or a fraction such as 0.05)", n.Value)
		return
	}
	*f = Fraction(v / div)
}

// SLO is the list of conditions a find-max step must meet, in the
// thresholds grammar, restricted to metrics measured per step (latencies
// and StepMetrics). In YAML it is one expression or a list of them.
type SLO []Threshold

// DecodeNode reads one expression or a list, and checks every metric can
// be measured per step.
func (s *SLO) DecodeNode(d *Decoder, n *yaml.Node, field string) {
	items := []*yaml.Node{n}
	fields := []string{field}
	switch n.Kind {
	case yaml.ScalarNode:
	case yaml.SequenceNode:
		items, fields = nil, nil
		for i, c := range n.Content {
			items = append(items, resolve(c))
			fields = append(fields, fmt.Sprintf("%s[%d]", field, i))
		}
		if len(items) == 0 {
			d.Errorf(n, field, "needs at least one condition, e.g. \"e2e.p99 < 100ms\"")
		}
	default:
		d.Errorf(n, field, "want a condition such as \"e2e.p99 < 100ms\" or a list of them, got %s", describe(n))
		return
	}
	out := SLO{}
	for i, item := range items {
		var t Threshold
		before := len(d.problems)
		t.DecodeNode(d, item, fields[i])
		if len(d.problems) > before {
			continue
		}
		for _, m := range t.Metrics() {
			if !IsStepMetric(m) {
				d.Errorf(item, fields[i], "%s is not measured per step; an SLO can name latencies (%s followed by .pNN, .min, .mean or .max) and %s",
					m, strings.Join(StepLatencyKinds, ", "), joinList(StepMetrics))
			}
		}
		out = append(out, t)
	}
	*s = out
}

// Exprs returns the SLO's expressions as written.
func (s SLO) Exprs() []string {
	out := make([]string, len(s))
	for i, t := range s {
		out[i] = t.Expr
	}
	return out
}

// validate fills defaults and checks the phase; pos finds a field's node.
func (f *FindMax) validate(d *Decoder, sn *yaml.Node, field string) {
	pos := func(key string) (*yaml.Node, string) { return at(sn, key), join(field, "find-max."+key) }
	if f.Start <= 0 {
		node, fl := pos("start")
		d.Errorf(node, fl, "must be more than 0/s")
	}
	if f.Max <= f.Start {
		node, fl := pos("max")
		d.Errorf(node, fl, "max %s must be above start %s", f.Max, f.Start)
	}
	if Child(sn, "step") == nil {
		f.Step = DefaultFindMaxStep
	} else if !(f.Step > 1 && f.Step <= 100) {
		node, fl := pos("step")
		d.Errorf(node, fl, "must be a factor above 1x and at most 100x, e.g. 1.5x; got %vx", float64(f.Step))
	}
	if Child(sn, "hold") == nil {
		f.Hold = Duration(DefaultFindMaxHold)
	} else if f.Hold <= 0 {
		node, fl := pos("hold")
		d.Errorf(node, fl, "must be longer than 0s")
	}
	if f.Settle != nil && *f.Settle < Duration(MinSettle) {
		node, fl := pos("settle")
		d.Errorf(node, fl, "must be at least %s (the time between steps for the backlog to drain), got %s", MinSettle, *f.Settle)
	}
	if Child(sn, "precision") == nil {
		f.Precision = DefaultFindMaxPrecision
	} else if !(f.Precision >= 0.001 && f.Precision <= 0.5) {
		node, fl := pos("precision")
		d.Errorf(node, fl, "must be between 0.1%% and 50%%, got %s", strconv.FormatFloat(float64(f.Precision)*100, 'g', 4, 64)+"%")
	}
	if f.Backlog == "" {
		f.Backlog = BacklogMustDrain
	} else {
		node, fl := pos("backlog")
		d.OneOf(node, fl, f.Backlog, BacklogPolicies...)
	}
	if len(f.SLO) == 0 && f.Backlog == BacklogIgnore && Child(sn, "slo") == nil {
		node, fl := pos("slo")
		d.Errorf(node, fl, "with backlog: ignore a step needs an slo to be judged by, e.g. slo: \"e2e.p99 < 100ms\"")
	}
	if f.Start > 0 && f.Max > f.Start && f.Step > 1 && f.Step <= 100 && f.Precision >= 0.001 && f.Precision <= 0.5 {
		if n := f.MaxSteps(); n > MaxFindMaxSteps {
			node, fl := pos("step")
			d.Errorf(node, fl, "the search could take %d steps (at most %d): raise the step factor, the start rate or the precision", n, MaxFindMaxSteps)
		}
	}
	if f.Hold > 0 && f.MaxSteps() <= MaxFindMaxSteps {
		if total, ok := addDurations(f.Hold, f.SettleTime()); !ok || total > Duration(math.MaxInt64)/Duration(max(f.MaxSteps(), 1)) {
			node, fl := pos("hold")
			d.Errorf(node, fl, "the search could last longer than spate can schedule")
		}
	}
}

// SettleTime is the longest pause between steps: Settle, or by default the
// hold, at most MaxSettleDefault.
func (f *FindMax) SettleTime() Duration {
	if f.Settle != nil {
		return *f.Settle
	}
	return min(f.Hold, Duration(MaxSettleDefault))
}

// ClimbSteps is the number of rates the climb can try: Start, Start×Step,
// ... up to Max (the last one capped at Max).
func (f *FindMax) ClimbSteps() int {
	if !(f.Start > 0 && f.Max > f.Start && f.Step > 1) {
		return 1
	}
	n := 1
	for r := float64(f.Start); r < float64(f.Max) && n <= MaxFindMaxSteps; n++ {
		r = math.Min(r*float64(f.Step), float64(f.Max))
	}
	return n
}

// BisectSteps is the most bisections after the first failure: each halves
// the interval between the last good and the first bad rate, which starts
// at most Step−1 of the good rate wide, until it is within Precision.
func (f *FindMax) BisectSteps() int {
	if !(f.Precision > 0) {
		return 0
	}
	k := 0
	for w := float64(f.Step) - 1; w > float64(f.Precision) && k <= MaxFindMaxSteps; w /= 2 {
		k++
	}
	return k
}

// MaxSteps bounds the steps of the search: climbing all the way and then
// bisecting fully. A search that fails at rate r has climbed fewer steps.
func (f *FindMax) MaxSteps() int { return f.ClimbSteps() + f.BisectSteps() }

// Bound is the longest the search can last: MaxSteps × (hold + settle).
func (f *FindMax) Bound() time.Duration {
	return time.Duration(f.MaxSteps()) * (f.Hold + f.SettleTime()).D()
}

// Plan describes the search and its time bound in one line, for printing
// before a run.
func (f *FindMax) Plan() string {
	return fmt.Sprintf("from %s to %s in %s steps of %s, then bisecting to %s: at most %d steps of %s + up to %s settling, so the search ends within %s",
		f.Start, f.Max, strconv.FormatFloat(float64(f.Step), 'g', 4, 64)+"x", f.Hold,
		strconv.FormatFloat(float64(f.Precision)*100, 'g', 4, 64)+"%", f.MaxSteps(), f.Hold, f.SettleTime(), f.Bound())
}

// Search outcomes.
const (
	// SearchConverged: the last good and first bad rates are within the precision.
	SearchConverged = "converged"
	// SearchCeiling: the search's max rate passed; the system may take more.
	SearchCeiling = "ceiling"
	// SearchNeverMet: the start rate failed.
	SearchNeverMet = "never_met"
	// SearchStepLimit: MaxSteps ran without converging (a non-monotone system).
	SearchStepLimit = "step_limit"
	// SearchTimeBound: the time bound came before the search ended (a
	// machine too busy to keep the settle times).
	SearchTimeBound = "time_bound"
	// SearchInterrupted: the run was interrupted or failed.
	SearchInterrupted = "interrupted"
)

// Search decides the rates of a find-max phase, one step at a time: it
// climbs from Start by Step while steps pass, and after the first failure
// bisects between the highest good and the lowest bad rate until they are
// within Precision (bad − good ≤ precision × good). It is pure arithmetic:
// the caller runs each step and records whether it passed. A Search is not
// safe for concurrent use.
type Search struct {
	f         *FindMax
	good, bad float64 // 0: none yet
	steps     int
	outcome   string
}

// NewSearch starts a search of f.
func (f *FindMax) NewSearch() *Search { return &Search{f: f} }

// Next returns the rate of the next step, whether it is a bisection, and
// false when the search is over (see Outcome).
func (s *Search) Next() (rate float64, bisect, ok bool) {
	if s.outcome != "" {
		return 0, false, false
	}
	start, maxRate := float64(s.f.Start), float64(s.f.Max)
	switch {
	case s.good == 0 && s.bad == 0:
		rate = start
	case s.good == 0:
		s.outcome = SearchNeverMet
	case s.bad == 0 && s.good >= maxRate:
		s.outcome = SearchCeiling
	case s.bad == 0:
		rate = math.Min(s.good*float64(s.f.Step), maxRate)
	case s.bad-s.good <= float64(s.f.Precision)*s.good*(1+1e-12):
		s.outcome = SearchConverged
	default:
		rate, bisect = (s.good+s.bad)/2, true
	}
	if s.outcome == "" && s.steps >= s.f.MaxSteps() {
		s.outcome = SearchStepLimit
	}
	if s.outcome != "" {
		return 0, false, false
	}
	return rate, bisect, true
}

// Record notes the verdict of a step at rate.
func (s *Search) Record(rate float64, pass bool) {
	s.steps++
	switch {
	case pass && rate > s.good:
		s.good = rate
	case !pass && (s.bad == 0 || rate < s.bad):
		s.bad = rate
	}
}

// Stop ends the search early with outcome (SearchTimeBound, SearchInterrupted).
func (s *Search) Stop(outcome string) {
	if s.outcome == "" {
		s.outcome = outcome
	}
}

// Outcome is why the search ended ("" while it runs), the highest rate
// that passed and the lowest that failed (0 when none did).
func (s *Search) Outcome() (outcome string, good, bad float64) { return s.outcome, s.good, s.bad }

// Steps is the number of steps recorded.
func (s *Search) Steps() int { return s.steps }
