// Package eventbridge drives Amazon EventBridge through aws-sdk-go-v2.
// EventBridge has no consume API, so spate observes events through a
// target: producers call PutEvents on an event bus, a rule routes the run's
// events to an SQS standard queue, and consumers long-poll that queue. The
// end-to-end latency therefore covers PutEvents → rule → SQS → receive.
//
// # Options
//
// A scenario selects it with an options block, for instance against the
// kumo emulator that spate starts itself:
//
//	driver: {eventbridge: {endpoint: managed}}
//
// or against AWS, with resources that spate creates and removes:
//
//	driver: {eventbridge: {region: eu-west-1, provision: true, rate-limit: 5000/s}}
//
// The options:
//
//	region              AWS region (default: the AWS config chain, e.g.
//	                    AWS_REGION or the profile; us-east-1 with endpoint)
//	endpoint            service endpoint of EventBridge and SQS, for
//	                    emulators, e.g. http://127.0.0.1:4566; `managed`
//	                    starts the kumo emulator (see below). Default: AWS.
//	profile             shared config profile (default: AWS_PROFILE or default)
//	provision           true: create the bus, queue, queue policy, rule and
//	                    target at Open, remove them at Close (default false;
//	                    true with endpoint: managed)
//	bus                 event bus name (provision: default spate-<run id>;
//	                    "default" uses the account's default bus)
//	queue               SQS standard queue, by name or URL (provision:
//	                    default spate-<run id>)
//	rule                rule name (provision: default spate-<run id>; without
//	                    provision, optional: checked to target the queue)
//	source              every event's source (default "spate")
//	detail-type         every event's detail-type (default "spate.message")
//	pattern             extra event-pattern conditions the provisioned rule
//	                    requires, as a mapping or a JSON string, e.g.
//	                    {detail: {pad: [{exists: true}]}}
//	batch               entries per PutEvents request, 1..10 (default 10)
//	in-flight           PutEvents requests in flight per producer (default 8)
//	linger              how long a request that is not full waits for more
//	                    entries; 0s sends each Send's messages at once
//	                    (default 5ms)
//	rate-limit          most PutEvents entries per second across all
//	                    producers, e.g. 10000/s (default: no limit)
//	retries             times a failed entry is sent again (default 0)
//	retry-backoff       wait before the first re-send, doubling after
//	                    (default 100ms, at most 10s)
//	wait                ReceiveMessage long poll, 0s..20s (default 20s)
//	visibility-timeout  how long a received, undeleted message stays hidden,
//	                    1s..12h (default 30s)
//	receivers           concurrent ReceiveMessage calls per consumer (default 4)
//	probe               Open puts a probe event and waits this long for it
//	                    to reach the queue; 0s skips the check (default 30s)
//
// Credentials and region come from the standard AWS config chain
// (environment, shared config files, SSO, web identity, the EC2 and ECS
// metadata services) through aws-sdk-go-v2/config; Open fails with exit
// status 1 when it finds no credentials. With endpoint: managed, fixed test
// credentials are used.
//
// # Rate limit and AWS quotas
//
// PutEvents has a per-account, per-region quota shared by every event bus:
// 10,000 per second in us-east-1, us-west-2 and eu-west-1, 2,400 in
// us-east-2 and several other large regions, and lower in smaller ones;
// see the EventBridge quotas page and Service Quotas for your account.
// Beyond it AWS answers entries with ThrottlingException, which spate
// counts as failed (or re-sends, with retries). rate-limit caps the entries
// this run sends per second, all producers together, so a test can stay
// under the quota (or under a share of it left to production traffic).
// The cap counts entries, the stricter reading of a quota stated in
// transactions; it is one token bucket per driver, that is per run and
// region. Producers that wait for the cap send late, and the latency clock,
// which starts at each message's intended time, shows the wait.
//
// # Events
//
// Each message becomes one entry with the scenario's source and
// detail-type, and the Detail
//
//	{"run":"<run id>","spate":"<base64 of the 48-byte stamp>","pad":"..."}
//
// where pad is filler chosen so that the entry's size, as EventBridge
// computes it for quotas and limits (14 bytes for Time, plus Source,
// DetailType and Detail), equals the message size; messages smaller than
// the fixed part (about 140 bytes with the default names) are sent at that
// minimum. A message whose entry would exceed 256 KiB fails without being
// sent. Entries go out in requests of up to `batch` entries and 256 KiB; a
// request that is not full waits up to `linger` for more (the engine hands
// over what is due, often one message at a time, and every request is a
// round trip and a transaction), and Producer.Close sends it at once.
//
// An entry is acked when PutEvents answers with an EventId for it, and
// failed when it answers with an ErrorCode (ThrottlingException,
// InternalFailure, ...) or the whole request fails after the SDK's own
// retries (the standard retryer: 3 attempts, without its client-side retry
// quota so chaos does not turn into spurious failures). With retries, failed
// entries with a transient error are sent again after the backoff and get
// the outcome of their last attempt; if an attempt that reported failure had
// in fact landed, the re-send shows up as a duplicate. The publish latency
// is the PutEvents response time minus the send time, so it includes the
// linger wait and any rate-limit wait.
//
// # Delivery
//
// Consumers share the queue; each runs `receivers` ReceiveMessage long polls
// (10 messages each) and hands what they get to its Handler, one call at a
// time, then deletes the batch with DeleteMessageBatch. Deliveries carry
// Stream drivers.Unordered (a standard queue does not order) and
// Redelivered when SQS's ApproximateReceiveCount is above 1. The SQS body is
// the event envelope; it is parsed defensively (AWS sends resources, kumo
// an event-bus-name instead, and a target InputPath of $.detail leaves only
// the detail), and a message without a spate stamp is delivered as
// malformed. Every message received is deleted, including other runs'
// messages (counted as foreign), so a queue named without provision should
// serve one run at a time.
//
// # Provisioning
//
// With provision, Open creates (failing if any already exists, so spate
// never removes what it did not create): the bus (unless it is "default"),
// the queue with the visibility timeout, the rule with the pattern
//
//	{"source": [source], "detail-type": [detail-type], "detail": {"run": [run id]}}
//
// plus any `pattern` conditions, a queue policy that lets
// events.amazonaws.com send to the queue from that rule only, and the rule's
// target. Close removes them in reverse order (the engine also calls Close on
// Ctrl-C). Without provision, Open checks that the bus and queue exist and,
// if rule is given, that it is enabled and targets the queue. In both modes
// Open then puts a probe event (shaped like spate's events, without a
// stamp) and waits for it on the queue, so a rule that does not match or a
// queue policy that does not let EventBridge in fails the run at once with
// an explanation instead of as 100% loss.
//
// # Abilities
//
//   - drivers.Crasher: a consumer's Crash cancels its receives and deletes
//     at once and drops its connections; messages it had received but not
//     deleted reappear after the visibility timeout (redeliveries, counted
//     as duplicates).
//   - Env.Dial: every connection (per side: producers' PutEvents,
//     consumers' ReceiveMessage and DeleteMessageBatch, admin calls and the
//     credential chain) is opened through it, so network faults apply.
//   - drivers.BrokerRestarter, with endpoint: managed: the emulator is one
//     broker (id 0) that can be stopped gracefully (SIGTERM: it finishes the
//     requests in progress, long polls included, so this takes up to `wait`,
//     then saves its state) or killed (SIGKILL: changes since its last
//     snapshot, at most 1s old, are lost), and started again on the same
//     port with its saved state. Messages received and not yet deleted are
//     not part of kumo's saved state: after a restart they are gone rather
//     than redelivered.
//   - drivers.StatsReporter: Stats returns the client's own figures (see
//     Driver.Stats).
//
// # Permissions
//
// The calls spate makes, for an IAM policy: events:PutEvents,
// events:DescribeEventBus, events:DescribeRule and events:ListTargetsByRule
// always; with provision also events:CreateEventBus, events:DeleteEventBus,
// events:PutRule, events:DeleteRule, events:PutTargets and
// events:RemoveTargets. On the queue: sqs:GetQueueUrl,
// sqs:GetQueueAttributes, sqs:ReceiveMessage, sqs:DeleteMessage,
// sqs:DeleteMessageBatch and sqs:ChangeMessageVisibility; with provision
// also sqs:CreateQueue, sqs:SetQueueAttributes and sqs:DeleteQueue.
//
// # endpoint: managed
//
// spate starts the kumo emulator (github.com/sivchari/kumo), built from the
// repository's tools module, on a free loopback port with its state in a
// temporary directory, and stops it at Close. The binary is found through
// the SPATE_KUMO environment variable, then as `kumo` on PATH;
// .ci/kumo.sh builds it and prints its path.
package eventbridge

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
)

