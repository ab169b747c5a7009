package eventbridge_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/drivertest"
	"github.com/spate-dev/spate/drivers/eventbridge"
	"github.com/spate-dev/spate/scenarios"
)

// decode runs Kind.Options on the YAML src (nil for `driver: eventbridge`).
func decode(t *testing.T, src *string) (any, scenarios.Problems) {
	t.Helper()
	return drivertest.DecodeOptions(t, eventbridge.Kind, src)
}

func TestOptions(t *testing.T) {
	with := func(f func(*eventbridge.Options)) eventbridge.Options {
		o := eventbridge.DefaultOptions()
		f(&o)
		return o
	}
	for _, tc := range []struct {
		name string
		src  string
		want eventbridge.Options
	}{
		{"managed", "endpoint: managed", with(func(o *eventbridge.Options) { o.Endpoint, o.Provision = "managed", true })},
		{"existing resources", "{bus: orders, queue: spate-q}", with(func(o *eventbridge.Options) { o.Bus, o.Queue = "orders", "spate-q" })},
		{"queue URL", "{bus: default, queue: 'https://sqs.eu-west-1.amazonaws.com/123456789012/q', rule: r1}", with(func(o *eventbridge.Options) {
			o.Bus, o.Queue, o.Rule = "default", "https://sqs.eu-west-1.amazonaws.com/123456789012/q", "r1"
		})},
		{"every field", `
region: eu-west-1
endpoint: http://127.0.0.1:4566
profile: load
provision: true
bus: b
queue: q
rule: r
source: shop.orders
detail-type: OrderPlaced
pattern: {detail: {kind: [order, refund], amount: [{numeric: [">", 0]}]}}
batch: 5
in-flight: 16
linger: 20ms
rate-limit: 6000/m
retries: 3
retry-backoff: 50ms
wait: 5s
visibility-timeout: 2m
receivers: 8
probe: 0s
`, eventbridge.Options{
			Region: "eu-west-1", Endpoint: "http://127.0.0.1:4566", Profile: "load", Provision: true,
			Bus: "b", Queue: "q", Rule: "r", Source: "shop.orders", DetailType: "OrderPlaced",
			Pattern: `{"detail":{"amount":[{"numeric":[">",0]}],"kind":["order","refund"]}}`,
			Batch:   5, InFlight: 16, Linger: 20 * time.Millisecond, RateLimit: 100, Retries: 3, RetryBackoff: 50 * time.Millisecond,
			Wait: 5 * time.Second, VisibilityTimeout: 2 * time.Minute, Receivers: 8, ProbeTimeout: 0,
		}},
		{"pattern as JSON", `{provision: true, pattern: '{"detail": {"pad": [{"exists": true}]}, "account": ["000000000000"]}'}`,
			with(func(o *eventbridge.Options) {
				o.Provision, o.Pattern = true, `{"account":["000000000000"],"detail":{"pad":[{"exists":true}]}}`
			})},
		{"short poll", "{provision: true, wait: 0s}", with(func(o *eventbridge.Options) { o.Provision, o.Wait = true, 0 })},
		{"no linger", "{provision: true, linger: 0s}", with(func(o *eventbridge.Options) { o.Provision, o.Linger = true, 0 })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ps := decode(t, &tc.src)
			if len(ps) > 0 {
				t.Fatalf("problems:\n%v", ps)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("options = %+v\n       want %+v", got, tc.want)
			}
		})
	}
}

