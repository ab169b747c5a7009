package scenarios_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/spate-dev/spate/scenarios"
)

// memOptions is what the fake memory driver's options block decodes into.
type memOptions struct {
	Streams int     `yaml:"streams"`
	Drop    float64 `yaml:"drop"`
}

// crashParams are the fake consumer-crash action's own fields.
type crashParams struct {
	Consumer int `yaml:"consumer"`
}

// newLoader returns a Loader with a fake "memory" driver, whose options are
// strict (streams, drop), and fake chaos actions.
func newLoader() *scenarios.Loader {
	l := &scenarios.Loader{}
	l.Driver("memory", func(d *scenarios.Decoder, n *yaml.Node, field string) any {
		o := memOptions{Streams: 4}
		if d.Decode(n, field, &o) && (o.Drop < 0 || o.Drop > 1) {
			d.Errorf(scenarios.Child(n, "drop"), field+".drop", "must be between 0 and 1, got %g", o.Drop)
		}
		return o
	})
	l.Action("consumer-crash", func(d *scenarios.Decoder, n *yaml.Node, field string, a *scenarios.Action, _ *scenarios.Scenario) any {
		var p crashParams
		d.Decode(n, field, &p)
		return p
	}, scenarios.OnConsumers)
	l.Action("broker-restart", func(d *scenarios.Decoder, n *yaml.Node, field string, a *scenarios.Action, _ *scenarios.Scenario) any {
		var p struct{}
		d.Decode(n, field, &p)
		return p
	}, scenarios.OnSystem)
	return l
}

// problems parses src and returns each problem's text, failing the test if
// the error is not Problems.
func problems(t *testing.T, l *scenarios.Loader, src string) []string {
	t.Helper()
	_, err := l.Parse("s.yaml", []byte(src))
	if err == nil {
		return nil
	}
	var ps scenarios.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error is %T, not Problems: %v", err, err)
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Error()
	}
	return out
}

func TestBadScenarios(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "unknown top-level field",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s, for: 10s}
consumer: 2
`,
			want: []string{
				"s.yaml:4:1: consumer: unknown field (did you mean \"consumers\"?); valid fields: name, description, driver, pipeline, producers, consumers, subscriptions, message, traffic, chaos, drain, thresholds, report, seed",
			},
		},
		{
			name: "misspelt required field",
			src: `driver: memory
trafic:
  - constant: {rate: 100/s, for: 10s}
`,
			want: []string{
				"s.yaml:2:1: trafic: unknown field (did you mean \"traffic\"?); valid fields: name, description, driver, pipeline, producers, consumers, subscriptions, message, traffic, chaos, drain, thresholds, report, seed",
			},
		},
		{
			name: "more subscriptions than consumers, on a driver without fan-out",
			src: `driver: memory
consumers: 2
subscriptions: 3
traffic:
  - constant: {rate: 100/s, for: 10s}
`,
			want: []string{
				"s.yaml:3:16: subscriptions: 3 subscriptions need at least as many consumers, got consumers: 2 (fan-out, every consumer alone, is subscriptions: 2)",
				"s.yaml:3:16: subscriptions: the memory driver (driver), as configured, cannot give each of several subscriptions every message (see the driver's documentation of subscriptions); use subscriptions: 1 (competing consumers)",
			},
		},
		{
			name: "zero subscriptions",
			src: `driver: memory
subscriptions: 0
traffic:
  - constant: {rate: 100/s, for: 10s}
`,
			want: []string{
				"s.yaml:2:16: subscriptions: must be at least 1, got 0",
			},
		},
		{
			name: "list where a mapping is expected",
			src: `driver: memory
message:
  - size: 1KiB
traffic:
  - constant: {rate: 100/s, for: 10s}
`,
			want: []string{
				"s.yaml:3:3: message: want a mapping, got a list",
			},
		},
		{
			name: "string where a whole number is expected",
			src: `driver: memory
producers: two
traffic:
  - constant: {rate: 100/s, for: 10s}
`,
			want: []string{
				"s.yaml:2:12: producers: want a whole number, got \"two\"",
			},
		},
		{
			name: "zero producers",
			src: `driver: memory
producers: 0
traffic:
  - constant: {rate: 100/s, for: 10s}
`,
			want: []string{
				"s.yaml:2:12: producers: must be at least 1, got 0",
			},
		},
		{
			name: "negative rate",
			src: `driver: memory
traffic:
  - constant: {rate: -100/s, for: 10s}
`,
			want: []string{
				"s.yaml:3:22: traffic[0].constant.rate: rate \"-100/s\" must not be negative",
			},
		},
		{
			name: "zero rate in constant",
			src: `driver: memory
traffic:
  - constant: {rate: 0/s, for: 10s}
