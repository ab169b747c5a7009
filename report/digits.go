package report

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spate-dev/spate/scenarios"
)

// thresholdFigures formats a threshold's measured value and its limit, each
// in its metric's unit. For a threshold that failed, it adds digits until
// the two differ, so the figures show why it failed (9.995/s is below
// 10/s; at one decimal both read 10.0/s). Rounding keeps order, so once
// they differ, the printed value is on the failing side of the printed
// limit. limit is "" when t has none.
func thresholdFigures(t ThresholdResult) (value, limit string) {
	if t.Value == nil {
		return "", ""
	}
	measured, other := thresholdMetrics(t.Expr)
	if other == "" {
		other = measured
	}
	value = formatMetricDigits(measured, *t.Value, 0)
	if t.Limit == nil {
		return value, ""
	}
	limit = formatMetricDigits(other, *t.Limit, 0)
	if t.OK || *t.Value == *t.Limit {
		return value, limit
	}
	for extra := 1; sameShown(value, limit) && extra <= 12; extra++ {
		value = formatMetricDigits(measured, *t.Value, extra)
		limit = formatMetricDigits(other, *t.Limit, extra)
	}
	return value, limit
}

// sameShown reports whether two formatted figures read as the same
// number ("998" and "998.00", "1.00ms" and "1000µs").
func sameShown(a, b string) bool {
	return a == b || shownValue(a) == shownValue(b) && !math.IsNaN(shownValue(a))
}

// shownValue reads a formatted figure back: a duration in µs, or the
// number without digit groups and unit; NaN when it is neither.
func shownValue(s string) float64 {
	if d, err := time.ParseDuration(s); err == nil {
		return float64(d) / 1e3
	}
	s = strings.NewReplacer(",", "", "%", "", "/s", "", "×", "").Replace(s)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return v
}

// formatMetricDigits is formatMetric with extra digits of precision.
func formatMetricDigits(name string, v float64, extra int) string {
	if extra == 0 {
		return formatMetric(name, v)
	}
	typ, ok := scenarios.LookupMetric(name)
	switch {
	case !ok:
		return strconv.FormatFloat(v, 'g', 6+extra, 64)
	case typ == scenarios.Latency:
		return formatMicrosDigits(v, 3+extra)
	case strings.HasSuffix(name, ".ratio"):
		return strconv.FormatFloat(v*100, 'f', 2+extra, 64) + "%"
	case slices.Contains(scenarios.RateMetrics, name):
		return formatRateDecimals(v, 1+extra) + "/s"
	case slices.Contains(scenarios.CapacityMetrics, name):
		p := math.Pow(10, float64(2+extra))
		return trimNum(math.Floor(v*p)/p) + "×"
	}
	return strconv.FormatFloat(v, 'f', extra, 64)
}

// formatMicrosDigits formats a latency in microseconds with sig
// significant digits in the unit formatMicros would choose.
func formatMicrosDigits(us float64, sig int) string {
	if us < 0 {
		return "-" + formatMicrosDigits(-us, sig)
	}
	v, unit := us, "µs"
	switch {
	case us >= 999_500:
		v, unit = us/1e6, "s"
	case us >= 999.5:
		v, unit = us/1e3, "ms"
	}
	decimals := sig - 1
	if v >= 1 {
		decimals = max(sig-1-int(math.Floor(math.Log10(v))), 0)
	}
	return strconv.FormatFloat(v, 'f', decimals, 64) + unit
}

// formatRateDecimals is formatRate with the given decimals.
func formatRateDecimals(v float64, decimals int) string {
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	whole, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return s
	}
	g := GroupInt(n)
	if n == 0 && strings.HasPrefix(whole, "-") {
		g = "-0"
	}
	return g + "." + frac
}
