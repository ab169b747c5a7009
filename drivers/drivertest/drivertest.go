// Package drivertest is the conformance suite every spate driver must pass.
// A driver's test calls Run with a Config that opens the driver:
//
//	func TestConformance(t *testing.T) {
//		drivertest.Run(t, drivertest.Config{
//			Open: func(t *testing.T, env drivers.Env) drivers.Driver {
//				d, err := mydriver.Kind.Open(context.Background(), opts, env)
//				if err != nil {
//					t.Fatal(err)
//				}
//				return d
//			},
//		})
//	}
//
// Each subtest opens a fresh driver for a fresh run (a random RunID) and
// closes it at the end; it never waits a fixed time for something to happen,
// only up to Config.Timeout for a condition. The subtests:
//
//   - round-trip: one producer, one consumer; messages of varied sizes (the
//     bare stamp, 100 B, 1 KiB, 64 KiB) each get exactly one outcome and are
//     delivered at least once with the stamp that was sent.
//   - order: per producer per stream, first deliveries arrive in increasing
//     sequence (skipped for Unordered drivers).
//   - many: three producers and two consumers at once, with and without keys;
//     every message is delivered and nothing else of the run is.
//   - close-flushes: when Producer.Close returns, every outcome has been reported.
//   - consume-stops: Consume returns nil once its context is cancelled, and
//     Driver.Close returns.
//   - handler-batches: a consumer never calls its Handler concurrently.
//
// The package also checks drivers' generated documentation (docs.go) and
// decodes options for their tests (options.go). It depends on the standard
// library and spate's drivers, stamp and scenarios packages only.
package drivertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
)

// Config describes the driver under test.
type Config struct {
	// Open returns a driver for the run env, or fails t. The suite closes
	// the driver when the subtest ends.
	Open func(t *testing.T, env drivers.Env) drivers.Driver
	// Unordered: the driver promises no order (an SQS standard queue); its
	// deliveries may carry Stream == drivers.Unordered and the order subtest
	// is skipped.
	Unordered bool
	// Unconfirmed: the driver sends fire-and-forget, so every outcome is
	// drivers.ErrUnconfirmed rather than nil.
	Unconfirmed bool
	// Timeout bounds each wait for a condition (default 30s).
	Timeout time.Duration
	// Messages is the number of messages each producer sends (default 2000).
	Messages int
}

// Run runs every subtest of the suite against the driver cfg opens.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	if cfg.Open == nil {
		t.Fatal("drivertest: Config.Open is nil")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Messages <= 0 {
		cfg.Messages = 2000
	}
	s := &suite{cfg: cfg}
	t.Run("round-trip", s.roundTrip)
	t.Run("order", s.order)
	t.Run("many", s.many)
	t.Run("close-flushes", s.closeFlushes)
	t.Run("consume-stops", s.consumeStops)
	t.Run("handler-batches", s.handlerBatches)
}

type suite struct{ cfg Config }

// Body sizes of the round-trip subtest, cycled through; the 64 KiB body
// comes once in eight messages to keep the volume moderate.
var roundTripSizes = []int{stamp.Size, 100, 1024, stamp.Size, 100, 1024, 100, 64 << 10}

// Body sizes of the other subtests.
var smallSizes = []int{stamp.Size, 64, 100, 200}

func (s *suite) roundTrip(t *testing.T) {
	h := s.open(t, 1, 1)
	h.startConsumer(0, nil)
	p := h.producer(0)
	n := s.cfg.Messages
	h.send(p, 0, n, roundTripSizes, func(int) []byte { return nil })
	h.waitDelivered("every message delivered", n)
	h.closeProducer(p, 0)
	h.checkOutcomes()
	h.checkDeliveries()
}