`,
			want: []string{
				"s.yaml:3:22: traffic[0].constant.rate: must be more than 0/s (for silence use a pause phase)",
			},
		},
		{
			name: "rate without unit",
			src: `driver: memory
traffic:
  - constant: {rate: 1000, for: 10s}
`,
			want: []string{
				"s.yaml:3:22: traffic[0].constant.rate: rate \"1000\" needs a unit, e.g. 1000/s (units: /s, /m, /h)",
			},
		},
		{
			name: "rate with unknown unit",
			src: `driver: memory
traffic:
  - constant: {rate: 1000/sec, for: 10s}
`,
			want: []string{
				"s.yaml:3:22: traffic[0].constant.rate: rate \"1000/sec\" has an unknown unit \"/sec\" (did you mean \"/s\"?); units: /s, /m, /h",
			},
		},
		{
			name: "rate that is not a number",
			src: `driver: memory
traffic:
  - constant: {rate: lots/s, for: 10s}
`,
			want: []string{
				"s.yaml:3:22: traffic[0].constant.rate: rate \"lots/s\" is not a number per unit, e.g. 1000/s, 2.5k/s or 60/m",
			},
		},
		{
			name: "duration that does not parse",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s, for: ten seconds}
`,
			want: []string{
				"s.yaml:3:34: traffic[0].constant.for: \"ten seconds\" is not a duration such as 250ms, 30s or 1m30s (units: ns, us (or µs), ms, s, m, h)",
			},
		},
		{
			name: "duration without unit",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s, for: 10}
`,
			want: []string{
				"s.yaml:3:34: traffic[0].constant.for: duration \"10\" needs a unit, e.g. 10s (units: ns, us (or µs), ms, s, m, h)",
			},
		},
		{
			name: "duration in days",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s, for: 2d}
`,
			want: []string{
				"s.yaml:3:34: traffic[0].constant.for: duration \"2d\" has an unknown unit \"d\" (days are not a unit; write hours, e.g. 72h); units: ns, us (or µs), ms, s, m, h",
			},
		},
		{
			name: "unknown driver kind",
			src: `driver: memroy
traffic:
  - constant: {rate: 100/s, for: 10s}
`,
			want: []string{
				"s.yaml:1:9: driver: unknown driver \"memroy\" (did you mean \"memory\"?); valid: memory",
			},
		},
		{
			name: "empty driver kind",
			src: `driver: ""
traffic:
  - constant: {rate: 100/s, for: 10s}
`,
			want: []string{
				"s.yaml:1:9: driver: needs a driver kind, e.g. driver: memory",
			},
		},
		{
			name: "two drivers",
			src: `driver:
  memory: {}
  kafka: {brokers: embedded}
traffic:
  - constant: {rate: 100/s, for: 10s}
`,
			want: []string{
				"s.yaml:3:3: driver: a scenario tests one driver, found 2: memory, kafka; keep one",
			},
		},
		{
			name: "unknown driver option",
			src: `driver:
  memory: {streams: 4, dorp: 0.1}
traffic:
  - constant: {rate: 100/s, for: 10s}
`,
			want: []string{
				"s.yaml:2:24: driver.memory.dorp: unknown field (did you mean \"drop\"?); valid fields: streams, drop",
			},
		},
		{
			name: "driver option out of range",
			src: `driver:
  memory: {drop: 2}
traffic:
  - constant: {rate: 100/s, for: 10s}
`,
			want: []string{
				"s.yaml:2:18: driver.memory.drop: must be between 0 and 1, got 2",
			},
		},
		{
			name: "phase with two shapes",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s, for: 10s}
    ramp: {from: 100/s, to: 200/s, for: 10s}
`,
			want: []string{
				"s.yaml:4:11: traffic[0]: a phase has exactly one shape, found 2: constant, ramp; put each in its own list entry",
			},
		},
		{
			name: "phase with no shape",
			src: `driver: memory
traffic:
  - name: warm-up
`,
			want: []string{
				"s.yaml:3:5: traffic[0]: a phase needs one shape: constant, ramp, step, spike, max, pause, find-max",
			},
		},
		{
			name: "phase with unknown shape",
			src: `driver: memory
traffic:
  - constnat: {rate: 100/s, for: 10s}
