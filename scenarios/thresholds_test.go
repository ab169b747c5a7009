package scenarios_test

import (
	"strings"
	"testing"

	"github.com/spate-dev/spate/scenarios"
)

func TestParseThreshold(t *testing.T) {
	m := func(coef float64, name string) scenarios.Operand { return scenarios.Operand{Coef: coef, Metric: name} }
	lit := func(v float64) scenarios.Operand { return scenarios.Operand{Coef: v} }
	good := []struct {
		in          string
		left, right scenarios.Operand
		op          string
	}{
		{"achieved_rate >= 0.95 * target_rate", m(1, "achieved_rate"), m(0.95, "target_rate"), ">="},
		{"duplicates.ratio <= 0.1%", m(1, "duplicates.ratio"), lit(0.001), "<="},
		{"e2e.p999 < 1s", m(1, "e2e.p999"), lit(1e6), "<"},
		{"loss == 0", m(1, "loss"), lit(0), "=="},
		{"publish.p9999 <= 2ms", m(1, "publish.p9999"), lit(2000), "<="},
		{"e2e.p99 < 250ms", m(1, "e2e.p99"), lit(250000), "<"},
		{"service.max<1m", m(1, "service.max"), lit(60e6), "<"},
		{"e2e.mean < 1500us", m(1, "e2e.mean"), lit(1500), "<"},
		{"e2e.min > 0ns", m(1, "e2e.min"), lit(0), ">"},
		{"e2e.p99 < 3 * e2e.p50", m(1, "e2e.p99"), m(3, "e2e.p50"), "<"},
		{"achieved_rate >= 1k/s", m(1, "achieved_rate"), lit(1000), ">="},
		{"acked_rate > 60000/m", m(1, "acked_rate"), lit(1000), ">"},
		{"0 == reordered", lit(0), m(1, "reordered"), "=="},
		{"lost.ratio < 1e-6", m(1, "lost.ratio"), lit(1e-6), "<"},
		{"failed != 0", m(1, "failed"), lit(0), "!="},
		{"  received   >   100  ", m(1, "received"), lit(100), ">"},
		{"unconfirmed_delivered.ratio <= 5%", m(1, "unconfirmed_delivered.ratio"), lit(0.05), "<="},
		{"headroom >= 2", m(1, "headroom"), lit(2), ">="},
	}
	for _, c := range good {
		got, err := scenarios.ParseThreshold(c.in)
		if err != nil {
			t.Errorf("ParseThreshold(%q): %v", c.in, err)
			continue
		}
		if got.Left != c.left || got.Right != c.right || got.Op != c.op || got.Expr != strings.TrimSpace(c.in) {
			t.Errorf("ParseThreshold(%q) = %+v", c.in, got)
		}
	}
	bad := []struct{ in, want string }{
		{"e2e.p99", `"e2e.p99" has no comparison; write e.g. "e2e.p99 < 250ms" (operators: <, <=, >, >=, ==, !=)`},
		{"loss = 0", `"loss = 0": "=" is not a comparison; to test equality write == (operators: <, <=, >, >=, ==, !=)`},
		{"loss => 0", `"loss => 0": "=>" is not a comparison; did you mean >=? (operators: <, <=, >, >=, ==, !=)`},
		{"loss <> 0", `"loss <> 0": "<>" is not a comparison; did you mean !=? (operators: <, <=, >, >=, ==, !=)`},
		{"0 < loss < 5", `"0 < loss < 5" has more than one comparison; write one threshold per condition`},
		{"loss <", `"loss <" has nothing on the right of <; write e.g. "e2e.p99 < 250ms"`},
		{"< 5", `"< 5" has nothing on the left of <; write e.g. "e2e.p99 < 250ms"`},
		{"1 < 2", `"1 < 2" compares two constants; name a metric such as e2e.p99 or loss`},
		{"e2e.p99 < 250", `"e2e.p99 < 250" compares the latency e2e.p99 with 250, which is not a duration; give it a time unit, e.g. 250ms`},
		{"loss < 1s", `"loss < 1s" compares loss, which is not a latency, with the duration 1s; only latencies (e2e, service, publish, pipeline followed by .pNN, .min, .mean or .max) compare with durations`},
		{"e2e.p99 < 5%", `"e2e.p99 < 5%" compares the latency e2e.p99 with 5%, which is not a duration; give it a time unit, e.g. 250ms`},
		{"e2e.p99 < achieved_rate", `"e2e.p99 < achieved_rate" compares achieved_rate, which is not a latency, with the duration e2e.p99; only latencies (e2e, service, publish, pipeline followed by .pNN, .min, .mean or .max) compare with durations`},
		{"1s * e2e.p50 > e2e.p99", `the factor "1s" must be a plain number, as in 0.95 * target_rate`},
		{"loss < lots", `unknown metric "lots" (did you mean "loss"?); valid metrics are counts: sent, acked, failed, unconfirmed, unsent, received, duplicates, lost, loss, unconfirmed_delivered, reordered, redelivered, dead_lettered, foreign, malformed, aborted, aborted_reads, aborted_visible; ratios: lost.ratio, loss.ratio, duplicates.ratio, reordered.ratio, failed.ratio, unconfirmed_delivered.ratio; rates: target_rate, achieved_rate, sent_rate, acked_rate; capacity: headroom; latencies: e2e, service, publish, pipeline followed by .min, .mean, .max or .pNN (p50, p99, p999 = 99.9th, p9999 = 99.99th)`},
		{"e2e.p99x < 1s", `unknown statistic "p99x" of e2e latency (did you mean "p99"?); valid: min, mean, max, or pNN for a percentile (p50, p99, p999 = 99.9th, p9999 = 99.99th)`},
		{"e2e.p100 < 1s", `unknown statistic "p100" of e2e latency (a percentile is above 0 and below 100; for the extremes use e2e.min or e2e.max); valid: min, mean, max, or pNN for a percentile (p50, p99, p999 = 99.9th, p9999 = 99.99th)`},
		{"sent.ratio < 1", `unknown metric "sent.ratio" (did you mean "lost.ratio"?); valid metrics are counts: sent, acked, failed, unconfirmed, unsent, received, duplicates, lost, loss, unconfirmed_delivered, reordered, redelivered, dead_lettered, foreign, malformed, aborted, aborted_reads, aborted_visible; ratios: lost.ratio, loss.ratio, duplicates.ratio, reordered.ratio, failed.ratio, unconfirmed_delivered.ratio; rates: target_rate, achieved_rate, sent_rate, acked_rate; capacity: headroom; latencies: e2e, service, publish, pipeline followed by .min, .mean, .max or .pNN (p50, p99, p999 = 99.9th, p9999 = 99.99th)`},
		{"loss < 5x", `"5x" is not a metric, number, percentage (0.1%), rate (1000/s) or duration (250ms)`},
		{"loss < 5x%", `"5x%" is not a percentage`},
		{"achieved_rate > 5/sec", `rate "5/sec" has an unknown unit "/sec" (did you mean "/s"?); units: /s, /m, /h`},
	}
	for _, c := range bad {
		if got, err := scenarios.ParseThreshold(c.in); err == nil || err.Error() != c.want {
			t.Errorf("ParseThreshold(%q) = %+v, %v\nwant error %s", c.in, got, err, c.want)
		}
	}
}

