package scenarios

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// A threshold that compares things of different kinds, that cannot fail or
// cannot hold, is a mistake found at validation rather than a verdict
// that means nothing. These checks run as each threshold is parsed
// (checkArithmetic, checkKinds, checkRange) and, for what depends on the
// rest of the scenario, in checkThresholdContext.

// unit is what a metric or literal measures, for telling apart comparisons
// that mean something from ones that cannot.
type unit int

const (
	unitNumber  unit = iota // a plain literal: goes with counts, ratios, rates, factors
	unitCount               // a count of messages (a whole number)
	unitRatio               // a ratio (metric.ratio) or a percentage literal
	unitRate                // messages per second (a rate metric, or a literal such as 1000/s)
	unitLatency             // a latency or a duration literal
	unitFactor              // headroom
)

func (u unit) String() string {
	return [...]string{"a number", "a count", "a ratio", "a rate", "a latency", "a factor"}[u]
}

// metricUnit returns what a metric measures.
func metricUnit(name string) unit {
	typ, _ := LookupMetric(name)
	switch {
	case typ == Latency:
		return unitLatency
	case strings.HasSuffix(name, ".ratio"):
		return unitRatio
	case contains(RateMetrics, name):
		return unitRate
	case contains(CapacityMetrics, name):
		return unitFactor
	}
	return unitCount
}

// literalUnit returns what a literal as written measures.
func literalUnit(s string) unit {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasSuffix(s, "%"):
		return unitRatio
	case strings.Contains(s, "/"):
		return unitRate
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return unitNumber
	}
	return unitLatency
}

// checkArithmetic refuses sums, differences and parentheses: a threshold
// compares one metric, optionally times a number, with another or with a
// literal.
func checkArithmetic(expr, side string) error {
	s := strings.TrimSpace(side)
	bad := strings.ContainsAny(s, "+()")
	for i := 1; i < len(s) && !bad; i++ {
		// A minus is a sign at the start of a literal, or of an exponent (1e-3).
		if s[i] == '-' && !(i >= 2 && (s[i-1] == 'e' || s[i-1] == 'E') && s[i-2] >= '0' && s[i-2] <= '9') {
			bad = true
		}
	}
	if !bad {
		return nil
	}
	return fmt.Errorf("%q: a threshold compares one metric, optionally times a number (0.95 * target_rate), with a metric or a literal; sums, differences and parentheses are not supported: write one threshold per bound, e.g. \"e2e.p99 < 2 * e2e.p50\" and \"e2e.p99 < 250ms\"", expr)
}

// checkKinds refuses a comparison of things of different kinds: a count
// with a rate or a percentage, a rate with a ratio, and so on. Latencies
// and durations are checked by ParseThreshold.
func checkKinds(t Threshold, left, right string) error {
	kind := func(o Operand, src string) unit {
		if o.Metric != "" {
			return metricUnit(o.Metric)
		}
		return literalUnit(src)
	}
	lu, ru := kind(t.Left, left), kind(t.Right, right)
	if lu == unitLatency || ru == unitLatency || lu == ru {
		return nil
	}
	metric, mu, other, ou := t.Left.Metric, lu, strings.TrimSpace(right), ru
	if metric == "" {
		metric, mu, other, ou = t.Right.Metric, ru, strings.TrimSpace(left), lu
	}
	if ou == unitNumber {
		return nil // a plain number goes with counts, ratios, rates and factors
	}
	if mu == unitNumber || ou == unitNumber {
		return nil
	}
	hint := ""
	switch {
	case mu == unitCount && ou == unitRatio && contains(RatioMetrics, metric):
		hint = fmt.Sprintf(" (did you mean %s.ratio?)", metric)
	case mu == unitCount && ou == unitRate:
		hint = " (rates are sent_rate, acked_rate, achieved_rate and target_rate)"
	case mu == unitRate && ou == unitCount:
		hint = " (counts compare with numbers; rates with rates such as 1000/s)"
	}
	return fmt.Errorf("%q compares %s, which is %s, with %s, which is %s%s", t.Expr, metric, mu, other, ou, hint)
}

// metricRange returns the values a metric can take: lo and hi, and
// whether it is a whole number.
func metricRange(name string) (lo, hi float64, whole bool) {
	switch metricUnit(name) {
	case unitCount:
		return 0, math.Inf(1), true
	case unitRatio:
		if base := strings.TrimSuffix(name, ".ratio"); base == "duplicates" {
			return 0, math.Inf(1), false // every message may be delivered many times
		}
		return 0, 1, false // a part of the whole
	case unitLatency:
		return 0, float64(MaxLatency / time.Microsecond), false // recorded in µs, clamped
	}
	return 0, math.Inf(1), false
}

