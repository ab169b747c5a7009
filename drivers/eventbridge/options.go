package eventbridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/scenarios"
)

// Managed is the value of `endpoint` that makes spate start the kumo
// emulator itself (see the package documentation).
const Managed = "managed"

// Defaults and limits of the options. The PutEvents and SQS limits are the
// services' own.
const (
	DefaultSource            = "spate"
	DefaultDetailType        = "spate.message"
	DefaultBatch             = 10 // PutEvents takes at most 10 entries
	MaxBatch                 = 10
	DefaultInFlight          = 8
	DefaultLinger            = 5 * time.Millisecond
	MaxLinger                = 10 * time.Second
	MaxInFlight              = 1024
	DefaultRetryBackoff      = 100 * time.Millisecond
	MaxRetries               = 100
	DefaultWait              = 20 * time.Second // the longest SQS long poll
	MaxWait                  = 20 * time.Second
	DefaultVisibilityTimeout = 30 * time.Second // SQS's default
	MaxVisibilityTimeout     = 12 * time.Hour   // SQS's maximum
	DefaultReceivers         = 4
	MaxReceivers             = 64
	DefaultProbeTimeout      = 30 * time.Second

	// MaxEntryBytes is the largest PutEvents entry and the largest request
	// (the sum of its entries), as EventBridge computes them: 256 KiB.
	MaxEntryBytes = 256 << 10
	// MaxPatternChars is EventBridge's limit on an event pattern's size.
	MaxPatternChars = 2048
)

// Options configures the driver. Start from DefaultOptions: New treats zero
// Source, DetailType, Batch, InFlight, Wait, VisibilityTimeout and Receivers
// as their defaults, and takes every other field as given.
type Options struct {
	// Region is the AWS region; "" takes it from the AWS config chain
	// (AWS_REGION, the profile), or us-east-1 when Endpoint is set.
	Region string
	// Endpoint overrides the service endpoint of both EventBridge and SQS
	// (an emulator's URL), or is Managed; "" uses AWS's own endpoints.
	Endpoint string
	// Profile selects a profile of the shared AWS config files; "" uses
	// AWS_PROFILE or the default profile.
	Profile string
	// Provision makes spate create the bus, queue, queue policy, rule and
	// target at Open and delete them at Close.
	Provision bool
	// Bus, Queue and Rule name the event bus, the SQS queue (a name or a
	// queue URL) and the rule. With Provision, empty names default to
	// spate-<run id>; without it Bus and Queue are required and Rule, if
	// given, is checked to target the queue.
	Bus, Queue, Rule string
	// Source and DetailType are every event's source and detail-type.
	Source, DetailType string
	// Pattern is extra event-pattern conditions, a JSON object, that the
	// provisioned rule requires besides spate's own; "" for none.
	Pattern string
	// Batch is the most entries per PutEvents request (1..10).
	Batch int
	// InFlight is the most PutEvents requests each producer has in flight.
	InFlight int
	// Linger is how long a request that is not full waits for more
	// entries before it is sent; 0 sends whatever each Send got at once.
	Linger time.Duration
	// RateLimit caps PutEvents entries per second across all producers of
	// the driver; 0 means no cap.
	RateLimit float64
	// Retries is how many times a failed entry is sent again.
	Retries int
	// RetryBackoff is the wait before the first re-send; it doubles with
	// each further attempt, up to 10s.
	RetryBackoff time.Duration
	// Wait is the ReceiveMessage long-poll time (whole seconds, 0..20s).
	Wait time.Duration
	// VisibilityTimeout hides a received message from other consumers
	// until it is deleted or the timeout passes (whole seconds, 1s..12h).
	VisibilityTimeout time.Duration
	// Receivers is the number of concurrent ReceiveMessage calls of each
	// consumer.
	Receivers int
	// ProbeTimeout bounds the check at Open that an event put on the bus
	// reaches the queue; 0 skips the check.
	ProbeTimeout time.Duration

	// wrapTransport, when set (by tests), wraps each side's HTTP transport.
	wrapTransport func(side drivers.Side, rt http.RoundTripper) http.RoundTripper
}