`,
			want: []string{
				"s.yaml:3:5: traffic[0].constnat: unknown field (did you mean \"constant\"?); valid fields: name, constant, ramp, step, spike, max, pause, find-max",
			},
		},
		{
			name: "missing phase field",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s}
`,
			want: []string{
				"s.yaml:3:15: traffic[0].constant.for: required field is missing",
			},
		},
		{
			name: "spike with peak below base",
			src: `driver: memory
traffic:
  - spike: {base: 1000/s, peak: 500/s, for: 10s, hold: 2s}
`,
			want: []string{
				"s.yaml:3:33: traffic[0].spike.peak: peak 500/s must be above base 1000/s",
			},
		},
		{
			name: "spike burst longer than the phase",
			src: `driver: memory
traffic:
  - spike: {base: 1000/s, peak: 5000/s, for: 10s, rise: 2s, hold: 8s}
`,
			want: []string{
				"s.yaml:3:67: traffic[0].spike.hold: the burst (rise 2s + hold 8s + fall 2s) is longer than the phase (for: 10s)",
			},
		},
		{
			name: "spike burst starting too late",
			src: `driver: memory
traffic:
  - spike: {base: 1000/s, peak: 5000/s, for: 10s, hold: 2s, at: 9s}
`,
			want: []string{
				"s.yaml:3:65: traffic[0].spike.at: the burst starting at 9s lasts 2s and ends after the phase (for: 10s); start it at 8s or earlier",
			},
		},
		{
			name: "step with one step",
			src: `driver: memory
traffic:
  - step: {from: 100/s, to: 1000/s, steps: 1, each: 5s}
`,
			want: []string{
				"s.yaml:3:44: traffic[0].step.steps: must be at least 2, got 1 (for one rate use a constant phase)",
			},
		},
		{
			name: "step with too many steps",
			src: `driver: memory
traffic:
  - step: {from: 100/s, to: 1000/s, steps: 1000000000, each: 1ms}
`,
			want: []string{
				"s.yaml:3:44: traffic[0].step.steps: must be at most 10000, got 1000000000 (for a smooth change use a ramp phase)",
			},
		},
		{
			name: "ramp from zero to zero",
			src: `driver: memory
traffic:
  - ramp: {from: 0/s, to: 0/s, for: 10s}
`,
			want: []string{
				"s.yaml:3:27: traffic[0].ramp.to: a ramp from 0/s to 0/s sends nothing; use a pause phase",
			},
		},
		{
			name: "max with zero in-flight",
			src: `driver: memory
traffic:
  - max: {for: 10s, in-flight: 0}
`,
			want: []string{
				"s.yaml:3:32: traffic[0].max.in-flight: must be at least 1, got 0",
			},
		},
		{
			name: "empty traffic",
			src: `driver: memory
traffic: []
`,
			want: []string{
				"s.yaml:2:10: traffic: needs at least one phase (constant, ramp, step, spike, max, pause, find-max)",
			},
		},
		{
			name: "null traffic",
			src: `driver: memory
traffic:
`,
			want: []string{
				"s.yaml:2:9: traffic: needs a value",
			},
		},
		{
			name: "message smaller than the stamp",
			src: `driver: memory
message:
  size: 16B
traffic:
  - constant: {rate: 100/s, for: 10s}
`,
			want: []string{
				"s.yaml:3:9: message.size: 16B is smaller than the 48-byte stamp every message carries; use at least 48B",
			},
		},
		{
			name: "size without a number",
			src: `driver: memory
message:
  size: big
traffic:
  - constant: {rate: 100/s, for: 10s}
`,
			want: []string{
				"s.yaml:3:9: message.size: size \"big\" is not a number of bytes with an optional unit (units: B, KB, KiB, MB, MiB, GB, GiB)",
			},
		},
		{
			name: "uniform size range upside down",
			src: `driver: memory
message:
  size: {uniform: {min: 4KiB, max: 1KiB}}
traffic:
  - constant: {rate: 100/s, for: 10s}
`,
			want: []string{
				"s.yaml:3:36: message.size.uniform.max: max 1024B is below min 4096B",
			},
		},
		{
			name: "unknown key strategy",
			src: `driver: memory
message:
  keys: {strategy: hash, count: 10}
traffic:
  - constant: {rate: 100/s, for: 10s}
`,
			want: []string{
				"s.yaml:3:20: message.keys.strategy: unknown value \"hash\"; valid: none, round-robin, random",
			},
		},
		{
			name: "key count without strategy",
			src: `driver: memory
message:
  keys: {count: 10}
traffic:
  - constant: {rate: 100/s, for: 10s}
`,
			want: []string{
				"s.yaml:3:17: message.keys.count: count needs strategy round-robin or random",
			},
		},
		{
			name: "threshold without operator",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s, for: 10s}
thresholds:
  - e2e.p99 250ms
`,
			want: []string{
				"s.yaml:5:5: thresholds[0]: \"e2e.p99 250ms\" has no comparison; write e.g. \"e2e.p99 < 250ms\" (operators: <, <=, >, >=, ==, !=)",
			},
		},
		{
			name: "threshold with single equals",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s, for: 10s}
thresholds:
  - loss = 0
`,
			want: []string{
				"s.yaml:5:5: thresholds[0]: \"loss = 0\": \"=\" is not a comparison; to test equality write == (operators: <, <=, >, >=, ==, !=)",
			},
		},
		{
			name: "threshold with unknown metric",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s, for: 10s}