// Kind is the driver as scenarios name it: `driver: {eventbridge: {...}}`.
var Kind = drivers.Kind{Name: "eventbridge", Options: decodeOptions, Open: open}

// ErrClosed is returned by every method called after Driver.Close, and by
// Consume when the driver is closed under it.
var ErrClosed = errors.New("eventbridge: driver closed")

// credentialsTimeout bounds the credential lookup at Open.
const credentialsTimeout = 20 * time.Second

// cleanupTimeout bounds removing provisioned resources after a failed Open.
const cleanupTimeout = 30 * time.Second

func open(ctx context.Context, options any, env drivers.Env) (drivers.Driver, error) {
	var o Options
	switch v := options.(type) {
	case Options:
		o = v
	case *Options:
		if v == nil {
			return nil, errors.New("eventbridge: no options: name a bus and queue, or set provision: true")
		}
		o = *v
	case nil:
		return nil, errors.New("eventbridge: no options: name a bus and queue, or set provision: true")
	default:
		return nil, fmt.Errorf("eventbridge: options of type %T, want eventbridge.Options", options)
	}
	d, err := New(ctx, o, env)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return d, nil
}

// Driver is one run's connection to EventBridge and SQS. Its methods are
// safe for concurrent use.
type Driver struct {
	opts Options
	env  drivers.Env
	log  *slog.Logger
	cfg  aws.Config

	endpoint string // resolved endpoint; "" for AWS
	kumo     *kumoServer

	baseTr  *http.Transport // the configuration's transport, cloned per side
	adminTr *http.Transport
	ebAdmin *eventbridge.Client
	sqsAdm  *sqs.Client

	bus, queueURL, queueARN, rule, ruleARN string
	made                                   made
	runHex                                 string
	limiter                                *limiter

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the driver started

	mu         sync.Mutex
	closed     bool
	transports []*http.Transport
	closeOnce  sync.Once
	closeErr   error

	stats stats
}

