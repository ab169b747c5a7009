package eventbridge

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/scenarios"
)

// Managed is the value of `endpoint` that makes spate start the kumo
// emulator itself (see the package documentation).
const Managed = "managed"

// Limits of the options: the PutEvents and SQS limits are the services' own.
const (
	MaxBatch             = 10 // PutEvents takes at most 10 entries
	MaxInFlight          = 1024
	MaxLinger            = 10 * time.Second
	MaxRetries           = 100
	MaxWait              = 20 * time.Second // the longest SQS long poll
	MaxVisibilityTimeout = 12 * time.Hour   // SQS's maximum
	MaxReceivers         = 64

	// MaxEntryBytes is the largest PutEvents entry and the largest request
	// (the sum of its entries), as EventBridge computes them: 256 KiB.
	MaxEntryBytes = 256 << 10
	// MaxPatternChars is EventBridge's limit on an event pattern's size.
	MaxPatternChars = 2048
)

// Options configures the driver. Each field is the scenario option of the
// same name; the package doc lists them with their defaults and limits
// (generated from the driver's options table). Start from DefaultOptions:
// New treats zero Source, DetailType, Batch, InFlight, Wait,
// VisibilityTimeout and Receivers as their defaults, and takes every other
// field as given.
type Options struct {
	Region, Endpoint, Profile string // Endpoint: a URL, Managed, or "" for AWS
	Provision                 bool
	// Bus, Queue (a name or a queue URL) and Rule: with Provision, empty
	// names default to spate-<run id>; without it Bus and Queue are
	// required and Rule, if given, is checked to target the queue.
	Bus, Queue, Rule   string
	Source, DetailType string
	Pattern            string // extra conditions, a JSON object; "" for none
	Batch, InFlight    int    // entries per PutEvents, requests in flight per producer
	Linger             time.Duration
	RateLimit          float64 // entries per second across producers; 0: no cap
	Retries            int
	RetryBackoff       time.Duration
	Wait               time.Duration // whole seconds
	VisibilityTimeout  time.Duration // whole seconds
	Receivers          int
	ProbeTimeout       time.Duration // the scenario's probe; 0 skips the probe

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

// DefaultOptions returns the defaults (the package doc's table shows them).
func DefaultOptions() Options {
	return Options{
		Source: "spate", DetailType: "spate.message", Batch: MaxBatch, InFlight: 8,
		Linger: 5 * time.Millisecond, RetryBackoff: 100 * time.Millisecond, Wait: MaxWait,
		VisibilityTimeout: 30 * time.Second, Receivers: 4, ProbeTimeout: 30 * time.Second,
	}
}

// fillDefaults gives zero fields that have a default their default.
func (o *Options) fillDefaults() {
	def := DefaultOptions()
	o.Source, o.DetailType = cmp.Or(o.Source, def.Source), cmp.Or(o.DetailType, def.DetailType)
	o.Batch, o.InFlight, o.Receivers = cmp.Or(o.Batch, def.Batch), cmp.Or(o.InFlight, def.InFlight), cmp.Or(o.Receivers, def.Receivers)
	o.Wait, o.VisibilityTimeout = cmp.Or(o.Wait, def.Wait), cmp.Or(o.VisibilityTimeout, def.VisibilityTimeout)
}

// options is the driver's options, declared once: the scenario block is
// decoded, Go callers' options checked and the docs' tables
// (scenarios/README.md, the package doc) written from these rows.
//
//go:generate go test -run TestOptionsDocs -update-docs .
var options = scenarios.OptionsTable[Options]{
	Defaults: DefaultOptions,
	Opts: []scenarios.Opt[Options]{
		name("region", func(o *Options) *string { return &o.Region }, "must not be empty; leave region out to take it from the AWS config", nil,
			"AWS region").WithDefault("the AWS config chain (AWS_REGION, the profile); us-east-1 with an endpoint"),
		opt("endpoint", "URL or `managed`", "service endpoint of EventBridge and SQS, for emulators; `managed` starts the kumo emulator",
			func(o *Options) *string { return &o.Endpoint }, func(s string) string { return s }, checkEndpoint).WithDefault("AWS's endpoints"),
		name("profile", func(o *Options) *string { return &o.Profile }, "must not be empty; leave profile out for the default profile", nil,
			"shared AWS config profile").WithDefault("AWS_PROFILE or the default profile"),
		scenarios.BoolOpt("provision", func(o *Options) *bool { return &o.Provision },
			"create the bus, queue, queue policy, rule and target at Open and remove them at Close").WithDefault("`true` with endpoint: managed, else `false`"),
		name("bus", func(o *Options) *string { return &o.Bus }, "must not be empty", busName,
			"event bus name; \"default\" names the account's default bus").WithDefault("`spate-<run id>` with provision"),
		name("queue", func(o *Options) *string { return &o.Queue }, "must not be empty", checkQueue,
			"SQS standard queue, by name or URL").WithDefault("`spate-<run id>` with provision"),
		name("rule", func(o *Options) *string { return &o.Rule }, "must not be empty", ruleName,
			"rule name; without provision, optional: checked to target the queue").WithDefault("`spate-<run id>` with provision"),
		name("source", func(o *Options) *string { return &o.Source }, "must not be empty", checkSource, "every event's source"),
		name("detail-type", func(o *Options) *string { return &o.DetailType }, "must not be empty",
			func(s string) string { return longer(s, 128) }, "every event's detail-type"),
		scenarios.CustomOpt("pattern", "mapping or JSON string", "extra event-pattern conditions the provisioned rule requires, e.g. `{detail: {pad: [{exists: true}]}}`",
			decodePattern, nil, nil),
		opt("batch", "1..10", "entries per PutEvents request", func(o *Options) *int { return &o.Batch }, func(v int) int { return v },
			func(v int) (string, string) {
				if v >= 1 && v <= MaxBatch {
					return "", ""
				}
				return fmt.Sprintf("must be a whole number from 1 to %d (PutEvents takes at most 10 entries), got %d", MaxBatch, v),
					fmt.Sprintf("must be within 1..%d, got %d", MaxBatch, v)
			}),
		scenarios.IntOpt("in-flight", func(o *Options) *int { return &o.InFlight }, 1, MaxInFlight, "PutEvents requests in flight per producer"),
		scenarios.DurOpt("linger", func(o *Options) *time.Duration { return &o.Linger }, 0, MaxLinger,
			"how long a request that is not full waits for more entries; `0s` sends each Send's messages at once"),
		opt("rate-limit", "rate", "most PutEvents entries per second across all producers, e.g. `10000/s`",
			func(o *Options) *float64 { return &o.RateLimit }, scenarios.Rate.PerSecond, func(v float64) (string, string) {
				const msg = "must be more than 0/s; leave rate-limit out for no limit"
				switch {
				case v > 0 && !math.IsInf(v, 0):
					return "", ""
				case v == 0:
					return msg, ""
				}
				return msg, fmt.Sprintf("must be a positive rate or 0 for none, got %v", v)
			}).WithDefault("no limit"),
		scenarios.IntOpt("retries", func(o *Options) *int { return &o.Retries }, 0, MaxRetries, "times a failed entry is sent again"),
		scenarios.DurOpt("retry-backoff", func(o *Options) *time.Duration { return &o.RetryBackoff }, 0, 0,
			"wait before the first re-send, doubling with each further attempt up to 10s"),
		seconds("wait", 0, MaxWait, "the SQS long-poll limit", "ReceiveMessage long poll", func(o *Options) *time.Duration { return &o.Wait }),
		seconds("visibility-timeout", time.Second, MaxVisibilityTimeout, "SQS's limits", "how long a received, undeleted message stays hidden",
			func(o *Options) *time.Duration { return &o.VisibilityTimeout }),
		scenarios.IntOpt("receivers", func(o *Options) *int { return &o.Receivers }, 1, MaxReceivers, "concurrent ReceiveMessage calls per consumer"),
		scenarios.DurOpt("probe", func(o *Options) *time.Duration { return &o.ProbeTimeout }, 0, 0,
			"Open puts a probe event and waits this long for it to reach the queue; `0s` skips the check"),
	},
}

// opt is a row whose value, decoded as a D and kept as a T, is judged by
// rule: what is wrong with it in a scenario, and in options made in Go
// (worded as Go callers have been told; "" there: a zero meaning unset).
func opt[D, T any](key, values, doc string, f func(*Options) *T, conv func(D) T, rule func(T) (msg, inGo string)) scenarios.Opt[Options] {
	return scenarios.CustomOpt(key, values, doc,
		func(d *scenarios.Decoder, n *yaml.Node, field string, o *Options) {
			var v D
			if !d.Decode(n, field, &v) {
				return
			}
			if msg, _ := rule(conv(v)); msg != "" {
				d.Errorf(n, field, "%s", msg)
				return
			}
			*f(o) = conv(v)
		},
		func(o *Options) string { _, inGo := rule(*f(o)); return inGo },
		func(o *Options) string { return fmt.Sprint(*f(o)) })
}

// name is a string option that, given, must not be empty (empty says so)
// and must pass valid (nil: anything); "" in Go means unset.
func name(key string, f func(*Options) *string, empty string, valid func(string) string, doc string) scenarios.Opt[Options] {
	return opt(key, "string", doc, f, func(s string) string { return s }, func(v string) (string, string) {
		switch {
		case v == "":
			return empty, ""
		case valid == nil || valid(v) == "":
			return "", ""
		}
		return valid(v), fmt.Sprintf("%q %s", v, valid(v))
	})
}

// seconds is a duration option of whole seconds in lo..hi; why names the limit.
func seconds(key string, lo, hi time.Duration, why, doc string, f func(*Options) *time.Duration) scenarios.Opt[Options] {
	span := fmt.Sprintf("%s..%s", scenarios.FormatDuration(lo), scenarios.FormatDuration(hi))
	return opt(key, "whole seconds, "+span, doc, f, scenarios.Duration.D, func(v time.Duration) (string, string) {
		if v >= lo && v <= hi && v%time.Second == 0 {
			return "", ""
		}
		return fmt.Sprintf("must be whole seconds from %s to %s (%s), got %v", scenarios.FormatDuration(lo), scenarios.FormatDuration(hi), why, v),
			fmt.Sprintf("must be whole seconds within %s, got %v", span, v)
	})
}

// problem is one mistake in Options: the option's YAML key and what is
// wrong, as a scenario's problem; inGo, when set, is the whole message Go
// callers get instead.
type problem struct{ key, msg, inGo string }

// check returns the problems of o that relate several options.
func (o *Options) check() []problem {
	var ps []problem
	if !o.Provision && o.Endpoint != Managed {
		for _, r := range []struct{ key, what, v string }{{"bus", "event bus", o.Bus}, {"queue", "SQS queue", o.Queue}} {
			if r.v == "" {
				ps = append(ps, problem{r.key, fmt.Sprintf("required unless provision is true: name the existing %s, or set provision: true to let spate create one", r.what),
					"bus and queue must be named unless provision is true"})
			}
		}
	}
	if o.Endpoint == Managed && !o.Provision {
		ps = append(ps, problem{"provision", "must be true with endpoint: managed (the emulator starts empty)",
			"endpoint: managed starts an empty emulator, so provision must be true"})
	}
	if o.Pattern != "" && !o.Provision {
		ps = append(ps, problem{"pattern", "applies only to the rule spate provisions; set provision: true or leave pattern out", ""})
	}
	if o.Pattern != "" {
		if p, err := parseJSON(o.Pattern); err != nil {
			ps = append(ps, problem{"pattern", "is not JSON: " + jsonProblem(o.Pattern, err), ""})
		} else if msg := checkPattern(p, ""); msg != "" {
			ps = append(ps, problem{"pattern", msg, "pattern: " + msg})
		}
	}
	return ps
}

// validate checks o (options made in Go) after zero fields took their
// defaults: the table's rules, then check's.
func (o Options) validate() error {
	var msgs []string
	for _, p := range options.Check(&o) {
		key, msg, _ := strings.Cut(p, ": ")
		msgs = append(msgs, key+" "+msg)
	}
	for _, p := range o.check() {
		msgs = append(msgs, cmp.Or(p.inGo, p.key+" "+p.msg))
	}
	var errs []error
	for _, m := range slices.Compact(msgs) { // bus and queue share one message
		errs = append(errs, errors.New("eventbridge: "+m))
	}
	return errors.Join(errs...)
}

// decodeOptions is Kind.Options: it decodes the options block n (nil for a
// bare `driver: eventbridge`) into an Options value, recording every
// problem on d.
func decodeOptions(d *scenarios.Decoder, n *yaml.Node, field string) any {
	if scenarios.IsNull(n) {
		d.Errorf(n, field, "needs options: `provision: true` to let spate create a bus, queue and rule, "+
			"or the bus: and queue: to use, e.g. driver: {eventbridge: {provision: true, endpoint: managed}}")
		return DefaultOptions()
	}
	o := options.Decode(d, n, field)
	if o.Endpoint == Managed && scenarios.Child(n, "provision") == nil {
		o.Provision = true // a managed emulator starts empty
	}
	failed := map[string]bool{}
	for _, p := range d.Problems() {
		failed[p.Field] = true
	}
	if failed[field+".provision"] {
		return o // check's rules turn on provision: they would guess
	}
	for _, p := range o.check() {
		if f := field + "." + p.key; !failed[f] {
			failed[f] = true
			d.Errorf(cmp.Or(scenarios.Child(n, p.key), n), f, "%s", p.msg)
		}
	}
	return o
}

// Name rules of the services, checked before any request is made.
var (
	busName   = match(`^[A-Za-z0-9._\-/]{1,256}$`, "is not a valid event bus name (1 to 256 letters, digits and . _ - /)")
	queueName = match(`^[A-Za-z0-9_-]{1,80}$`, "is not a valid queue name (1 to 80 letters, digits, - and _) nor a queue URL")
	ruleName  = match(`^[A-Za-z0-9._-]{1,64}$`, "is not a valid rule name (1 to 64 letters, digits and . _ -)")
)

// match is the rule of a name that must match re, and msg otherwise.
func match(re, msg string) func(string) string {
	r := regexp.MustCompile(re)
	return func(s string) string {
		if r.MatchString(s) {
			return ""
		}
		return msg
	}
}

func longer(s string, n int) string {
	if len(s) > n {
		return fmt.Sprintf("is longer than %d characters", n)
	}
	return ""
}

func checkEndpoint(e string) (string, string) {
	if e == "" || e == Managed {
		return "", ""
	}
	if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("%q is not a URL such as http://127.0.0.1:4566 nor %q (spate starts the kumo emulator)", e, Managed),
			fmt.Sprintf("%q is not an http:// or https:// URL nor %q", e, Managed)
	}
	return "", ""
}