// Abilities lists the optional abilities a driver opened with o has, so
// scenario validation can reject a fault it cannot perform: consumers can
// crash and every connection goes through Env.Dial; with endpoint: managed
// the emulator can be restarted.
func (o Options) Abilities() []string {
	a := []string{scenarios.AbilityConsumerCrash, scenarios.AbilityDial}
	if o.Endpoint == Managed {
		a = append(a, scenarios.AbilityBrokerRestart)
	} else {
		a = append(a, scenarios.AbilityShared) // AWS, or an emulator of its own
	}
	return a
}

var _ drivers.AbilityLister = Options{}

// DefaultOptions returns the defaults: no provisioning, source "spate",
// detail-type "spate.message", batches of 10 entries lingering up to 5ms,
// 8 requests in flight per producer, no rate limit, no retries (100ms backoff when enabled), 20s
// long polls, a 30s visibility timeout, 4 receivers per consumer and a 30s
// delivery probe at Open.
func DefaultOptions() Options {
	return Options{
		Source:            DefaultSource,
		DetailType:        DefaultDetailType,
		Batch:             DefaultBatch,
		InFlight:          DefaultInFlight,
		Linger:            DefaultLinger,
		RetryBackoff:      DefaultRetryBackoff,
		Wait:              DefaultWait,
		VisibilityTimeout: DefaultVisibilityTimeout,
		Receivers:         DefaultReceivers,
		ProbeTimeout:      DefaultProbeTimeout,
	}
}

func (o *Options) fillDefaults() {
	if o.Source == "" {
		o.Source = DefaultSource
	}
	if o.DetailType == "" {
		o.DetailType = DefaultDetailType
	}
	if o.Batch == 0 {
		o.Batch = DefaultBatch
	}
	if o.InFlight == 0 {
		o.InFlight = DefaultInFlight
	}
	if o.Wait == 0 {
		o.Wait = DefaultWait
	}
	if o.VisibilityTimeout == 0 {
		o.VisibilityTimeout = DefaultVisibilityTimeout
	}
	if o.Receivers == 0 {
		o.Receivers = DefaultReceivers
	}
}

