package report

import "testing"

// TestFailingThresholdDigits: a failing threshold's value is printed with
// enough digits to differ from its limit, on the failing side of it.
func TestFailingThresholdDigits(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	cases := []struct {
		t    ThresholdResult
		want string
	}{
		{ThresholdResult{Expr: "achieved_rate >= 10/s", Value: f(9.995), Limit: f(10)}, "9.99/s (limit 10.00/s)"}, // 9.995 is 9.99499... in binary
		{ThresholdResult{Expr: "achieved_rate >= 10/s", Value: f(9.4), Limit: f(10)}, "9.4/s"},
		{ThresholdResult{Expr: "achieved_rate >= 10/s", Value: f(10.02), Limit: f(10), OK: true}, "10.0/s"},
		{ThresholdResult{Expr: "e2e.p99 < 250ms", Value: f(250_400), Limit: f(250_000)}, "250.4ms (limit 250.0ms)"},
		{ThresholdResult{Expr: "e2e.p99 < 250ms", Value: f(250_000), Limit: f(250_000)}, "250ms"}, // equal: no digits help
		{ThresholdResult{Expr: "lost.ratio <= 0.1%", Value: f(0.001004), Limit: f(0.001)}, "0.1004% (limit 0.1000%)"},
		{ThresholdResult{Expr: "achieved_rate >= 0.95 * target_rate", Value: f(949.96), Limit: f(950)}, "949.96/s (limit 950.00/s)"},
		{ThresholdResult{Expr: "received >= 0.999 * sent", Value: f(998), Limit: f(998.001)}, "998.000 (limit 998.001)"}, // not 998 (limit 998.00),
	}
	for _, c := range cases {
		if got := thresholdValue(c.t); got != c.want {
			t.Errorf("%s = %g (limit %g, ok %v): shown %q, want %q", c.t.Expr, *c.t.Value, *c.t.Limit, c.t.OK, got, c.want)
		}
	}
}
