package eventbridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awseb "github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/eventbridge"
	"github.com/spate-dev/spate/drivers/stamp"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// load parses a scenario given inline with the kinds it may use.
func load(t testing.TB, src string, kinds ...drivers.Kind) *scenarios.Scenario {
	t.Helper()
	l := &scenarios.Loader{}
	for _, k := range kinds {
		l.Driver(k.Name, k.Options)
	}
	sc, err := l.Parse(strings.ReplaceAll(t.Name(), "/", "-")+".yaml", []byte(src))
	if err != nil {
		t.Fatalf("scenario: %v", err)
	}
	return sc
}

func runScenario(t testing.TB, sc *scenarios.Scenario, kind drivers.Kind) *report.Results {
	t.Helper()
	res, err := engine.Run(context.Background(), sc, engine.WithDrivers(kind), engine.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

func expect(t testing.TB, what string, got, want int64) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %d, want %d", what, got, want)
	}
}

// sdkClients are plain SDK clients of the emulator, for tests that look at
// it (or put events) behind the driver's back.
func sdkClients(t testing.TB, k *eventbridge.Kumo) (*awseb.Client, *sqs.Client) {
	t.Helper()
	cfg := aws.Config{Region: "us-east-1", Credentials: staticCreds{}}
	eb := awseb.NewFromConfig(cfg, func(o *awseb.Options) { o.BaseEndpoint = aws.String(k.URL()) })
	q := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(k.URL()) })
	return eb, q
}

type staticCreds struct{}

func (staticCreds) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test", Source: "test"}, nil
}

// leftovers lists the spate buses and queues still in the emulator.
func leftovers(t testing.TB, k *eventbridge.Kumo) []string {
	t.Helper()
	eb, q := sdkClients(t, k)
	ctx := context.Background()
	var out []string
	buses, err := eb.ListEventBuses(ctx, &awseb.ListEventBusesInput{NamePrefix: aws.String("spate-"), Limit: aws.Int32(100)})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range buses.EventBuses {
		out = append(out, "bus "+aws.ToString(b.Name))
	}
	queues, err := q.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: aws.String("spate-")})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range queues.QueueUrls {
		out = append(out, "queue "+u)
	}
	return out
}

// TestCleanRun: a clean run through the emulator loses nothing, delivers
// nothing twice, and removes what it provisioned.
func TestCleanRun(t *testing.T) {
	k := startKumo(t)
	sc := load(t, fmt.Sprintf(`
driver: {eventbridge: {endpoint: %q, provision: true}}
producers: 2
consumers: 2
message: {size: 300B}
traffic:
  - constant: {rate: 500/s, for: 3s}
drain: 15s
`, k.URL()), eventbridge.Kind)
	res := runScenario(t, sc, eventbridge.Kind)
	c := res.Counts
	if c.Sent < 1450 || c.Unsent != 0 {
		t.Fatalf("sent %d, unsent %d: the pacer did not deliver the schedule", c.Sent, c.Unsent)
	}
	expect(t, "acked", c.Acked, c.Sent)
	expect(t, "failed", c.Failed, 0)
	expect(t, "received", c.Received, c.Sent)
	expect(t, "lost", c.Lost, 0)
	expect(t, "duplicates", c.Duplicates, 0)
	expect(t, "reordered", c.Reordered, 0) // unordered: never counted
	expect(t, "redelivered", c.Redelivered, 0)
	expect(t, "foreign", c.Foreign, 0)
	expect(t, "malformed", c.Malformed, 0)
	st := res.DriverStats
	expect(t, "stats entries_ok", st["entries_ok"], c.Sent)
	expect(t, "stats received", st["received"], c.Sent)
	expect(t, "stats deleted", st["deleted"], c.Sent)
	if res.LatencyUS.E2E.Count != c.Received || res.LatencyUS.Publish.Count != c.Acked {
		t.Errorf("latency counts e2e %d publish %d, want %d and %d", res.LatencyUS.E2E.Count, res.LatencyUS.Publish.Count, c.Received, c.Acked)
	}
	t.Logf("e2e p50 %dµs p99 %dµs, publish p50 %dµs p99 %dµs", res.LatencyUS.E2E.P50, res.LatencyUS.E2E.P99,
		res.LatencyUS.Publish.P50, res.LatencyUS.Publish.P99)
	if left := leftovers(t, k); len(left) > 0 {
		t.Errorf("the run left resources behind: %v", left)
	}
}

