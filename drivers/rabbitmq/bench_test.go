package rabbitmq_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/rabbitmq"
	"github.com/spate-dev/spate/drivers/stamp"
)

// Publishing persistent 256-byte messages with publisher confirms to a
// fresh durable queue on the shared node, one producer, the same confirm
// window (1000):
//
//	bare    a plain amqp091-go loop: publish while fewer than the window
//	        are unconfirmed, count confirms from NotifyPublish; with
//	        header, every message carries the same 48-byte header as
//	        spate's stamp: header
//	spate   the driver's Producer, fed pre-built messages in batches of 256
//	        (stamp in the body, the default, or also in a header)
//
// Both measure from the first publish to the last confirm. On a shared
// machine the broker's speed drifts with the load, so PublishConfirmsPaired
// alternates runs of 20,000 messages and reports each side's total rate
// and their ratio:
//
//	stamp-body        bare vs spate (default options)
//	stamp-header      bare with the header vs spate with stamp: header
//	header-cost       bare vs bare with the header: what the header costs
//	                  the broker
//
// PublishConfirms runs each alone.
//
//	go test -run '^$' -bench PublishConfirmsPaired -benchtime 10x ./drivers/rabbitmq/
//	go test -run '^$' -bench 'PublishConfirms$' -benchtime 100000x ./drivers/rabbitmq/

const (
	benchSize   = 256
	benchWindow = rabbitmq.DefaultConfirmWindow
	benchBatch  = 256
	pairedN     = 20_000
)

func BenchmarkPublishConfirms(b *testing.B) {
	node(b)
	report := func(b *testing.B, elapsed time.Duration) {
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	}
	b.Run("bare", func(b *testing.B) { report(b, publishBare(b, b.N, false, true)) })
	b.Run("bare-header", func(b *testing.B) { report(b, publishBare(b, b.N, true, true)) })
	b.Run("spate-stamp-body", func(b *testing.B) { report(b, publishSpate(b, b.N, "body", true)) })
	b.Run("spate-stamp-header", func(b *testing.B) { report(b, publishSpate(b, b.N, "header", true)) })
}

// BenchmarkPublishConfirmsPaired: each iteration publishes pairedN
// messages each way, in alternating order.
func BenchmarkPublishConfirmsPaired(b *testing.B) {
	node(b)
	type run func(b *testing.B) time.Duration
	bare := func(header bool) run {
		return func(b *testing.B) time.Duration { return publishBare(b, pairedN, header, false) }
	}
	spate := func(placement rabbitmq.Placement) run {
		return func(b *testing.B) time.Duration { return publishSpate(b, pairedN, placement, false) }
	}
	for _, tc := range []struct {
		name          string
		base, other   run
		baseU, otherU string
	}{
		{"stamp-body", bare(false), spate("body"), "bare", "spate"},
		{"stamp-header", bare(true), spate("header"), "bare-header", "spate-header"},
		{"header-cost", bare(false), bare(true), "bare", "bare-header"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var base, other time.Duration
			for i := range b.N {
				if i%2 == 0 {
					base += tc.base(b)
					other += tc.other(b)
				} else {
					other += tc.other(b)
					base += tc.base(b)
				}
			}
			n := float64(b.N * pairedN)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(n/base.Seconds(), tc.baseU+"-msgs/s")
			b.ReportMetric(n/other.Seconds(), tc.otherU+"-msgs/s")
			b.ReportMetric(base.Seconds()/other.Seconds(), "ratio")
		})
	}
}

// publishBare publishes n messages with a plain client loop and returns the
// time from the first publish to the last confirm; with header, each
// carries a 48-byte spate-stamp header. With timer, the benchmark's timer
// covers that time only.
func publishBare(b *testing.B, n int, header, timer bool) time.Duration {
	conn, err := amqp.Dial(node(b).URL())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	q := uniqueName("spate-bench-bare")
	if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
		b.Fatal(err)
	}
	defer func() { _, _ = ch.QueueDelete(q, false, false, false) }()
	if err := ch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, benchWindow))
	window := make(chan struct{}, benchWindow)
	done := make(chan struct{})
	var nacked atomic.Int64
	go func() {
		seen := 0
		for c := range confirms {
			if !c.Ack {
				nacked.Add(1)
			}
			<-window
			if seen++; seen == n {
				close(done)
			}
		}
	}()
	body := make([]byte, benchSize)
	headers := amqp.Table{}
	if timer {
		b.ReportAllocs()
		b.ResetTimer()
	}
	start := time.Now()
	for range n {
		window <- struct{}{}
		msg := amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body}
		if header {
			headers[rabbitmq.HeaderName] = body[:stamp.Size]
			msg.Headers = headers
		}
		if err := ch.Publish("", q, false, false, msg); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	elapsed := time.Since(start)
	if timer {
		b.StopTimer()
	}
	if nacked.Load() > 0 {
		b.Errorf("%d nacks", nacked.Load())
	}
	return elapsed
}

// publishSpate publishes n messages through the driver, as publishBare.
func publishSpate(b *testing.B, n int, placement rabbitmq.Placement, timer bool) time.Duration {
	o := options(b)
	o.ConfirmWindow = benchWindow
	o.Stamp = placement
	env := testEnv(b, 1, 0)
	ctx := context.Background()
	d, err := rabbitmq.Kind.Open(ctx, o, env)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close(ctx)
	var acked, failed atomic.Int64
	p, err := d.NewProducer(ctx, 0, func(rs []drivers.Result) {
		for _, r := range rs {
			if r.Err == nil {
				acked.Add(1)
			} else {
				failed.Add(1)
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	// Messages as the engine builds them, built before the clock starts.
	msgs := make([]drivers.Message, n)
	slab := make([]byte, n*benchSize)
	for i := range msgs {
		body := slab[i*benchSize : (i+1)*benchSize : (i+1)*benchSize]
		s := stamp.Stamp{RunID: env.RunID, Seq: uint64(i)}
		s.Put(body)
		msgs[i] = drivers.Message{Stamp: s, Head: body[:stamp.Size], Tail: body[stamp.Size:]}
	}
	if timer {
		b.ReportAllocs()
		b.ResetTimer()
	}
	start := time.Now()
	for i := 0; i < len(msgs); i += benchBatch {
		batch := msgs[i:min(i+benchBatch, len(msgs))]
		now := time.Now().UnixNano()
		for j := range batch {
			batch[j].Stamp.Sent = now
			stamp.SetSent(batch[j].Head, now)
		}
		if err := p.Send(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	if timer {
		b.StopTimer()
	}
	if acked.Load() != int64(n) || failed.Load() != 0 {
		b.Errorf("%d acked, %d failed of %d", acked.Load(), failed.Load(), n)
	}
	return elapsed
}