// made records what Open created, so Close removes exactly that.
type made struct {
	bus, queue, rule, target bool
}

var (
	_ drivers.Driver          = (*Driver)(nil)
	_ drivers.StatsReporter   = (*Driver)(nil)
	_ drivers.BrokerRestarter = (*Driver)(nil)
)

// New connects to EventBridge and SQS with options o for the run env:
// it starts the emulator (endpoint: managed), loads the AWS configuration,
// checks the credentials, provisions or checks the resources, and probes
// the route from the bus to the queue. On failure it removes whatever it
// had created.
func New(ctx context.Context, o Options, env drivers.Env) (*Driver, error) {
	o.fillDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Driver{opts: o, env: env, log: log, endpoint: o.Endpoint, runHex: stamp.RunIDString(env.RunID)}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	if o.RateLimit > 0 {
		d.limiter = newLimiter(o.RateLimit, o.Batch)
	}
	if err := d.open(ctx); err != nil {
		cctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if cerr := d.Close(cctx); cerr != nil {
			err = fmt.Errorf("%w\n(and cleaning up: %v)", err, cerr)
		}
		return nil, err
	}
	return d, nil
}

func (d *Driver) open(ctx context.Context) error {
	o := &d.opts
	if o.Endpoint == Managed {
		k, err := startManagedKumo(ctx, d.log)
		if err != nil {
			return err
		}
		d.kumo = k
		d.endpoint = k.URL()
	}
	if err := d.loadConfig(ctx); err != nil {
		return err
	}
	var admin aws.HTTPClient
	admin, d.adminTr = d.httpClient(drivers.AdminSide, 4)
	d.ebAdmin = d.eventbridgeClient(admin)
	d.sqsAdm = d.sqsClient(admin)

	switch {
	case o.Provision && d.env.Attach:
		// The coordinator of a distributed run provisioned the run's
		// resources under these names, and removes them.
		name := "spate-" + d.runHex
		o.Bus, o.Rule, o.Queue = or(o.Bus, name), or(o.Rule, name), or(o.Queue, name)
		if err := d.check(ctx); err != nil {
			return fmt.Errorf("%w (the coordinator provisions them)", err)
		}
	case o.Provision:
		if err := d.provision(ctx); err != nil {
			return err
		}
	default:
		if err := d.check(ctx); err != nil {
			return err
		}
	}
	if o.ProbeTimeout > 0 {
		if err := d.probe(ctx); err != nil {
			return err
		}
	}
	d.log.Info("eventbridge ready", "bus", d.bus, "queue", d.queueURL, "rule", d.rule,
		"provisioned", o.Provision, "endpoint", d.endpointName(), "region", d.cfg.Region)
	return nil
}

func (d *Driver) endpointName() string {
	if d.endpoint == "" {
		return "AWS"
	}
	return d.endpoint
}

// loadConfig reads the AWS config chain and checks that it yields a region
// and credentials. The credential providers' connections are admin ones.
func (d *Driver) loadConfig(ctx context.Context) error {
	o := &d.opts
	loaders := []func(*config.LoadOptions) error{
		// A BuildableClient, so the chain can add a custom CA bundle
		// (AWS_CA_BUNDLE) to it; every side's transport is cloned from it.
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(d.dialOptions(drivers.AdminSide, 2))),
		// The SDK's own warnings go to the run's log, not to stderr.
		config.WithLogger(logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
			d.log.Debug("aws sdk: "+fmt.Sprintf(format, v...), "class", string(c))
		})),
		config.WithRetryer(func() aws.Retryer {
			// The standard retryer (3 attempts) without its retry quota,
			// which under chaos would turn retryable errors into failures.
			return retry.NewStandard(func(so *retry.StandardOptions) { so.RateLimiter = ratelimit.None })
		}),
	}
	if o.Region != "" {
		loaders = append(loaders, config.WithRegion(o.Region))
	}
	if o.Profile != "" {
		loaders = append(loaders, config.WithSharedConfigProfile(o.Profile))
	}
	if o.Endpoint == Managed {
		loaders = append(loaders, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loaders...)
	if err != nil {
		if o.Profile != "" {
			return fmt.Errorf("eventbridge: loading AWS profile %q: %w; check ~/.aws/config or fix profile:", o.Profile, err)
		}
		return fmt.Errorf("eventbridge: loading the AWS configuration: %w", err)
	}
	if bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		d.baseTr = bc.GetTransport()
	} else {
		d.baseTr = awshttp.NewBuildableClient().GetTransport()
	}
	if cfg.Region == "" {
		if d.endpoint == "" {
			return errors.New("eventbridge: no AWS region: set region: in the scenario, or AWS_REGION, or a region in the profile")
		}
		cfg.Region = "us-east-1"
	}
	cctx, cancel := context.WithTimeout(ctx, credentialsTimeout)
	defer cancel()
	if _, err := cfg.Credentials.Retrieve(cctx); err != nil {
		return fmt.Errorf("eventbridge: no usable AWS credentials (%v). Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "+
			"or AWS_PROFILE (or profile:) naming a profile in ~/.aws/config; an emulator accepts any values, e.g. test and test", err)
	}
	d.cfg = cfg
	return nil
}