// TestConsumerCrash: consumer 0 crashes inside its Handler once it has
// handled 200 messages, and is replaced by a new consumer with the same id
// (as chaos does). The batch it held, and whatever else it had received
// and not deleted, reappears after the 2s visibility timeout: redeliveries,
// counted as duplicates for the batch that had been handled, and nothing
// is lost.
func TestConsumerCrash(t *testing.T) {
	k := startKumo(t)
	var held atomic.Int64 // messages in the batch handled when it crashed
	var back atomic.Int64 // how long after the crash one of them came back
	kind := crashingKind(200, &held, &back)
	sc := load(t, fmt.Sprintf(`
driver: {eventbridge: {endpoint: %q, provision: true, visibility-timeout: 2s, wait: 1s}}
producers: 2
consumers: 2
message: {size: 200B}
traffic:
  - constant: {rate: 400/s, for: 5s}
drain: 20s
`, k.URL()), kind)
	res := runScenario(t, sc, kind)
	c, st := res.Counts, res.DriverStats
	if held.Load() == 0 {
		t.Fatal("the consumer never crashed")
	}
	expect(t, "crashes", st["crashes"], 1)
	expect(t, "lost", c.Lost, 0)
	expect(t, "received", c.Received, c.Sent)
	expect(t, "failed", c.Failed, 0)
	if c.Duplicates < held.Load() {
		t.Errorf("duplicates = %d, want at least the %d messages of the batch handled when it crashed", c.Duplicates, held.Load())
	}
	if c.Duplicates > st["abandoned"] {
		t.Errorf("duplicates = %d, more than the %d messages the crash left undeleted", c.Duplicates, st["abandoned"])
	}
	if c.Redelivered < c.Duplicates || st["redelivered"] != c.Redelivered {
		t.Errorf("redelivered = %d (driver: %d), want at least the %d duplicates, and equal figures", c.Redelivered, st["redelivered"], c.Duplicates)
	}
	// SQS hides a received message for the visibility timeout (2s): the
	// crashed batch cannot come back sooner.
	if b := time.Duration(back.Load()); b == 0 {
		t.Error("the batch handled when the consumer crashed was never delivered again")
	} else if b < 1500*time.Millisecond {
		t.Errorf("the crashed batch came back %v after the crash, before the 2s visibility timeout", b)
	}
	t.Logf("held %d, abandoned %d, duplicates %d, redelivered %d, back after %v", held.Load(), st["abandoned"], c.Duplicates, c.Redelivered, time.Duration(back.Load()))
}

// crashingKind is the eventbridge Kind whose consumer 0 crashes in its
// Handler after handling `after` messages, once; every crashed consumer is
// replaced by a new one with the same id.
func crashingKind(after int64, held, back *atomic.Int64) drivers.Kind {
	return drivers.Kind{
		Name:    eventbridge.Kind.Name,
		Options: eventbridge.Kind.Options,
		Open: func(ctx context.Context, options any, env drivers.Env) (drivers.Driver, error) {
			d, err := eventbridge.Kind.Open(ctx, options, env)
			if err != nil {
				return nil, err
			}
			cd := &crashDriver{Driver: d, after: after, held: held}
			return &backReporter{crashDriver: cd, back: back}, nil
		},
	}
}

type crashDriver struct {
	drivers.Driver
	after   int64
	held    *atomic.Int64
	crashed atomic.Bool

	mu        sync.Mutex
	crashedAt time.Time
	heldIDs   map[string]bool // stamps of the batch handled when it crashed
	firstBack time.Duration   // when the first of them came back, after the crash
}

