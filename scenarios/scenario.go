// Package scenarios reads spate scenario files: strict YAML decoding that
// reports every problem at once as file:line:col: field: message, defaults,
// validation, rate profiles and the thresholds grammar. It knows nothing of
// brokers: each driver decodes its own options block through a Decoder.
package scenarios

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/spate-dev/spate/drivers/stamp"
)

// Scenario is a decoded, validated scenario file.
type Scenario struct {
	File        string `yaml:"-"`
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Driver is the system under test; with a Pipeline, its input end.
	Driver Driver `yaml:"driver"`
	// Pipeline, when not nil, is a consume-transform-produce pipeline
	// under test instead of one driver (pipeline.go).
	Pipeline  *Pipeline `yaml:"pipeline"`
	Producers int       `yaml:"producers"` // default 1
	// Consumers is how many consumers receive (default 1); 0 makes a
	// produce-only run, which measures no deliveries (produceonly.go).
	Consumers int `yaml:"consumers"`
	// Subscriptions is how many independent subscriptions the consumers
	// form, each receiving every message (default 1: the consumers
	// compete for one stream of messages). Consumer i belongs to
	// subscription i mod Subscriptions; fan-out, every consumer alone, is
	// Subscriptions == Consumers.
	Subscriptions int          `yaml:"subscriptions"`
	Message       Message      `yaml:"message"`
	Traffic       []Phase      `yaml:"traffic,required"`
	Chaos         []Action     `yaml:"chaos"`
	Drain         *Duration    `yaml:"drain"` // default 10s
	Thresholds    []Threshold  `yaml:"thresholds"`
	Report        ReportConfig `yaml:"report"`
	Seed          int64        `yaml:"seed"` // default 1; drives sizes and keys

	profile Profile
}

// DefaultDrain is how long a run waits for stragglers unless told otherwise.
const DefaultDrain = 10 * time.Second

// Profile returns the compiled traffic profile.
func (s *Scenario) Profile() Profile { return s.profile }

// DrainTimeout is how long to wait after the traffic for missing messages.
func (s *Scenario) DrainTimeout() time.Duration {
	if s.Drain == nil {
		return DefaultDrain
	}
	return s.Drain.D()
}

// Driver selects the system under test. In YAML it is either a kind name
// (`driver: memory`) or a one-key mapping from kind to its options block
// (`driver: {kafka: {brokers: embedded}}`).
type Driver struct {
	Kind    string
	Node    *yaml.Node // the options block, nil when none was given
	Options any        // what the driver's OptionsFunc returned
}

// Message says what each message looks like.
type Message struct {
	Size SizeDist `yaml:"size"` // default 256B
	Keys Keys     `yaml:"keys"`
}

// DefaultSize is the message size when the scenario gives none.
const DefaultSize = 256

// SizeDist is a fixed size (`size: 1KiB`) or a distribution:
// `size: {uniform: {min: 100B, max: 4KiB}}` or
// `size: {weighted: [{size: 200B, weight: 9}, {size: 64KiB, weight: 1}]}`.
type SizeDist struct {
	Fixed    Size
	Uniform  *SizeRange
	Weighted []WeightedSize
}

// SizeRange is an inclusive range of sizes.
type SizeRange struct {
	Min Size `yaml:"min,required"`
	Max Size `yaml:"max,required"`
}

// WeightedSize is one choice of a weighted size distribution.
type WeightedSize struct {
	Size   Size `yaml:"size,required"`
	Weight int  `yaml:"weight,required"`
}