// dialOptions sets a transport's pool size and, when Env.Dial is set,
// makes it open every connection through it for side.
func (d *Driver) dialOptions(side drivers.Side, conns int) func(*http.Transport) {
	return func(tr *http.Transport) {
		tr.MaxIdleConns = 2 * conns
		tr.MaxIdleConnsPerHost = conns
		if dial := d.env.Dial; dial != nil {
			tr.DialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
				return dial(ctx, side, network, address)
			}
			tr.Proxy = nil // the harness's dialer decides the path
		}
	}
}

// httpClient returns an HTTP client for one side, on its own transport
// (cloned from the configuration's, so a custom CA bundle applies), and
// the transport. Like the SDK's own client it does not follow redirects.
func (d *Driver) httpClient(side drivers.Side, conns int) (aws.HTTPClient, *http.Transport) {
	tr := d.baseTr.Clone()
	d.dialOptions(side, conns)(tr)
	var rt http.RoundTripper = tr
	if d.opts.wrapTransport != nil {
		rt = d.opts.wrapTransport(side, rt)
	}
	return &http.Client{
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, tr
}

// track remembers a transport so Close can drop its idle connections.
func (d *Driver) track(tr *http.Transport) {
	d.mu.Lock()
	d.transports = append(d.transports, tr)
	d.mu.Unlock()
}

func (d *Driver) eventbridgeClient(hc aws.HTTPClient) *eventbridge.Client {
	return eventbridge.NewFromConfig(d.cfg, func(eo *eventbridge.Options) {
		eo.HTTPClient = hc
		if d.endpoint != "" {
			eo.BaseEndpoint = aws.String(d.endpoint)
		}
	})
}

func (d *Driver) sqsClient(hc aws.HTTPClient) *sqs.Client {
	return sqs.NewFromConfig(d.cfg, func(so *sqs.Options) {
		so.HTTPClient = hc
		if d.endpoint != "" {
			so.BaseEndpoint = aws.String(d.endpoint)
		}
	})
}

// Bus returns the name of the event bus the run uses.
func (d *Driver) Bus() string { return d.bus }

// Queue returns the URL of the SQS queue the run consumes.
func (d *Driver) Queue() string { return d.queueURL }

// Rule returns the name of the rule that routes the run's events to the
// queue, or "" when none was named (without provision).
func (d *Driver) Rule() string { return d.rule }

// Endpoint returns the endpoint in use: the emulator's URL, or "" for AWS.
func (d *Driver) Endpoint() string { return d.endpoint }

// Region returns the AWS region in use.
func (d *Driver) Region() string { return d.cfg.Region }

// EventPattern returns the event pattern of a provisioned rule for this
// run: source, detail-type and the run id, plus the pattern option.
func (d *Driver) EventPattern() (string, error) {
	detail := map[string]any{"run": []string{d.runHex}}
	p := map[string]any{
		"source":      []string{d.opts.Source},
		"detail-type": []string{d.opts.DetailType},
	}
	if d.opts.Pattern != "" {
		var extra map[string]any
		if err := json.Unmarshal([]byte(d.opts.Pattern), &extra); err != nil {
			return "", fmt.Errorf("eventbridge: pattern: %w", err)
		}
		for k, v := range extra {
			if k == "detail" {
				if m, ok := v.(map[string]any); ok {
					for dk, dv := range m {
						detail[dk] = dv
					}
					continue
				}
			}
			p[k] = v
		}
	}
	p["detail"] = detail
	b, err := marshalJSON(p)
	return string(b), err
}

// provision creates the bus, queue, rule, queue policy and target.
func (d *Driver) provision(ctx context.Context) error {
	o := &d.opts
	name := "spate-" + d.runHex
	d.bus, d.rule = or(o.Bus, name), or(o.Rule, name)
	queue := or(o.Queue, name)

	if d.bus != "default" {
		if _, err := d.ebAdmin.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(d.bus)}); err != nil {
			if isCode(err, "ResourceAlreadyExistsException") {
				return fmt.Errorf("eventbridge: event bus %q already exists; provision: true creates its own: pick another bus: name, leave bus out, or set provision: false to use it", d.bus)
			}
			return d.apiError("creating event bus "+quote(d.bus), err)
		}
		d.made.bus = true
	}

	if strings.Contains(queue, "://") {
		return fmt.Errorf("eventbridge: queue %q is a URL; with provision: true name the queue to create", queue)
	}
	if _, err := d.sqsAdm.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(queue)}); err == nil {
		return fmt.Errorf("eventbridge: queue %q already exists; provision: true creates its own: pick another queue: name, leave queue out, or set provision: false to use it", queue)
	} else if !isQueueMissing(err) {
		return d.apiError("looking up queue "+quote(queue), err)
	}
	cq, err := d.sqsAdm.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: aws.String(queue),
		Attributes: map[string]string{
			"VisibilityTimeout": fmt.Sprint(int(o.VisibilityTimeout / time.Second)),
		},
	})
	if err != nil {
		return d.apiError("creating queue "+quote(queue), err)
	}
	d.made.queue = true
	d.queueURL = aws.ToString(cq.QueueUrl)
	if d.queueARN, err = d.queueArn(ctx); err != nil {
		return err
	}

	if _, err := d.ebAdmin.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(d.rule), EventBusName: aws.String(d.bus)}); err == nil {
		return fmt.Errorf("eventbridge: rule %q already exists on bus %q; provision: true creates its own: pick another rule: name or leave rule out", d.rule, d.bus)
	} else if !isCode(err, "ResourceNotFoundException") {
		return d.apiError("looking up rule "+quote(d.rule), err)
	}
	pattern, err := d.EventPattern()
	if err != nil {
		return err
	}
	pr, err := d.ebAdmin.PutRule(ctx, &eventbridge.PutRuleInput{
		Name:         aws.String(d.rule),
		EventBusName: aws.String(d.bus),
		EventPattern: aws.String(pattern),
		State:        ebtypes.RuleStateEnabled,
		Description:  aws.String("spate run " + d.runHex + " (" + d.env.Scenario + "): routes the run's events to its queue; removed when the run ends"),
	})
	if err != nil {
		if isCode(err, "InvalidEventPatternException") {
			return fmt.Errorf("eventbridge: EventBridge rejected the rule's event pattern %s: %w; fix the pattern option", pattern, err)
		}
		return d.apiError("creating rule "+quote(d.rule), err)
	}
	d.made.rule = true
	d.ruleARN = aws.ToString(pr.RuleArn)

	policy := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Sid":       "spate-eventbridge-" + d.runHex,
			"Effect":    "Allow",
			"Principal": map[string]string{"Service": "events.amazonaws.com"},
			"Action":    "sqs:SendMessage",
			"Resource":  d.queueARN,
			"Condition": map[string]any{"ArnEquals": map[string]string{"aws:SourceArn": d.ruleARN}},
		}},
	}
	pb, _ := json.Marshal(policy) // maps of strings: cannot fail
	if _, err := d.sqsAdm.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl:   aws.String(d.queueURL),
		Attributes: map[string]string{"Policy": string(pb)},
	}); err != nil {
		return d.apiError("setting the access policy of queue "+quote(queue), err)
	}

	pt, err := d.ebAdmin.PutTargets(ctx, &eventbridge.PutTargetsInput{
		Rule:         aws.String(d.rule),
		EventBusName: aws.String(d.bus),
		Targets:      []ebtypes.Target{{Id: aws.String(targetID), Arn: aws.String(d.queueARN)}},
	})
	if err == nil && pt.FailedEntryCount > 0 && len(pt.FailedEntries) > 0 {
		f := pt.FailedEntries[0]
		err = fmt.Errorf("%s: %s", aws.ToString(f.ErrorCode), aws.ToString(f.ErrorMessage))
	}
	if err != nil {
		return d.apiError("adding queue "+quote(queue)+" as the target of rule "+quote(d.rule), err)
	}
	d.made.target = true
	d.log.Info("eventbridge provisioned", "bus", d.bus, "queue", d.queueURL, "rule", d.rule, "pattern", pattern)
	return nil
}

