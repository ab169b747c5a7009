package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spate-dev/spate/drivers/kafka"
	"github.com/spate-dev/spate/drivers/stamp"
	"github.com/spate-dev/spate/internal/benchcompare"
)

// BenchmarkCompare is spate against a bare franz-go client on the embedded
// cluster, each on a fresh cluster of its own, at every size and at 3 and
// 12 partitions (`make bench-compare`; see internal/benchcompare):
//
//	produce  spate's max phase with consumers: 0 against a produce loop,
//	         messages acked per second while producing
//	max      spate's max phase with one consumer against the same loop and
//	         a consumer polling, messages received per second while
//	         producing
//	consume  a backlog made by producing for the duration with the
//	         consumer held (spate: consumer-pause), then drained: messages
//	         received per second from the release to the last message
//
// Both sides use spate's defaults: one producer (linger 10ms, batches up to
// 1,000,012 bytes, 10,000 records buffered, acks=all, idempotent, no
// compression, no keys), one consumer in a group (kgo's fetch defaults,
// autocommit), records of the message size with the 48-byte stamp in a
// header. spate's in-flight window (20,000) is above the buffer, so the
// client's buffer holds both producers back alike.
func BenchmarkCompare(b *testing.B) {
	benchcompare.Bench(b, comparePairs(benchcompare.Settings(), []int{3, 12}))
}

// TestCompareShape runs BenchmarkCompare's code path once per direction
// on short settings: not a measurement, a check that it still works.
func TestCompareShape(t *testing.T) {
	// 1s: under the race detector a consumer's first fetch can take
	// longer than a shorter window.
	cfg := benchcompare.Config{Rounds: 1, Duration: time.Second, Sizes: []int{1024}}
	benchcompare.Check(t, comparePairs(cfg, []int{3}))
}

func comparePairs(cfg benchcompare.Config, partitions []int) []benchcompare.Pair {
	var pairs []benchcompare.Pair
	for _, dir := range []string{benchcompare.Produce, benchcompare.Max, benchcompare.Consume} {
		for _, size := range cfg.Sizes {
			for _, parts := range partitions {
				s := benchcompare.Spate{Kind: kafka.Kind, Driver: fmt.Sprintf("{kafka: {partitions: %d}}", parts), InFlight: 20_000}
				d := cfg.Duration
				p := benchcompare.Pair{Direction: dir, Size: size, Partitions: parts}
				switch dir {
				case benchcompare.Produce:
					p.Spate, p.Bare = s.Produce(size, d), bareKafka(size, parts, d, dir, nil)
				case benchcompare.Max:
					p.Spate, p.Bare = s.Max(size, d), bareKafka(size, parts, d, dir, nil)
				case benchcompare.Consume:
					// The window of the client's buffer, as the bare loop
					// produces: the backlog is then made of record batches
					// of the same size on both sides, which a consumer's
					// cost per record depends on (with a 2,000 window,
					// spate's batches at 12 partitions were a fifth of the
					// bare loop's, and draining them cost 1.3 µs a record
					// against 1.0). Not above it, and not above 16 MiB of
					// records (2,000 at least): the records still in flight
					// when the phase ends must be confirmed within the
					// settle time before the consumers start, which 10,000
					// records of 16 KiB were not.
					s.InFlight = min(kafka.DefaultMaxBufferedRecords, max(2000, (16<<20)/size))
					backlog := new(benchcompare.Backlog)
					p.Spate, p.Bare = s.Consume(size, d, backlog), bareKafka(size, parts, d, dir, backlog)
				}
				pairs = append(pairs, p)
			}
		}
	}
	return pairs
}

// bareKafka is the bare franz-go side of a direction on a fresh embedded
// cluster of the given partitions: a produce loop for d (with a consumer
// polling meanwhile for max); for consume, a consumer held until the loop
// has produced as many records as spate's last backlog (or for d), then
// timed while it drains them.
func bareKafka(size, partitions int, d time.Duration, direction string, backlog *benchcompare.Backlog) benchcompare.Side {
	return func(ctx context.Context) (benchcompare.Sample, error) {
		o := kafka.DefaultOptions()
		o.Partitions = partitions
		drv, err := kafka.Open(ctx, o, testEnv(1, 1))
		if err != nil {
			return benchcompare.Sample{}, err
		}
		defer drv.Close(context.Background())
		ed := drv.(*kafka.EmbeddedDriver)

		var cons *bareConsumer
		if direction != benchcompare.Produce {
			if cons, err = newBareConsumer(ctx, ed); err != nil {
				return benchcompare.Sample{}, err
			}
			defer cons.close()
			if direction == benchcompare.Max {
				cons.start()
			}
		}
		count := acked // what the window counts: acks, or receipts for max
		var ready func(*kgo.Client) error
		if direction == benchcompare.Max {
			count = func(*atomic.Int64) int64 { return cons.received.Load() }
			ready = cons.ready
		}
		var limit int64
		if backlog != nil {
			limit = backlog.Size()
		}
		w, total, err := bareProduce(ctx, ed, size, d, limit, ready, count)
		if err != nil {
			return benchcompare.Sample{}, err
		}
		if direction == benchcompare.Consume {
			return cons.drain(ctx, total, time.Minute)
		}
		return w, nil
	}
}

func acked(a *atomic.Int64) int64 { return a.Load() }