thresholds:
  - losses == 0
`,
			want: []string{
				"s.yaml:5:5: thresholds[0]: unknown metric \"losses\" (did you mean \"loss\"?); valid metrics are counts: sent, acked, failed, unconfirmed, unsent, received, duplicates, lost, loss, unconfirmed_delivered, reordered, redelivered, dead_lettered, foreign, malformed, aborted, aborted_reads, aborted_visible; ratios: lost.ratio, loss.ratio, duplicates.ratio, reordered.ratio, failed.ratio, unconfirmed_delivered.ratio; rates: target_rate, achieved_rate, sent_rate, acked_rate; capacity: headroom; latencies: e2e, service, publish, pipeline followed by .min, .mean, .max or .pNN (p50, p99, p999 = 99.9th, p9999 = 99.99th)",
			},
		},
		{
			name: "threshold with unknown latency statistic",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s, for: 10s}
thresholds:
  - e2e.p100 < 1s
`,
			want: []string{
				"s.yaml:5:5: thresholds[0]: unknown statistic \"p100\" of e2e latency (a percentile is above 0 and below 100; for the extremes use e2e.min or e2e.max); valid: min, mean, max, or pNN for a percentile (p50, p99, p999 = 99.9th, p9999 = 99.99th)",
			},
		},
		{
			name: "latency threshold compared with a bare number",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s, for: 10s}
thresholds:
  - e2e.p99 < 250
`,
			want: []string{
				"s.yaml:5:5: thresholds[0]: \"e2e.p99 < 250\" compares the latency e2e.p99 with 250, which is not a duration; give it a time unit, e.g. 250ms",
			},
		},
		{
			name: "count threshold compared with a duration",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s, for: 10s}
thresholds:
  - loss < 1s
`,
			want: []string{
				"s.yaml:5:5: thresholds[0]: \"loss < 1s\" compares loss, which is not a latency, with the duration 1s; only latencies (e2e, service, publish, pipeline followed by .pNN, .min, .mean or .max) compare with durations",
			},
		},
		{
			name: "target_rate threshold with a max phase",
			src: `driver: memory
traffic:
  - max: {for: 10s}
thresholds:
  - achieved_rate >= 0.95 * target_rate
`,
			want: []string{
				"s.yaml:5:5: thresholds[0]: target_rate is undefined when the traffic has a max phase (a max phase has no target); compare achieved_rate with a rate instead, e.g. achieved_rate >= 1000/s",
			},
		},
		{
			name: "unknown chaos action",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s, for: 10s}
chaos:
  - {action: consumer-crsh, at: 2s}
`,
			want: []string{
				"s.yaml:5:14: chaos[0].action: unknown action \"consumer-crsh\" (did you mean \"consumer-crash\"?); valid: broker-restart, consumer-crash",
			},
		},
		{
			name: "unknown chaos action field",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s, for: 10s}
chaos:
  - {action: consumer-crash, at: 2s, consumers: 1}
`,
			want: []string{
				"s.yaml:5:38: chaos[0].consumers: unknown field (did you mean \"consumer\"?); valid fields: consumer",
			},
		},
		{
			name: "chaos after traffic end",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s, for: 10s}
chaos:
  - {action: broker-restart, at: 10s}
`,
			want: []string{
				"s.yaml:5:34: chaos[0].at: starts at 10s, but the traffic ends at 10s; chaos must start while traffic runs",
			},
		},
		{
			name: "chaos every not longer than for",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s, for: 60s}
chaos:
  - {action: broker-restart, at: 5s, for: 10s, every: 10s}
`,
			want: []string{
				"s.yaml:5:55: chaos[0].every: repeats every 10s but each fault lasts 10s; every must be longer than for",
			},
		},
		{
			name: "chaos without at",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s, for: 60s}
chaos:
  - action: broker-restart
`,
			want: []string{
				"s.yaml:5:5: chaos[0].at: required field is missing",
			},
		},
		{
			name: "unknown report format",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s, for: 10s}
report:
  formats: [text, jsno]
`,
			want: []string{
				"s.yaml:5:19: report.formats[1]: unknown value \"jsno\" (did you mean \"json\"?); valid: text, json, hgrm, hlog, html, junit",
			},
		},
		{
			name: "report interval too short",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s, for: 10s}
report:
  interval: 1ms
`,
			want: []string{
				"s.yaml:5:13: report.interval: must be at least 10ms, got 1ms",
			},
		},
		{
			name: "duplicate key",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s, for: 10s}
drain: 5s
drain: 10s
`,
			want: []string{
				"s.yaml:5:1: drain: given twice (first at line 4)",
			},
		},
		{
			name: "duplicate key in a phase",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s, for: 10s, rate: 200/s}
