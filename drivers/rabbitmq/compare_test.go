package rabbitmq_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/rabbitmq"
	"github.com/spate-dev/spate/internal/benchcompare"
)

// BenchmarkCompare is spate against a bare amqp091-go client on the
// package's managed node, at every size (`make bench-compare`; see
// internal/benchcompare):
//
//	produce  spate's max phase with consumers: 0 against a publish loop:
//	         persistent messages to a durable classic queue through the
//	         default exchange, publisher confirms with at most 1,000
//	         unconfirmed (spate's confirm window), messages confirmed per
//	         second
//	consume  a backlog published for the duration with the consumer
//	         subscribed and held (spate: consumer-pause), then drained:
//	         one consumer channel, prefetch 1,000, manual acks, one
//	         multiple ack per batch of what has arrived (up to 512, as
//	         spate's consumer acks), messages received per second from
//	         the release to the last message
//
// Messages carry spate's stamp in the body (stamp: body), so both sides
// publish bodies of the message size and no headers.
func BenchmarkCompare(b *testing.B) {
	benchcompare.Bench(b, rabbitPairs(b, benchcompare.Settings()))
}

// TestCompareShape runs BenchmarkCompare's code path once per direction
// on short settings: not a measurement, a check that it still works.
func TestCompareShape(t *testing.T) {
	cfg := benchcompare.Config{Rounds: 1, Duration: 300 * time.Millisecond, Sizes: []int{1024}}
	benchcompare.Check(t, rabbitPairs(t, cfg))
}

func rabbitPairs(t testing.TB, cfg benchcompare.Config) []benchcompare.Pair {
	n := node(t)
	kind := drivers.Kind{Name: "rabbitmq", Options: rabbitmq.Kind.Options,
		Open: func(ctx context.Context, options any, env drivers.Env) (drivers.Driver, error) {
			o := options.(rabbitmq.Options)
			o.Node, o.ConnectTimeout = n, 20*time.Second
			return rabbitmq.Kind.Open(ctx, o, env)
		}}
	// In-flight above the confirm window, so the window holds spate's
	// producer back as it holds the bare loop.
	s := benchcompare.Spate{Kind: kind, Driver: "rabbitmq", InFlight: 2 * rabbitmq.DefaultConfirmWindow}
	var pairs []benchcompare.Pair
	for _, size := range cfg.Sizes {
		pairs = append(pairs, benchcompare.Pair{Direction: benchcompare.Produce, Size: size,
			Spate: s.Produce(size, cfg.Duration), Bare: bareRabbit(n, size, cfg.Duration, nil)})
	}
	// Consume: the confirm window alone, so that what is unconfirmed when
	// the backlog's phase ends is confirmed before the consumers start.
	s.InFlight = rabbitmq.DefaultConfirmWindow
	for _, size := range cfg.Sizes {
		backlog := new(benchcompare.Backlog)
		pairs = append(pairs, benchcompare.Pair{Direction: benchcompare.Consume, Size: size,
			Spate: s.Consume(size, cfg.Duration, backlog), Bare: bareRabbit(n, size, cfg.Duration, backlog)})
	}
	return pairs
}

// bareRabbit publishes for d on a queue of its own; with a backlog (the
// consume direction), a consumer subscribed beforehand and held drains
// what was published: as many messages as spate's last backlog (or what d
// allowed).
func bareRabbit(n *rabbitmq.Node, size int, d time.Duration, backlog *benchcompare.Backlog) benchcompare.Side {
	return func(ctx context.Context) (benchcompare.Sample, error) {
		conn, err := amqp.Dial(n.URL())
		if err != nil {
			return benchcompare.Sample{}, err
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			return benchcompare.Sample{}, err
		}
		q := uniqueName("spate-bench-bare")
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			return benchcompare.Sample{}, err
		}
		defer func() { _, _ = ch.QueueDelete(q, false, false, false) }()

		var cons *amqp.Channel
		var dels <-chan amqp.Delivery
		var limit int64
		if backlog != nil {
			limit = backlog.Size()
			// Its own connection, as spate's consumer has.
			cconn, err := amqp.Dial(n.URL())
			if err != nil {
				return benchcompare.Sample{}, err
			}
			defer cconn.Close()
			if cons, err = cconn.Channel(); err != nil {
				return benchcompare.Sample{}, err
			}
			if err := cons.Qos(rabbitmq.DefaultPrefetch, 0, false); err != nil {
				return benchcompare.Sample{}, err
			}
			if dels, err = cons.Consume(q, "", false, false, false, false, nil); err != nil {
				return benchcompare.Sample{}, err
			}
		}
		w, total, err := barePublish(ctx, ch, q, size, d, limit)
		if err != nil || backlog == nil {
			return w, err
		}
		return bareDrain(ctx, cons, dels, total, time.Minute)
	}
}