// bareProduce produces records of size bytes (a 48-byte spate-stamp
// header, the rest value) as fast as the client's buffer allows for d, or
// until it has produced limit records when limit > 0, then flushes; ready,
// when not nil, is called with the client first. It returns the sample of
// count (given the records acked so far) from benchcompare.Warmup to d,
// and the records produced, every one acked.
func bareProduce(ctx context.Context, ed *kafka.EmbeddedDriver, size int, d time.Duration, limit int64,
	ready func(*kgo.Client) error, count func(acked *atomic.Int64) int64) (benchcompare.Sample, int64, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(ed.BrokerAddrs()...),
		kgo.MetadataMinAge(kafka.DefaultMetadataMinAge),
		kgo.MetadataMaxAge(kafka.DefaultMetadataMaxAge),
		kgo.DefaultProduceTopic(ed.Topic()),
		kgo.ProducerLinger(kafka.DefaultLinger),
		kgo.ProducerBatchMaxBytes(kafka.DefaultBatchMaxBytes),
		kgo.MaxBufferedRecords(kafka.DefaultMaxBufferedRecords),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	if err != nil {
		return benchcompare.Sample{}, 0, err
	}
	defer cl.Close()
	if ready != nil {
		if err := ready(cl); err != nil {
			return benchcompare.Sample{}, 0, err
		}
	}
	header := make([]byte, stamp.Size)
	value := make([]byte, size-stamp.Size)
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err)
			return
		}
		ok.Add(1)
	}
	var from, to struct {
		at  time.Time
		n   int64
		cpu time.Duration
	}
	var produced int64
	start := time.Now()
	for end := start.Add(d); ; {
		now := time.Now()
		if from.at.IsZero() && now.Sub(start) >= benchcompare.Warmup {
			from.at, from.n, from.cpu = now, count(&ok), benchcompare.CPUTime()
		}
		if limit > 0 && produced >= limit || limit <= 0 && !now.Before(end) {
			to.at, to.n, to.cpu = now, count(&ok), benchcompare.CPUTime()
			break
		}
		n := int64(256)
		if limit > 0 {
			n = min(n, limit-produced)
		}
		for range n {
			cl.Produce(ctx, &kgo.Record{
				Value:   value,
				Headers: []kgo.RecordHeader{{Key: kafka.StampHeader, Value: header}},
			}, promise)
		}
		produced += n
	}
	if err := cl.Flush(ctx); err != nil {
		return benchcompare.Sample{}, 0, err
	}
	if f := failed.Load(); f > 0 {
		return benchcompare.Sample{}, 0, fmt.Errorf("%d records failed: %v", f, firstErr.Load())
	}
	w := benchcompare.Sample{Messages: to.n - from.n, Elapsed: to.at.Sub(from.at), CPU: to.cpu - from.cpu}
	return w, ok.Load(), nil
}

// bareConsumer is one franz-go consumer in a group of its own, polling
// up to 4,096 records at a time as spate's consumer does.
type bareConsumer struct {
	cl       *kgo.Client
	cancel   context.CancelFunc
	done     chan struct{}
	received atomic.Int64
}

// newBareConsumer joins the group and waits until it owns partitions, so
// that no timed work waits for the group to form (as spate's consumers
// wait before the traffic starts).
func newBareConsumer(ctx context.Context, ed *kafka.EmbeddedDriver) (*bareConsumer, error) {
	assigned := make(chan struct{}, 1)
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(ed.BrokerAddrs()...),
		kgo.MetadataMinAge(kafka.DefaultMetadataMinAge),
		kgo.MetadataMaxAge(kafka.DefaultMetadataMaxAge),
		kgo.ConsumerGroup("bare"),
		kgo.ConsumeTopics(ed.Topic()),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			select {
			case assigned <- struct{}{}:
			default:
			}
		}),
	)
	if err != nil {
		return nil, err
	}
	c := &bareConsumer{cl: cl, done: make(chan struct{})}
	// A poll that returns nothing drives the join; records the group
	// has no way to hold back yet are none: the topic is empty.
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	go func() { cl.PollRecords(pctx, 1) }()
	select {
	case <-assigned:
		cancel()
		return c, nil
	case <-pctx.Done():
		cl.Close()
		return nil, errors.New("the bare consumer got no partitions within 10s")
	}
}

// start polls in the background until close.
func (c *bareConsumer) start() {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() {
		defer close(c.done)
		for ctx.Err() == nil {
			c.received.Add(int64(c.cl.PollRecords(ctx, 4096).NumRecords()))
		}
	}()
}

// ready produces one record with cl and waits until the polling consumer
// has it: then it is fetching, as spate's consumers are when the traffic
// starts (a group member's first fetch can take a second on a busy
// machine, which would otherwise count against the bare side).
func (c *bareConsumer) ready(cl *kgo.Client) error {
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("ready")}).FirstErr(); err != nil {
		return err
	}
	for deadline := time.Now().Add(30 * time.Second); c.received.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return errors.New("the bare consumer received nothing within 30s")
		}
	}
	return nil
}

// drain polls until it has received want records, at most limit, timed
// as every consume side is (benchcompare.CatchUp).
func (c *bareConsumer) drain(ctx context.Context, want int64, limit time.Duration) (benchcompare.Sample, error) {
	dctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var cu benchcompare.CatchUp
	for cu.Received() < want {
		fs := c.cl.PollRecords(dctx, 4096)
		if dctx.Err() != nil {
			return benchcompare.Sample{}, fmt.Errorf("drained %d of %d records in %v", cu.Received(), want, limit)
		}
		if n := fs.NumRecords(); n > 0 {
			cu.Batch(n)
		}
	}
	return cu.Sample(), nil
}

func (c *bareConsumer) close() {
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
	c.cl.Close()
}
