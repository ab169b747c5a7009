package eventbridge_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awseb "github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/eventbridge"
	"github.com/spate-dev/spate/engine"
)

// openErr opens a driver that must fail and returns the error text.
func openErr(t *testing.T, o eventbridge.Options) string {
	t.Helper()
	env := testEnv(t, 1, 1)
	env.Dial = (&loopbackDial{}).dial
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := eventbridge.Kind.Open(ctx, o, env)
	if err == nil {
		d.Close(ctx)
		t.Fatal("Open succeeded, want an error")
	}
	if d != nil {
		t.Errorf("Open returned a driver with its error")
	}
	return err.Error()
}

func wantIn(t *testing.T, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("error %q\n  does not contain %q", got, w)
		}
	}
}

// makeRoute creates, behind the driver's back, a bus, a queue, a rule for
// source "spate" and its target, as someone running spate against existing
// resources would have; it returns the queue's URL and ARN.
func makeRoute(t *testing.T, k *eventbridge.Kumo, bus, queue, rule string, target bool) (string, string) {
	t.Helper()
	eb, q := sdkClients(t, k)
	ctx := context.Background()
	if bus != "default" {
		if _, err := eb.CreateEventBus(ctx, &awseb.CreateEventBusInput{Name: aws.String(bus)}); err != nil {
			t.Fatal(err)
		}
	}
	cq, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(queue)})
	if err != nil {
		t.Fatal(err)
	}
	qa, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: cq.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{"QueueArn"}})
	if err != nil {
		t.Fatal(err)
	}
	arn := qa.Attributes["QueueArn"]
	if rule != "" {
		if _, err := eb.PutRule(ctx, &awseb.PutRuleInput{Name: aws.String(rule), EventBusName: aws.String(bus),
			EventPattern: aws.String(`{"source":["spate"]}`)}); err != nil {
			t.Fatal(err)
		}
		if target {
			if _, err := eb.PutTargets(ctx, &awseb.PutTargetsInput{Rule: aws.String(rule), EventBusName: aws.String(bus),
				Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(arn)}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return aws.ToString(cq.QueueUrl), arn
}

// TestOpenErrors: what a user gets wrong at runtime fails Open (exit
// status 1 from the CLI) with an error that names the thing and the fix.
func TestOpenErrors(t *testing.T) {
	k := startKumo(t)
	base := func() eventbridge.Options {
		o := eventbridge.DefaultOptions()
		o.Endpoint = k.URL()
		o.ProbeTimeout = 2 * time.Second
		return o
	}
	makeRoute(t, k, "orders", "orders-observer", "orders-to-queue", true)
	makeRoute(t, k, "payments", "payments-observer", "payments-elsewhere", false)
	makeRoute(t, k, "norule", "norule-observer", "", false)

	t.Run("missing credentials", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
		o := base()
		o.Provision = true
		msg := openErr(t, o)
		t.Log(msg)
		wantIn(t, msg, "eventbridge: no usable AWS credentials", "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	})
	t.Run("unknown profile", func(t *testing.T) {
		o := base()
		o.Provision, o.Profile = true, "nosuchprofile"
		wantIn(t, openErr(t, o), `loading AWS profile "nosuchprofile"`)
	})
	t.Run("no region", func(t *testing.T) {
		t.Setenv("AWS_REGION", "")
		t.Setenv("AWS_DEFAULT_REGION", "")
		o := base()
		o.Endpoint, o.Provision = "", true
		wantIn(t, openErr(t, o), "eventbridge: no AWS region: set region: in the scenario, or AWS_REGION")
	})
	t.Run("unknown bus", func(t *testing.T) {
		o := base()
		o.Bus, o.Queue = "no-such-bus", "orders-observer"
		wantIn(t, openErr(t, o), `eventbridge: event bus "no-such-bus" does not exist in us-east-1 (`+k.URL()+`): create it, correct bus:, or set provision: true`)
	})
	t.Run("unknown queue", func(t *testing.T) {
		o := base()
		o.Bus, o.Queue = "orders", "no-such-queue"
		wantIn(t, openErr(t, o), `eventbridge: SQS queue "no-such-queue" does not exist in us-east-1`)
	})
	t.Run("unknown rule", func(t *testing.T) {
		o := base()
		o.Bus, o.Queue, o.Rule = "orders", "orders-observer", "no-such-rule"
		wantIn(t, openErr(t, o), `eventbridge: rule "no-such-rule" does not exist on bus "orders"`)
	})
	t.Run("rule without the queue as target", func(t *testing.T) {
		o := base()
		o.Bus, o.Queue, o.Rule = "payments", "payments-observer", "payments-elsewhere"
		wantIn(t, openErr(t, o), `eventbridge: rule "payments-elsewhere" on bus "payments" does not target queue`, "add the queue as a target of the rule")
	})
	t.Run("no route to the queue", func(t *testing.T) {
		o := base()
		o.Bus, o.Queue = "norule", "norule-observer"
		wantIn(t, openErr(t, o), `eventbridge: a probe event put on bus "norule" did not reach queue`,
			`matches source "spate" and detail-type "spate.message"`, "set probe: 0s to skip this check")
	})
	t.Run("provisioned names taken", func(t *testing.T) {
		o := base()
		o.Provision, o.Bus = true, "orders"
		wantIn(t, openErr(t, o), `eventbridge: event bus "orders" already exists; provision: true creates its own`)
		o.Bus, o.Queue = "", "orders-observer"
		wantIn(t, openErr(t, o), `eventbridge: queue "orders-observer" already exists`)
		// The existing resources are untouched.
		if _, q := sdkClients(t, k); true {
			if _, err := q.GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{QueueName: aws.String("orders-observer")}); err != nil {
				t.Errorf("a failed Open removed a queue it had not made: %v", err)
			}
		}
	})
	t.Run("pattern rejected by EventBridge", func(t *testing.T) {
		o := base()
		o.Provision = true
		o.Pattern = `{"detail":{"amount":[{"numeric":[">","x"]}]}}`
		eventbridge.SetTransportWrapper(&o, func(side drivers.Side, rt http.RoundTripper) http.RoundTripper {
			return rejectPutRule{rt}
		})
		before := leftovers(t, k)
		msg := openErr(t, o)
		t.Log(msg)
		wantIn(t, msg, "eventbridge: EventBridge rejected the rule's event pattern", "InvalidEventPatternException", "fix the pattern option")
		if after := leftovers(t, k); len(after) != len(before) {
			t.Errorf("the failed Open left resources behind: %v (before: %v)", after, before)
		}
	})
	t.Run("through the engine", func(t *testing.T) {
		sc := load(t, fmt.Sprintf("driver: {eventbridge: {endpoint: %q, bus: nope, queue: nope}}\ntraffic: [{constant: {rate: 10/s, for: 1s}}]\n", k.URL()), eventbridge.Kind)
		res, err := engine.Run(context.Background(), sc, engine.WithDrivers(eventbridge.Kind))
		if err == nil || res != nil {
			t.Fatalf("Run = %v, %v; want no results and an error (the CLI's exit status 1)", res, err)
		}
		wantIn(t, err.Error(), `open eventbridge driver: eventbridge: event bus "nope" does not exist`)
	})
}

// rejectPutRule answers PutRule as EventBridge does for a pattern it
// cannot parse (kumo accepts any pattern).
type rejectPutRule struct{ next http.RoundTripper }

func (r rejectPutRule) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("X-Amz-Target") != "AWSEvents.PutRule" {
		return r.next.RoundTrip(req)
	}
	body := `{"__type":"InvalidEventPatternException","message":"Event pattern is not valid. Reason: Value of numeric must be a number"}`
	return &http.Response{
		Status: "400 Bad Request", StatusCode: http.StatusBadRequest, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.1"}, "X-Amzn-Errortype": {"InvalidEventPatternException"}},
		Body:          io.NopCloser(bytes.NewReader([]byte(body))),
		ContentLength: int64(len(body)), Request: req,
	}, nil
}

// TestExistingResources: without provision, spate uses the bus, queue and
// rule it is given (here the queue by URL), checks the route, delivers,
// and leaves them in place at Close.
func TestExistingResources(t *testing.T) {
	k := startKumo(t)
	url, _ := makeRoute(t, k, "shop", "shop-observer", "shop-to-observer", true)
	o := eventbridge.DefaultOptions()
	o.Endpoint, o.Bus, o.Queue, o.Rule = k.URL(), "shop", url, "shop-to-observer"
	env := testEnv(t, 1, 1)
	d := openDriver(t, o, env)
	got := make(chan int, 1000)
	c, err := d.NewConsumer(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Consume(ctx, func(b []drivers.Delivery) { got <- len(b) })
	sendN(t, d, env, 30, 500)
	n := 0
	deadline := time.After(30 * time.Second)
	for n < 30 {
		select {
		case k := <-got:
			n += k
		case <-deadline:
			t.Fatalf("%d of 30 delivered", n)
		}
	}
	cancel()
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	eb, q := sdkClients(t, k)
	if _, err := eb.DescribeRule(context.Background(), &awseb.DescribeRuleInput{Name: aws.String("shop-to-observer"), EventBusName: aws.String("shop")}); err != nil {
		t.Errorf("Close removed a rule it had not made: %v", err)
	}
	if _, err := q.GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{QueueName: aws.String("shop-observer")}); err != nil {
		t.Errorf("Close removed a queue it had not made: %v", err)
	}
}