// targetID is the id of the rule target spate provisions.
const targetID = "spate-queue"

// check verifies that the named bus, queue and (if named) rule exist and
// that the rule targets the queue.
func (d *Driver) check(ctx context.Context) error {
	o := &d.opts
	d.bus, d.rule = o.Bus, o.Rule
	if _, err := d.ebAdmin.DescribeEventBus(ctx, &eventbridge.DescribeEventBusInput{Name: aws.String(d.bus)}); err != nil {
		if isCode(err, "ResourceNotFoundException") {
			return fmt.Errorf("eventbridge: event bus %q does not exist in %s (%s): create it, correct bus:, or set provision: true to let spate create one",
				d.bus, d.cfg.Region, d.endpointName())
		}
		return d.apiError("checking event bus "+quote(d.bus), err)
	}
	if strings.Contains(o.Queue, "://") {
		d.queueURL = o.Queue
	} else {
		out, err := d.sqsAdm.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(o.Queue)})
		if err != nil {
			if isQueueMissing(err) {
				return fmt.Errorf("eventbridge: SQS queue %q does not exist in %s (%s): create it, correct queue:, or set provision: true to let spate create one",
					o.Queue, d.cfg.Region, d.endpointName())
			}
			return d.apiError("looking up queue "+quote(o.Queue), err)
		}
		d.queueURL = aws.ToString(out.QueueUrl)
	}
	var err error
	if d.queueARN, err = d.queueArn(ctx); err != nil {
		return err
	}
	if d.rule == "" {
		d.log.Info("eventbridge: no rule named; the probe checks that events reach the queue", "bus", d.bus, "queue", d.queueURL)
		return nil
	}
	r, err := d.ebAdmin.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(d.rule), EventBusName: aws.String(d.bus)})
	if err != nil {
		if isCode(err, "ResourceNotFoundException") {
			return fmt.Errorf("eventbridge: rule %q does not exist on bus %q: create it, correct rule:, or leave rule out", d.rule, d.bus)
		}
		return d.apiError("checking rule "+quote(d.rule), err)
	}
	if r.State != ebtypes.RuleStateEnabled && r.State != "" {
		return fmt.Errorf("eventbridge: rule %q on bus %q is %s; enable it", d.rule, d.bus, r.State)
	}
	ts, err := d.ebAdmin.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String(d.rule), EventBusName: aws.String(d.bus)})
	if err != nil {
		return d.apiError("listing the targets of rule "+quote(d.rule), err)
	}
	for _, t := range ts.Targets {
		if aws.ToString(t.Arn) == d.queueARN {
			return nil
		}
	}
	return fmt.Errorf("eventbridge: rule %q on bus %q does not target queue %s (%s); add the queue as a target of the rule", d.rule, d.bus, d.queueURL, d.queueARN)
}