`,
			want: []string{
				"s.yaml:3:39: traffic[0].constant.rate: given twice (first at line 3)",
			},
		},
		{
			name: "YAML syntax error",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s, for: 10s
`,
			want: []string{
				"s.yaml:3:1: YAML syntax: did not find expected ',' or '}' (a {...} or [...] that starts here is not closed)",
			},
		},
		{
			name: "bad indentation",
			src: `driver: memory
traffic:
  - constant:
      rate: 100/s
     for: 10s
`,
			want: []string{
				"s.yaml:3:1: YAML syntax: did not find expected key (check the indentation of the lines after this one)",
			},
		},
		{
			name: "tab indentation",
			src: `driver: memory
traffic:
	- constant: {rate: 100/s, for: 10s}
`,
			want: []string{
				"s.yaml:3:1: YAML syntax: found character that cannot start any token (YAML is indented with spaces, not tabs)",
			},
		},
		{
			name: "empty file",
			src: `
`,
			want: []string{
				"s.yaml: the file is empty",
			},
		},
		{
			name: "only comments",
			src: `# nothing here yet
`,
			want: []string{
				"s.yaml: the file is empty",
			},
		},
		{
			name: "two documents",
			src: `driver: memory
traffic:
  - constant: {rate: 100/s, for: 10s}
---
driver: memory
`,
			want: []string{
				"s.yaml:4:1: a scenario file holds one YAML document; found a second (---)",
			},
		},
		{
			name: "not a mapping",
			src: `- driver: memory
`,
			want: []string{
				"s.yaml:1:1: a scenario is a mapping of fields (name, driver, traffic, ...), got a list",
			},
		},
		{
			name: "missing traffic",
			src: `name: no-traffic
driver: memory
`,
			want: []string{
				"s.yaml:1:1: traffic: required field is missing",
			},
		},
		{
			name: "missing driver and traffic",
			src: `name: nothing
`,
			want: []string{
				"s.yaml:1:1: driver: required field is missing",
				"s.yaml:1:1: traffic: required field is missing",
			},
		},
		{
			name: "null driver",
			src: `driver:
traffic:
  - constant: {rate: 100/s, for: 10s}
`,
			want: []string{
				"s.yaml:1:8: driver: needs a value",
			},
		},
		{
			name: "merge key",
			src: `driver: memory
traffic:
  - constant: &base {rate: 100/s, for: 10s}
  - constant: {<<: *base, rate: 200/s}
`,
			want: []string{
				"s.yaml:4:16: traffic[1].constant: merge keys (<<) are not supported; use an alias (*name) for a whole value or repeat the fields",
			},
		},
		{
			name: "unknown YAML anchor",
			src: `driver: memory
traffic:
  - constant: *base
`,
			want: []string{
				"s.yaml:3:15: YAML syntax: *base refers to no anchor; define &base before it",
			},
		},
		{
			name: "syntax error on the first line",
			src: `traffic: [
`,
			want: []string{
				"s.yaml:2:1: YAML syntax: did not find expected node content",
			},
		},
		{
			name: "several mistakes sorted by position",
			src: `name: many
driver:
  memory: {streams: four}
producers: 0
traffic:
  - constant: {rate: 100/sec, for: 10s}
  - spike: {base: 100/s, peak: 50/s, for: 10s, hold: 1s}
  - step: {from: 10/s, to: 20/s, steps: 1, each: 1s}
chaos:
  - {action: broker-restart, at: 1h}
thresholds:
  - e2e.p99 < 250
  - loss = 0
report:
  formats: [pdf]
colour: blue
`,
			want: []string{
				"s.yaml:3:21: driver.memory.streams: want a whole number, got \"four\"",
				"s.yaml:4:12: producers: must be at least 1, got 0",
				"s.yaml:6:22: traffic[0].constant.rate: rate \"100/sec\" has an unknown unit \"/sec\" (did you mean \"/s\"?); units: /s, /m, /h",
				"s.yaml:7:32: traffic[1].spike.peak: peak 50/s must be above base 100/s",
				"s.yaml:8:41: traffic[2].step.steps: must be at least 2, got 1 (for one rate use a constant phase)",
				"s.yaml:10:34: chaos[0].at: starts at 1h0m0s, but the traffic ends at 21s; chaos must start while traffic runs",
				"s.yaml:12:5: thresholds[0]: \"e2e.p99 < 250\" compares the latency e2e.p99 with 250, which is not a duration; give it a time unit, e.g. 250ms",
				"s.yaml:13:5: thresholds[1]: \"loss = 0\": \"=\" is not a comparison; to test equality write == (operators: <, <=, >, >=, ==, !=)",
				"s.yaml:15:13: report.formats[0]: unknown value \"pdf\"; valid: text, json, hgrm, hlog, html, junit",
				"s.yaml:16:1: colour: unknown field; valid fields: name, description, driver, pipeline, producers, consumers, subscriptions, message, traffic, chaos, drain, thresholds, report, seed",
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := problems(t, newLoader(), c.src)
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("problems of\n%s\ngot:\n\t%s\nwant:\n\t%s", c.src, strings.Join(got, "\n\t"), strings.Join(c.want, "\n\t"))
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	src := `driver: memory
traffic:
  - constant: {rate: 100/s, for: 10s}
`
	sc, err := newLoader().Parse("dir/minimal.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"name", sc.Name, "minimal"},
		{"file", sc.File, "dir/minimal.yaml"},
		{"driver", sc.Driver.Kind, "memory"},
		{"driver options", sc.Driver.Options, memOptions{Streams: 4}},
		{"producers", sc.Producers, 1},
		{"consumers", sc.Consumers, 1},
		{"size", sc.Message.Size.Fixed, scenarios.Size(scenarios.DefaultSize)},
		{"key strategy", sc.Message.Keys.Strategy, "none"},
		{"drain", sc.DrainTimeout(), scenarios.DefaultDrain},
		{"formats", strings.Join(sc.Report.Formats, ","), strings.Join(scenarios.Formats, ",")},
		{"interval", sc.Report.Interval.D(), scenarios.DefaultInterval},
		{"seed", sc.Seed, int64(1)},
		{"profile duration", sc.Profile().Duration, 10 * time.Second},
		{"scheduled", sc.Profile().Scheduled(sc.Profile().Duration), 1000.0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

func TestFullScenario(t *testing.T) {
	src := `name: full
description: every field set
driver:
  memory: {streams: 8, drop: 0.01}
producers: 3
consumers: 2
message:
  size: {weighted: [{size: 200B, weight: 9}, {size: 64KiB, weight: 1}]}
  keys: {strategy: round-robin, count: 16}
traffic:
  - name: warm-up
    constant: {rate: 1k/s, for: 5s}
  - ramp: {from: 1k/s, to: 5k/s, for: 10s}
  - step: {from: 1k/s, to: 4k/s, steps: 4, each: 2s}
  - spike: {base: 1k/s, peak: 10k/s, for: 20s, rise: 1s, hold: 3s, fall: 2s, at: 5s}
  - pause: {for: 5s}
  - max: {for: 5s, in-flight: 500}
chaos:
  - {action: consumer-crash, at: 10s, for: 2s, every: 10s, target: consumers, consumer: 1}
  - {action: broker-restart, at: 30s}
drain: 30s
thresholds:
  - e2e.p99 < 250ms
  - loss == 0
  - duplicates.ratio <= 0.1%
  - achieved_rate >= 900/s
report:
  dir: out/full
  formats: [text, json]
  interval: 500ms
seed: 42
`
	sc, err := newLoader().Parse("full.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Name != "full" || sc.Producers != 3 || sc.Consumers != 2 || sc.Seed != 42 || sc.DrainTimeout() != 30*time.Second {
		t.Errorf("top-level fields: %+v", sc)
	}
	if got := sc.Driver.Options.(memOptions); got != (memOptions{Streams: 8, Drop: 0.01}) {
		t.Errorf("driver options = %+v", got)
	}
	if w := sc.Message.Size.Weighted; len(w) != 2 || w[1].Size != 64<<10 || w[0].Weight != 9 {
		t.Errorf("weighted sizes = %+v", w)
	}
	if k := sc.Message.Keys; k.Strategy != "round-robin" || k.Count != 16 {
		t.Errorf("keys = %+v", k)
	}
	kinds := []string{}
	for _, p := range sc.Traffic {
		kinds = append(kinds, p.Kind())
	}
	if got := strings.Join(kinds, ","); got != "constant,ramp,step,spike,pause,max" {
		t.Errorf("phase kinds = %s", got)
	}
	if sc.Traffic[0].Name != "warm-up" || sc.Traffic[5].Max.InFlight != 500 {
		t.Errorf("phase fields: %+v %+v", sc.Traffic[0], sc.Traffic[5].Max)
	}
	if got, want := sc.Profile().Duration, (5+10+8+20+5+5)*time.Second; got != want {
		t.Errorf("profile lasts %s, want %s", got, want)
	}
	c := sc.Chaos[0]
	if c.Action != "consumer-crash" || c.At.D() != 10*time.Second || c.For.D() != 2*time.Second ||
		c.Every.D() != 10*time.Second || c.Target != "consumers" || c.Params.(crashParams).Consumer != 1 {
		t.Errorf("chaos[0] = %+v", c)
	}
	if sc.Chaos[1].For != nil || sc.Chaos[1].Every != nil {
		t.Errorf("chaos[1] = %+v", sc.Chaos[1])
	}
	if len(sc.Thresholds) != 4 || sc.Thresholds[2].Right.Coef != 0.001 {
		t.Errorf("thresholds = %+v", sc.Thresholds)
	}
	if r := sc.Report; r.Dir != "out/full" || strings.Join(r.Formats, ",") != "text,json" || r.Interval.D() != 500*time.Millisecond {
		t.Errorf("report = %+v", r)
	}
}

// TestDriverWithoutOptions checks the three ways of naming a driver without
// options all hand the OptionsFunc a nil node.
func TestDriverWithoutOptions(t *testing.T) {
	for _, driver := range []string{"memory", "{memory: }", "{memory: ~}"} {
		src := "driver: " + driver + "\ntraffic: [{pause: {for: 1s}}]\n"
		sc, err := newLoader().Parse("s.yaml", []byte(src))
		if err != nil {
			t.Fatalf("driver: %s: %v", driver, err)
		}
		if sc.Driver.Node != nil || sc.Driver.Options != (memOptions{Streams: 4}) {
			t.Errorf("driver: %s: node %v, options %+v", driver, sc.Driver.Node, sc.Driver.Options)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := newLoader().Load(filepath.Join(t.TempDir(), "nope.yaml"))
	var ps scenarios.Problems
	if !errors.As(err, &ps) || len(ps) != 1 || !strings.Contains(ps[0].Error(), "nope.yaml: no such file or directory") {
		t.Fatalf("err = %v", err)
	}
}

// permissiveLoader accepts any options mapping for the memory driver (and
// for whatever driver a file names), and any chaos action the file names:
// it checks what the scenarios package owns, not the drivers' schemas.
func permissiveLoader(t *testing.T, src []byte) *scenarios.Loader {
	anyOptions := func(d *scenarios.Decoder, n *yaml.Node, field string) any {
		if n != nil && n.Kind != yaml.MappingNode {
			d.Errorf(n, field, "want a mapping of options")
		}
		return n
	}
	l := &scenarios.Loader{}
	l.Driver("memory", anyOptions)
	var peek struct {
		Driver   yaml.Node `yaml:"driver"`
		Pipeline struct {
			Input  yaml.Node `yaml:"input"`
			Output yaml.Node `yaml:"output"`
		} `yaml:"pipeline"`
		Chaos []struct {
			Action string `yaml:"action"`
		} `yaml:"chaos"`
	}
	if err := yaml.Unmarshal(src, &peek); err != nil {
		t.Fatal(err)
	}
	register := func(d yaml.Node, options scenarios.OptionsFunc) {
		switch {
		case d.Kind == yaml.ScalarNode:
			l.Driver(d.Value, options)
		case d.Kind == yaml.MappingNode && len(d.Content) == 2:
			l.Driver(d.Content[0].Value, options)
		}
	}
	// Drivers may serve several subscriptions; a pipeline's may run the
	// built-in processor.
	processorOptions := func(d *scenarios.Decoder, n *yaml.Node, field string) any {
		return processorCapable{anyOptions(d, n, field)}
	}
	register(peek.Driver, processorOptions)
	register(peek.Pipeline.Input, processorOptions)
	register(peek.Pipeline.Output, processorOptions)
	for _, c := range peek.Chaos {
		l.Action(c.Action, func(*scenarios.Decoder, *yaml.Node, string, *scenarios.Action, *scenarios.Scenario) any { return nil }, scenarios.OnSystem) // permissive: no checks against consumers
	}
	return l
}

// processorCapable is the options of a permissive driver that can run the
// built-in processor and serve several subscriptions.
type processorCapable struct{ any }

func (processorCapable) Abilities() []string { return []string{"processor", "fan-out"} }

func exampleFiles(t testing.TB) []string {
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestExamplesLoad(t *testing.T) {
	files := exampleFiles(t)
	if len(files) == 0 {
		t.Fatal("no examples/*.yaml found")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if scenarios.IsSweepFile(src) {
				// A sweep file: its base scenario and every point load.
				var sf struct{ Scenario string }
				if err := yaml.Unmarshal(src, &sf); err != nil {
					t.Fatal(err)
				}
				base, err := os.ReadFile(filepath.Join(filepath.Dir(file), sf.Scenario))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := permissiveLoader(t, base).LoadSweep(file); err != nil {
					t.Errorf("%s does not load:\n%v", file, err)
				}
				return
			}
			if _, err := permissiveLoader(t, src).Load(file); err != nil {
				t.Errorf("%s does not load:\n%v", file, err)
			}
		})
	}
}

// TestMemorySpikeExample checks the example's shape, and that README.md
// shows the very same file.
func TestMemorySpikeExample(t *testing.T) {
	file := filepath.Join("..", "examples", "memory-spike.yaml")
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := permissiveLoader(t, src).Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Producers != 2 || sc.Consumers != 2 || sc.DrainTimeout() != 5*time.Second || sc.Report.Dir != "spate-results/memory-spike" {
		t.Errorf("producers %d, consumers %d, drain %s, report dir %q", sc.Producers, sc.Consumers, sc.DrainTimeout(), sc.Report.Dir)
	}
	if d := sc.Profile().Duration; d < 10*time.Second || d > 20*time.Second {
		t.Errorf("traffic lasts %s, want about 15s", d)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```yaml\n"+string(src)+"```\n") {
		t.Error("README.md does not show examples/memory-spike.yaml verbatim in a ```yaml block; copy the file into it")
	}
}

// FuzzParse checks that no input makes Parse panic, and that every failure
// is a non-empty list of Problems naming the file.
func FuzzParse(f *testing.F) {
	for _, file := range exampleFiles(f) {
		if src, err := os.ReadFile(file); err == nil {
			f.Add(src)
		}
	}
	f.Add([]byte("driver: memory\ntraffic: [{constant: {rate: 1/s, for: 1s}}]\n"))
	f.Add([]byte("driver: {memory: {drop: 0.5}}\ntraffic:\n  - spike: {base: 1/s, peak: 2/s, for: 9s, hold: 1s}\n" +
		"chaos: [{action: consumer-crash, at: 1s, every: 2s, for: 1s}]\nthresholds: ['achieved_rate >= 0.95 * target_rate']\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("driver: memory\ntraffic: [{step: {from: 0/s, to: 9M/h, steps: 3, each: 1ns}}]\nmessage: {size: {uniform: {min: 1KiB, max: 1MiB}}}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		sc, err := newLoader().Parse("f.yaml", src)
		if err == nil {
			if sc == nil {
				t.Fatal("nil scenario without error")
			}
			checkSchedule(t, sc)
			return
		}
		var ps scenarios.Problems
		if !errors.As(err, &ps) || len(ps) == 0 {
			t.Fatalf("error %v is not a non-empty Problems", err)
		}
		for _, p := range ps {
			if p.File != "f.yaml" || p.Message == "" {
				t.Fatalf("bad problem %#v", p)
			}
		}
	})
}

// checkSchedule follows the first messages of a valid scenario's schedule:
// due times never decrease and stay within the profile.
func checkSchedule(t *testing.T, sc *scenarios.Scenario) {
	p := sc.Profile()
	s := p.NewSchedule(0, sc.Producers)
	last := time.Duration(0)
	for range 1000 {
		due, ok := s.Next()
		if !ok {
			if _, more := s.Segment(); !more {
				return
			}
			s.Skip()
			continue
		}
		if due < last || due > p.Duration {
			t.Fatalf("due %v after %v (profile %v)", due, last, p.Duration)
		}
		last = due
	}
}

// ownReader is the options of a driver whose consumers each read every
// message (a RabbitMQ stream).
type ownReader struct{}

func (ownReader) Abilities() []string {
	return []string{scenarios.AbilityOwnReader, scenarios.AbilityFanOut}
}

// TestOwnReaderSubscriptions: on a driver whose consumers each read every
// message, every consumer must be a subscription of its own.
func TestOwnReaderSubscriptions(t *testing.T) {
	l := &scenarios.Loader{}
	l.Driver("reader", func(d *scenarios.Decoder, n *yaml.Node, field string) any { return ownReader{} })
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"one consumer", "consumers: 1", nil},
		{"each consumer alone", "consumers: 3\nsubscriptions: 3", nil},
		{"competing consumers", "consumers: 2", []string{
			"s.yaml:3:12: consumers: the reader driver (driver), as configured, gives each consumer every message (no competing consumers; see the driver's documentation), so each consumer must be a subscription of its own: set subscriptions: 2 (as many as consumers), or consumers: 1",
		}},
		{"fewer subscriptions", "consumers: 4\nsubscriptions: 2", []string{
			"~s.yaml:4:16: subscriptions: the reader driver (driver), as configured, gives each consumer every message",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := problems(t, l, "driver: {reader: {}}\ntraffic: [{constant: {rate: 10/s, for: 1s}}]\n"+tc.src+"\n")
			if len(got) != len(tc.want) {
				t.Fatalf("problems %q, want %q", got, tc.want)
			}
			for i, w := range tc.want {
				if sub, ok := strings.CutPrefix(w, "~"); ok {
					if !strings.Contains(got[i], sub) {
						t.Errorf("problem %q does not contain %q", got[i], sub)
					}
				} else if got[i] != w {
					t.Errorf("problem\n%q, want\n%q", got[i], w)
				}
			}
		})
	}
}
