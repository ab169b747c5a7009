package memory_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/memory"
	"github.com/spate-dev/spate/drivers/stamp"
	"github.com/spate-dev/spate/internal/benchcompare"
)

// BenchmarkCompare is spate's closed-loop ceiling on the memory broker
// against the driver used alone (`make bench-compare`; see
// internal/benchcompare): the ratio is what the engine, the stamps and the
// tracker cost on the fastest path there is.
//
//	max  2 producers keeping 100,000 messages in flight between them and
//	     2 consumers on 4 streams; spate's max phase against the driver's
//	     Producer.Send of ready-made batches of 1,024 and Consumer.Consume
//	     with a handler that counts, messages received per second
func BenchmarkCompare(b *testing.B) {
	benchcompare.Bench(b, memoryPairs(benchcompare.Settings()))
}

// TestCompareShape runs BenchmarkCompare's code path once on short
// settings: not a measurement, a check that it still works.
func TestCompareShape(t *testing.T) {
	benchcompare.Check(t, memoryPairs(benchcompare.Config{Rounds: 1, Duration: 300 * time.Millisecond, Sizes: []int{1024}}))
}

const (
	cmpProducers = 2
	cmpConsumers = 2
	cmpInFlight  = 100_000
	cmpStreams   = 4
)

func memoryPairs(cfg benchcompare.Config) []benchcompare.Pair {
	s := benchcompare.Spate{Kind: memory.Kind, Driver: fmt.Sprintf("{memory: {streams: %d}}", cmpStreams),
		Producers: cmpProducers, Consumers: cmpConsumers, InFlight: cmpInFlight}
	var pairs []benchcompare.Pair
	for _, size := range cfg.Sizes {
		pairs = append(pairs, benchcompare.Pair{Direction: benchcompare.Max, Size: size,
			Spate: s.Max(size, cfg.Duration), Bare: bareMemory(size, cfg.Duration)})
	}
	return pairs
}

// bareMemory drives the memory driver directly for d: each producer sends
// the same ready-made batch again whenever its share of the in-flight
// window has room, and the consumers count what they are handed. It
// counts the deliveries from benchcompare.Warmup to d.
func bareMemory(size int, d time.Duration) benchcompare.Side {
	return func(ctx context.Context) (benchcompare.Sample, error) {
		o := memory.DefaultOptions()
		o.Streams = cmpStreams
		drv, err := memory.Kind.Open(ctx, o, testEnv(cmpProducers, cmpConsumers))
		if err != nil {
			return benchcompare.Sample{}, err
		}
		defer drv.Close(context.Background())

		var received atomic.Int64
		cctx, stop := context.WithCancel(ctx)
		var consumers sync.WaitGroup
		for i := range cmpConsumers {
			c, err := drv.NewConsumer(ctx, i)
			if err != nil {
				stop()
				return benchcompare.Sample{}, err
			}
			consumers.Add(1)
			go func() {
				defer consumers.Done()
				_ = c.Consume(cctx, func(batch []drivers.Delivery) { received.Add(int64(len(batch))) })
			}()
		}
		defer func() { stop(); consumers.Wait() }()

		type mark struct {
			at  time.Time
			n   int64
			cpu time.Duration
		}
		var mu sync.Mutex // the marks
		var from, to mark
		set := func(m *mark) {
			now := mark{time.Now(), received.Load(), benchcompare.CPUTime()}
			mu.Lock()
			*m = now
			mu.Unlock()
		}
		done := make(chan struct{})
		timers := []*time.Timer{time.AfterFunc(benchcompare.Warmup, func() { set(&from) }),
			time.AfterFunc(d, func() { set(&to); close(done) })}
		defer func() {
			for _, t := range timers {
				t.Stop()
			}
		}()

		errs := make(chan error, cmpProducers)
		var producers sync.WaitGroup
		for id := range cmpProducers {
			producers.Add(1)
			go func() {
				defer producers.Done()
				errs <- bareMemoryProducer(ctx, drv, id, size, done)
			}()
		}
		producers.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				return benchcompare.Sample{}, err
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return benchcompare.Sample{Messages: to.n - from.n, Elapsed: to.at.Sub(from.at), CPU: to.cpu - from.cpu}, nil
	}
}

// bareMemoryProducer sends one ready-made batch of 1,024 messages of size
// bytes over and over, keeping at most its share of the in-flight window
// without an outcome, until done.
func bareMemoryProducer(ctx context.Context, drv drivers.Driver, id, size int, done <-chan struct{}) error {
	var inflight atomic.Int64
	room := make(chan struct{}, 1)
	p, err := drv.NewProducer(ctx, id, func(rs []drivers.Result) {
		inflight.Add(-int64(len(rs)))
		select {
		case room <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return err
	}
	batch := make([]drivers.Message, 1024)
	body := make([]byte, size)
	st := stamp.Stamp{RunID: 0x5eed, Producer: uint32(id)}
	st.Put(body)
	for i := range batch {
		batch[i] = drivers.Message{Head: body[:stamp.Size], Tail: body[stamp.Size:]}
	}
	window := int64(cmpInFlight / cmpProducers)
	for {
		select {
		case <-done:
			return p.Close(ctx)
		default:
		}
		if inflight.Load()+int64(len(batch)) > window {
			select {
			case <-room:
			case <-done:
			}
			continue
		}
		inflight.Add(int64(len(batch)))
		if err := p.Send(ctx, batch); err != nil {
			return err
		}
	}
}