// validate checks o after zero fields took their defaults. Its messages
// name the scenario fields.
func (o Options) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("eventbridge: "+format, args...)) }
	if msg := checkEndpoint(o.Endpoint); msg != "" {
		bad("endpoint %s", msg)
	}
	if !o.Provision && (o.Bus == "" || o.Queue == "") {
		bad("bus and queue must be named unless provision is true")
	}
	if !o.Provision && o.Pattern != "" {
		bad("pattern applies only to the rule spate provisions; set provision: true or leave pattern out")
	}
	if o.Endpoint == Managed && !o.Provision {
		bad("endpoint: managed starts an empty emulator, so provision must be true")
	}
	for _, c := range []struct{ field, value, msg string }{
		{"bus", o.Bus, checkBus(o.Bus)},
		{"queue", o.Queue, checkQueue(o.Queue)},
		{"rule", o.Rule, checkRule(o.Rule)},
		{"source", o.Source, checkSource(o.Source)},
		{"detail-type", o.DetailType, checkDetailType(o.DetailType)},
	} {
		if c.value != "" && c.msg != "" {
			bad("%s %q %s", c.field, c.value, c.msg)
		}
	}
	if o.Pattern != "" {
		var p any
		if err := json.Unmarshal([]byte(o.Pattern), &p); err != nil {
			bad("pattern is not JSON: %v", err)
		} else if msg := checkPattern(p, ""); msg != "" {
			bad("pattern: %s", msg)
		}
	}
	switch {
	case o.Batch < 1 || o.Batch > MaxBatch:
		bad("batch must be within 1..%d, got %d", MaxBatch, o.Batch)
	case o.InFlight < 1 || o.InFlight > MaxInFlight:
		bad("in-flight must be within 1..%d, got %d", MaxInFlight, o.InFlight)
	case o.Linger < 0 || o.Linger > MaxLinger:
		bad("linger must be within 0s..10s, got %v", o.Linger)
	case o.RateLimit < 0 || math.IsNaN(o.RateLimit) || math.IsInf(o.RateLimit, 0):
		bad("rate-limit must be a positive rate or 0 for none, got %v", o.RateLimit)
	case o.Retries < 0 || o.Retries > MaxRetries:
		bad("retries must be within 0..%d, got %d", MaxRetries, o.Retries)
	case o.RetryBackoff < 0:
		bad("retry-backoff must not be negative, got %v", o.RetryBackoff)
	case o.Wait < 0 || o.Wait > MaxWait || o.Wait%time.Second != 0:
		bad("wait must be whole seconds within 0s..20s, got %v", o.Wait)
	case o.VisibilityTimeout < time.Second || o.VisibilityTimeout > MaxVisibilityTimeout || o.VisibilityTimeout%time.Second != 0:
		bad("visibility-timeout must be whole seconds within 1s..12h, got %v", o.VisibilityTimeout)
	case o.Receivers < 1 || o.Receivers > MaxReceivers:
		bad("receivers must be within 1..%d, got %d", MaxReceivers, o.Receivers)
	case o.ProbeTimeout < 0:
		bad("probe must not be negative, got %v", o.ProbeTimeout)
	}
	return errors.Join(errs...)
}

// Name rules of the services, checked before any request is made.
var (
	busRE   = regexp.MustCompile(`^[A-Za-z0-9._\-/]{1,256}$`)
	queueRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)
	ruleRE  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

func checkEndpoint(e string) string {
	if e == "" || e == Managed {
		return ""
	}
	u, err := url.Parse(e)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("%q is not an http:// or https:// URL nor %q", e, Managed)
	}
	return ""
}

func checkBus(s string) string {
	if !busRE.MatchString(s) {
		return "is not a valid event bus name (1 to 256 letters, digits and . _ - /)"
	}
	return ""
}

func checkQueue(s string) string {
	if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
		if u, err := url.Parse(s); err != nil || u.Host == "" || strings.Trim(u.Path, "/") == "" {
			return "is not a queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/name"
		}
		if strings.HasSuffix(s, ".fifo") {
			return "is a FIFO queue; spate needs a standard queue"
		}
		return ""
	}
	if strings.HasSuffix(s, ".fifo") {
		return "is a FIFO queue; spate needs a standard queue"
	}
	if !queueRE.MatchString(s) {
		return "is not a valid queue name (1 to 80 letters, digits, - and _) nor a queue URL"
	}
	return ""
}

func checkRule(s string) string {
	if !ruleRE.MatchString(s) {
		return "is not a valid rule name (1 to 64 letters, digits and . _ -)"
	}
	return ""
}

func checkSource(s string) string {
	switch {
	case len(s) > 256:
		return "is longer than 256 characters"
	case strings.HasPrefix(s, "aws."):
		return `starts with "aws.", which AWS reserves for its own events`
	}
	return ""
}

func checkDetailType(s string) string {
	if len(s) > 128 {
		return "is longer than 128 characters"
	}
	return ""
}

// spateKeys are the pattern fields spate sets itself.
var spateKeys = map[string]string{
	"source":      "spate matches source itself (set it with source:)",
	"detail-type": "spate matches detail-type itself (set it with detail-type:)",
	"detail.run":  "spate matches detail.run itself (it holds the run id)",
}

