package scenarios

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Threshold is one pass/fail condition, written as `LEFT OP RIGHT`, where each
// side is a metric, a literal, or a literal times a metric:
//
//	e2e.p99 < 250ms
//	loss == 0
//	duplicates.ratio <= 0.1%
//	achieved_rate >= 0.95 * target_rate
type Threshold struct {
	Expr        string
	Left, Right Operand
	Op          string // <, <=, >, >=, ==, !=
}

// Operand is Coef × Metric, or the literal Coef when Metric is empty.
// Latency metrics and duration literals are in microseconds.
type Operand struct {
	Coef   float64
	Metric string
}

// MetricType says what a metric measures, so that a latency is never compared
// with a bare number by mistake.
type MetricType int

const (
	Number  MetricType = iota // counts, ratios, rates (per second)
	Latency                   // microseconds; literals need a time unit
)

// LatencyKinds are the latencies spate measures: e2e, service and publish
// in every run, and pipeline (output receive time − input confirmation
// time) in a pipeline run; pipeline is undefined without a pipeline.
var LatencyKinds = []string{"e2e", "service", "publish", "pipeline"}

// LatencyStats are the statistics of a latency kind a threshold can name,
// besides any percentile pNN (p50, p99, p999 = 99.9th, p9999 = 99.99th).
var LatencyStats = []string{"min", "mean", "max"}

// CountMetrics are the counters a threshold can name; see the results schema.
// "loss" is another name for "lost". aborted counts messages of aborted
// transactions; aborted_reads those delivered to consumers that read only
// committed data (a violation), aborted_visible those delivered to
// read_uncommitted consumers (expected).
var CountMetrics = []string{
	"sent", "acked", "failed", "unconfirmed", "unsent", "received", "duplicates",
	"lost", "loss", "unconfirmed_delivered", "reordered", "redelivered", "dead_lettered", "foreign", "malformed",
	"aborted", "aborted_reads", "aborted_visible",
}

// RatioMetrics can be suffixed with .ratio; report.Results.Metric and
// scenarios/README.md give their denominators.
var RatioMetrics = []string{"lost", "loss", "duplicates", "reordered", "failed", "unconfirmed_delivered"}

// RateMetrics are per-second rates over the traffic duration.
var RateMetrics = []string{"target_rate", "achieved_rate", "sent_rate", "acked_rate"}

// CapacityMetrics come from a find-max phase: headroom is the highest rate
// the search sustained ÷ the peak given with spate run --peak. It is
// undefined (a threshold on it fails, saying why) without a find-max
// phase, without --peak, or when the search sustained no rate.
var CapacityMetrics = []string{"headroom"}

var percentileRE = regexp.MustCompile(`^p([0-9]{1,2})([0-9]*)$`)

// Percentile returns the percentile (0-100, exclusive) a stat like p50 or
// p999 names: the first two digits are the whole part and any further digits
// the fraction, so p5 = 5, p50 = 50, p999 = 99.9 and p9999 = 99.99. p0 and
// p100 (p1000, ...) are not percentiles; the statistics min and max are.
func Percentile(stat string) (float64, bool) {
	m := percentileRE.FindStringSubmatch(stat)
	if m == nil {
		return 0, false
	}
	if m[1] == "10" && m[2] != "" && strings.Trim(m[2], "0") == "" {
		return 0, false // p100 means the 100th percentile, not the 10th
	}
	v, err := strconv.ParseFloat(m[1]+"."+m[2]+"0", 64)
	if err != nil || v <= 0 || v >= 100 {
		return 0, false
	}
	return v, true
}

// LookupMetric reports whether name is a metric and of which type.
func LookupMetric(name string) (MetricType, bool) {
	if kind, stat, ok := strings.Cut(name, "."); ok && contains(LatencyKinds, kind) {
		if contains(LatencyStats, stat) {
			return Latency, true
		}
		_, ok := Percentile(stat)
		return Latency, ok
	}
	if base, ok := strings.CutSuffix(name, ".ratio"); ok {
		return Number, contains(RatioMetrics, base)
	}
	return Number, contains(CountMetrics, name) || contains(RateMetrics, name) || contains(CapacityMetrics, name)
}

