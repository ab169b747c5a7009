package report

import (
	"fmt"
	"math"
	"slices"
	"strings"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/scenarios"
)

// FindMaxResult is the outcome of a find-max phase: every step's figures,
// the highest rate sustained within the SLO, the knee of the latency curve
// and, given today's peak, the headroom. It is results.json's find_max.
type FindMaxResult struct {
	Phase int    `json:"phase"` // index of the phase in the scenario's traffic
	Name  string `json:"name"`  // the phase's name, or "find-max"
	// The search as configured.
	SLO        []string `json:"slo"`
	Backlog    string   `json:"backlog"` // must-drain or ignore
	StartRate  float64  `json:"start_rate"`
	MaxRate    float64  `json:"max_rate"`
	StepFactor float64  `json:"step_factor"`
	HoldS      float64  `json:"hold_s"`
	SettleS    float64  `json:"settle_s"`
	Precision  float64  `json:"precision"`
	MaxSteps   int      `json:"max_steps"`
	// TimeBoundS is the longest the search could last (max_steps × (hold
	// + settle)), known and printed before the run.
	TimeBoundS float64 `json:"time_bound_s"`
	// StartS and EndS are when the search began and ended, from the
	// start of the traffic.
	StartS float64 `json:"start_s"`
	EndS   float64 `json:"end_s"`
	// Outcome is converged, ceiling, never_met, step_limit, time_bound or
	// interrupted; Message says it in a sentence.
	Outcome string `json:"outcome"`
	Message string `json:"message"`
	// SustainedRate is the highest step rate that passed (null: none did);
	// FailedRate the lowest that failed (null: none did).
	SustainedRate *float64 `json:"sustained_rate"`
	FailedRate    *float64 `json:"failed_rate"`
	// KneeRate is the highest step rate whose e2e p99 is within
	// KneeLimitUS: twice the p99 at the lowest rate (BaseP99US), or that
	// plus 1 ms, whichever is larger; past it latency has turned up. Null
	// when no step received anything.
	KneeRate    *float64 `json:"knee_rate"`
	BaseP99US   *int64   `json:"base_p99_us"`
	KneeLimitUS *int64   `json:"knee_limit_us"`
	// PeakRate is today's peak (spate run --peak) and Headroom is
	// SustainedRate ÷ PeakRate; both null when not given or not defined.
	PeakRate *float64      `json:"peak_rate"`
	Headroom *float64      `json:"headroom"`
	Steps    []FindMaxStep `json:"steps"`
}

// FindMaxStep is one step of a search: a rate held for hold_s, judged by
// the SLO over the messages it sent and by the backlog.
type FindMaxStep struct {
	Step   int     `json:"step"`
	Kind   string  `json:"kind"` // climb or bisect
	Rate   float64 `json:"rate"` // the target rate
	StartS float64 `json:"start_s"`
	EndS   float64 `json:"end_s"`
	// JudgedS is when the step was judged: after the backlog drained, or
	// when the settle time ran out.
	JudgedS   float64 `json:"judged_s"`
	Scheduled int64   `json:"scheduled"`
	// AchievedRate is messages received while the step ran ÷ its length.
	AchievedRate float64 `json:"achieved_rate"`
	// LatencyUS summarizes the latencies of the step's own messages
	// (intended send time inside the step), received by JudgedS.
	LatencyUS accounting.LatencySet `json:"latency_us"`
	// Backlog (acked, not yet received) at the start, middle and end of
	// the step, and whether it kept growing (see scenarios.BacklogGrew).
	BacklogStart   int64 `json:"backlog_start"`
	BacklogMid     int64 `json:"backlog_mid"`
	BacklogEnd     int64 `json:"backlog_end"`
	BacklogGrowing bool  `json:"backlog_growing"`
	// Counts of the step's messages when judged; Lost is those acked and
	// not received by then.
	Acked      int64 `json:"acked"`
	Received   int64 `json:"received"`
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates"`
	Failed     int64 `json:"failed"`
	// SLO holds each condition evaluated on the step.
	SLO []ThresholdResult `json:"slo"`
	OK  bool              `json:"ok"`
	// Why says what decided the verdict.
	Why string `json:"why"`

	hists map[string]*hdr.Histogram
	// subs is the run's subscriptions, each owed every acked message.
	subs int64
}

// Step kinds.
const (
	StepClimb  = "climb"
	StepBisect = "bisect"
)