// checkPattern checks the shape of an event pattern (or a part of it at
// path): a JSON object whose leaves are non-empty arrays of match values.
// It returns "" when the pattern is acceptable.
func checkPattern(p any, path string) string {
	m, ok := p.(map[string]any)
	if !ok {
		if path == "" {
			return "must be a JSON object such as {\"detail\": {\"kind\": [\"order\"]}}"
		}
		return fmt.Sprintf("%s must be an object or a list of values", path)
	}
	if path == "" && len(m) == 0 {
		return "must not be empty; leave pattern out for none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sub := k
		if path != "" {
			sub = path + "." + k
		}
		if msg, ok := spateKeys[sub]; ok {
			return sub + ": " + msg
		}
		if _, ok := m[k].(map[string]any); !ok && sub == "detail" {
			return `detail must be an object naming detail fields, such as {"kind": ["order"]}`
		}
		switch v := m[k].(type) {
		case map[string]any:
			if msg := checkPattern(v, sub); msg != "" {
				return msg
			}
		case []any:
			if len(v) == 0 {
				return sub + " must list at least one value to match"
			}
		default:
			return fmt.Sprintf("%s must be a list of values to match, such as [%s], or an object", sub, compactJSON(v))
		}
	}
	return ""
}

func compactJSON(v any) string {
	b, err := marshalJSON(v)
	if err != nil {
		return "..."
	}
	return string(b)
}

// yamlOptions is the scenario's options block as written.
type yamlOptions struct {
	Region            string              `yaml:"region"`
	Endpoint          string              `yaml:"endpoint"`
	Profile           string              `yaml:"profile"`
	Provision         *bool               `yaml:"provision"`
	Bus               string              `yaml:"bus"`
	Queue             string              `yaml:"queue"`
	Rule              string              `yaml:"rule"`
	Source            string              `yaml:"source"`
	DetailType        string              `yaml:"detail-type"`
	Pattern           *yaml.Node          `yaml:"pattern"`
	Batch             int                 `yaml:"batch"`
	InFlight          int                 `yaml:"in-flight"`
	Linger            *scenarios.Duration `yaml:"linger"`
	RateLimit         *scenarios.Rate     `yaml:"rate-limit"`
	Retries           int                 `yaml:"retries"`
	RetryBackoff      *scenarios.Duration `yaml:"retry-backoff"`
	Wait              *scenarios.Duration `yaml:"wait"`
	VisibilityTimeout *scenarios.Duration `yaml:"visibility-timeout"`
	Receivers         int                 `yaml:"receivers"`
	Probe             *scenarios.Duration `yaml:"probe"`
}