func (s *suite) order(t *testing.T) {
	if s.cfg.Unordered {
		t.Skip("the driver promises no order")
	}
	h := s.open(t, 2, 1)
	h.startConsumer(0, nil)
	keys := testKeys(4)
	var wg sync.WaitGroup
	for pid := range 2 {
		p := h.producer(pid)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Mostly keyed (ordered per key everywhere), some without a key.
			h.send(p, pid, s.cfg.Messages, smallSizes, func(i int) []byte { return keys[i%len(keys)] })
		}()
	}
	wg.Wait()
	h.waitDelivered("every message delivered", 2*s.cfg.Messages)
	for pid := range 2 {
		h.closeProducer(h.producers[pid], pid)
	}
	h.checkOutcomes()
	h.checkDeliveries()
	h.l.mu.Lock()
	defer h.l.mu.Unlock()
	if len(h.l.outOfOrder) > 0 {
		t.Errorf("%d first deliveries arrived after a higher sequence number of the same producer on the same stream, e.g.:\n%s",
			h.l.outOfOrderCount, strings.Join(h.l.outOfOrder, "\n"))
	}
}

func (s *suite) many(t *testing.T) {
	const producers, consumers = 3, 2
	h := s.open(t, producers, consumers)
	for c := range consumers {
		h.startConsumer(c, nil)
	}
	keys := testKeys(8)
	var wg sync.WaitGroup
	for pid := range producers {
		p := h.producer(pid)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One message in nine has no key; the rest use 8 distinct keys.
			h.send(p, pid, s.cfg.Messages, smallSizes, func(i int) []byte {
				if i%9 == 0 {
					return nil
				}
				return keys[(i+pid)%len(keys)]
			})
		}()
	}
	wg.Wait()
	h.waitDelivered("every message of every producer delivered", producers*s.cfg.Messages)
	for pid := range producers {
		h.closeProducer(h.producers[pid], pid)
	}
	h.checkOutcomes()
	h.checkDeliveries()
}

func (s *suite) closeFlushes(t *testing.T) {
	h := s.open(t, 1, 1)
	p := h.producer(0)
	n := s.cfg.Messages
	h.send(p, 0, n, smallSizes, func(int) []byte { return nil })
	h.closeProducer(p, 0)
	// No waiting: Close promised that every outcome was reported.
	h.checkOutcomes()
}

func (s *suite) consumeStops(t *testing.T) {
	h := s.open(t, 1, 2)
	h.startConsumer(0, nil)
	h.startConsumer(1, nil) // may own nothing: an idle consumer must stop too
	p := h.producer(0)
	const n = 50
	h.send(p, 0, n, smallSizes, func(int) []byte { return nil })
	h.waitDelivered("messages delivered before stopping", n)
	h.closeProducer(p, 0)
	for c := range h.consumers {
		h.stopConsumer(c)
	}
	h.closeDriver()
}

func (s *suite) handlerBatches(t *testing.T) {
	const producers, consumers = 2, 2
	h := s.open(t, producers, consumers)
	var overlaps atomic.Int64
	for c := range consumers {
		var busy atomic.Bool
		h.startConsumer(c, func(batch []drivers.Delivery) {
			if !busy.CompareAndSwap(false, true) {
				overlaps.Add(1)
				return
			}
			runtime.Gosched() // widen the window for a second call to show up
			busy.Store(false)
		})
	}
	keys := testKeys(6)
	var wg sync.WaitGroup
	for pid := range producers {
		p := h.producer(pid)
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.send(p, pid, s.cfg.Messages, smallSizes, func(i int) []byte { return keys[i%len(keys)] })
		}()
	}
	wg.Wait()
	h.waitDelivered("every message delivered", producers*s.cfg.Messages)
	if n := overlaps.Load(); n > 0 {
		t.Errorf("a consumer's Handler was called %d times while a call of it was still running", n)
	}
	h.l.mu.Lock()
	defer h.l.mu.Unlock()
	if h.l.calls == 0 {
		t.Error("the Handler was never called")
	}
}

// testKeys returns n distinct keys, the first of them nil (no key).
func testKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := 1; i < n; i++ {
		keys[i] = []byte(fmt.Sprintf("key-%d", i))
	}
	return keys
}

// harness is one subtest's driver, producers, consumers and ledger.
type harness struct {
	t         *testing.T
	cfg       Config
	env       drivers.Env
	drv       drivers.Driver
	closed    bool
	l         *ledger
	producers []drivers.Producer
	consumers []*runningConsumer
}

type runningConsumer struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // valid once done is closed
	stop   bool  // the harness cancelled it
}

