package scenarios_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/spate-dev/spate/scenarios"
)

// topicOptions is a fake Kafka-like driver's options: a topic; it can run
// the built-in processor and checks a pipeline's two ends.
type topicOptions struct {
	Topic string `yaml:"topic"`
}

func (topicOptions) Abilities() []string { return []string{"processor"} }

func (o topicOptions) CheckPipelineOutput(out any) error {
	if out.(topicOptions).Topic == o.Topic {
		return errors.New("the output's topic is the input's")
	}
	return nil
}

func pipelineLoader() *scenarios.Loader {
	l := newLoader()
	l.Driver("topics", func(d *scenarios.Decoder, n *yaml.Node, field string) any {
		o := topicOptions{Topic: "spate"}
		d.Decode(n, field, &o)
		return o
	})
	l.Action("consumer-pause", func(d *scenarios.Decoder, n *yaml.Node, field string, a *scenarios.Action, _ *scenarios.Scenario) any {
		var p struct {
			Count int `yaml:"count"`
		}
		d.Decode(n, field, &p)
		return p
	}, scenarios.OnConsumers)
	return l
}

const pipelineTraffic = `
traffic:
  - constant: {rate: 100/s, for: 10s}
`

func TestPipelineScenario(t *testing.T) {
	l := pipelineLoader()
	sc, err := l.Parse("p.yaml", []byte(`
pipeline:
  input: {topics: {topic: in}}
  output: {topics: {topic: out}}
  processor: {builtin: {mode: at-least-once, instances: 3, commit-interval: 250ms}}
consumers: 2
`+pipelineTraffic))
	if err != nil {
		t.Fatal(err)
	}
	p := sc.Pipeline
	if p == nil || p.Input.Kind != "topics" || p.Output.Kind != "topics" {
		t.Fatalf("pipeline %+v", p)
	}
	if p.Input.Options.(topicOptions).Topic != "in" || p.Output.Options.(topicOptions).Topic != "out" {
		t.Errorf("options %+v %+v", p.Input.Options, p.Output.Options)
	}
	if !p.Processor.Builtin() || p.Processor.Mode != "at-least-once" || p.Processor.Instances != 3 || p.Processor.CommitInterval.D() != 250*time.Millisecond {
		t.Errorf("processor %+v", p.Processor)
	}
	// The input is the scenario's driver: chaos and abilities act on it.
	if sc.Driver.Kind != "topics" || sc.Driver.Options.(topicOptions).Topic != "in" {
		t.Errorf("driver %+v", sc.Driver)
	}

	for src, want := range map[string]scenarios.Processor{
		"processor: builtin":                   {Kind: "builtin", Mode: "exactly-once", Instances: 1},
		"processor: external":                  {Kind: "external"},
		"processor: {builtin: {instances: 2}}": {Kind: "builtin", Mode: "exactly-once", Instances: 2},
	} {
		sc, err := l.Parse("p.yaml", []byte("pipeline:\n  input: {topics: {topic: in}}\n  output: {topics: {topic: out}}\n  "+src+pipelineTraffic))
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if got := sc.Pipeline.Processor; got != want {
			t.Errorf("%s: processor %+v, want %+v", src, got, want)
		}
	}
	// An external processor may join different systems.
	if _, err := l.Parse("p.yaml", []byte("pipeline:\n  input: topics\n  output: memory\n  processor: external"+pipelineTraffic)); err != nil {
		t.Errorf("external processor between two kinds: %v", err)
	}
}

func TestPipelineProblems(t *testing.T) {
	l := pipelineLoader()
	for _, c := range []struct {
		name, src string
		want      []string
	}{
		{"both driver and pipeline", `driver: memory
pipeline: {input: topics, output: topics, processor: external}`,
			[]string{"s.yaml:2:11: pipeline: a scenario tests one driver or one pipeline, not both: a pipeline names its systems in input and output; remove driver"}},
		{"neither", `name: x`, []string{"s.yaml:1:1: driver: required field is missing"}},
		{"missing fields", `pipeline: {input: topics}`, []string{
			"s.yaml:1:11: pipeline.output: required field is missing",
			"s.yaml:1:11: pipeline.processor: required field is missing",
		}},
		{"unknown processor", `pipeline: {input: topics, output: memory, processor: bultin}`,
			[]string{`s.yaml:1:54: pipeline.processor: unknown value "bultin" (did you mean "builtin"?); valid: builtin, external`}},
		{"bad builtin options", `pipeline:
  input: {topics: {topic: in}}
  output: {topics: {topic: out}}
  processor: {builtin: {mode: twice, instances: 0, commit-interval: 1ms, colour: red}}`, []string{
			`s.yaml:4:31: pipeline.processor.builtin.mode: unknown value "twice"; valid: exactly-once, at-least-once`,
			`s.yaml:4:49: pipeline.processor.builtin.instances: must be a whole number from 1 to 1000, got 0`,
			`s.yaml:4:69: pipeline.processor.builtin.commit-interval: must be from 10ms to 15m, got 1ms`,
			`s.yaml:4:74: pipeline.processor.builtin.colour: unknown field; valid fields: mode, instances, commit-interval`,
		}},
		{"external with options", `pipeline: {input: topics, output: memory, processor: {external: {url: x}}}`,
			[]string{"s.yaml:1:65: pipeline.processor.external: the external processor takes no options: spate only produces to the input and reads the output; write processor: external"}},
		{"builtin on a driver that cannot", `pipeline: {input: memory, output: memory, processor: builtin}`,
			[]string{`s.yaml:1:54: pipeline.processor: the built-in processor cannot run on driver "memory" (kafka can run it); use processor: external and run your own service between the ends`}},
		{"builtin across kinds", `pipeline: {input: topics, output: memory, processor: builtin}`,
			[]string{"s.yaml:1:35: pipeline.output: the built-in processor reads and writes one system: the output must be topics like the input, not memory; for another system use processor: external"}},
		{"the output is the input", `pipeline: {input: topics, output: topics, processor: builtin}`,
			[]string{"s.yaml:1:35: pipeline.output: the output's topic is the input's"}},
		{"unknown output driver", `pipeline: {input: topics, output: {memroy: {}}, processor: external}`,
			[]string{`s.yaml:1:36: pipeline.output: unknown driver "memroy" (did you mean "memory"?); valid: memory, topics`}},
		{"output options checked", `pipeline: {input: topics, output: {memory: {drop: 2}}, processor: external}`,
			[]string{"s.yaml:1:51: pipeline.output.memory.drop: must be between 0 and 1, got 2"}},
		{"more crashes than instances", `pipeline:
  input: {topics: {topic: in}}
  output: {topics: {topic: out}}
  processor: {builtin: {instances: 2}}
consumers: 4
chaos:
  - {action: consumer-pause, at: 1s, count: 3}
  - {action: consumer-pause, at: 1s, count: 2}`,
			[]string{"s.yaml:7:45: chaos[0].count: consumer-pause acts on the built-in processor's instances in a pipeline, and it has 2; lower count or raise pipeline.processor.builtin.instances"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := c.src
			if !strings.Contains(src, "traffic:") {
				src += pipelineTraffic
			}
			got := problems(t, l, src)
			if !slices.Equal(got, c.want) {
				t.Errorf("problems\n got %q\nwant %q", got, c.want)
			}
		})
	}
}