// barePublish publishes persistent messages of size bytes to queue q with
// publisher confirms, at most the confirm window unconfirmed, for d, or
// limit messages when limit > 0. It returns the sample of confirmations
// from benchcompare.Warmup to d, and the messages published, every one
// confirmed.
func barePublish(ctx context.Context, ch *amqp.Channel, q string, size int, d time.Duration, limit int64) (benchcompare.Sample, int64, error) {
	if err := ch.Confirm(false); err != nil {
		return benchcompare.Sample{}, 0, err
	}
	window := rabbitmq.DefaultConfirmWindow
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, window))
	tokens := make(chan struct{}, window)
	var acked, nacked atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range confirms {
			if c.Ack {
				acked.Add(1)
			} else {
				nacked.Add(1)
			}
			<-tokens
		}
	}()
	body := make([]byte, size)
	var published int64
	var from, to struct {
		at  time.Time
		n   int64
		cpu time.Duration
	}
	start := time.Now()
	for end := start.Add(d); ; published++ {
		now := time.Now()
		if from.at.IsZero() && now.Sub(start) >= benchcompare.Warmup {
			from.at, from.n, from.cpu = now, acked.Load(), benchcompare.CPUTime()
		}
		if limit > 0 && published >= limit || limit <= 0 && !now.Before(end) {
			to.at, to.n, to.cpu = now, acked.Load(), benchcompare.CPUTime()
			break
		}
		select {
		case tokens <- struct{}{}:
		case <-ctx.Done():
			return benchcompare.Sample{}, 0, ctx.Err()
		}
		if err := ch.PublishWithContext(ctx, "", q, false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body}); err != nil {
			return benchcompare.Sample{}, 0, err
		}
	}
	// Every confirm in: the window's tokens all given back.
	for deadline := time.Now().Add(time.Minute); acked.Load()+nacked.Load() < published; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return benchcompare.Sample{}, 0, fmt.Errorf("%d of %d confirms after a minute", acked.Load()+nacked.Load(), published)
		}
	}
	if nacked.Load() > 0 {
		return benchcompare.Sample{}, 0, fmt.Errorf("%d messages nacked", nacked.Load())
	}
	return benchcompare.Sample{Messages: to.n - from.n, Elapsed: to.at.Sub(from.at), CPU: to.cpu - from.cpu}, published, nil
}

// bareDrain receives want messages, acknowledging each batch of what has
// arrived (up to rabbitmq.MaxBatch) with one multiple ack, timed as every
// consume side is (benchcompare.CatchUp).
func bareDrain(ctx context.Context, ch *amqp.Channel, dels <-chan amqp.Delivery, want int64, limit time.Duration) (benchcompare.Sample, error) {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	var cu benchcompare.CatchUp
	for cu.Received() < want {
		var dv amqp.Delivery
		var ok bool
		select {
		case dv, ok = <-dels:
		case <-timer.C:
			return benchcompare.Sample{}, fmt.Errorf("drained %d of %d messages in %v", cu.Received(), want, limit)
		case <-ctx.Done():
			return benchcompare.Sample{}, ctx.Err()
		}
		if !ok {
			return benchcompare.Sample{}, errors.New("the consumer's channel closed")
		}
		n, last := 1, dv.DeliveryTag
	gather:
		for n < rabbitmq.MaxBatch {
			select {
			case dv, ok = <-dels:
				if !ok {
					break gather
				}
				n++
				last = dv.DeliveryTag
			default:
				break gather
			}
		}
		if err := ch.Ack(last, true); err != nil {
			return benchcompare.Sample{}, err
		}
		cu.Batch(n)
	}
	return cu.Sample(), nil
}