// watch notes when a message of the crashed batch is delivered again.
func (cd *crashDriver) watch(batch []drivers.Delivery) {
	cd.mu.Lock()
	defer cd.mu.Unlock()
	if cd.heldIDs == nil || cd.firstBack > 0 {
		return
	}
	for _, dl := range batch {
		if cd.heldIDs[string(dl.Stamp)] {
			cd.firstBack = time.Since(cd.crashedAt)
			return
		}
	}
}

// backReporter publishes when the held batch came back as the driver closes.
type backReporter struct {
	*crashDriver
	back *atomic.Int64
}

func (b *backReporter) Close(ctx context.Context) error {
	b.mu.Lock()
	b.back.Store(int64(b.firstBack))
	b.mu.Unlock()
	return b.crashDriver.Close(ctx)
}

// NewProducer returns a producer whose Close also waits (within its
// context) until the crashed batch came back, which the engine's drain does
// not wait for: those messages were received already.
func (cd *crashDriver) NewProducer(ctx context.Context, id int, ack drivers.AckFunc) (drivers.Producer, error) {
	p, err := cd.Driver.NewProducer(ctx, id, ack)
	if err != nil {
		return nil, err
	}
	return &waitBackProducer{Producer: p, cd: cd}, nil
}

type waitBackProducer struct {
	drivers.Producer
	cd *crashDriver
}