// DecodeNode reads either form and checks every size fits a stamp.
func (s *SizeDist) DecodeNode(d *Decoder, n *yaml.Node, field string) {
	fits := func(node *yaml.Node, f string, v Size) {
		if v < stamp.Size {
			d.Errorf(node, f, "%s is smaller than the %d-byte stamp every message carries; use at least %dB", v, stamp.Size, stamp.Size)
		}
	}
	if n.Kind == yaml.ScalarNode {
		if d.Decode(n, field, &s.Fixed) {
			fits(n, field, s.Fixed)
		}
		return
	}
	var form struct {
		Uniform  *SizeRange     `yaml:"uniform"`
		Weighted []WeightedSize `yaml:"weighted"`
	}
	if !d.Decode(n, field, &form) {
		return
	}
	switch {
	case (form.Uniform == nil) == (form.Weighted == nil):
		d.Errorf(n, field, "give a fixed size (e.g. 1KiB) or exactly one of: uniform, weighted")
	case form.Uniform != nil:
		un := Child(n, "uniform")
		fits(at(un, "min"), field+".uniform.min", form.Uniform.Min)
		if form.Uniform.Max < form.Uniform.Min {
			d.Errorf(at(un, "max"), field+".uniform.max", "max %s is below min %s", form.Uniform.Max, form.Uniform.Min)
		}
		s.Uniform = form.Uniform
	default:
		wn := Child(n, "weighted")
		for i, w := range form.Weighted {
			f := fmt.Sprintf("%s.weighted[%d]", field, i)
			fits(at(wn.Content[i], "size"), f+".size", w.Size)
			if w.Weight < 1 {
				d.Errorf(at(wn.Content[i], "weight"), f+".weight", "must be at least 1, got %d", w.Weight)
			}
		}
		if len(form.Weighted) == 0 {
			d.Errorf(wn, field+".weighted", "needs at least one size")
		}
		s.Weighted = form.Weighted
	}
}

// Keys chooses message keys (Kafka record keys, RabbitMQ routing keys).
type Keys struct {
	Strategy string `yaml:"strategy"` // none (default), round-robin, random
	Count    int    `yaml:"count"`    // distinct keys for round-robin and random
}

// KeyStrategies are the valid values of message.keys.strategy.
var KeyStrategies = []string{"none", "round-robin", "random"}

// DecodeNode checks the strategy and its count.
func (k *Keys) DecodeNode(d *Decoder, n *yaml.Node, field string) {
	type plain Keys
	if !d.Decode(n, field, (*plain)(k)) {
		return
	}
	if k.Strategy == "" {
		k.Strategy = "none"
	}
	if !d.OneOf(at(n, "strategy"), field+".strategy", k.Strategy, KeyStrategies...) {
		return
	}
	switch {
	case k.Strategy == "none" && Child(n, "count") != nil:
		d.Errorf(at(n, "count"), field+".count", "count needs strategy round-robin or random")
	case k.Strategy != "none" && k.Count < 1:
		d.Errorf(at(n, "count"), field+".count", "strategy %s needs a count of at least 1", k.Strategy)
	}
}

// ReportConfig says where results go.
type ReportConfig struct {
	Dir      string   `yaml:"dir"`      // default spate-results/<name>-<time>
	Formats  []string `yaml:"formats"`  // default: all of Formats
	Interval Duration `yaml:"interval"` // default 1s
}

// Report formats, as a scenario's report.formats names them (package
// report writes them).
const (
	FormatText = "text" // summary.txt
	FormatJSON = "json" // results.json
	FormatHgrm = "hgrm" // e2e.hgrm, service.hgrm, publish.hgrm
	// FormatHlog is e2e.hlog, service.hlog and publish.hlog, HdrHistogram
	// interval logs written during the run; results.json does not hold
	// the interval histograms, so they cannot be written after it.
	FormatHlog  = "hlog"
	FormatHTML  = "html"  // report.html
	FormatJUnit = "junit" // junit.xml
)

// Formats are the report formats, in the order they are written.
var Formats = []string{FormatText, FormatJSON, FormatHgrm, FormatHlog, FormatHTML, FormatJUnit}

// DefaultInterval is the width of a report interval.
const DefaultInterval = time.Second

// OptionsFunc decodes and validates a driver's options block, recording
// problems on d. n is nil when the scenario names the driver without options.
type OptionsFunc func(d *Decoder, n *yaml.Node, field string) any

// ActionFunc decodes and validates a chaos action's own fields (those beside
// action, at, for, every and target), given as a mapping node. s is the
// scenario being loaded, its driver options already decoded, so an action
// can check that the driver can perform it.
type ActionFunc func(d *Decoder, n *yaml.Node, field string, a *Action, s *Scenario) any

