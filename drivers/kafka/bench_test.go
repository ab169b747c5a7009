package kafka_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spate-dev/spate/drivers/kafka"
	"github.com/spate-dev/spate/drivers/stamp"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// The benchmarks compare spate on the embedded cluster with a bare
// franz-go produce loop on the same kind of cluster, with the same record
// size and batching settings (spate's defaults: linger 10ms, batches up to
// kgo's 1,000,012 bytes, 10,000 records buffered, acks=all, idempotent, no
// compression, no keys). Each reports msg/s: records confirmed per second of
// traffic. Run them one at a time, e.g.:
//
//	go test ./drivers/kafka -run '^$' -bench 'Bare|Spate' -benchtime 1x
//
// Each iteration is a whole run of benchDuration.
const benchDuration = 5 * time.Second

var benchSizes = []int{100, 1024}

// BenchmarkBareProduce is the reference: one franz-go client producing as
// fast as its buffer allows, nothing consuming.
func BenchmarkBareProduce(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) { benchBare(b, size, 3, false) })
	}
}

// BenchmarkBareProduceConsume adds one consumer in a group reading what is
// produced, as every spate run does.
func BenchmarkBareProduceConsume(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) { benchBare(b, size, 3, true) })
	}
}

// BenchmarkSpateMax is spate's max phase: one producer, one consumer,
// through the engine and the tracker. The phase's in-flight window (20,000)
// is above max-buffered-records (10,000), so the client's buffer is what
// holds the producer back, as in the bare loop: Send blocks at 10,000
// records without an outcome, and a blocked producer does not linger.
func BenchmarkSpateMax(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) { benchSpateMax(b, size, 3, 1) })
	}
}

// BenchmarkSpateMaxNoConsumer is BenchmarkSpateMax with no consumer (a
// scenario file cannot say so; the benchmark sets it), to compare spate's
// produce path with the bare produce loop alone.
func BenchmarkSpateMaxNoConsumer(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) { benchSpateMax(b, size, 3, 0) })
	}
}

// BenchmarkSpatePartitions is spate's max phase with 100-byte messages on 3
// and 12 partitions.
func BenchmarkSpatePartitions(b *testing.B) {
	for _, parts := range []int{3, 12} {
		b.Run(fmt.Sprintf("%dpartitions", parts), func(b *testing.B) { benchSpateMax(b, 100, parts, 1) })
	}
}

// BenchmarkSpateLatency runs 50,000 msg/s of 100-byte messages for the
// traffic duration and reports e2e p50 and p99.
func BenchmarkSpateLatency(b *testing.B) {
	for range b.N {
		res := benchRun(b, fmt.Sprintf(`
driver: {kafka: {partitions: 3}}
producers: 2
consumers: 2
message: {size: 100B}
traffic:
  - constant: {rate: 50000/s, for: %v}
drain: 10s
`, benchDuration))
		b.ReportMetric(res.Rate.AchievedMean, "msg/s")
		b.ReportMetric(float64(res.LatencyUS.E2E.P50)/1000, "e2e-p50-ms")
		b.ReportMetric(float64(res.LatencyUS.E2E.P99)/1000, "e2e-p99-ms")
		b.ReportMetric(float64(res.LatencyUS.Publish.P50)/1000, "publish-p50-ms")
	}
}

func benchSpateMax(b *testing.B, size, partitions, consumers int) {
	for range b.N {
		cpu := cpuTime()
		drain := "10s"
		if consumers == 0 {
			drain = "0s"
		}
		res := benchRunWith(b, fmt.Sprintf(`
driver: {kafka: {partitions: %d}}
producers: 1
message: {size: %dB}
traffic:
  - max: {for: %v, in-flight: 20000}
drain: %s
`, partitions, size, benchDuration, drain), func(sc *scenarios.Scenario) { sc.Consumers = consumers })
		b.ReportMetric(res.Rate.AckedMean, "msg/s")
		if consumers > 0 {
			b.ReportMetric(res.Rate.AchievedMean, "received/s")
		}
		b.ReportMetric(res.Rate.AckedMean*float64(size)/1e6, "MB/s")
		b.ReportMetric(float64(cpuTime()-cpu)/float64(res.Counts.Acked), "cpu-ns/msg")
		b.ReportMetric(float64(res.LatencyUS.Publish.P50)/1000, "publish-p50-ms")
	}
}