func (d *Driver) queueArn(ctx context.Context) (string, error) {
	out, err := d.sqsAdm.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(d.queueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		if isQueueMissing(err) {
			return "", fmt.Errorf("eventbridge: SQS queue %s does not exist: create it, correct queue:, or set provision: true", d.queueURL)
		}
		return "", d.apiError("reading the ARN of queue "+d.queueURL, err)
	}
	arn := out.Attributes["QueueArn"]
	if arn == "" {
		return "", fmt.Errorf("eventbridge: queue %s has no QueueArn attribute", d.queueURL)
	}
	return arn, nil
}

// probePrefix starts the pad of a probe event.
const probePrefix = "probe-"

// notStamp is the stamp field of a probe event: 48 bytes that stamp.Parse
// rejects, so a probe that reaches a consumer is never taken for a message.
var notStamp = base64.StdEncoding.EncodeToString(make([]byte, stamp.Size))

// probe puts one event shaped like spate's (without a stamp) and waits for
// it to arrive on the queue, so a route that does not work fails the run
// before the traffic starts. Other messages it meets are made visible
// again at once.
func (d *Driver) probe(ctx context.Context) error {
	token := fmt.Sprintf("%s%s-%d", probePrefix, d.runHex, time.Now().UnixNano())
	detail := `{"run":"` + d.runHex + `","spate":"` + notStamp + `","pad":"` + token + `"}`
	ctx, cancel := context.WithTimeout(ctx, d.opts.ProbeTimeout)
	defer cancel()
	out, err := d.ebAdmin.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
		EventBusName: aws.String(d.bus),
		Source:       aws.String(d.opts.Source),
		DetailType:   aws.String(d.opts.DetailType),
		Detail:       aws.String(detail),
	}}})
	if err != nil {
		return d.apiError("putting a probe event on bus "+quote(d.bus), err)
	}
	if out.FailedEntryCount > 0 && len(out.Entries) > 0 {
		e := out.Entries[0]
		return fmt.Errorf("eventbridge: PutEvents refused the probe event on bus %q: %s: %s", d.bus, aws.ToString(e.ErrorCode), aws.ToString(e.ErrorMessage))
	}
	start := time.Now()
	for {
		wait := min(d.opts.Wait, time.Until(deadlineOf(ctx)).Truncate(time.Second))
		rm, err := d.sqsAdm.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:            aws.String(d.queueURL),
			MaxNumberOfMessages: 10,
			WaitTimeSeconds:     int32(max(wait, time.Second) / time.Second),
		})
		if ctx.Err() != nil {
			return fmt.Errorf("eventbridge: a probe event put on bus %q did not reach queue %s within %v. "+
				"Check that a rule on the bus matches source %q and detail-type %q and targets the queue, "+
				"and that the queue's access policy lets events.amazonaws.com send to it; "+
				"raise probe: if the route was only just created, or set probe: 0s to skip this check", d.bus, d.queueURL, d.opts.ProbeTimeout, d.opts.Source, d.opts.DetailType)
		}
		if err != nil {
			return d.apiError("receiving the probe event from queue "+d.queueURL, err)
		}
		found := false
		for _, m := range rm.Messages {
			if strings.Contains(aws.ToString(m.Body), token) {
				found = true
				_, _ = d.sqsAdm.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(d.queueURL), ReceiptHandle: m.ReceiptHandle})
				continue
			}
			// Not ours: hand it back at once.
			_, _ = d.sqsAdm.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
				QueueUrl: aws.String(d.queueURL), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0,
			})
		}
		if found {
			d.log.Info("eventbridge probe arrived", "after", time.Since(start).Round(time.Millisecond))
			return nil
		}
	}
}