// TestOptionProblems checks each mistake's exact message and position
// (file:line:col), as `spate validate` prints them (exit status 2).
func TestOptionProblems(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want []string // each problem's Error(), in order; "~" prefix: a substring
	}{
		{"{}", []string{
			"test.yaml:1:1: driver.eventbridge.bus: required unless provision is true: name the existing event bus, or set provision: true to let spate create one",
			"test.yaml:1:1: driver.eventbridge.queue: required unless provision is true: name the existing SQS queue, or set provision: true to let spate create one",
		}},
		{"{provision: true, batch: 11}", []string{"test.yaml:1:26: driver.eventbridge.batch: must be a whole number from 1 to 10 (PutEvents takes at most 10 entries), got 11"}},
		{"{provision: true, batch: 0}", []string{"test.yaml:1:26: driver.eventbridge.batch: must be a whole number from 1 to 10 (PutEvents takes at most 10 entries), got 0"}},
		{"{provision: true, in-flight: 0}", []string{"test.yaml:1:30: driver.eventbridge.in-flight: must be a whole number from 1 to 1024, got 0"}},
		{"{provision: true, linger: 11s}", []string{"test.yaml:1:27: driver.eventbridge.linger: must be at most 10s, got 11s"}},
		{"{provision: true, linger: -1ms}", []string{`~test.yaml:1:27: driver.eventbridge.linger: duration "-1ms" must not be negative`}},
		{"{provision: true, rate-limit: 0/s}", []string{"test.yaml:1:31: driver.eventbridge.rate-limit: must be more than 0/s; leave rate-limit out for no limit"}},
		{"{provision: true, rate-limit: 10000}", []string{`~test.yaml:1:31: driver.eventbridge.rate-limit: rate "10000" needs a unit`}},
		{"{provision: true, retries: -1}", []string{"test.yaml:1:28: driver.eventbridge.retries: must be a whole number from 0 to 100, got -1"}},
		{"{provision: true, wait: 30s}", []string{"test.yaml:1:25: driver.eventbridge.wait: must be whole seconds from 0s to 20s (the SQS long-poll limit), got 30s"}},
		{"{provision: true, wait: 1500ms}", []string{"test.yaml:1:25: driver.eventbridge.wait: must be whole seconds from 0s to 20s (the SQS long-poll limit), got 1.5s"}},
		{"{provision: true, visibility-timeout: 0s}", []string{"test.yaml:1:39: driver.eventbridge.visibility-timeout: must be whole seconds from 1s to 12h (SQS's limits), got 0s"}},
		{"{provision: true, visibility-timeout: 13h}", []string{"test.yaml:1:39: driver.eventbridge.visibility-timeout: must be whole seconds from 1s to 12h (SQS's limits), got 13h0m0s"}},
		{"{provision: true, receivers: 65}", []string{"test.yaml:1:30: driver.eventbridge.receivers: must be a whole number from 1 to 64, got 65"}},
		{"{provision: true, endpoint: localhost:4566}", []string{`test.yaml:1:29: driver.eventbridge.endpoint: "localhost:4566" is not a URL such as http://127.0.0.1:4566 nor "managed" (spate starts the kumo emulator)`}},
		{"{endpoint: managed, provision: false}", []string{"test.yaml:1:32: driver.eventbridge.provision: must be true with endpoint: managed (the emulator starts empty)"}},
		{"{provision: true, source: aws.ec2}", []string{`test.yaml:1:27: driver.eventbridge.source: starts with "aws.", which AWS reserves for its own events`}},
		{"{provision: true, source: ''}", []string{"test.yaml:1:27: driver.eventbridge.source: must not be empty"}},
		{"{provision: true, region: ''}", []string{"test.yaml:1:27: driver.eventbridge.region: must not be empty; leave region out to take it from the AWS config"}},
		{"{bus: 'my bus', queue: q}", []string{"test.yaml:1:7: driver.eventbridge.bus: is not a valid event bus name (1 to 256 letters, digits and . _ - /)"}},
		{"{bus: b, queue: orders.fifo}", []string{"test.yaml:1:17: driver.eventbridge.queue: is a FIFO queue; spate needs a standard queue"}},
		{"{provision: true, rule: 'a:b'}", []string{"test.yaml:1:25: driver.eventbridge.rule: is not a valid rule name (1 to 64 letters, digits and . _ -)"}},
		{"{provision: true, provison: true}", []string{`~test.yaml:1:19: driver.eventbridge.provison: unknown field (did you mean "provision"?); valid fields: region, endpoint,`}},
		{"{provision: yes}", []string{`test.yaml:1:13: driver.eventbridge.provision: want true or false, got "yes"`}},
		// Malformed patterns, as JSON and as YAML.
		{`{provision: true, pattern: '{"detail": {"kind": ["a"]}'}`, []string{
			"test.yaml:1:28: driver.eventbridge.pattern: is not a JSON event pattern: the JSON ends too soon; check the closing braces and quotes",
		}},
		{`{provision: true, pattern: '{"detail": {"kind": "a"}}'}`, []string{
			`test.yaml:1:28: driver.eventbridge.pattern: detail.kind must be a list of values to match, such as ["a"], or an object`,
		}},
		{`{provision: true, pattern: '{"detail" {}}'}`, []string{
			"test.yaml:1:28: driver.eventbridge.pattern: is not a JSON event pattern: invalid character '{' after object key (at character 11, line 1 of the pattern)",
		}},
		{"{provision: true, pattern: {source: [other]}}", []string{
			"test.yaml:1:28: driver.eventbridge.pattern: source: spate matches source itself (set it with source:)",
		}},
		{"{provision: true, pattern: {detail: {run: [x]}}}", []string{
			"test.yaml:1:28: driver.eventbridge.pattern: detail.run: spate matches detail.run itself (it holds the run id)",
		}},
		{"{provision: true, pattern: {detail: {kind: []}}}", []string{
			"test.yaml:1:28: driver.eventbridge.pattern: detail.kind must list at least one value to match",
		}},
		{"{provision: true, pattern: {detail: [x]}}", []string{
			`test.yaml:1:28: driver.eventbridge.pattern: detail must be an object naming detail fields, such as {"kind": ["order"]}`,
		}},
		{"{provision: true, pattern: [a]}", []string{
			"test.yaml:1:28: driver.eventbridge.pattern: want an event pattern, as a mapping or a JSON string, such as {detail: {kind: [order]}}",
		}},
		{"{provision: true, pattern: {}}", []string{
			"test.yaml:1:28: driver.eventbridge.pattern: must not be empty; leave pattern out for none",
		}},
		{"{bus: b, queue: q, pattern: {detail: {kind: [a]}}}", []string{
			"test.yaml:1:29: driver.eventbridge.pattern: applies only to the rule spate provisions; set provision: true or leave pattern out",
		}},
		// Every problem at once, in file order.
		{"batch: 20\nreceivers: 0\nwait: 21s\nbogus: 1", []string{
			"test.yaml:1:1: driver.eventbridge.bus: required unless provision is true: name the existing event bus, or set provision: true to let spate create one",
			"test.yaml:1:1: driver.eventbridge.queue: required unless provision is true: name the existing SQS queue, or set provision: true to let spate create one",
			"test.yaml:1:8: driver.eventbridge.batch: must be a whole number from 1 to 10 (PutEvents takes at most 10 entries), got 20",
			"test.yaml:2:12: driver.eventbridge.receivers: must be a whole number from 1 to 64, got 0",
			"test.yaml:3:7: driver.eventbridge.wait: must be whole seconds from 0s to 20s (the SQS long-poll limit), got 21s",
			"~test.yaml:4:1: driver.eventbridge.bogus: unknown field",
		}},
	} {
		t.Run(tc.src, func(t *testing.T) {
			_, ps := decode(t, &tc.src)
			drivertest.CheckProblems(t, ps, tc.want)
		})
	}
}

