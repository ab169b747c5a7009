package scenarios_test

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/spate-dev/spate/scenarios"
)

// produceOnlyLoader adds to pipelineLoader the fake actions a produce-only
// scenario must refuse or accept: network (aimed with target) and poison.
func produceOnlyLoader() *scenarios.Loader {
	l := pipelineLoader()
	for name, target := range map[string]scenarios.ActionTarget{"network": scenarios.OnConnections, "poison": scenarios.OnConsumers} {
		l.Action(name, func(d *scenarios.Decoder, n *yaml.Node, field string, a *scenarios.Action, _ *scenarios.Scenario) any {
			var p struct {
				Fault    string  `yaml:"fault"`
				Fraction float64 `yaml:"fraction"`
			}
			d.Decode(n, field, &p)
			return p
		}, target)
	}
	return l
}

func TestProduceOnlyScenario(t *testing.T) {
	sc, err := produceOnlyLoader().Parse("p.yaml", []byte(`driver: memory
producers: 2
consumers: 0
traffic:
  - max: {for: 5s, in-flight: 100}
chaos:
  - {action: broker-restart, at: 1s, for: 1s}
  - {action: network, at: 2s, for: 1s, target: producers, fault: down}
thresholds:
  - publish.p99 < 10ms
  - acked >= 1000
  - failed.ratio <= 1%
  - acked_rate >= 100/s
  - sent_rate >= 100/s
`))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Consumers != 0 || sc.Producers != 2 || len(sc.Thresholds) != 5 || len(sc.Chaos) != 2 {
		t.Errorf("consumers %d, producers %d, %d thresholds, %d faults", sc.Consumers, sc.Producers, len(sc.Thresholds), len(sc.Chaos))
	}
}

func TestProduceOnlyProblems(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "delivery thresholds, subscriptions and consumer faults",
			src: `driver: memory
consumers: 0
subscriptions: 2
traffic:
  - constant: {rate: 100/s, for: 10s}
chaos:
  - {action: consumer-pause, at: 1s, for: 1s}
  - {action: consumer-crash, at: 2s}
  - {action: poison, at: 3s, for: 1s, fraction: 0.1}
  - {action: network, at: 4s, for: 1s, target: consumers, fault: down}
thresholds:
  - publish.p99 < 10ms
  - e2e.p99 < 1s
  - service.max < 1s
  - loss == 0
  - lost.ratio <= 0
  - duplicates == 0
  - reordered.ratio == 0
  - received >= 1
  - unconfirmed_delivered == 0
  - achieved_rate >= 0.9 * target_rate
  - 2 * acked > received
`,
			want: []string{
				"p.yaml:3:16: subscriptions: 2 subscriptions need consumers to form them (consumers: 0 at line 2)",
				"p.yaml:7:14: chaos[0].action: consumer-pause acts on consumers, and the scenario has none (consumers: 0 at line 2)",
				"p.yaml:8:14: chaos[1].action: consumer-crash acts on consumers, and the scenario has none (consumers: 0 at line 2)",
				"p.yaml:9:14: chaos[2].action: poison acts on consumers, and the scenario has none (consumers: 0 at line 2)",
				"p.yaml:10:48: chaos[3].target: the scenario has no consumers to aim network at (consumers: 0 at line 2); use target: producers",
				"p.yaml:13:5: thresholds[1]: e2e.p99 is measured on deliveries, and nothing is received (consumers: 0 at line 2); " + measures,
				"p.yaml:14:5: thresholds[2]: service.max is measured on deliveries, and nothing is received (consumers: 0 at line 2); " + measures,
				"p.yaml:15:5: thresholds[3]: loss is measured on deliveries, and nothing is received (consumers: 0 at line 2); " + measures,
				"p.yaml:16:5: thresholds[4]: lost.ratio is measured on deliveries, and nothing is received (consumers: 0 at line 2); " + measures,
				"p.yaml:17:5: thresholds[5]: duplicates is measured on deliveries, and nothing is received (consumers: 0 at line 2); " + measures,
				"p.yaml:18:5: thresholds[6]: reordered.ratio is measured on deliveries, and nothing is received (consumers: 0 at line 2); " + measures,
				"p.yaml:19:5: thresholds[7]: received is measured on deliveries, and nothing is received (consumers: 0 at line 2); " + measures,
				"p.yaml:20:5: thresholds[8]: unconfirmed_delivered is measured on deliveries, and nothing is received (consumers: 0 at line 2); " + measures,
				"p.yaml:21:5: thresholds[9]: achieved_rate is measured on deliveries, and nothing is received (consumers: 0 at line 2); " + measures,
				"p.yaml:22:5: thresholds[10]: received is measured on deliveries, and nothing is received (consumers: 0 at line 2); " + measures,
			},
		},
		{
			name: "a pipeline",
			src: `pipeline:
  input: {topics: {topic: in}}
  output: {topics: {topic: out}}
  processor: external
consumers: 0
traffic:
  - constant: {rate: 100/s, for: 10s}
`,
			want: []string{
				"p.yaml:5:12: consumers: a pipeline is judged on its output, which spate's consumers read; give it at least 1 consumer",
			},
		},
		{
			name: "a find-max search",
			src: `driver: memory
consumers: 0
traffic:
  - find-max: {start: 100/s, max: 1000/s, backlog: ignore, slo: "publish.p99 < 10ms"}
`,
			want: []string{
				"p.yaml:4:15: traffic[0].find-max: a find-max search judges each step by what is received and by the backlog, so it needs consumers; for a producer's capacity use a max phase with consumers: 0 (consumers: 0 at line 2)",
			},
		},
		{
			name: "negative consumers",
			src: `driver: memory
consumers: -1
traffic:
  - constant: {rate: 100/s, for: 10s}
`,
			want: []string{"p.yaml:2:12: consumers: must be at least 0 (0: a produce-only run), got -1"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := produceOnlyLoader()
			_, err := l.Parse("p.yaml", []byte(c.src))
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("problems of\n%s\ngot:\n\t%s\nwant:\n\t%s", c.src, strings.Join(got, "\n\t"), strings.Join(c.want, "\n\t"))
			}
		})
	}
}

const measures = "a produce-only run measures publish latency, sent, acked, failed and their rates"

func TestDeliveryMetric(t *testing.T) {
	for _, m := range []string{"received", "lost", "loss", "lost.ratio", "duplicates.ratio", "reordered", "e2e.p99",
		"service.mean", "pipeline.max", "achieved_rate", "unconfirmed_delivered.ratio", "dead_lettered", "aborted_reads", "foreign", "malformed"} {
		if !scenarios.DeliveryMetric(m) {
			t.Errorf("%s is measured on deliveries", m)
		}
	}
	for _, m := range []string{"sent", "acked", "failed", "failed.ratio", "unconfirmed", "unsent", "aborted",
		"publish.p99", "publish.max", "target_rate", "sent_rate", "acked_rate", "headroom"} {
		if scenarios.DeliveryMetric(m) {
			t.Errorf("%s is not measured on deliveries", m)
		}
	}
}