// Loader reads scenario files. The zero Loader knows no drivers and no chaos
// actions; callers register those they support.
type Loader struct {
	// Shards is how many processes run each scenario together (the
	// shards of a distributed run; 0 means 1): limits on load are per
	// process (checkLoad), and validation says what a sharded run cannot
	// do (validateShards).
	Shards int

	drivers map[string]OptionsFunc
	actions map[string]ActionFunc
	targets map[string]ActionTarget
}

// Driver registers a driver kind and its options decoder.
func (l *Loader) Driver(kind string, decode OptionsFunc) {
	if l.drivers == nil {
		l.drivers = map[string]OptionsFunc{}
	}
	l.drivers[kind] = decode
}

// Action registers a chaos action, its decoder, and what it acts on.
func (l *Loader) Action(name string, decode ActionFunc, target ActionTarget) {
	if l.actions == nil {
		l.actions = map[string]ActionFunc{}
		l.targets = map[string]ActionTarget{}
	}
	l.actions[name] = decode
	l.targets[name] = target
}

// Load reads and validates the scenario in file. Its error, if any, is Problems.
func (l *Loader) Load(file string) (*Scenario, error) {
	data, err := ReadFile(file)
	if err != nil {
		return nil, Problems{ReadProblem(file, err)}
	}
	return l.Parse(file, data)
}

// Parse validates a scenario given as bytes; file names it in problems.
func (l *Loader) Parse(file string, data []byte) (*Scenario, error) {
	doc, ps := parseYAML(file, data, "a scenario file")
	if ps != nil {
		return nil, ps
	}
	return l.parseDocument(file, doc)
}

// parseDocument validates a scenario given as a decoded YAML document (a
// sweep point: the base document with overrides written in).
func (l *Loader) parseDocument(file string, doc *yaml.Node) (*Scenario, error) {
	return l.parseDocumentFrom(file, doc, nil)
}

// parseDocumentFrom is parseDocument for a document some of whose nodes
// came from other files: problems at a node of origin name its file.
func (l *Loader) parseDocumentFrom(file string, doc *yaml.Node, origin map[*yaml.Node]string) (*Scenario, error) {
	d := NewDecoder(file)
	d.origin = origin
	s := &Scenario{File: file}
	root := resolve(doc)
	if root.Kind != yaml.MappingNode {
		d.Errorf(root, "", "a scenario is a mapping of fields (name, driver, traffic, ...), got %s", describe(root))
		return nil, d.Problems()
	}
	if Child(root, "driver") == nil && Child(root, "pipeline") == nil {
		// Reported before decoding, as a required field would be.
		d.Errorf(root, "driver", "required field is missing")
	}
	d.Decode(root, "", s)
	l.validate(d, root, s)
	if ps := d.Problems(); len(ps) > 0 {
		return nil, ps
	}
	return s, nil
}

// parserProblems are yaml.v3's parser (not scanner) errors. yaml.v3 reports
// their line counting from 0 (and leaves it out on the first line), where
// scanner errors count from 1.
var parserProblems = []string{
	"did not find expected <document start>", "did not find expected node content",
	"did not find expected '-' indicator", "did not find expected key",
	"did not find expected ',' or ']'", "did not find expected ',' or '}'",
	"found undefined tag handle", "found duplicate %YAML directive",
	"found incompatible YAML document", "found duplicate %TAG directive",
}

