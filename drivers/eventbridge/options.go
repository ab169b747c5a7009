package eventbridge

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
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

// Limits the services set, used beyond the options table.
const (
	MaxBatch = 10               // PutEvents takes at most 10 entries
	MaxWait  = 20 * time.Second // the longest SQS long poll
)

// Options configures the driver. Each field is the scenario option of the
// same name; the package doc lists them with their defaults and limits
// (generated from the driver's options table). Start from DefaultOptions:
// New treats zero Source, DetailType, Batch, InFlight, VisibilityTimeout
// and Receivers as their defaults, and takes every other field as given
// (a zero Wait is a short poll).
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

// fillDefaults gives zero fields that have a default their default: the
// table's (options.FillZero), and the names' whose rows take "" from Go as
// unset (the others have no fixed default).
func (o *Options) fillDefaults() {
	options.FillZero(o)
	def := DefaultOptions()
	o.Source, o.DetailType = cmp.Or(o.Source, def.Source), cmp.Or(o.DetailType, def.DetailType)
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
		scenarios.IntOpt("in-flight", func(o *Options) *int { return &o.InFlight }, 1, 1024, "PutEvents requests in flight per producer"),
		scenarios.DurOpt("linger", func(o *Options) *time.Duration { return &o.Linger }, 0, 10*time.Second,
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
		scenarios.IntOpt("retries", func(o *Options) *int { return &o.Retries }, 0, 100, "times a failed entry is sent again"),
		scenarios.DurOpt("retry-backoff", func(o *Options) *time.Duration { return &o.RetryBackoff }, 0, 0,
			"wait before the first re-send, doubling with each further attempt up to 10s"),
		seconds("wait", 0, MaxWait, "the SQS long-poll limit", "ReceiveMessage long poll", func(o *Options) *time.Duration { return &o.Wait }),
		seconds("visibility-timeout", time.Second, 12*time.Hour, "SQS's limits", "how long a received, undeleted message stays hidden",
			func(o *Options) *time.Duration { return &o.VisibilityTimeout }),
		scenarios.IntOpt("receivers", func(o *Options) *int { return &o.Receivers }, 1, 64, "concurrent ReceiveMessage calls per consumer"),
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
	if slices.ContainsFunc(d.Problems(), func(p scenarios.Problem) bool { return p.Field == field+".provision" }) {
		return o // check's rules turn on provision: they would guess
	}
	for _, p := range o.check() {
		scenarios.ReportAt(d, n, field, p.key, p.msg)
	}
	return o
}

// checkEndpoint is the rule of endpoint: a URL, or Managed.
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