func deadlineOf(ctx context.Context) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return time.Now().Add(MaxWait)
}

// Close stops the emulator it manages, cancels every request still running,
// removes what it provisioned, and returns once its goroutines have ended.
// Calling it again returns the first call's result.
func (d *Driver) Close(ctx context.Context) error {
	d.closeOnce.Do(func() {
		d.mu.Lock()
		d.closed = true
		d.mu.Unlock()
		d.cancel()
		d.wg.Wait()
		var errs []error
		if d.ebAdmin != nil {
			errs = append(errs, d.deprovision(ctx))
		}
		d.mu.Lock()
		for _, tr := range d.transports {
			tr.CloseIdleConnections()
		}
		d.mu.Unlock()
		if d.adminTr != nil {
			d.adminTr.CloseIdleConnections()
		}
		if d.kumo != nil {
			errs = append(errs, d.kumo.close())
		}
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}

// deprovision removes, in reverse order, what provision created. Resources
// already gone count as removed.
func (d *Driver) deprovision(ctx context.Context) error {
	var errs []error
	gone := func(err error) bool {
		return err == nil || isCode(err, "ResourceNotFoundException") || isQueueMissing(err)
	}
	if d.made.target {
		_, err := d.ebAdmin.RemoveTargets(ctx, &eventbridge.RemoveTargetsInput{
			Rule: aws.String(d.rule), EventBusName: aws.String(d.bus), Ids: []string{targetID},
		})
		if !gone(err) {
			errs = append(errs, fmt.Errorf("eventbridge: removing the target of rule %q: %w", d.rule, err))
		}
	}
	if d.made.rule {
		_, err := d.ebAdmin.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String(d.rule), EventBusName: aws.String(d.bus)})
		if !gone(err) {
			errs = append(errs, fmt.Errorf("eventbridge: deleting rule %q on bus %q (delete it by hand): %w", d.rule, d.bus, err))
		}
	}
	if d.made.queue {
		_, err := d.sqsAdm.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(d.queueURL)})
		if !gone(err) {
			errs = append(errs, fmt.Errorf("eventbridge: deleting queue %s (delete it by hand): %w", d.queueURL, err))
		}
	}
	if d.made.bus {
		_, err := d.ebAdmin.DeleteEventBus(ctx, &eventbridge.DeleteEventBusInput{Name: aws.String(d.bus)})
		if !gone(err) {
			errs = append(errs, fmt.Errorf("eventbridge: deleting event bus %q (delete it by hand): %w", d.bus, err))
		}
	}
	if len(errs) == 0 && (d.made.bus || d.made.queue || d.made.rule) {
		d.log.Info("eventbridge resources removed", "bus", d.bus, "queue", d.queueURL, "rule", d.rule)
	}
	d.made = made{}
	return errors.Join(errs...)
}

// isClosed reports whether Close has been called.
func (d *Driver) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

// goroutine runs f on a goroutine that Close waits for, unless the driver
// is closed; it reports whether f was started.
func (d *Driver) goroutine(f func()) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		f()
	}()
	return true
}

// Brokers lists the emulator (id 0) when the driver manages one, else nothing.
func (d *Driver) Brokers() []int {
	if d.kumo == nil {
		return nil
	}
	return []int{0}
}

// RestartBroker restarts the managed emulator: it stops it (Graceful:
// SIGTERM, which saves its state; Kill: SIGKILL), waits down, starts it on
// the same port with its saved state, and returns once it answers. Only
// endpoint: managed has a broker to restart.
func (d *Driver) RestartBroker(ctx context.Context, id int, mode drivers.RestartMode, down time.Duration) error {
	if d.kumo == nil {
		return errors.New("eventbridge: only endpoint: managed has a broker spate can restart")
	}
	if id != 0 && id != drivers.AllBrokers {
		return fmt.Errorf("eventbridge: no broker %d; the managed emulator is broker 0", id)
	}
	if d.isClosed() {
		return ErrClosed
	}
	return d.kumo.restart(ctx, mode, down)
}

// apiError wraps an AWS error with what spate was doing and a hint.
func (d *Driver) apiError(doing string, err error) error {
	hint := ""
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch code := ae.ErrorCode(); {
		case strings.Contains(code, "AccessDenied"), code == "AuthorizationError":
			hint = "; the credentials lack a permission for this (see the package documentation for the calls spate makes)"
		case code == "UnrecognizedClientException", code == "InvalidClientTokenId", code == "SignatureDoesNotMatch",
			code == "InvalidSignatureException", code == "ExpiredToken", code == "ExpiredTokenException":
			hint = "; check the AWS credentials"
		}
	} else if d.endpoint != "" {
		hint = "; is the endpoint " + d.endpoint + " reachable?"
	}
	return fmt.Errorf("eventbridge: %s: %w%s", doing, err, hint)
}