// TestBareKind: `driver: eventbridge` without options cannot work, and
// says what to add.
func TestBareKind(t *testing.T) {
	_, ps := decode(t, nil)
	if len(ps) != 1 || !strings.Contains(ps[0].Error(), "needs options: `provision: true`") {
		t.Fatalf("problems: %v", ps)
	}
}

// TestOpenChecksOptions: options built in Go are checked by Open too, with
// errors that name the fields.
func TestOpenChecksOptions(t *testing.T) {
	env := testEnv(t, 1, 1)
	for _, tc := range []struct {
		o    any
		want string
	}{
		{eventbridge.Options{}, "bus and queue must be named unless provision is true"},
		{eventbridge.Options{Provision: true, Batch: 11}, "batch must be within 1..10, got 11"},
		{eventbridge.Options{Provision: true, Wait: time.Minute}, "wait must be whole seconds within 0s..20s"},
		{eventbridge.Options{Provision: true, VisibilityTimeout: 1500 * time.Millisecond}, "visibility-timeout must be whole seconds"},
		{eventbridge.Options{Provision: true, Pattern: "{"}, "pattern is not JSON"},
		{eventbridge.Options{Provision: true, Pattern: `{"source": ["x"]}`}, "pattern: source: spate matches source itself"},
		{eventbridge.Options{Provision: true, Endpoint: "ftp://x"}, `endpoint "ftp://x" is not an http:// or https:// URL`},
		{eventbridge.Options{Endpoint: eventbridge.Managed}, "endpoint: managed starts an empty emulator, so provision must be true"},
		{eventbridge.Options{Provision: true, Source: "aws.s3"}, `source "aws.s3" starts with "aws."`},
		{nil, "no options"},
		{"provision: true", "options of type string"},
	} {
		_, err := eventbridge.Kind.Open(context.Background(), tc.o, env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%#v) = %v, want an error containing %q", tc.o, err, tc.want)
		}
	}
}

