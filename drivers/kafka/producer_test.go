package kafka_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/kafka"
	"github.com/spate-dev/spate/drivers/stamp"
)

// TestBackpressure: with max-buffered-records 8, Send blocks while 8
// records have no outcome and goes on as outcomes come; when its ctx ends
// while it waits, the messages not handed over fail with ctx's error, each
// with exactly one outcome.
func TestBackpressure(t *testing.T) {
	o := kafka.DefaultOptions()
	o.MaxBufferedRecords = 8
	o.Linger = time.Second // a full producer does not linger: Send must not wait for it
	e := openEmbedded(t, o, testEnv(1, 1))

	rec := newOutcomes()
	p, err := e.NewProducer(context.Background(), 0, rec.record)
	if err != nil {
		t.Fatal(err)
	}
	msgs := func(from, n int) []drivers.Message {
		var out []drivers.Message
		for i := from; i < from+n; i++ {
			s := stamp.Stamp{RunID: 0x5eed, Seq: uint64(i)}
			body := make([]byte, 64)
			s.Put(body)
			out = append(out, drivers.Message{Stamp: s, Head: body[:stamp.Size], Tail: body[stamp.Size:]})
		}
		return out
	}
	start := time.Now()
	if err := p.Send(context.Background(), msgs(0, 200)); err != nil {
		t.Fatal(err)
	}
	t.Logf("first Send took %v", time.Since(start))
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("200 messages through a buffer of 8 took %v: the producer lingered while full", took)
	}

	// A Send whose ctx is already over fails what it cannot hand over.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Send(ctx, msgs(200, 100)); err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	if err := p.Close(cctx); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var failed int
	for i := range 300 {
		errs := rec.by[uint64(i)]
		if len(errs) != 1 {
			t.Fatalf("seq %d: %d outcomes", i, len(errs))
		}
		switch {
		case i < 200 && errs[0] != nil:
			t.Errorf("seq %d: %v", i, errs[0])
		case errs[0] != nil:
			if !errors.Is(errs[0], context.Canceled) {
				t.Errorf("seq %d: %v, want context.Canceled", i, errs[0])
			}
			failed++
		}
	}
	if failed < 100-8 {
		t.Errorf("%d of the 100 messages sent with a done ctx failed; at most 8 fit the buffer", failed)
	}
}

// TestMaxBufferedBytes: max-buffered-bytes reaches the producers' franz-go
// client (left out, the client has no bound), and records of 1KiB through
// a 4KiB buffer are all written and confirmed, each with one outcome.
func TestMaxBufferedBytes(t *testing.T) {
	o := kafka.DefaultOptions()
	o.Embedded.Brokers, o.ReplicationFactor = 1, 1
	o.MaxBufferedBytes = 4 << 10
	e := openEmbedded(t, o, testEnv(1, 1))
	rec := newOutcomes()
	p, err := e.NewProducer(context.Background(), 0, rec.record)
	if err != nil {
		t.Fatal(err)
	}
	if got := kafka.ProducerOpt(p, kgo.MaxBufferedBytes); got != int64(4<<10) {
		t.Errorf("the client's MaxBufferedBytes = %v, want 4096", got)
	}
	const n = 300
	msgs := make([]drivers.Message, n)
	for i := range msgs {
		s := stamp.Stamp{RunID: 0xb17e, Seq: uint64(i)}
		body := make([]byte, 1<<10)
		s.Put(body)
		msgs[i] = drivers.Message{Stamp: s, Head: body[:stamp.Size], Tail: body[stamp.Size:]}
	}
	if err := p.Send(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	for i := range n {
		if errs := rec.by[uint64(i)]; len(errs) != 1 || errs[0] != nil {
			t.Errorf("seq %d: outcomes %v, want one, confirmed", i, errs)
		}
	}
	rec.mu.Unlock()
	if got := e.Stats()["produced"]; got != n {
		t.Errorf("produced = %d, want %d", got, n)
	}

	o.MaxBufferedBytes = 0
	unset, err := openEmbedded(t, o, testEnv(1, 1)).NewProducer(context.Background(), 0, func([]drivers.Result) {})
	if err != nil {
		t.Fatal(err)
	}
	defer unset.Close(context.Background())
	if got := kafka.ProducerOpt(unset, kgo.MaxBufferedBytes); got != int64(0) {
		t.Errorf("without max-buffered-bytes the client's MaxBufferedBytes = %v, want 0 (franz-go's default)", got)
	}
}

// outcomes records a producer's results by sequence number, as its
// callback (record).
type outcomes struct {
	mu sync.Mutex
	by map[uint64][]error
}

func newOutcomes() *outcomes { return &outcomes{by: map[uint64][]error{}} }

func (o *outcomes) record(rs []drivers.Result) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range rs {
		o.by[r.Stamp.Seq] = append(o.by[r.Stamp.Seq], r.Err)
	}
}