// NewFindMaxStep makes a step's record from its window's figures.
func NewFindMaxStep(n int, kind string, rate float64, f accounting.StepFigures) FindMaxStep {
	return FindMaxStep{
		Step: n, Kind: kind, Rate: rate, LatencyUS: f.Latency,
		Acked: f.Counts.Acked, Received: f.Counts.Received, Lost: f.Counts.Missing(),
		Duplicates: f.Counts.Duplicates, Failed: f.Counts.Failed, hists: f.Histograms,
		subs: max(f.Counts.Subscriptions, 1),
	}
}

// Metric returns a step metric (scenarios.IsStepMetric): a latency of the
// step's messages, its lost, duplicates and failed counts and ratios
// (lost ÷ acked, duplicates ÷ received, failed ÷ scheduled), its target
// rate and its achieved rate. ok is false when undefined.
func (s *FindMaxStep) Metric(name string) (float64, bool, error) {
	if kind, stat, found := strings.Cut(name, "."); found && stat != "ratio" {
		h := s.hists[kind]
		if h == nil {
			if !slices.Contains(scenarios.LatencyKinds, kind) {
				return 0, false, fmt.Errorf("unknown metric %q", name)
			}
			h = accounting.NewHistogram()
		}
		return histMetric(h, name, stat)
	}
	ratio := func(n, d int64) (float64, bool, error) {
		if d == 0 {
			return 0, false, nil
		}
		return float64(n) / float64(d), true, nil
	}
	switch name {
	case "lost", "loss":
		return float64(s.Lost), true, nil
	case "duplicates":
		return float64(s.Duplicates), true, nil
	case "failed":
		return float64(s.Failed), true, nil
	case "lost.ratio", "loss.ratio":
		return ratio(s.Lost, s.Acked*max(s.subs, 1))
	case "duplicates.ratio":
		return ratio(s.Duplicates, s.Received)
	case "failed.ratio":
		return ratio(s.Failed, s.Scheduled)
	case "target_rate":
		return s.Rate, true, nil
	case "achieved_rate":
		return s.AchievedRate, true, nil
	}
	return 0, false, fmt.Errorf("%s is not measured per step", name)
}

// Judge evaluates the SLO on the step and applies the backlog policy,
// setting SLO, OK and Why.
func (s *FindMaxStep) Judge(slo []scenarios.Threshold, backlogPolicy string) {
	var ok bool
	s.SLO, ok = evaluate(slo, s.Metric)
	var why []string
	for _, t := range s.SLO {
		if !t.OK {
			why = append(why, thresholdFailure(t))
		}
	}
	if s.BacklogGrowing {
		growth := fmt.Sprintf("backlog kept growing: %s at mid-step, %s at the end", GroupInt(s.BacklogMid), GroupInt(s.BacklogEnd))
		if backlogPolicy == scenarios.BacklogMustDrain {
			ok = false
			why = append(why, growth)
		}
	}
	s.OK = ok
	switch {
	case ok && len(s.SLO) > 0:
		s.Why = "within the SLO"
	case ok:
		s.Why = "the backlog kept up"
	default:
		s.Why = strings.Join(why, "; ")
	}
	if ok {
		s.Why += fmt.Sprintf(" (backlog %s at the end)", GroupInt(s.BacklogEnd))
	}
}

// thresholdFailure says why a threshold failed: its expression and value.
func thresholdFailure(t ThresholdResult) string {
	if t.Error != "" {
		return t.Expr + ": " + t.Error
	}
	if t.Value == nil {
		return t.Expr + " failed"
	}
	value, _ := thresholdFigures(t)
	return fmt.Sprintf("%s = %s, not %s", measuredName(t.Expr), value, strings.TrimSpace(opAndLimit(t.Expr)))
}

// measuredName returns the measured side of a threshold expression as written.
func measuredName(expr string) string {
	th, err := scenarios.ParseThreshold(expr)
	if err != nil {
		return expr
	}
	if th.Left.Metric == "" {
		return th.Right.Metric
	}
	return th.Left.Metric
}

// opAndLimit returns "< 100ms" of "e2e.p99 < 100ms" (flipped when the
// metric is on the right).
func opAndLimit(expr string) string {
	th, err := scenarios.ParseThreshold(expr)
	if err != nil {
		return ""
	}
	i := strings.Index(th.Expr, th.Op)
	left, right := strings.TrimSpace(th.Expr[:i]), strings.TrimSpace(th.Expr[i+len(th.Op):])
	if th.Left.Metric == "" {
		flip := map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
		return flip[th.Op] + " " + left
	}
	return th.Op + " " + right
}

