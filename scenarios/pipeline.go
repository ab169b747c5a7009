package scenarios

import (
	"fmt"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// Pipeline is a consume-transform-produce pipeline under test: spate's
// producers send to Input, something processes what arrives there and
// writes it to Output, and spate's consumers read Output. Loss, duplicates,
// reordering and aborted reads are judged on Output against what Input
// confirmed. In YAML:
//
//	pipeline:
//	  input:  {kafka: {topic: orders}}
//	  output: {kafka: {topic: orders-enriched, isolation: read_committed}}
//	  processor: {builtin: {mode: exactly-once, instances: 2}}
//
// A scenario has either `driver` or `pipeline`; with a pipeline,
// Scenario.Driver is the input end, so everything that acts on "the
// driver" (chaos abilities, broker faults) acts on the input's system.
type Pipeline struct {
	Input     Driver    `yaml:"input,required"`
	Output    Driver    `yaml:"output,required"`
	Processor Processor `yaml:"processor,required"`
}

// Processor kinds.
const (
	// ProcessorBuiltin is spate's reference processor, run by the input's
	// driver (drivers.ProcessorMaker).
	ProcessorBuiltin = "builtin"
	// ProcessorExternal is the user's own service: the scenario names the
	// two ends and spate runs nothing between them.
	ProcessorExternal = "external"
)

// ProcessorKinds and ProcessorModes are the valid values of the processor's
// kind and of builtin.mode.
var (
	ProcessorKinds = []string{ProcessorBuiltin, ProcessorExternal}
	ProcessorModes = []string{"exactly-once", "at-least-once"}
)

// MaxProcessorInstances bounds builtin.instances.
const MaxProcessorInstances = 1000

// Processor is what runs between a pipeline's ends. In YAML it is a kind
// (`processor: external`, `processor: builtin`) or the built-in one with
// options (`processor: {builtin: {mode: at-least-once, instances: 2}}`).
type Processor struct {
	Kind string // ProcessorBuiltin or ProcessorExternal
	// Builtin only.
	Mode      string // exactly-once (default) or at-least-once
	Instances int    // default 1
	// CommitInterval is how long a transaction stays open (exactly-once)
	// or how often consumed offsets are committed (at-least-once); nil
	// means the driver's default.
	CommitInterval *Duration
}

// Builtin reports whether spate runs the processor itself.
func (p *Processor) Builtin() bool { return p.Kind == ProcessorBuiltin }

// DecodeNode reads the processor's two forms.
func (p *Processor) DecodeNode(d *Decoder, n *yaml.Node, field string) {
	var opts *yaml.Node
	kindNode := n
	switch {
	case n.Kind == yaml.ScalarNode:
		p.Kind = n.Value
	case n.Kind == yaml.MappingNode && len(n.Content) == 2:
		kindNode = n.Content[0]
		p.Kind = kindNode.Value
		opts = resolve(n.Content[1])
	default:
		d.Errorf(n, field, "want builtin, external, or the built-in processor with options ({builtin: {mode: exactly-once, instances: 2}}), got %s", describe(n))
		return
	}
	if !d.OneOf(kindNode, field, p.Kind, ProcessorKinds...) {
		p.Kind = ""
		return
	}
	if p.Kind == ProcessorExternal {
		if !IsNull(opts) {
			d.Errorf(opts, field+"."+ProcessorExternal, "the external processor takes no options: spate only produces to the input and reads the output; write processor: external")
		}
		return
	}
	p.Mode, p.Instances = ProcessorModes[0], 1
	if IsNull(opts) {
		return
	}
	var y struct {
		Mode           *string   `yaml:"mode"`
		Instances      *int      `yaml:"instances"`
		CommitInterval *Duration `yaml:"commit-interval"`
	}
	f := field + "." + ProcessorBuiltin
	d.Decode(opts, f, &y) // the fields that decoded are checked whatever the others did
	if y.Mode != nil && d.OneOf(at(opts, "mode"), f+".mode", *y.Mode, ProcessorModes...) {
		p.Mode = *y.Mode
	}
	if y.Instances != nil {
		if *y.Instances < 1 || *y.Instances > MaxProcessorInstances {
			d.Errorf(at(opts, "instances"), f+".instances", "must be a whole number from 1 to %d, got %d", MaxProcessorInstances, *y.Instances)
		} else {
			p.Instances = *y.Instances
		}
	}
	if y.CommitInterval != nil {
		if ci := y.CommitInterval.D(); ci < 10*time.Millisecond || ci > 15*time.Minute {
			d.Errorf(at(opts, "commit-interval"), f+".commit-interval", "must be from 10ms to 15m, got %v", ci)
		} else {
			p.CommitInterval = y.CommitInterval
		}
	}
}

// PipelineChecker is implemented by a driver's options value (an
// OptionsFunc result) to check a pipeline whose two ends are both of its
// kind, with output the output end's options: for example that the output
// is not the input's own topic, which would feed the processor its own
// output forever.
type PipelineChecker interface {
	CheckPipelineOutput(output any) error
}

// decodeDriver checks a driver's kind and decodes its options block with
// the driver's own decoder; field is where it sits (driver,
// pipeline.input, ...), n its node.
func (l *Loader) decodeDriver(d *Decoder, n *yaml.Node, field string, dr *Driver) {
	if n == nil || dr.Kind == "" {
		return
	}
	kinds := sortedKeys(l.drivers)
	at, optsField := n, field
	if n.Kind == yaml.MappingNode {
		at, optsField = n.Content[0], field+"."+dr.Kind
	}
	decode, ok := l.drivers[dr.Kind]
	if !ok {
		d.Errorf(at, field, "unknown driver %q%s; valid: %s", dr.Kind, suggest(dr.Kind, kinds), joinList(kinds))
		dr.Kind = ""
		return
	}
	before := len(d.problems)
	dr.Options = decode(d, dr.Node, optsField)
	// A driver told nothing (driver: eventbridge) reports problems with no
	// node: they belong at the driver's name.
	for i := before; i < len(d.problems); i++ {
		if p := &d.problems[i]; p.Line == 0 {
			p.Line, p.Column = at.Line, at.Column
		}
	}
}

// validatePipeline decodes both ends' options and checks that the
// processor can run between them. The input becomes s.Driver.
func (l *Loader) validatePipeline(d *Decoder, pn *yaml.Node, s *Scenario) {
	p := s.Pipeline
	in, out := Child(pn, "input"), Child(pn, "output")
	l.decodeDriver(d, in, "pipeline.input", &p.Input)
	l.decodeDriver(d, out, "pipeline.output", &p.Output)
	s.Driver = p.Input
	if p.Input.Kind == "" || p.Output.Kind == "" {
		return
	}
	if p.Processor.Builtin() {
		procNode := at(pn, "processor")
		switch {
		case !hasAbility(p.Input.Options, AbilityProcessor):
			d.Errorf(procNode, "pipeline.processor", "the built-in processor cannot run on driver %q (kafka can run it); use processor: external and run your own service between the ends", p.Input.Kind)
		case p.Output.Kind != p.Input.Kind:
			d.Errorf(out, "pipeline.output", "the built-in processor reads and writes one system: the output must be %s like the input, not %s; for another system use processor: external", p.Input.Kind, p.Output.Kind)
		}
	}
	if p.Output.Kind == p.Input.Kind && p.Output.Options != nil {
		if c, ok := p.Input.Options.(PipelineChecker); ok {
			if err := c.CheckPipelineOutput(p.Output.Options); err != nil {
				node, field := out, "pipeline.output"
				if out.Kind == yaml.MappingNode {
					node, field = out.Content[0], "pipeline.output."+p.Output.Kind
				}
				d.Errorf(node, field, "%v", err)
			}
		}
	}
}

// validatePipelineChaos checks that the actions on consumers of a pipeline
// with the built-in processor, which act on the processor's instances
// rather than on spate's consumers of the output, name no more consumers
// than it has instances.
func (l *Loader) validatePipelineChaos(d *Decoder, cn *yaml.Node, s *Scenario) {
	if s.Pipeline == nil || !s.Pipeline.Processor.Builtin() || cn == nil || cn.Kind != yaml.SequenceNode {
		return
	}
	n := s.Pipeline.Processor.Instances
	for i := range s.Chaos {
		a := &s.Chaos[i]
		if l.targets[a.Action] != OnConsumers || a.Node == nil {
			continue
		}
		c := Child(a.Node, "count")
		if c == nil || c.Kind != yaml.ScalarNode {
			continue
		}
		if count, err := strconv.Atoi(c.Value); err == nil && count > n {
			d.Errorf(c, fmt.Sprintf("chaos[%d].count", i), "%s acts on the built-in processor's instances in a pipeline, and it has %d; lower count or raise pipeline.processor.builtin.instances", a.Action, n)
		}
	}
}