func checkQueue(s string) string {
	isURL := strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
	if u, err := url.Parse(s); isURL && (err != nil || u.Host == "" || strings.Trim(u.Path, "/") == "") {
		return "is not a queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/name"
	}
	switch {
	case strings.HasSuffix(s, ".fifo"):
		return "is a FIFO queue; spate needs a standard queue"
	case isURL:
		return ""
	}
	return queueName(s)
}

func checkSource(s string) string {
	if msg := longer(s, 256); msg != "" || !strings.HasPrefix(s, "aws.") {
		return msg
	}
	return `starts with "aws.", which AWS reserves for its own events`
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
	switch {
	case !ok:
		return `must be a JSON object such as {"detail": {"kind": ["order"]}}`
	case path == "" && len(m) == 0:
		return "must not be empty; leave pattern out for none"
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		sub := strings.TrimPrefix(path+"."+k, ".")
		if msg, ok := spateKeys[sub]; ok {
			return sub + ": " + msg
		}
		if _, isMap := m[k].(map[string]any); !isMap && sub == "detail" {
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
			b, _ := marshalJSON(v)
			return fmt.Sprintf("%s must be a list of values to match, such as [%s], or an object", sub, b)
		}
	}
	return ""
}

// decodePattern reads the pattern option, written either as a YAML mapping
// or as a JSON string, checks its shape, and keeps it as compact JSON.
func decodePattern(d *scenarios.Decoder, n *yaml.Node, field string, o *Options) {
	var p any
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str":
		var err error
		if p, err = parseJSON(n.Value); err != nil {
			d.Errorf(n, field, "is not a JSON event pattern: %s", jsonProblem(n.Value, err))
			return
		}
	case n.Kind == yaml.MappingNode:
		if err := n.Decode(&p); err != nil {
			var te *yaml.TypeError // keys given twice
			if errors.As(err, &te) {
				err = errors.New(strings.Join(te.Errors, "; "))
			}
			d.Errorf(n, field, "is not an event pattern: %v", err)
			return
		}
		p = stringKeys(p)
	default:
		d.Errorf(n, field, "want an event pattern, as a mapping or a JSON string, such as {detail: {kind: [order]}}")
		return
	}
	b, err := marshalJSON(p)
	switch {
	case err == nil && checkPattern(p, "") != "":
		d.Errorf(n, field, "%s", checkPattern(p, ""))
	case err != nil:
		d.Errorf(n, field, "cannot be written as JSON: %v", err)
	case len(b) > MaxPatternChars:
		d.Errorf(n, field, "is %d characters as JSON; EventBridge allows %d", len(b), MaxPatternChars)
	default:
		o.Pattern = string(b)
	}
}

// stringKeys makes the keys of YAML mappings in v strings, as JSON's are
// (YAML reads `1: [x]` with a number for key).
func stringKeys(v any) any {
	switch v := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[fmt.Sprint(k)] = stringKeys(x)
		}
		return m
	case map[string]any:
		for k, x := range v {
			v[k] = stringKeys(x)
		}
	case []any:
		for i, x := range v {
			v[i] = stringKeys(x)
		}
	}
	return v
}

// parseJSON reads s, one JSON value, keeping numbers as written.
func parseJSON(s string) (any, error) {
	var p any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("text follows the JSON object")
	}
	return p, nil
}

// jsonProblem describes a JSON syntax error with its position in s.
func jsonProblem(s string, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + strings.Count(s[:min(int(se.Offset), len(s))], "\n")
		return fmt.Sprintf("%v (at character %d, line %d of the pattern)", se, se.Offset, line)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "the JSON ends too soon; check the closing braces and quotes"
	}
	return err.Error()
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