func (s *suite) open(t *testing.T, producers, consumers int) *harness {
	t.Helper()
	env := drivers.Env{
		RunID:     rand.Uint64() | 1,
		Scenario:  "drivertest-" + strings.ReplaceAll(t.Name(), "/", "-"),
		Producers: producers,
		Consumers: consumers,
		Log:       testLogger(t),
	}
	h := &harness{t: t, cfg: s.cfg, env: env, l: newLedger(env.RunID, s.cfg.Unordered, s.cfg.Unconfirmed)}
	h.producers = make([]drivers.Producer, producers)
	h.consumers = make([]*runningConsumer, consumers)
	h.drv = s.cfg.Open(t, env)
	if h.drv == nil {
		t.Fatal("Config.Open returned a nil driver")
	}
	// Cleanups run last-registered first: consumers stop, then the driver closes.
	t.Cleanup(func() {
		if !h.closed {
			h.closeDriver()
		}
	})
	t.Cleanup(func() {
		for _, rc := range h.consumers {
			if rc != nil && !rc.stop {
				rc.stop = true
				rc.cancel()
				select {
				case <-rc.done:
				case <-time.After(h.cfg.Timeout):
				}
			}
		}
	})
	return h
}

func (h *harness) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), h.cfg.Timeout)
}

// producer makes producer id, which records its outcomes in the ledger.
func (h *harness) producer(id int) drivers.Producer {
	h.t.Helper()
	ctx, cancel := h.ctx()
	defer cancel()
	p, err := h.drv.NewProducer(ctx, id, h.l.ack)
	if err != nil {
		h.t.Fatalf("NewProducer(%d): %v", id, err)
	}
	h.producers[id] = p
	return p
}