// decodeOptions is Kind.Options: it decodes the options block n (nil for a
// bare `driver: eventbridge`) into an Options value, recording every
// problem on d.
func decodeOptions(d *scenarios.Decoder, n *yaml.Node, field string) any {
	def := DefaultOptions()
	if scenarios.IsNull(n) {
		d.Errorf(n, field, "needs options: `provision: true` to let spate create a bus, queue and rule, "+
			"or the bus: and queue: to use, e.g. driver: {eventbridge: {provision: true, endpoint: managed}}")
		return def
	}
	y := yamlOptions{
		Source: def.Source, DetailType: def.DetailType, Batch: def.Batch,
		InFlight: def.InFlight, Receivers: def.Receivers,
	}
	d.Decode(n, field, &y)

	// Range checks, on fields that decoded: each mistake is reported once.
	failed := map[string]bool{}
	for _, p := range d.Problems() {
		failed[p.Field] = true
	}
	check := func(key string, bad bool, format string, args ...any) {
		f := field + "." + key
		if failed[f] || !bad {
			return
		}
		failed[f] = true
		at := scenarios.Child(n, key)
		if at == nil {
			at = n
		}
		d.Errorf(at, f, format, args...)
	}
	given := func(key string) bool { return scenarios.Child(n, key) != nil }

	check("endpoint", checkEndpoint(y.Endpoint) != "", "%q is not a URL such as http://127.0.0.1:4566 nor %q (spate starts the kumo emulator)", y.Endpoint, Managed)
	check("region", given("region") && y.Region == "", "must not be empty; leave region out to take it from the AWS config")
	check("profile", given("profile") && y.Profile == "", "must not be empty; leave profile out for the default profile")
	for _, c := range []struct {
		key, value string
		msg        func(string) string
	}{
		{"bus", y.Bus, checkBus},
		{"queue", y.Queue, checkQueue},
		{"rule", y.Rule, checkRule},
		{"source", y.Source, checkSource},
		{"detail-type", y.DetailType, checkDetailType},
	} {
		if given(c.key) {
			msg := "must not be empty"
			if c.value != "" {
				msg = c.msg(c.value)
			}
			check(c.key, msg != "", "%s", msg)
		}
	}
	check("batch", y.Batch < 1 || y.Batch > MaxBatch, "must be a whole number from 1 to %d (PutEvents takes at most 10 entries), got %d", MaxBatch, y.Batch)
	check("in-flight", y.InFlight < 1 || y.InFlight > MaxInFlight, "must be a whole number from 1 to %d, got %d", MaxInFlight, y.InFlight)
	check("rate-limit", y.RateLimit != nil && y.RateLimit.PerSecond() <= 0, "must be more than 0/s; leave rate-limit out for no limit")
	check("retries", y.Retries < 0 || y.Retries > MaxRetries, "must be a whole number from 0 to %d, got %d", MaxRetries, y.Retries)
	check("receivers", y.Receivers < 1 || y.Receivers > MaxReceivers, "must be a whole number from 1 to %d, got %d", MaxReceivers, y.Receivers)
	if y.Linger != nil {
		check("linger", y.Linger.D() > MaxLinger, "must be at most 10s, got %v", y.Linger.D())
	}
	if y.Wait != nil {
		w := y.Wait.D()
		check("wait", w > MaxWait || w%time.Second != 0, "must be whole seconds from 0s to 20s (the SQS long-poll limit), got %v", w)
	}
	if y.VisibilityTimeout != nil {
		v := y.VisibilityTimeout.D()
		check("visibility-timeout", v < time.Second || v > MaxVisibilityTimeout || v%time.Second != 0,
			"must be whole seconds from 1s to 12h (SQS's limits), got %v", v)
	}

	provision := y.Endpoint == Managed // the default: a managed emulator starts empty
	if y.Provision != nil {
		provision = *y.Provision
		check("provision", !provision && y.Endpoint == Managed, "must be true with endpoint: managed (the emulator starts empty)")
	}
	if !provision && y.Endpoint != Managed && !failed[field+".provision"] {
		for _, key := range []string{"bus", "queue"} {
			if !given(key) {
				check(key, true, "required unless provision is true: name the existing %s, or set provision: true to let spate create one", map[string]string{"bus": "event bus", "queue": "SQS queue"}[key])
			}
		}
	}

	o := Options{
		Region:     y.Region,
		Endpoint:   y.Endpoint,
		Profile:    y.Profile,
		Provision:  provision,
		Bus:        y.Bus,
		Queue:      y.Queue,
		Rule:       y.Rule,
		Source:     y.Source,
		DetailType: y.DetailType,
		Batch:      y.Batch,
		InFlight:   y.InFlight,
		Retries:    y.Retries,
		Receivers:  y.Receivers,

		Linger:            def.Linger,
		RetryBackoff:      def.RetryBackoff,
		Wait:              def.Wait,
		VisibilityTimeout: def.VisibilityTimeout,
		ProbeTimeout:      def.ProbeTimeout,
	}
	if y.RateLimit != nil {
		o.RateLimit = y.RateLimit.PerSecond()
	}
	if y.RetryBackoff != nil {
		o.RetryBackoff = y.RetryBackoff.D()
	}
	if y.Linger != nil {
		o.Linger = y.Linger.D()
	}
	if y.Wait != nil {
		o.Wait = y.Wait.D()
	}
	if y.VisibilityTimeout != nil {
		o.VisibilityTimeout = y.VisibilityTimeout.D()
	}
	if y.Probe != nil {
		o.ProbeTimeout = y.Probe.D()
	}
	if y.Pattern != nil && !failed[field+".pattern"] {
		pn := scenarios.Child(n, "pattern")
		if !provision {
			d.Errorf(pn, field+".pattern", "applies only to the rule spate provisions; set provision: true or leave pattern out")
		} else if p, ok := decodePattern(d, pn, field+".pattern"); ok {
			o.Pattern = p
		}
	}
	return o
}