// metricHelp lists the metrics in groups, for messages.
func metricHelp() string {
	return fmt.Sprintf("counts: %s; ratios: %s; rates: %s; capacity: %s; latencies: %s followed by .%s or .pNN (p50, p99, p999 = 99.9th, p9999 = 99.99th)",
		joinList(CountMetrics), joinList(suffixed(RatioMetrics, ".ratio")), joinList(RateMetrics), joinList(CapacityMetrics),
		strings.Join(LatencyKinds, ", "), strings.Join(LatencyStats, ", ."))
}

func suffixed(list []string, suffix string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s + suffix
	}
	return out
}

func allMetricNames() []string {
	var out []string
	for _, k := range LatencyKinds {
		out = append(out, k+".p50", k+".p99", k+".p999", k+".max")
	}
	out = append(out, CountMetrics...)
	for _, r := range RatioMetrics {
		out = append(out, r+".ratio")
	}
	out = append(out, RateMetrics...)
	out = append(out, CapacityMetrics...)
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

var ops = []string{"<=", ">=", "==", "!=", "<", ">"}

// opsHelp lists the comparison operators, for messages.
const opsHelp = "operators: <, <=, >, >=, ==, !="

// ParseThreshold parses one threshold expression.
func ParseThreshold(expr string) (Threshold, error) {
	t := Threshold{Expr: strings.TrimSpace(expr)}
	i := strings.IndexAny(t.Expr, "<>=!")
	if i < 0 {
		return t, fmt.Errorf("%q has no comparison; write e.g. \"e2e.p99 < 250ms\" (%s)", t.Expr, opsHelp)
	}
	run := t.Expr[i:]
	if j := strings.IndexFunc(run, func(r rune) bool { return !strings.ContainsRune("<>=!", r) }); j >= 0 {
		run = run[:j]
	}
	if !contains(ops, run) {
		hint := ""
		switch run {
		case "=":
			hint = "; to test equality write =="
		case "=<":
			hint = "; did you mean <=?"
		case "=>":
			hint = "; did you mean >=?"
		case "<>":
			hint = "; did you mean !=?"
		}
		return t, fmt.Errorf("%q: %q is not a comparison%s (%s)", t.Expr, run, hint, opsHelp)
	}
	t.Op = run
	left, right := t.Expr[:i], t.Expr[i+len(t.Op):]
	if strings.ContainsAny(right, "<>=!") {
		return t, fmt.Errorf("%q has more than one comparison; write one threshold per condition", t.Expr)
	}
	for side, v := range map[string]string{"left": left, "right": right} {
		if strings.TrimSpace(v) == "" {
			return t, fmt.Errorf("%q has nothing on the %s of %s; write e.g. \"e2e.p99 < 250ms\"", t.Expr, side, t.Op)
		}
	}
	for _, v := range []string{left, right} {
		if err := checkArithmetic(t.Expr, v); err != nil {
			return t, err
		}
	}
	var lt, rt MetricType
	var err error
	if t.Left, lt, err = parseOperand(left); err != nil {
		return t, err
	}
	if t.Right, rt, err = parseOperand(right); err != nil {
		return t, err
	}
	if t.Left.Metric == "" && t.Right.Metric == "" {
		return t, fmt.Errorf("%q compares two constants; name a metric such as e2e.p99 or loss", t.Expr)
	}
	if lt != rt {
		lat, num, numOp := strings.TrimSpace(left), strings.TrimSpace(right), t.Right
		if rt == Latency {
			lat, num, numOp = strings.TrimSpace(right), strings.TrimSpace(left), t.Left
		}
		if numOp.Metric == "" {
			example := "250ms"
			if _, err := strconv.ParseFloat(num, 64); err == nil {
				example = num + "ms"
			}
			return t, fmt.Errorf("%q compares the latency %s with %s, which is not a duration; give it a time unit, e.g. %s",
				t.Expr, lat, num, example)
		}
		return t, fmt.Errorf("%q compares %s, which is not a latency, with the duration %s; only latencies (%s followed by .pNN, .min, .mean or .max) compare with durations",
			t.Expr, num, lat, strings.Join(LatencyKinds, ", "))
	}
	if err := checkKinds(t, left, right); err != nil {
		return t, err
	}
	if err := checkRange(t); err != nil {
		return t, err
	}
	return t, nil
}

// parseOperand parses `literal`, `metric` or `literal * metric`.
func parseOperand(s string) (Operand, MetricType, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Operand{}, 0, fmt.Errorf("a side of the comparison is empty")
	}
	coef, name, scaled := strings.Cut(s, "*")
	if !scaled {
		if looksLikeMetric(s) {
			return metricOperand(1, s)
		}
		v, typ, err := parseLiteral(s)
		return Operand{Coef: v}, typ, err
	}
	c, typ, err := parseLiteral(strings.TrimSpace(coef))
	if err != nil {
		return Operand{}, 0, err
	}
	if typ != Number {
		return Operand{}, 0, fmt.Errorf("the factor %q must be a plain number, as in 0.95 * target_rate", strings.TrimSpace(coef))
	}
	return metricOperand(c, strings.TrimSpace(name))
}