// syntaxProblem turns a yaml.v3 syntax error ("yaml: line 3: ...") into a
// Problem at that line, with a hint for the common causes.
func syntaxProblem(file string, data []byte, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := Problem{File: file}
	var line int
	if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil {
		msg = strings.TrimSpace(strings.SplitN(msg, ":", 2)[1])
	}
	if contains(parserProblems, msg) {
		line++
	}
	if line > 0 {
		p.Line, p.Column = line, 1
	}
	lines := strings.Split(string(data), "\n")
	if strings.HasPrefix(msg, "unknown anchor '") { // yaml.v3 gives no position for this one
		anchor := strings.TrimSuffix(strings.TrimPrefix(msg, "unknown anchor '"), "' referenced")
		msg = fmt.Sprintf("*%s refers to no anchor; define &%s before it", anchor, anchor)
		for i, l := range lines {
			if c := strings.Index(l, "*"+anchor); c >= 0 {
				p.Line, p.Column = i+1, c+1
				break
			}
		}
	}
	switch {
	case line > 0 && line <= len(lines) && strings.HasPrefix(strings.TrimLeft(lines[line-1], " "), "\t"):
		msg += " (YAML is indented with spaces, not tabs)"
	case strings.HasPrefix(msg, "did not find expected key"), strings.HasPrefix(msg, "did not find expected '-'"):
		msg += " (check the indentation of the lines after this one)"
	case strings.HasPrefix(msg, "did not find expected ','"):
		msg += " (a {...} or [...] that starts here is not closed)"
	}
	p.Message = "YAML syntax: " + msg
	return p
}

// DecodeNode reads the driver field's two forms and hands the options block
// to the driver's decoder. The kind is checked later by the Loader.
func (dr *Driver) DecodeNode(d *Decoder, n *yaml.Node, field string) {
	switch {
	case n.Kind == yaml.ScalarNode:
		dr.Kind = n.Value
	case n.Kind == yaml.MappingNode && len(n.Content) == 2:
		dr.Kind = n.Content[0].Value
		dr.Node = resolve(n.Content[1])
		if IsNull(dr.Node) {
			dr.Node = nil
		}
	case n.Kind == yaml.MappingNode && len(n.Content) > 2:
		var kinds []string
		for i := 0; i < len(n.Content); i += 2 {
			kinds = append(kinds, n.Content[i].Value)
		}
		d.Errorf(n.Content[2], field, "a scenario tests one driver, found %d: %s; keep one", len(kinds), joinList(kinds))
		return
	default:
		d.Errorf(n, field, "want a driver kind (driver: memory) or one kind with its options (driver: {memory: {streams: 4}}), got %s", describe(n))
		return
	}
	if dr.Kind == "" {
		d.Errorf(n, field, "needs a driver kind, e.g. driver: memory")
	}
}