func (w *waitBackProducer) Close(ctx context.Context) error {
	err := w.Producer.Close(ctx)
	for {
		w.cd.mu.Lock()
		back := w.cd.firstBack > 0
		w.cd.mu.Unlock()
		if back {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Stats passes the driver's figures through the wrapper.
func (cd *crashDriver) Stats() map[string]int64 { return cd.Driver.(drivers.StatsReporter).Stats() }

func (cd *crashDriver) NewConsumer(ctx context.Context, id int) (drivers.Consumer, error) {
	c, err := cd.Driver.NewConsumer(ctx, id)
	if err != nil {
		return nil, err
	}
	return &crashConsumer{cd: cd, id: id, c: c}, nil
}

type crashConsumer struct {
	cd      *crashDriver
	id      int
	c       drivers.Consumer
	handled int64
}

// Consume runs the inner consumer, crashing it once as configured, and
// starts a new one with the same id whenever it crashed.
func (cc *crashConsumer) Consume(ctx context.Context, h drivers.Handler) error {
	for {
		cur := cc.c
		err := cur.Consume(ctx, func(batch []drivers.Delivery) {
			cc.cd.watch(batch)
			h(batch)
			cc.handled += int64(len(batch))
			if cc.id == 0 && cc.handled >= cc.cd.after && cc.cd.crashed.CompareAndSwap(false, true) {
				cc.cd.mu.Lock()
				cc.cd.heldIDs = map[string]bool{}
				for _, dl := range batch {
					cc.cd.heldIDs[string(dl.Stamp)] = true
				}
				cc.cd.crashedAt = time.Now()
				cc.cd.mu.Unlock()
				cc.cd.held.Store(int64(len(batch)))
				cur.(drivers.Crasher).Crash()
			}
		})
		if !errors.Is(err, drivers.ErrCrashed) {
			return err
		}
		if cc.c, err = cc.cd.Driver.NewConsumer(ctx, cc.id); err != nil {
			return err
		}
	}
}

// TestFiltering: events that the rule does not match never reach the
// queue: another source, another detail-type, another run id, and a
// pattern condition not met. Real events of the run, put after them, do.
// kumo's log of rule matches confirms that none of the others matched.
func TestFiltering(t *testing.T) {
	k := startKumo(t)
	o := kumoOptions(k)
	o.Source = "spate.filter"
	o.Pattern = `{"detail":{"pad":[{"exists":true}]}}`
	env := testEnv(t, 1, 1)
	d := openDriver(t, o, env)
	eb, _ := sdkClients(t, k)

	run := fmt.Sprintf("%016x", env.RunID)
	other := fmt.Sprintf("%016x", env.RunID+2)
	stray := []struct{ name, source, detailType, detail string }{
		{"another source", "spate.other", o.DetailType, `{"run":"` + run + `","spate":"x","pad":"p"}`},
		{"another detail-type", o.Source, "Other", `{"run":"` + run + `","spate":"x","pad":"p"}`},
		{"another run", o.Source, o.DetailType, `{"run":"` + other + `","spate":"x","pad":"p"}`},
		{"no pad (the pattern option)", o.Source, o.DetailType, `{"run":"` + run + `","spate":"x"}`},
		{"no run", o.Source, o.DetailType, `{"spate":"x","pad":"p"}`},
	}
	for _, s := range stray {
		out, err := eb.PutEvents(context.Background(), &awseb.PutEventsInput{Entries: []ebEntry{{
			EventBusName: aws.String(d.Bus()), Source: aws.String(s.source), DetailType: aws.String(s.detailType), Detail: aws.String(s.detail),
		}}})
		if err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("%s: PutEvents: %v %+v", s.name, err, out)
		}
	}

	// Then real messages, through the driver, and a consumer that sees
	// everything that reaches the queue.
	const n = 50
	var mu sync.Mutex
	var got, malformed int
	cons, err := d.NewConsumer(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- cons.Consume(ctx, func(batch []drivers.Delivery) {
			mu.Lock()
			defer mu.Unlock()
			for _, dl := range batch {
				if dl.Stamp == nil {
					malformed++
				} else {
					got++
				}
			}
		})
	}()
	sendN(t, d, env, n, 300)
	waitFor(t, 30*time.Second, "the run's own events", func() bool { mu.Lock(); defer mu.Unlock(); return got >= n })
	// Stray events were put first; give any that slipped through one more
	// long poll to show up.
	time.Sleep(1500 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got != n || malformed != 0 {
		t.Errorf("the queue delivered %d of the run's events and %d others, want %d and 0", got, malformed, n)
	}
	if stats := d.Stats(); stats["unparsable"] != 0 {
		t.Errorf("unparsable = %d, want 0", stats["unparsable"])
	}
	// kumo's own record of matches: only the run's events (and the probe).
	matched := kumoMatches(t, k, d.Rule())
	if matched != n+1 {
		t.Errorf("kumo matched %d events to the rule, want the %d sent and the probe", matched, n)
	}
}

type ebEntry = ebtypes.PutEventsRequestEntry

// kumoMatches counts the events kumo matched to rule (its
// delivery-verification log).
func kumoMatches(t testing.TB, k *eventbridge.Kumo, rule string) int {
	t.Helper()
	resp, err := http.Get(k.URL() + "/kumo/eventbridge/delivered-events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var events []struct{ RuleName string }
	if err := json.NewDecoder(resp.Body).Decode(&events); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range events {
		if e.RuleName == rule {
			n++
		}
	}
	return n
}

// sendN sends n messages of size bytes from producer 0 of env through d
// and waits until every outcome is reported (all must be acks).
func sendN(t testing.TB, d drivers.Driver, env drivers.Env, n, size int) {
	t.Helper()
	var mu sync.Mutex
	var acks int
	var errs []error
	p, err := d.NewProducer(context.Background(), 0, func(rs []drivers.Result) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range rs {
			acks++
			if r.Err != nil {
				errs = append(errs, r.Err)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs := make([]drivers.Message, n)
	for i := range msgs {
		now := time.Now().UnixNano()
		st := stamp.Stamp{RunID: env.RunID, Seq: uint64(i), Intended: now, Sent: now}
		body := make([]byte, size)
		st.Put(body)
		msgs[i] = drivers.Message{Stamp: st, Head: body[:stamp.Size], Tail: body[stamp.Size:]}
	}
	if err := p.Send(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if acks != n || len(errs) > 0 {
		t.Fatalf("%d outcomes for %d messages, errors: %v", acks, n, errs)
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not done within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