// MaxLatency is the largest latency spate records (longer ones are
// recorded as this, and counted as clamped).
const MaxLatency = time.Hour

// checkRange refuses a comparison of a metric with a literal that can never
// hold, or always holds, over the values the metric can take, and a
// metric compared with itself.
func checkRange(t Threshold) error {
	if t.Left.Metric != "" && t.Right.Metric != "" {
		if t.Left.Metric == t.Right.Metric {
			return fmt.Errorf("%q compares %s with itself; compare it with a literal or another metric", t.Expr, t.Left.Metric)
		}
		return nil
	}
	m, lit, op := t.Left, t.Right.Coef, t.Op
	if m.Metric == "" { // literal OP metric: turn it around
		m, lit = t.Right, t.Left.Coef
		op = map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}[op]
	}
	if m.Coef == 0 {
		return fmt.Errorf("%q multiplies %s by 0, which leaves a constant", t.Expr, m.Metric)
	}
	lo, hi, whole := metricRange(m.Metric)
	a, b := m.Coef*lo, m.Coef*hi
	if m.Coef < 0 {
		a, b = b, a
	}
	if math.IsNaN(a) {
		a = 0
	}
	if math.IsNaN(b) {
		b = 0
	}
	var always, never bool
	switch op {
	case "<":
		always, never = b < lit, a >= lit
	case "<=":
		always, never = b <= lit, a > lit
	case ">":
		always, never = a > lit, b <= lit
	case ">=":
		always, never = a >= lit, b < lit
	case "==":
		never = lit < a || lit > b
	case "!=":
		always = lit < a || lit > b
	}
	// A whole number equals no fraction.
	if frac := whole && m.Coef == 1 && lit != math.Trunc(lit); frac && (op == "==" || op == "!=") {
		if op == "==" {
			never = true
		} else {
			always = true
		}
	}
	why := rangeText(m.Metric, lo, hi, whole)
	switch {
	case never:
		return fmt.Errorf("%q can never hold: %s", t.Expr, why)
	case always:
		return fmt.Errorf("%q always holds, so it checks nothing: %s", t.Expr, why)
	}
	return nil
}

// rangeText says which values a metric takes, for messages.
func rangeText(metric string, lo, hi float64, whole bool) string {
	switch {
	case metricUnit(metric) == unitLatency:
		return fmt.Sprintf("%s is between 0 and %s (longer latencies are recorded as %s)", metric, MaxLatency, MaxLatency)
	case !math.IsInf(hi, 1):
		return fmt.Sprintf("%s is between 0%% and %g%%", metric, hi*100)
	case whole:
		return fmt.Sprintf("%s is a whole number, never below %g", metric, lo)
	}
	return fmt.Sprintf("%s is never below %g", metric, lo)
}

// checkThresholdContext refuses thresholds whose metric the scenario can
// never define: pipeline latencies without a pipeline, headroom without
// a find-max phase, target_rate when a max phase runs.
func checkThresholdContext(d *Decoder, root *yaml.Node, s *Scenario) {
	tn := Child(root, "thresholds")
	if tn == nil || tn.Kind != yaml.SequenceNode {
		return
	}
	_, search := s.profile.Search()
	for i, t := range s.Thresholds {
		if i >= len(tn.Content) {
			break
		}
		node, field := resolve(tn.Content[i]), fmt.Sprintf("thresholds[%d]", i)
		for _, m := range t.Metrics() {
			switch kind, _, _ := strings.Cut(m, "."); {
			case kind == "pipeline" && s.Pipeline == nil:
				d.Errorf(node, field, "%s is the latency a pipeline adds, undefined without a pipeline: block; use e2e.%s for the end-to-end latency", m, strings.TrimPrefix(m, "pipeline."))
			case m == "headroom" && !search:
				d.Errorf(node, field, "headroom is the rate a find-max phase sustained ÷ the peak given with --peak, undefined without a find-max phase; add one (see scenarios/README.md#find-max)")
			case m == "target_rate" && s.profile.HasMax():
				d.Errorf(node, field, "target_rate is undefined when the traffic has a max phase (a max phase has no target); "+
					"compare achieved_rate with a rate instead, e.g. achieved_rate >= 1000/s")
			}
		}
	}
}