// startConsumer makes consumer id and runs Consume in a goroutine until the
// subtest stops it. hook, if not nil, also sees every batch.
func (h *harness) startConsumer(id int, hook drivers.Handler) {
	h.t.Helper()
	ctx, cancel := h.ctx()
	c, err := h.drv.NewConsumer(ctx, id)
	cancel()
	if err != nil {
		h.t.Fatalf("NewConsumer(%d): %v", id, err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	rc := &runningConsumer{cancel: ccancel, done: make(chan struct{})}
	h.consumers[id] = rc
	handler := h.l.handler()
	go func() {
		defer close(rc.done)
		rc.err = c.Consume(cctx, func(batch []drivers.Delivery) {
			if hook != nil {
				hook(batch)
			}
			handler(batch)
		})
	}()
}

// stopConsumer cancels consumer id's context and checks that Consume
// returns nil within the timeout.
func (h *harness) stopConsumer(id int) {
	h.t.Helper()
	rc := h.consumers[id]
	rc.stop = true
	rc.cancel()
	select {
	case <-rc.done:
		if rc.err != nil {
			h.t.Errorf("consumer %d: Consume returned %v after its context was cancelled, want nil", id, rc.err)
		}
	case <-time.After(h.cfg.Timeout):
		h.t.Fatalf("consumer %d: Consume did not return within %v of its context being cancelled", id, h.cfg.Timeout)
	}
}

func (h *harness) closeDriver() {
	h.t.Helper()
	h.closed = true
	ctx, cancel := h.ctx()
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- h.drv.Close(ctx) }()
	select {
	case err := <-errc:
		if err != nil {
			h.t.Errorf("Driver.Close: %v", err)
		}
	case <-time.After(h.cfg.Timeout + time.Second):
		h.t.Errorf("Driver.Close did not return within %v", h.cfg.Timeout)
	}
}

func (h *harness) closeProducer(p drivers.Producer, id int) {
	h.t.Helper()
	ctx, cancel := h.ctx()
	defer cancel()
	start := time.Now()
	if err := p.Close(ctx); err != nil {
		h.t.Fatalf("producer %d: Close: %v", id, err)
	}
	if time.Since(start) > h.cfg.Timeout {
		h.t.Fatalf("producer %d: Close took %v, beyond the timeout %v", id, time.Since(start), h.cfg.Timeout)
	}
}

// batchSizes are the sizes of the Send calls, cycled through.
var batchSizes = []int{1, 16, 100, 7, 250}

// send sends n messages of producer pid, with sequence numbers 0..n-1,
// bodies of the cycled sizes and keys from key(i). It may run on its own
// goroutine (one per producer), so it reports failures with Errorf.
func (h *harness) send(p drivers.Producer, pid, n int, sizes []int, key func(i int) []byte) {
	ctx, cancel := h.ctx()
	defer cancel()
	batch := make([]drivers.Message, 0, 256)
	for i, b := 0, 0; i < n; b++ {
		batch = batch[:0]
		for len(batch) < batchSizes[b%len(batchSizes)] && i < n {
			now := time.Now().UnixNano()
			st := stamp.Stamp{RunID: h.env.RunID, Producer: uint32(pid), Seq: uint64(i), Intended: now, Sent: now}
			body := make([]byte, sizes[i%len(sizes)])
			st.Put(body)
			for j := stamp.Size; j < len(body); j++ {
				body[j] = byte(i + j)
			}
			h.l.expect(st)
			batch = append(batch, drivers.Message{Stamp: st, Key: key(i), Head: body[:stamp.Size], Tail: body[stamp.Size:]})
			i++
		}
		if err := p.Send(ctx, batch); err != nil {
			h.t.Errorf("producer %d: Send: %v", pid, err)
			return
		}
	}
}

// waitDelivered waits until n distinct messages were delivered, failing
// early when a consumer stops on its own.
func (h *harness) waitDelivered(what string, n int) {
	h.t.Helper()
	deadline := time.Now().Add(h.cfg.Timeout)
	for {
		got := h.l.distinct()
		if got >= n {
			return
		}
		for id, rc := range h.consumers {
			if rc == nil || rc.stop {
				continue
			}
			select {
			case <-rc.done:
				h.t.Fatalf("waiting for %s: consumer %d stopped on its own (Consume returned %v)", what, id, rc.err)
			default:
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("waiting for %s: %d of %d messages delivered after %v\n%s", what, got, n, h.cfg.Timeout, h.l.missing(10))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// checkOutcomes asserts exactly one acceptable outcome per sent message.
func (h *harness) checkOutcomes() {
	h.t.Helper()
	l := h.l
	l.mu.Lock()
	defer l.mu.Unlock()
	var none, twice []string
	for id := range l.sent {
		switch n := l.outcomes[id]; {
		case n == 0:
			none = append(none, id.String())
		case n > 1:
			twice = append(twice, fmt.Sprintf("%v (%d outcomes)", id, n))
		}
	}
	report := func(what string, ids []string) {
		if len(ids) > 0 {
			sort.Strings(ids)
			h.t.Errorf("%d messages %s, e.g. %s", len(ids), what, strings.Join(ids[:min(10, len(ids))], ", "))
		}
	}
	report("have no outcome", none)
	report("have more than one outcome", twice)
	if len(l.badOutcomes) > 0 {
		want := "nil"
		if h.cfg.Unconfirmed {
			want = "drivers.ErrUnconfirmed"
		}
		h.t.Errorf("%d outcomes are not %s, e.g.:\n%s", l.badOutcomeCount, want, strings.Join(l.badOutcomes, "\n"))
	}
}

// checkDeliveries asserts that every delivery of the run was a sent message
// with its stamp intact and a valid stream.
func (h *harness) checkDeliveries() {
	h.t.Helper()
	l := h.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.bad) > 0 {
		h.t.Errorf("%d bad deliveries, e.g.:\n%s", l.badCount, strings.Join(l.bad, "\n"))
	}
	if l.foreign > 0 {
		h.t.Logf("%d deliveries of other runs were ignored", l.foreign)
	}
}

// msgID names one message of the run.
type msgID struct {
	producer uint32
	seq      uint64
}

func (id msgID) String() string { return fmt.Sprintf("producer %d seq %d", id.producer, id.seq) }

type streamID struct {
	producer uint32
	stream   int32
}

// maxExamples bounds the examples a ledger keeps of each kind of problem.
const maxExamples = 10

// ledger records what was sent, the outcomes and the deliveries of a run.
// It is safe for concurrent use.
type ledger struct {
	mu        sync.Mutex
	runID     uint64
	unordered bool
	sent      map[msgID]stamp.Stamp
	outcomes  map[msgID]int
	delivered map[msgID]int
	highest   map[streamID]uint64 // one more than the highest seq first delivered
	calls     int
	foreign   int

	badOutcomes     []string
	badOutcomeCount int
	bad             []string
	badCount        int
	outOfOrder      []string
	outOfOrderCount int
	unconfirmed     bool
}

func newLedger(runID uint64, unordered, unconfirmed bool) *ledger {
	return &ledger{
		runID:       runID,
		unordered:   unordered,
		unconfirmed: unconfirmed,
		sent:        map[msgID]stamp.Stamp{},
		outcomes:    map[msgID]int{},
		delivered:   map[msgID]int{},
		highest:     map[streamID]uint64{},
	}
}

func note(list *[]string, count *int, format string, args ...any) {
	*count++
	if len(*list) < maxExamples {
		*list = append(*list, "  "+fmt.Sprintf(format, args...))
	}
}

// expect records a message about to be sent.
func (l *ledger) expect(s stamp.Stamp) {
	l.mu.Lock()
	l.sent[msgID{s.Producer, s.Seq}] = s
	l.mu.Unlock()
}

// ack is every producer's AckFunc.
func (l *ledger) ack(results []drivers.Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range results {
		id := msgID{r.Stamp.Producer, r.Stamp.Seq}
		want, ok := l.sent[id]
		switch {
		case !ok:
			note(&l.badOutcomes, &l.badOutcomeCount, "%v: outcome for a message never sent", id)
			continue
		case r.Stamp != want:
			note(&l.badOutcomes, &l.badOutcomeCount, "%v: outcome carries stamp %+v, sent %+v", id, r.Stamp, want)
		}
		l.outcomes[id]++
		if l.unconfirmed {
			if !errors.Is(r.Err, drivers.ErrUnconfirmed) {
				note(&l.badOutcomes, &l.badOutcomeCount, "%v: outcome %v", id, r.Err)
			}
		} else if r.Err != nil {
			note(&l.badOutcomes, &l.badOutcomeCount, "%v: outcome %v", id, r.Err)
		}
	}
}

// handler returns a Handler that records deliveries.
func (l *ledger) handler() drivers.Handler {
	return func(batch []drivers.Delivery) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.calls++
		for _, d := range batch {
			s, err := stamp.Parse(d.Stamp)
			if err != nil {
				note(&l.bad, &l.badCount, "delivery of %d bytes is not a stamp: %v", len(d.Stamp), err)
				continue
			}
			if s.RunID != l.runID {
				l.foreign++
				continue
			}
			id := msgID{s.Producer, s.Seq}
			want, ok := l.sent[id]
			switch {
			case !ok:
				note(&l.bad, &l.badCount, "%v: delivered but never sent", id)
				continue
			case s != want:
				note(&l.bad, &l.badCount, "%v: delivered stamp %+v, sent %+v", id, s, want)
			}
			if d.Stream < 0 && !(l.unordered && d.Stream == drivers.Unordered) {
				note(&l.bad, &l.badCount, "%v: delivered on stream %d", id, d.Stream)
			}
			l.delivered[id]++
			if l.delivered[id] > 1 || d.Stream < 0 {
				continue
			}
			k := streamID{s.Producer, d.Stream}
			if hi := l.highest[k]; s.Seq+1 < hi {
				note(&l.outOfOrder, &l.outOfOrderCount, "%v on stream %d after seq %d", id, d.Stream, hi-1)
			} else {
				l.highest[k] = s.Seq + 1
			}
		}
	}
}

// distinct is the number of distinct messages delivered.
func (l *ledger) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.delivered)
}

// missing describes up to n sent messages not delivered yet.
func (l *ledger) missing(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []msgID
	for id := range l.sent {
		if l.delivered[id] == 0 {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool {
		if ids[i].producer != ids[j].producer {
			return ids[i].producer < ids[j].producer
		}
		return ids[i].seq < ids[j].seq
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%d sent messages not delivered", len(ids))
	for i, id := range ids {
		if i == n {
			b.WriteString(", ...")
			break
		}
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(id.String())
	}
	if l.foreign > 0 {
		fmt.Fprintf(&b, " (%d deliveries of other runs ignored)", l.foreign)
	}
	return b.String()
}

// testLogger returns a logger that writes to t.Log until the test ends, and
// discards afterwards (drivers may log from their own goroutines late).
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop) // registered first, so it runs after the driver closes
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

var _ io.Writer = (*testWriter)(nil)