func (l *Loader) validate(d *Decoder, root *yaml.Node, s *Scenario) {
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(s.File), filepath.Ext(s.File))
	}
	checkName(d, at(root, "name"), "name", s.Name)
	dn, pn := Child(root, "driver"), Child(root, "pipeline")
	switch {
	case dn != nil && pn != nil:
		d.Errorf(at(root, "pipeline"), "pipeline", "a scenario tests one driver or one pipeline, not both: a pipeline names its systems in input and output; remove driver")
	case dn != nil:
		l.decodeDriver(d, dn, "driver", &s.Driver)
	case s.Pipeline != nil:
		l.validatePipeline(d, pn, s)
	}
	count := func(key string, v *int, least int, why string) {
		if n := Child(root, key); n == nil {
			*v = 1
		} else if *v < least && n.Tag == "!!int" { // a non-number is already reported
			d.Errorf(n, key, "must be at least %d%s, got %d", least, why, *v)
		}
	}
	count("producers", &s.Producers, 1, "")
	count("consumers", &s.Consumers, 0, " (0: a produce-only run)")
	count("subscriptions", &s.Subscriptions, 1, "")
	l.validateSubscriptions(d, root, s)
	if Child(root, "message") == nil || Child(Child(root, "message"), "size") == nil {
		s.Message.Size.Fixed = DefaultSize
	}
	if s.Message.Keys.Strategy == "" {
		s.Message.Keys.Strategy = "none"
	}
	if tn := Child(root, "traffic"); tn != nil && tn.Kind == yaml.SequenceNode {
		if len(tn.Content) == 0 {
			d.Errorf(tn, "traffic", "needs at least one phase (%s)", joinList(PhaseKinds))
		}
		var total Duration
		for i := range s.Traffic {
			var ok bool
			if total, ok = addDurations(total, Duration(s.Traffic[i].Duration())); !ok {
				d.Errorf(tn.Content[i], fmt.Sprintf("traffic[%d]", i), "the traffic lasts longer than spate can schedule (2562047h in all)")
				break
			}
		}
		// A find-max phase lasts as long as its search: only its bound is
		// known before the run, so nothing can be timed after it.
		for i := range s.Traffic {
			if s.Traffic[i].FindMax != nil && i < len(s.Traffic)-1 && i < len(tn.Content) {
				d.Errorf(Child(resolve(tn.Content[i]), "find-max"), fmt.Sprintf("traffic[%d].find-max", i),
					"a find-max phase must be the last phase: it lasts as long as its search takes, so the phases after it (from traffic[%d]) cannot be timed; run them before it or in another scenario", i+1)
				break
			}
		}
	}
	if checkTraffic(d, Child(root, "traffic"), s.Traffic) {
		s.profile = NewProfile(s.Traffic)
	} else {
		for i := range s.Traffic {
			s.profile.Duration += s.Traffic[i].Duration() // for the checks that follow
		}
	}
	if !d.hasProblemsIn("traffic") {
		checkThresholdContext(d, root, s)
	}
	if rn := Child(root, "report"); rn != nil {
		for i, f := range s.Report.Formats {
			d.OneOf(Child(rn, "formats").Content[i], fmt.Sprintf("report.formats[%d]", i), f, Formats...)
		}
		if iv := Child(rn, "interval"); iv != nil && s.Report.Interval < Duration(10*time.Millisecond) {
			d.Errorf(iv, "report.interval", "must be at least 10ms, got %s", s.Report.Interval)
		}
	}
	if s.Report.Formats == nil {
		s.Report.Formats = Formats
	}
	if s.Report.Interval == 0 {
		s.Report.Interval = Duration(DefaultInterval)
	}
	if Child(root, "seed") == nil {
		s.Seed = 1
	}
	l.validateChaos(d, Child(root, "chaos"), s)
	l.validatePipelineChaos(d, Child(root, "chaos"), s)
	checkLoad(d, root, s, l.processes())
	checkFaults(d, Child(root, "chaos"), s)
	l.validateProduceOnly(d, root, s)
	l.validateShards(d, root, s)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	if len(out) == 0 {
		out = []string{"(none in this build)"}
	}
	return out
}

// validateSubscriptions checks subscriptions against the consumers and the
// driver that consumes (in a pipeline, its output).
func (l *Loader) validateSubscriptions(d *Decoder, root *yaml.Node, s *Scenario) {
	n := Child(root, "subscriptions")
	consuming, field := s.Driver, "driver"
	if s.Pipeline != nil {
		consuming, field = s.Pipeline.Output, "pipeline.output"
	}
	if s.Consumers > 1 && s.Subscriptions != s.Consumers && consuming.Options != nil && hasAbility(consuming.Options, AbilityOwnReader) {
		at, key := n, "subscriptions"
		if at == nil {
			at, key = Child(root, "consumers"), "consumers"
		}
		d.Errorf(at, key, "the %s driver (%s), as configured, gives each consumer every message (no competing consumers; see the driver's documentation), "+
			"so each consumer must be a subscription of its own: set subscriptions: %d (as many as consumers), or consumers: 1", consuming.Kind, field, s.Consumers)
		return
	}
	if n == nil || s.Subscriptions <= 1 || s.Consumers == 0 { // without consumers: validateProduceOnly
		return
	}
	if s.Consumers >= 1 && s.Subscriptions > s.Consumers {
		d.Errorf(n, "subscriptions", "%d subscriptions need at least as many consumers, got consumers: %d (fan-out, every consumer alone, is subscriptions: %d)",
			s.Subscriptions, s.Consumers, s.Consumers)
	}
	if consuming.Kind != "" && consuming.Options != nil && !hasAbility(consuming.Options, AbilityFanOut) {
		d.Errorf(n, "subscriptions", "the %s driver (%s), as configured, cannot give each of several subscriptions every message (see the driver's documentation of subscriptions); use subscriptions: 1 (competing consumers)", consuming.Kind, field)
	}
}