// isCode reports whether err is an AWS API error with one of codes.
func isCode(err error, codes ...string) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.ErrorCode() == c {
			return true
		}
	}
	return false
}

func isQueueMissing(err error) bool {
	var qe *sqstypes.QueueDoesNotExist
	return errors.As(err, &qe) || isCode(err, "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue")
}

// isPermanent reports whether a request error will not go away by itself
// (missing resources, permissions, credentials, bad input), so retrying or
// polling again is pointless.
func isPermanent(err error) bool {
	if isQueueMissing(err) {
		return true
	}
	return isCode(err,
		"ResourceNotFoundException", "AccessDenied", "AccessDeniedException", "AuthorizationError",
		"UnrecognizedClientException", "InvalidClientTokenId", "SignatureDoesNotMatch", "InvalidSignatureException",
		"MissingAuthenticationToken", "InvalidSecurity", "ValidationException", "InvalidParameterValue",
		"InvalidAddress", "InvalidParameterException", "NotAuthorizedForSourceException")
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// stats are the driver's own figures (Driver.Stats), declared once: the
// Stats map and the table in Stats' doc come from these fields. Safe for
// concurrent use.
//
//go:generate go test -run TestOptionsDocs -update-docs .
type stats struct {
	PutRequests    drivers.Counter `stat:"put_requests" doc:"PutEvents requests made (each attempt spate makes)"`
	PutErrors      drivers.Counter `stat:"put_errors" doc:"requests that failed as a whole after the SDK's retries"`
	SDKRetries     drivers.Counter `stat:"sdk_retries" doc:"extra attempts the SDK's retryer made for requests that succeeded in the end"`
	EntriesOK      drivers.Counter `stat:"entries_ok" doc:"entries PutEvents accepted (re-sends included)"`
	EntriesFailed  drivers.Counter `stat:"entries_failed" doc:"entry attempts that failed (partial failures, and every entry of a failed request)"`
	EntriesRetried drivers.Counter `stat:"entries_retried" doc:"entries sent again after a failure"`
	Throttled      drivers.Counter `stat:"throttled" doc:"entry attempts failed with ThrottlingException"`
	TooLarge       drivers.Counter `stat:"too_large" doc:"messages failed unsent: their entry exceeds 256 KiB"`
	RateWaits      drivers.Counter `stat:"rate_limit_waits" doc:"requests that waited for the rate limit"`
	Receives       drivers.Counter `stat:"receives" doc:"ReceiveMessage calls that returned"`
	ReceiveErrors  drivers.Counter `stat:"receive_errors" doc:"ReceiveMessage calls that failed"`
	Received       drivers.Counter `stat:"received" doc:"SQS messages received"`
	Redelivered    drivers.Counter `stat:"redelivered" doc:"of which SQS had delivered before (receive count > 1)"`
	Unparsable     drivers.Counter `stat:"unparsable" doc:"messages without a spate stamp"`
	Probes         drivers.Counter `stat:"probes" doc:"late probe events received and dropped"`
	Deletes        drivers.Counter `stat:"delete_requests" doc:"DeleteMessageBatch calls"`
	Deleted        drivers.Counter `stat:"deleted" doc:"messages deleted"`
	DeleteFailed   drivers.Counter `stat:"delete_failed" doc:"messages whose deletion failed (they come back)"`
	Abandoned      drivers.Counter `stat:"abandoned" doc:"messages left undeleted by a consumer crash"`
	Crashes        drivers.Counter `stat:"crashes" doc:"consumer crashes"`
}

// Stats returns the client's own figures:
//
// stats:begin (generated by go generate from the declaration)
//
//	put_requests      PutEvents requests made (each attempt spate makes)
//	put_errors        requests that failed as a whole after the SDK's retries
//	sdk_retries       extra attempts the SDK's retryer made for requests that succeeded in the end
//	entries_ok        entries PutEvents accepted (re-sends included)
//	entries_failed    entry attempts that failed (partial failures, and every entry of a failed request)
//	entries_retried   entries sent again after a failure
//	throttled         entry attempts failed with ThrottlingException
//	too_large         messages failed unsent: their entry exceeds 256 KiB
//	rate_limit_waits  requests that waited for the rate limit
//	receives          ReceiveMessage calls that returned
//	receive_errors    ReceiveMessage calls that failed
//	received          SQS messages received
//	redelivered       of which SQS had delivered before (receive count > 1)
//	unparsable        messages without a spate stamp
//	probes            late probe events received and dropped
//	delete_requests   DeleteMessageBatch calls
//	deleted           messages deleted
//	delete_failed     messages whose deletion failed (they come back)
//	abandoned         messages left undeleted by a consumer crash
//	crashes           consumer crashes
//
// stats:end
func (d *Driver) Stats() map[string]int64 { return drivers.StatsOf(&d.stats) }