func TestThresholdMetricsAndHolds(t *testing.T) {
	th, err := scenarios.ParseThreshold("achieved_rate >= 0.95 * target_rate")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(th.Metrics(), ","); got != "achieved_rate,target_rate" {
		t.Errorf("Metrics = %s", got)
	}
	holds := map[string][2]bool{ // op: holds(1, 2), holds(2, 2)
		"<": {true, false}, "<=": {true, true}, ">": {false, false},
		">=": {false, true}, "==": {false, true}, "!=": {true, false},
	}
	for op, want := range holds {
		th := scenarios.Threshold{Op: op}
		if th.Holds(1, 2) != want[0] || th.Holds(2, 2) != want[1] {
			t.Errorf("%s: Holds(1, 2) = %v, Holds(2, 2) = %v", op, th.Holds(1, 2), th.Holds(2, 2))
		}
	}
}

func TestPercentile(t *testing.T) {
	good := map[string]float64{
		"p50": 50, "p90": 90, "p99": 99, "p999": 99.9, "p9999": 99.99, "p99999": 99.999,
		"p5": 5, "p1": 1, "p75": 75, "p995": 99.5, "p05": 5, "p01": 1, "p1005": 10.05,
	}
	for stat, want := range good {
		if got, ok := scenarios.Percentile(stat); !ok || got != want {
			t.Errorf("Percentile(%q) = %v, %v; want %v", stat, got, ok, want)
		}
	}
	for _, stat := range []string{"p0", "p00", "p100", "p1000", "p", "50", "p-1", "p5.5", "max", "P99", "p99 ", "p1x"} {
		if got, ok := scenarios.Percentile(stat); ok {
			t.Errorf("Percentile(%q) = %v, want not a percentile", stat, got)
		}
	}
}

func TestLookupMetric(t *testing.T) {
	cases := []struct {
		name string
		typ  scenarios.MetricType
		ok   bool
	}{
		{"e2e.p99", scenarios.Latency, true},
		{"service.mean", scenarios.Latency, true},
		{"publish.p9999", scenarios.Latency, true},
		{"e2e.p100", scenarios.Latency, false},
		{"e2e.avg", scenarios.Latency, false},
		{"loss", scenarios.Number, true},
		{"loss.ratio", scenarios.Number, true},
		{"sent.ratio", scenarios.Number, false},
		{"target_rate", scenarios.Number, true},
		{"headroom", scenarios.Number, true},
		{"headroom.ratio", scenarios.Number, false},
		{"throughput", scenarios.Number, false},
	}
	for _, c := range cases {
		typ, ok := scenarios.LookupMetric(c.name)
		if ok != c.ok || (ok && typ != c.typ) {
			t.Errorf("LookupMetric(%q) = %v, %v; want %v, %v", c.name, typ, ok, c.typ, c.ok)
		}
	}
}