func looksLikeMetric(s string) bool {
	return s != "" && (s[0] >= 'a' && s[0] <= 'z' || s[0] == '_')
}

func metricOperand(coef float64, name string) (Operand, MetricType, error) {
	typ, ok := LookupMetric(name)
	if ok {
		return Operand{Coef: coef, Metric: name}, typ, nil
	}
	if kind, stat, found := strings.Cut(name, "."); found && contains(LatencyKinds, kind) {
		hint := suggest(stat, append([]string{"p50", "p90", "p95", "p99", "p999", "p9999"}, LatencyStats...))
		if percentileRE.MatchString(stat) {
			hint = fmt.Sprintf(" (a percentile is above 0 and below 100; for the extremes use %s.min or %s.max)", kind, kind)
		}
		return Operand{}, 0, fmt.Errorf("unknown statistic %q of %s latency%s; valid: %s, or pNN for a percentile (p50, p99, p999 = 99.9th, p9999 = 99.99th)",
			stat, kind, hint, strings.Join(LatencyStats, ", "))
	}
	return Operand{}, 0, fmt.Errorf("unknown metric %q%s; valid metrics are %s", name, suggest(name, allMetricNames()), metricHelp())
}

// parseLiteral parses a number, a percentage, a rate or a duration. Durations
// become microseconds.
func parseLiteral(s string) (float64, MetricType, error) {
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		return v, Number, nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%q is not a percentage", s)
		}
		return v / 100, Number, nil
	}
	if strings.Contains(s, "/") {
		v, err := ParseRate(s)
		return v, Number, err
	}
	d, err := ParseDuration(s)
	if err != nil {
		return 0, 0, fmt.Errorf("%q is not a metric, number, percentage (0.1%%), rate (1000/s) or duration (250ms)", s)
	}
	return float64(d.Nanoseconds()) / 1e3, Latency, nil
}

// DecodeNode parses a threshold string.
func (t *Threshold) DecodeNode(d *Decoder, n *yaml.Node, field string) {
	if n.Kind != yaml.ScalarNode {
		d.Errorf(n, field, "want an expression such as \"e2e.p99 < 250ms\", got %s", describe(n))
		return
	}
	v, err := ParseThreshold(n.Value)
	if err != nil {
		d.Errorf(n, field, "%v", err)
		return
	}
	*t = v
}

// Metrics returns the metrics the threshold names.
func (t Threshold) Metrics() []string {
	var out []string
	for _, o := range []Operand{t.Left, t.Right} {
		if o.Metric != "" {
			out = append(out, o.Metric)
		}
	}
	return out
}

// Holds applies the comparison to evaluated sides.
func (t Threshold) Holds(left, right float64) bool {
	switch t.Op {
	case "<":
		return left < right
	case "<=":
		return left <= right
	case ">":
		return left > right
	case ">=":
		return left >= right
	case "==":
		return left == right
	case "!=":
		return left != right
	}
	return false
}
