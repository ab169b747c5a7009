package eventbridge_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awseb "github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/spate-dev/spate/drivers/eventbridge"
	"github.com/spate-dev/spate/internal/benchcompare"
)

// BenchmarkCompare is spate against bare aws-sdk-go-v2 loops on one kumo
// emulator, at every size (`make bench-compare`; see
// internal/benchcompare). Both sides use a provisioned bus, a rule that
// matches the run and an SQS queue it targets, and the driver's defaults:
//
//	produce  spate's max phase (2 producers, 8 PutEvents requests in
//	         flight each) with consumers: 0 against 16 goroutines each
//	         putting requests of 10 entries shaped and sized like spate's,
//	         entries confirmed per second
//	consume  a backlog put for the duration with the consumers held (spate:
//	         consumer-pause), then drained: 2 consumers × 4 long-polling
//	         ReceiveMessage calls of up to 10 messages, deleted 10 at a time
//	         by 2 DeleteMessageBatch callers each; messages received per
//	         second from the first batch to the last
func BenchmarkCompare(b *testing.B) {
	k := startKumo(b)
	benchcompare.Bench(b, eventBridgePairs(b, k, benchcompare.Settings()))
}

// TestCompareShape runs BenchmarkCompare's code path once per direction
// on short settings: not a measurement, a check that it still works.
func TestCompareShape(t *testing.T) {
	k := startKumo(t)
	cfg := benchcompare.Config{Rounds: 1, Duration: 300 * time.Millisecond, Sizes: []int{1024}}
	benchcompare.Check(t, eventBridgePairs(t, k, cfg))
}

// The concurrency both sides use: the driver's defaults.
const (
	cmpProducers = 2
	cmpConsumers = 2
)

func eventBridgePairs(t testing.TB, k *eventbridge.Kumo, cfg benchcompare.Config) []benchcompare.Pair {
	// In flight: twice what the producers' requests hold at once (2 × 8
	// requests × 10 entries), so requests always have entries waiting and
	// the tail a consume side waits out before it starts stays short.
	o := eventbridge.DefaultOptions()
	s := benchcompare.Spate{Kind: eventbridge.Kind, Driver: fmt.Sprintf("{eventbridge: {endpoint: %q, provision: true}}", k.URL()),
		Producers: cmpProducers, Consumers: cmpConsumers, InFlight: 2 * cmpProducers * o.InFlight * o.Batch}
	var pairs []benchcompare.Pair
	for _, size := range cfg.Sizes {
		pairs = append(pairs, benchcompare.Pair{Direction: benchcompare.Produce, Size: size,
			Spate: s.Produce(size, cfg.Duration), Bare: bareEventBridge(t, k, size, cfg.Duration, nil)})
	}
	for _, size := range cfg.Sizes {
		backlog := new(benchcompare.Backlog)
		pairs = append(pairs, benchcompare.Pair{Direction: benchcompare.Consume, Size: size,
			Spate: s.Consume(size, cfg.Duration, backlog), Bare: bareEventBridge(t, k, size, cfg.Duration, backlog)})
	}
	return pairs
}

// bareEventBridge puts events for d on a bus, rule and queue provisioned
// for a run of its own; with a backlog (the consume direction), as many as
// spate's last backlog (or what d allowed), and then drains the queue.
func bareEventBridge(t testing.TB, k *eventbridge.Kumo, size int, d time.Duration, backlog *benchcompare.Backlog) benchcompare.Side {
	return func(ctx context.Context) (benchcompare.Sample, error) {
		o := kumoOptions(k)
		env := testEnv(t, cmpProducers, cmpConsumers)
		drv, err := eventbridge.New(ctx, o, env)
		if err != nil {
			return benchcompare.Sample{}, err
		}
		defer drv.Close(context.Background())
		eb, _ := bareClients(k, cmpProducers*o.InFlight)
		var limit int64
		if backlog != nil {
			limit = backlog.Size()
		}
		w, total, err := barePut(ctx, eb, drv.Bus(), o, env.RunID, size, d, limit)
		if err != nil || backlog == nil {
			return w, err
		}
		_, q := bareClients(k, cmpConsumers*(o.Receivers+2))
		return bareReceive(ctx, q, drv.Queue(), o, total, time.Minute)
	}
}

// bareClients are SDK clients of the emulator configured as the driver's
// are: a transport that keeps conns connections open for their
// concurrency (the SDK's default keeps 2 per host, and opens a connection
// per call beyond), cached credentials and retries without the SDK's
// client-side retry quota.
func bareClients(k *eventbridge.Kumo, conns int) (*awseb.Client, *sqs.Client) {
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 2*conns, conns
	})
	// The driver's wrapper around request bodies (httpbody.go): without
	// it, a ReceiveMessage response of large messages is now and then cut
	// off by the SDK and net/http, on both sides alike.
	cfg := aws.Config{Region: "us-east-1", Credentials: aws.NewCredentialsCache(staticCreds{}), HTTPClient: eventbridge.BodyReadOnly(hc),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(so *retry.StandardOptions) { so.RateLimiter = ratelimit.None })
		}}
	eb := awseb.NewFromConfig(cfg, func(o *awseb.Options) { o.BaseEndpoint = aws.String(k.URL()) })
	q := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(k.URL()) })
	return eb, q
}