// TestExamples: the example scenarios are valid.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "examples", "eventbridge-*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples/eventbridge-*.yaml (%v)", err)
	}
	l := &scenarios.Loader{}
	l.Driver(eventbridge.Kind.Name, eventbridge.Kind.Options)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Parse(f, data); err != nil {
			t.Errorf("%s:\n%v", f, err)
		}
	}
}

// TestAbilities: the options say which faults a driver so configured can
// take, for scenario validation.
func TestAbilities(t *testing.T) {
	for _, tc := range []struct {
		src     string
		restart bool
	}{
		{"{endpoint: managed}", true},
		{"{provision: true, endpoint: 'http://127.0.0.1:4566'}", false},
		{"{bus: b, queue: q}", false},
	} {
		o, ps := decode(t, &tc.src)
		if len(ps) > 0 {
			t.Fatal(ps)
		}
		for _, a := range []string{scenarios.AbilityConsumerCrash, scenarios.AbilityDial} {
			if !drivers.HasAbility(o, a) {
				t.Errorf("%s: no %s", tc.src, a)
			}
		}
		if got := drivers.HasAbility(o, scenarios.AbilityBrokerRestart); got != tc.restart {
			t.Errorf("%s: broker-restart %v, want %v", tc.src, got, tc.restart)
		}
		if drivers.HasAbility(o, scenarios.AbilityProtocolError) || drivers.HasAbility(o, scenarios.AbilityLeaderMove) {
			t.Errorf("%s: claims an ability it does not have", tc.src)
		}
	}
}

// TestPatternFromYAML: a pattern written in YAML becomes the JSON it
// stands for: numbers as numbers, keys as strings even when YAML reads a
// number, aliases followed; a key given twice is a problem.
func TestPatternFromYAML(t *testing.T) {
	src := "{provision: true, pattern: {account: &a ['1'], detail: {1: [0x10, 1e3, true, null], k: *a}}}"
	o, ps := decode(t, &src)
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	if got, want := o.(eventbridge.Options).Pattern, `{"account":["1"],"detail":{"1":[16,1000,true,null],"k":["1"]}}`; got != want {
		t.Errorf("pattern %s, want %s", got, want)
	}
	src = "{provision: true, pattern: {detail: {k: [a], k: [b]}}}"
	_, ps = decode(t, &src)
	drivertest.CheckProblems(t, ps, []string{`test.yaml:1:28: driver.eventbridge.pattern: is not an event pattern: line 1: mapping key "k" already defined at line 1`})
}