// decodePattern reads the pattern option, written either as a YAML mapping
// or as a JSON string, checks its shape, and returns it as compact JSON.
func decodePattern(d *scenarios.Decoder, n *yaml.Node, field string) (string, bool) {
	var p any
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str":
		dec := json.NewDecoder(strings.NewReader(n.Value))
		dec.UseNumber()
		if err := dec.Decode(&p); err != nil {
			d.Errorf(n, field, "is not a JSON event pattern: %s", jsonProblem(n.Value, err))
			return "", false
		}
		if dec.More() {
			d.Errorf(n, field, "is not a JSON event pattern: text follows the JSON object")
			return "", false
		}
	case n.Kind == yaml.MappingNode:
		var ok bool
		if p, ok = yamlToJSON(d, n, field); !ok {
			return "", false
		}
	default:
		d.Errorf(n, field, "want an event pattern, as a mapping or a JSON string, such as {detail: {kind: [order]}}")
		return "", false
	}
	if msg := checkPattern(p, ""); msg != "" {
		d.Errorf(n, field, "%s", msg)
		return "", false
	}
	b, err := marshalJSON(p)
	if err != nil { // unreachable: p came from JSON or YAML scalars
		d.Errorf(n, field, "cannot be written as JSON: %v", err)
		return "", false
	}
	if len(b) > MaxPatternChars {
		d.Errorf(n, field, "is %d characters as JSON; EventBridge allows %d", len(b), MaxPatternChars)
		return "", false
	}
	return string(b), true
}

// jsonProblem describes a JSON syntax error with its position in s.
func jsonProblem(s string, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count([]byte(s[:min(int(se.Offset), len(s))]), []byte("\n"))
		return fmt.Sprintf("%v (at character %d, line %d of the pattern)", se, se.Offset, line)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "the JSON ends too soon; check the closing braces and quotes"
	}
	return err.Error()
}

// yamlToJSON turns a YAML pattern into JSON values, reporting scalars that
// JSON cannot hold.
func yamlToJSON(d *scenarios.Decoder, n *yaml.Node, field string) (any, bool) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		ok := true
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			path := field + "." + k.Value
			if _, dup := m[k.Value]; dup {
				d.Errorf(k, path, "given twice")
				ok = false
				continue
			}
			v, vok := yamlToJSON(d, n.Content[i+1], path)
			m[k.Value] = v
			ok = ok && vok
		}
		return m, ok
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		ok := true
		for i, c := range n.Content {
			v, vok := yamlToJSON(d, c, fmt.Sprintf("%s[%d]", field, i))
			s[i] = v
			ok = ok && vok
		}
		return s, ok
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, true
		case "!!bool":
			return n.Value == "true" || n.Value == "True" || n.Value == "TRUE", true
		case "!!int", "!!float":
			f, err := strconv.ParseFloat(n.Value, 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				d.Errorf(n, field, "%q is not a number JSON can hold", n.Value)
				return nil, false
			}
			return json.Number(strconv.FormatFloat(f, 'f', -1, 64)), true
		default:
			return n.Value, true
		}
	}
	d.Errorf(n, field, "cannot be part of an event pattern")
	return nil, false
}

// marshalJSON writes v as compact JSON without escaping <, > and &, which
// event patterns use (numeric matching).
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
