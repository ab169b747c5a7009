package rabbitmq_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/rabbitmq"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/scenarios"
)

// Throughput and latency on the shared 3-node cluster, per queue type
// (classic, quorum, stream), for spate and for a bare amqp091-go loop
// doing the same work: one producer publishing persistent 256-byte
// messages with publisher confirms, at most 1,000 unconfirmed, to a fresh
// queue; one consumer with prefetch 1,000 acknowledging each batch; both
// connected to node 0 (as spate's producer 0 and consumer 0 are). Each run
// lasts clusterBenchFor:
//
//	max      as fast as the cluster confirms (spate: a `max: {in-flight:
//	         1000}` phase, a closed loop where e2e equals service latency,
//	         as in the bare loop)
//	1000     at 1,000 messages/s on a schedule (spate: a `constant`
//	         phase; the bare loop sends each message when it is due and
//	         times it from then, as spate does)
//
//	msgs/s   confirmed publishes per second
//	p50-ms   e2e latency, receive time - send time (due time at a fixed
//	         rate), median
//	p99-ms   the same, 99th percentile
//
//	go test -run '^$' -bench ClusterThroughput -benchtime 1x ./drivers/rabbitmq/
const (
	clusterBenchFor    = 10 * time.Second
	clusterBenchSize   = 256
	clusterBenchWindow = 1000
)

func BenchmarkClusterThroughput(b *testing.B) {
	cluster(b)
	for _, rate := range []int{0, 1000} {
		mode := "max"
		if rate > 0 {
			mode = fmt.Sprint(rate)
		}
		for _, typ := range []string{"classic", "quorum", "stream"} {
			b.Run(typ+"/"+mode+"/bare", func(b *testing.B) {
				for range b.N {
					reportRun(b, bareClusterRun(b, typ, rate))
				}
			})
			b.Run(typ+"/"+mode+"/spate", func(b *testing.B) {
				for range b.N {
					reportRun(b, spateClusterRun(b, typ, rate))
				}
			})
		}
	}
}

// benchRun is what one run measured.
type benchRun struct {
	confirmed int64
	elapsed   time.Duration
	e2e       *hdr.Histogram // µs
}

func reportRun(b *testing.B, r benchRun) {
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(r.confirmed)/r.elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(r.e2e.ValueAtQuantile(50))/1000, "p50-ms")
	b.ReportMetric(float64(r.e2e.ValueAtQuantile(99))/1000, "p99-ms")
}

// bareClusterRun publishes and consumes with plain amqp091-go for
// clusterBenchFor, as fast as it can (rate 0) or at rate messages/s; each
// body carries its send time (at a fixed rate, its due time).
func bareClusterRun(b *testing.B, typ string, rate int) benchRun {
	url := cluster(b).URLs()[0]
	pconn, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer pconn.Close()
	cconn, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer cconn.Close()
	pch, err := pconn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	q := uniqueName("spate-bench-" + typ)
	args := amqp.Table{}
	if typ != "classic" {
		args["x-queue-type"] = typ
	}
	if _, err := pch.QueueDeclare(q, true, false, false, false, args); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if ch, err := cconn.Channel(); err == nil {
			_, _ = ch.QueueDelete(q, false, false, false)
		}
	}()
	if err := pch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	confirms := pch.NotifyPublish(make(chan amqp.Confirmation, clusterBenchWindow))
	cch, err := cconn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := cch.Qos(clusterBenchWindow, 0, false); err != nil {
		b.Fatal(err)
	}
	var cargs amqp.Table
	if typ == "stream" {
		cargs = amqp.Table{"x-stream-offset": "first"}
	}
	dels, err := cch.Consume(q, "", false, false, false, false, cargs)
	if err != nil {
		b.Fatal(err)
	}
	h := hdr.New(1, int64(time.Hour/time.Microsecond), 3)
	var received atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case d, ok := <-dels:
				if !ok {
					return
				}
				sent := int64(binary.BigEndian.Uint64(d.Body))
				_ = h.RecordValue(max(1, (time.Now().UnixNano()-sent)/1000))
				received.Add(1)
				if len(dels) == 0 || received.Load()%100 == 0 {
					_ = d.Ack(true)
				}
			case <-stop:
				return
			}
		}
	}()
	window := make(chan struct{}, clusterBenchWindow)
	var confirmed atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for c := range confirms {
			if c.Ack {
				confirmed.Add(1)
			}
			<-window
		}
	}()
	body := make([]byte, clusterBenchSize)
	start := time.Now()
	end := start.Add(clusterBenchFor)
	var published int64
	for time.Now().Before(end) {
		due := time.Now()
		if rate > 0 {
			due = start.Add(time.Duration(published) * time.Second / time.Duration(rate))
			if due.After(end) {
				break
			}
			time.Sleep(time.Until(due))
		}
		window <- struct{}{}
		binary.BigEndian.PutUint64(body, uint64(due.UnixNano()))
		if err := pch.Publish("", q, false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body}); err != nil {
			b.Fatal(err)
		}
		published++
	}
	// The last confirms and deliveries.
	deadline := time.Now().Add(time.Minute)
	for (confirmed.Load() < published || received.Load() < published) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	close(stop)
	_ = pch.Close()
	wg.Wait()
	if received.Load() < published {
		b.Errorf("%s bare: received %d of %d", typ, received.Load(), published)
	}
	return benchRun{confirmed: confirmed.Load(), elapsed: elapsed, e2e: h}
}

// spateClusterRun runs the same work through spate's engine.
func spateClusterRun(b *testing.B, typ string, rate int) benchRun {
	c := cluster(b)
	offset := ""
	if typ == "stream" {
		offset = ", offset: first"
	}
	phase := fmt.Sprintf("max: {for: %s, in-flight: %d}", clusterBenchFor, clusterBenchWindow)
	if rate > 0 {
		phase = fmt.Sprintf("constant: {rate: %d/s, for: %s}", rate, clusterBenchFor)
	}
	src := fmt.Sprintf(`
driver:
  rabbitmq:
    url: managed
    nodes: 3
    queue: {type: %s%s}
    persistent: true
    confirms: true
    confirm-window: %d
    prefetch: %d
producers: 1
consumers: 1
message: {size: %dB}
traffic:
  - %s
drain: 60s
`, typ, offset, clusterBenchWindow, clusterBenchWindow, clusterBenchSize, phase)
	l := &scenarios.Loader{}
	l.Driver(rabbitmq.Kind.Name, rabbitmq.Kind.Options)
	sc, err := l.Parse("bench.yaml", []byte(src))
	if err != nil {
		b.Fatal(err)
	}
	kind := rabbitmq.Kind
	open := kind.Open
	kind.Open = func(ctx context.Context, options any, env drivers.Env) (drivers.Driver, error) {
		o := options.(rabbitmq.Options)
		o.Cluster = c
		return open(ctx, o, env)
	}
	res, err := engine.Run(context.Background(), sc, engine.WithDrivers(kind), engine.WithLogger(testLogger(b)))
	if err != nil {
		b.Fatal(err)
	}
	if res.Counts.Lost != 0 || res.Counts.Received != res.Counts.Acked {
		b.Errorf("%s spate: counts %+v", typ, res.Counts)
	}
	h, err := res.Histogram(accounting.E2E)
	if err != nil {
		b.Fatal(err)
	}
	return benchRun{confirmed: res.Counts.Acked, elapsed: time.Duration(res.TrafficS * float64(time.Second)), e2e: h}
}