func benchRun(b *testing.B, yaml string) *report.Results {
	b.Helper()
	return benchRunWith(b, yaml, func(*scenarios.Scenario) {})
}

func benchRunWith(b *testing.B, yaml string, edit func(*scenarios.Scenario)) *report.Results {
	b.Helper()
	l := &scenarios.Loader{}
	l.Driver("kafka", kafka.Kind.Options)
	sc, err := l.Parse("bench.yaml", []byte(yaml))
	if err != nil {
		b.Fatal(err)
	}
	edit(sc)
	res, err := engine.Run(context.Background(), sc, engine.WithDrivers(kafka.Kind))
	if err != nil {
		b.Fatal(err)
	}
	// Without consumers nothing is received, and with no drain the
	// records still in flight when the traffic ends fail at Close.
	if sc.Consumers > 0 && (res.Counts.Lost != 0 || res.Counts.Failed != 0) {
		b.Fatalf("counts %+v", res.Counts)
	}
	return res
}

func benchBare(b *testing.B, size, partitions int, consume bool) {
	for range b.N {
		o := kafka.DefaultOptions()
		o.Partitions = partitions
		e, err := kafka.Open(context.Background(), o, testEnv(1, 1))
		if err != nil {
			b.Fatal(err)
		}
		ed := e.(*kafka.EmbeddedDriver)
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(ed.BrokerAddrs()...),
			kgo.DefaultProduceTopic(ed.Topic()),
			kgo.ProducerLinger(kafka.DefaultLinger),
			kgo.ProducerBatchMaxBytes(kafka.DefaultBatchMaxBytes),
			kgo.MaxBufferedRecords(kafka.DefaultMaxBufferedRecords),
			kgo.ProducerBatchCompression(kgo.NoCompression()),
			kgo.RequiredAcks(kgo.AllISRAcks()),
		)
		if err != nil {
			b.Fatal(err)
		}
		var received atomic.Int64
		stopConsumer := func() {}
		if consume {
			cons, err := kgo.NewClient(
				kgo.SeedBrokers(ed.BrokerAddrs()...),
				kgo.ConsumerGroup("bare"),
				kgo.ConsumeTopics(ed.Topic()),
			)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				for ctx.Err() == nil {
					fs := cons.PollRecords(ctx, 4096)
					received.Add(int64(fs.NumRecords()))
				}
			}()
			stopConsumer = func() { cancel(); <-done; cons.Close() }
		}
		header := make([]byte, stamp.Size)
		value := make([]byte, size-stamp.Size)
		var acked, failed atomic.Int64
		var inWindow atomic.Bool
		inWindow.Store(true)
		var latSum atomic.Int64
		promise := func(r *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			} else if inWindow.Load() {
				acked.Add(1)
				latSum.Add(int64(time.Since(r.Timestamp)))
			}
		}
		cpu := cpuTime()
		start := time.Now()
		end := start.Add(benchDuration)
		for time.Now().Before(end) {
			for range 256 {
				cl.Produce(context.Background(), &kgo.Record{
					Value:   value,
					Headers: []kgo.RecordHeader{{Key: kafka.StampHeader, Value: header}},
				}, promise)
			}
		}
		inWindow.Store(false)
		elapsed := time.Since(start)
		n := acked.Load()
		if err := cl.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		if consume { // until the consumer has read everything, as spate's drain does
			total := acked.Load()
			for deadline := time.Now().Add(10 * time.Second); received.Load() < total && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			total = max(total, 1)
			_ = total
		}
		cpuUsed := cpuTime() - cpu
		cl.Close()
		stopConsumer()
		_ = e.Close(context.Background())
		if failed.Load() > 0 {
			b.Fatalf("%d records failed", failed.Load())
		}
		b.ReportMetric(float64(n)/elapsed.Seconds(), "msg/s")
		b.ReportMetric(float64(n)*float64(size)/elapsed.Seconds()/1e6, "MB/s")
		b.ReportMetric(float64(cpuUsed)/float64(acked.Load()), "cpu-ns/msg")
		b.ReportMetric(float64(latSum.Load())/float64(max(n, 1))/1e6, "publish-mean-ms")
		if consume {
			b.ReportMetric(float64(received.Load())/elapsed.Seconds(), "received/s")
		}
	}
}

// cpuTime is the CPU time the process used so far, user and system, in ns.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