// Knee finds the knee of the latency curve among steps: see
// FindMaxResult.KneeRate. It returns false when no step has an e2e p99.
func Knee(steps []FindMaxStep) (rate float64, base, limit int64, ok bool) {
	var s []FindMaxStep
	for _, st := range steps {
		if st.LatencyUS.E2E.Count > 0 {
			s = append(s, st)
		}
	}
	if len(s) == 0 {
		return 0, 0, 0, false
	}
	slices.SortStableFunc(s, func(a, b FindMaxStep) int {
		switch {
		case a.Rate < b.Rate:
			return -1
		case a.Rate > b.Rate:
			return 1
		}
		return 0
	})
	base = s[0].LatencyUS.E2E.P99
	limit = max(2*base, base+1000)
	rate = s[0].Rate
	for _, st := range s[1:] {
		if st.LatencyUS.E2E.P99 <= limit {
			rate = st.Rate
		}
	}
	return rate, base, limit, true
}

// Finish fills the summary figures from the steps: the knee, and the
// headroom over peak (0: no peak given).
func (f *FindMaxResult) Finish(peak float64) {
	if rate, base, limit, ok := Knee(f.Steps); ok {
		f.KneeRate, f.BaseP99US, f.KneeLimitUS = &rate, &base, &limit
	}
	f.PeakRate, f.Headroom = nil, nil
	if peak > 0 {
		f.PeakRate = &peak
		if f.SustainedRate != nil {
			h := *f.SustainedRate / peak
			f.Headroom = &h
		}
	}
}

// factor formats a headroom factor, rounded down (a factor is not
// overstated): 4.16×, 12.3×.
func factor(v float64) string { return trimNum(math.Floor(v*100)/100) + "×" }

// headroomReason says why the headroom metric is undefined for r.
func (r *Results) headroomReason() string {
	switch {
	case r.FindMax == nil:
		return "undefined: headroom needs a find-max phase in the traffic (and the peak, spate run --peak RATE)"
	case r.FindMax.PeakRate == nil:
		return "undefined: give today's peak with spate run --peak RATE (e.g. --peak 12000/s) to compute headroom"
	case r.FindMax.SustainedRate == nil:
		return "undefined: the find-max search sustained no rate (" + r.FindMax.Message + ")"
	}
	return "undefined for this run"
}

// HeadroomLine is the one-line headroom statement, for summaries, release
// gates and planning documents, or "" without a find-max phase.
func (r *Results) HeadroomLine() string {
	f := r.FindMax
	if f == nil {
		return ""
	}
	var b strings.Builder
	switch {
	case f.Headroom != nil:
		fmt.Fprintf(&b, "headroom %s today's peak: sustained %s/s within %s, peak %s/s", factor(*f.Headroom),
			stepRate(*f.SustainedRate), sloText(f), stepRate(*f.PeakRate))
	case f.PeakRate != nil:
		fmt.Fprintf(&b, "headroom undefined: the search sustained no rate within %s (peak %s/s)", sloText(f), stepRate(*f.PeakRate))
	default:
		if f.SustainedRate == nil {
			fmt.Fprintf(&b, "headroom undefined: the search sustained no rate within %s", sloText(f))
		} else {
			fmt.Fprintf(&b, "headroom not computed: sustained %s/s within %s; give today's peak with --peak", stepRate(*f.SustainedRate), sloText(f))
		}
	}
	for _, t := range r.Thresholds {
		th, err := scenarios.ParseThreshold(t.Expr)
		if err != nil || !slices.Contains(th.Metrics(), "headroom") {
			continue
		}
		if t.OK {
			fmt.Fprintf(&b, "; meets %s", t.Expr)
		} else {
			fmt.Fprintf(&b, "; does NOT meet %s", t.Expr)
		}
	}
	return b.String()
}

func sloText(f *FindMaxResult) string {
	parts := append([]string{}, f.SLO...)
	if f.Backlog == scenarios.BacklogMustDrain {
		parts = append(parts, "a draining backlog")
	}
	if len(parts) == 0 {
		return "the SLO"
	}
	return strings.Join(parts, ", ")
}