// barePut puts requests of 10 entries, each sized as spate's entry of a
// message of size bytes and matching run's rule, on as many goroutines as
// spate has requests in flight, for d, or until about limit entries when
// limit > 0 (whole requests: at most 9 more). It returns the sample of
// entries confirmed from benchcompare.Warmup to d, and all it put.
func barePut(ctx context.Context, eb *awseb.Client, bus string, o eventbridge.Options, run uint64, size int, d time.Duration, limit int64) (benchcompare.Sample, int64, error) {
	pad := max(0, eventbridge.EntrySize(size, o.Source, o.DetailType)-eventbridge.EntrySize(0, o.Source, o.DetailType))
	detail := fmt.Sprintf(`{"run":"%016x","spate":"%s","pad":"%s"}`, run, strings.Repeat("A", 64), strings.Repeat("x", pad))
	entries := make([]ebtypes.PutEventsRequestEntry, o.Batch)
	for i := range entries {
		entries[i] = ebtypes.PutEventsRequestEntry{EventBusName: aws.String(bus), Source: aws.String(o.Source),
			DetailType: aws.String(o.DetailType), Detail: aws.String(detail)}
	}
	var ok atomic.Int64
	var firstErr error
	var errOnce sync.Once
	type mark struct {
		at  time.Time
		n   int64
		cpu time.Duration
	}
	var mu sync.Mutex // the marks
	var from, to mark
	set := func(m *mark) {
		now := mark{time.Now(), ok.Load(), benchcompare.CPUTime()}
		mu.Lock()
		*m = now
		mu.Unlock()
	}
	start := time.Now()
	stop := make(chan struct{})
	timers := []*time.Timer{time.AfterFunc(benchcompare.Warmup, func() { set(&from) })}
	if limit <= 0 {
		timers = append(timers, time.AfterFunc(d, func() { set(&to); close(stop) }))
	}
	var requests atomic.Int64
	var wg sync.WaitGroup
	for range cmpProducers * o.InFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if limit > 0 && (requests.Add(1)-1)*int64(len(entries)) >= limit {
					return
				}
				out, err := eb.PutEvents(ctx, &awseb.PutEventsInput{Entries: entries})
				if err == nil && out.FailedEntryCount > 0 {
					err = fmt.Errorf("%d entries failed", out.FailedEntryCount)
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				ok.Add(int64(len(entries)))
			}
		}()
	}
	wg.Wait()
	for _, t := range timers {
		t.Stop()
	}
	if firstErr != nil {
		return benchcompare.Sample{}, 0, firstErr
	}
	if limit <= 0 && time.Since(start) < d {
		return benchcompare.Sample{}, 0, fmt.Errorf("the put loop stopped after %v", time.Since(start))
	}
	mu.Lock()
	defer mu.Unlock()
	return benchcompare.Sample{Messages: to.n - from.n, Elapsed: to.at.Sub(from.at), CPU: to.cpu - from.cpu}, ok.Load(), nil
}

// bareReceive drains want messages from the queue as the driver's
// consumers would: each consumer's receivers long-poll, their batches are
// deleted 10 at a time by its deleters. It is timed as every consume side
// is (benchcompare.CatchUp).
func bareReceive(ctx context.Context, q *sqs.Client, queue string, o eventbridge.Options, want int64, limit time.Duration) (benchcompare.Sample, error) {
	rctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var cu benchcompare.CatchUp
	deletes := make(chan []sqstypes.Message, 4*o.Receivers*cmpConsumers)
	var failure atomic.Value
	var receivers, deleters sync.WaitGroup
	for range cmpConsumers * o.Receivers {
		receivers.Add(1)
		go func() {
			defer receivers.Done()
			in := &sqs.ReceiveMessageInput{QueueUrl: aws.String(queue), MaxNumberOfMessages: 10,
				WaitTimeSeconds: int32(o.Wait / time.Second), VisibilityTimeout: int32(o.VisibilityTimeout / time.Second)}
			for rctx.Err() == nil && cu.Received() < want {
				out, err := q.ReceiveMessage(rctx, in)
				if err != nil {
					if rctx.Err() == nil {
						failure.CompareAndSwap(nil, err)
					}
					cancel()
					return
				}
				if len(out.Messages) == 0 {
					continue
				}
				if cu.Batch(len(out.Messages)); cu.Received() >= want {
					cancel() // wakes the other receivers' long polls
				}
				deletes <- out.Messages
			}
		}()
	}
	for range cmpConsumers * 2 {
		deleters.Add(1)
		go func() {
			defer deleters.Done()
			for msgs := range deletes {
				entries := make([]sqstypes.DeleteMessageBatchRequestEntry, len(msgs))
				for i, m := range msgs {
					entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle}
				}
				if _, err := q.DeleteMessageBatch(context.Background(), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(queue), Entries: entries}); err != nil {
					failure.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	receivers.Wait()
	close(deletes)
	deleters.Wait()
	if err, _ := failure.Load().(error); err != nil {
		return benchcompare.Sample{}, err
	}
	if n := cu.Received(); n < want {
		return benchcompare.Sample{}, fmt.Errorf("drained %d of %d messages in %v", n, want, limit)
	}
	return cu.Sample(), nil
}
