package memory_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/drivertest"
	"github.com/spate-dev/spate/drivers/memory"
	"github.com/spate-dev/spate/drivers/stamp"
	"github.com/spate-dev/spate/scenarios"
)

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    func(*memory.Options)
	}{
		{"defaults", func(*memory.Options) {}},
		{"one stream", func(o *memory.Options) { o.Streams = 1 }},
		{"many streams", func(o *memory.Options) { o.Streams = 64 }},
		{"latency and capacity", func(o *memory.Options) {
			o.Latency, o.Jitter, o.Capacity = time.Millisecond, 2*time.Millisecond, 200_000
		}},
		// Duplicates keep at-least-once delivery and the order of first deliveries.
		{"duplicates", func(o *memory.Options) { o.Duplicate = 0.2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			drivertest.Run(t, drivertest.Config{
				Open: func(t *testing.T, env drivers.Env) drivers.Driver {
					o := memory.DefaultOptions()
					tc.o(&o)
					d, err := memory.Kind.Open(context.Background(), o, env)
					if err != nil {
						t.Fatal(err)
					}
					return d
				},
				Timeout: 10 * time.Second,
			})
		})
	}
}

// decode runs Kind.Options on the YAML src (nil for `driver: memory`).
func decode(t *testing.T, src *string) (any, scenarios.Problems) {
	t.Helper()
	return drivertest.DecodeOptions(t, memory.Kind, src)
}

func TestOptions(t *testing.T) {
	def := memory.DefaultOptions()
	with := func(f func(*memory.Options)) memory.Options {
		o := memory.DefaultOptions()
		f(&o)
		return o
	}
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name string
		src  *string
		want memory.Options
	}{
		{"bare kind", nil, def},
		{"empty block", str("{}"), def},
		{"every field", str(`
streams: 8
drop: 0.1
duplicate: 0.2
reorder: 0.3
latency: 20ms
jitter: 5ms
capacity: 50k/s
max-queued: 1000
seed: 42
`), memory.Options{
			Streams: 8, Drop: 0.1, Duplicate: 0.2, Reorder: 0.3, Latency: 20 * time.Millisecond,
			Jitter: 5 * time.Millisecond, Capacity: 50000, MaxQueued: 1000, Seed: 42,
		}},
		{"fractions at the bounds", str("{drop: 0, duplicate: 1, reorder: 1}"), with(func(o *memory.Options) { o.Duplicate, o.Reorder = 1, 1 })},
		{"capacity per minute", str("capacity: 6000/m"), with(func(o *memory.Options) { o.Capacity = 100 })},
		{"negative seed", str("seed: -3"), with(func(o *memory.Options) { o.Seed = -3 })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ps := decode(t, tc.src)
			if len(ps) > 0 {
				t.Fatalf("problems:\n%v", ps)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("options = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestOptionProblems(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want []string // each problem's Error(), in order; "~" prefix: a substring
	}{
		{"streams: 0", []string{"test.yaml:1:10: driver.memory.streams: must be a whole number from 1 to 65536, got 0"}},
		{"streams: 70000", []string{"test.yaml:1:10: driver.memory.streams: must be a whole number from 1 to 65536, got 70000"}},
		{"streams: four", []string{`test.yaml:1:10: driver.memory.streams: want a whole number, got "four"`}},
		{"streams: 2.5", []string{`test.yaml:1:10: driver.memory.streams: want a whole number, got "2.5"`}},
		{"drop: 1.5", []string{"test.yaml:1:7: driver.memory.drop: must be a fraction from 0 to 1, such as 0.05; got 1.5"}},
		{"duplicate: -0.1", []string{"test.yaml:1:12: driver.memory.duplicate: must be a fraction from 0 to 1, such as 0.05; got -0.1"}},
		{"reorder: .nan", []string{"test.yaml:1:10: driver.memory.reorder: must be a fraction from 0 to 1, such as 0.05; got NaN"}},
		{"drop: lots", []string{`test.yaml:1:7: driver.memory.drop: want a number, got "lots"`}},
		{"latency: 20", []string{`~test.yaml:1:10: driver.memory.latency: duration "20" needs a unit`}},
		{"jitter: -5ms", []string{`~test.yaml:1:9: driver.memory.jitter: duration "-5ms" must not be negative`}},
		{"latency: ~", []string{"test.yaml:1:10: driver.memory.latency: needs a value"}},
		{"capacity: 0/s", []string{"test.yaml:1:11: driver.memory.capacity: must be more than 0/s; leave capacity out for no limit"}},
		{"capacity: 1000", []string{`~test.yaml:1:11: driver.memory.capacity: rate "1000" needs a unit`}},
		{"capacity: {max: 5}", []string{`~test.yaml:1:11: driver.memory.capacity: want a rate`}},
		{"max-queued: 0", []string{"test.yaml:1:13: driver.memory.max-queued: must be at least 1, got 0"}},
		{"max-queued: -4", []string{"test.yaml:1:13: driver.memory.max-queued: must be at least 1, got -4"}},
		{"seed: x", []string{`test.yaml:1:7: driver.memory.seed: want a whole number, got "x"`}},
		{"stream: 4", []string{`~test.yaml:1:1: driver.memory.stream: unknown field (did you mean "streams"?); valid fields: streams, drop, duplicate, reorder, latency, jitter, capacity, max-queued, seed`}},
		{"- streams: 4", []string{"test.yaml:1:1: driver.memory: want a mapping, got a list"}},
		{"4", []string{`test.yaml:1:1: driver.memory: want a mapping, got "4"`}},
		{"streams: 0\ndrop: 2\ncapacity: 0/h\nbogus: 1", []string{
			"test.yaml:1:10: driver.memory.streams: must be a whole number from 1 to 65536, got 0",
			"test.yaml:2:7: driver.memory.drop: must be a fraction from 0 to 1, such as 0.05; got 2",
			"test.yaml:3:11: driver.memory.capacity: must be more than 0/s; leave capacity out for no limit",
			"~test.yaml:4:1: driver.memory.bogus: unknown field",
		}},
		{"streams: 4\nstreams: 5", []string{"test.yaml:2:1: driver.memory.streams: given twice (first at line 1)"}},
	} {
		t.Run(tc.src, func(t *testing.T) {
			_, ps := decode(t, &tc.src)
			drivertest.CheckProblems(t, ps, tc.want)
		})
	}
}

func TestOpenChecksOptions(t *testing.T) {
	env := testEnv(1, 1)
	for _, o := range []any{
		memory.Options{Streams: -1},
		memory.Options{Drop: 2},
		memory.Options{Duplicate: -1},
		memory.Options{Latency: -time.Second},
		memory.Options{Capacity: -5},
		memory.Options{MaxQueued: -1},
		"streams: 4",
	} {
		if _, err := memory.Kind.Open(context.Background(), o, env); err == nil {
			t.Errorf("Open(%#v) succeeded, want an error", o)
		}
	}
	for _, o := range []any{nil, memory.Options{}, &memory.Options{Streams: 2}, (*memory.Options)(nil)} {
		d, err := memory.Kind.Open(context.Background(), o, env)
		if err != nil {
			t.Errorf("Open(%#v): %v", o, err)
			continue
		}
		_ = d.Close(context.Background())
	}
}

func testEnv(producers, consumers int) drivers.Env {
	return drivers.Env{
		RunID: 0x5eed, Scenario: "memory-test", Producers: producers, Consumers: consumers,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// delivery is one delivery as a test sees it.
type delivery struct {
	consumer int
	producer uint32
	seq      uint64
	stream   int32
	sent     int64 // the stamp's send time
	at       int64 // when the handler saw it (Unix ns)
}

// harness runs one driver with collecting consumers and producers.
type harness struct {
	t    *testing.T
	d    *memory.Driver
	runs []chan error

	mu       sync.Mutex
	got      []delivery
	results  map[msgKey]error
	ackCalls int
	cancel   context.CancelFunc
}

type msgKey struct {
	producer uint32
	seq      uint64
}

func newHarness(t *testing.T, o memory.Options, producers, consumers int) *harness {
	t.Helper()
	d, err := memory.New(o, testEnv(producers, consumers))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, d: d, results: map[msgKey]error{}}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	for i := range consumers {
		c, err := d.NewConsumer(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		h.runs = append(h.runs, done)
		go func() {
			done <- c.Consume(ctx, func(batch []drivers.Delivery) {
				now := time.Now().UnixNano()
				h.mu.Lock()
				defer h.mu.Unlock()
				for _, dv := range batch {
					s, err := stamp.Parse(dv.Stamp)
					if err != nil {
						t.Errorf("delivery: %v", err)
						continue
					}
					h.got = append(h.got, delivery{i, s.Producer, s.Seq, dv.Stream, s.Sent, now})
				}
			})
		}()
	}
	t.Cleanup(h.stop)
	return h
}

// stop ends the consumers and checks that they return nil.
func (h *harness) stop() {
	h.cancel()
	for i, done := range h.runs {
		if err := <-done; err != nil {
			h.t.Errorf("consumer %d: %v", i, err)
		}
	}
	h.runs = nil
	_ = h.d.Close(context.Background())
}

func (h *harness) producer(id int) drivers.Producer {
	h.t.Helper()
	p, err := h.d.NewProducer(context.Background(), id, func(rs []drivers.Result) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.ackCalls++
		for _, r := range rs {
			k := msgKey{r.Stamp.Producer, r.Stamp.Seq}
			if _, dup := h.results[k]; dup {
				h.t.Errorf("second outcome for %v", k)
			}
			h.results[k] = r.Err
		}
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// send sends seqs [from, from+n) of producer pid in batches, then returns.
func (h *harness) send(p drivers.Producer, pid, from, n, batch int, key func(i int) []byte) {
	h.t.Helper()
	msgs := make([]drivers.Message, 0, batch)
	for i := from; i < from+n; {
		msgs = msgs[:0]
		for ; len(msgs) < batch && i < from+n; i++ {
			now := time.Now().UnixNano()
			s := stamp.Stamp{RunID: 0x5eed, Producer: uint32(pid), Seq: uint64(i), Intended: now, Sent: now}
			body := make([]byte, stamp.Size+16)
			s.Put(body)
			var k []byte
			if key != nil {
				k = key(i)
			}
			msgs = append(msgs, drivers.Message{Stamp: s, Key: k, Head: body[:stamp.Size], Tail: body[stamp.Size:]})
		}
		if err := p.Send(context.Background(), msgs); err != nil {
			h.t.Fatalf("Send: %v", err)
		}
	}
}

// drain waits until the broker holds nothing and the handlers saw every
// delivered copy, then returns the deliveries.
func (h *harness) drain() []delivery {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := h.d.Stats()
		h.mu.Lock()
		n := len(h.got)
		h.mu.Unlock()
		if st["queued"] == 0 && int64(n) == st["delivered"] {
			h.mu.Lock()
			defer h.mu.Unlock()
			return append([]delivery(nil), h.got...)
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("not drained: %d seen by handlers, stats %v", n, st)
		}
		time.Sleep(time.Millisecond)
	}
}

// figures are what spate's tracker derives from deliveries.
type figures struct {
	received, duplicates, reordered int64
	seqs                            map[msgKey]int
}

// account counts deliveries the way accounting.Tracker.Received does.
func account(got []delivery) figures {
	f := figures{seqs: map[msgKey]int{}}
	type streamKey struct {
		producer uint32
		stream   int32
	}
	highest := map[streamKey]uint64{}
	for _, d := range got {
		k := msgKey{d.producer, d.seq}
		f.seqs[k]++
		if f.seqs[k] > 1 {
			f.duplicates++
			continue
		}
		f.received++
		sk := streamKey{d.producer, d.stream}
		if d.seq+1 < highest[sk] {
			f.reordered++
		} else {
			highest[sk] = d.seq + 1
		}
	}
	return f
}

func nilKey(int) []byte { return nil }

func TestDropGroundTruth(t *testing.T) {
	o := memory.DefaultOptions()
	o.Streams, o.Drop = 1, 0.1
	h := newHarness(t, o, 1, 1)
	p := h.producer(0)
	const n = 10000
	h.send(p, 0, 0, n, 100, nilKey)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := account(h.drain())
	st := h.d.Stats()
	if st["dropped"] < 800 || st["dropped"] > 1200 {
		t.Errorf("dropped %d of %d at drop 0.1", st["dropped"], n)
	}
	if missing := n - int64(len(f.seqs)); missing != st["dropped"] {
		t.Errorf("%d seqs never delivered, the broker dropped %d", missing, st["dropped"])
	}
	if f.duplicates != 0 || f.reordered != 0 {
		t.Errorf("duplicates %d, reordered %d; want none", f.duplicates, f.reordered)
	}
	if st["accepted"] != n || st["rejected"] != 0 || st["delivered"] != n-st["dropped"] {
		t.Errorf("stats %v", st)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, err := range h.results {
		if err != nil {
			t.Errorf("%v: outcome %v, want nil (dropped messages are acked)", k, err)
		}
	}
	if len(h.results) != n {
		t.Errorf("%d outcomes for %d messages", len(h.results), n)
	}
}

func TestDuplicateEverything(t *testing.T) {
	o := memory.DefaultOptions()
	o.Duplicate = 1
	h := newHarness(t, o, 1, 2)
	p := h.producer(0)
	const n = 3000
	h.send(p, 0, 0, n, 64, nilKey)
	got := h.drain()
	f := account(got)
	for k, c := range f.seqs {
		if c != 2 {
			t.Errorf("%v delivered %d times, want 2", k, c)
		}
	}
	st := h.d.Stats()
	if len(f.seqs) != n || f.duplicates != n || st["duplicated"] != n || st["delivered"] != 2*n {
		t.Errorf("distinct %d, duplicates %d; stats %v", len(f.seqs), f.duplicates, st)
	}
	// The two copies are adjacent in their stream.
	last := map[int32]uint64{}
	count := map[int32]int{}
	for _, d := range got {
		if count[d.stream]%2 == 1 && last[d.stream] != d.seq {
			t.Fatalf("stream %d: copy of seq %d is not next to its twin (got seq %d)", d.stream, last[d.stream], d.seq)
		}
		last[d.stream] = d.seq
		count[d.stream]++
	}
}

func TestReorderGroundTruth(t *testing.T) {
	o := memory.DefaultOptions()
	o.Reorder, o.Seed = 0.05, 9
	h := newHarness(t, o, 2, 2)
	const n = 10000
	for pid := range 2 {
		p := h.producer(pid)
		h.send(p, pid, 0, n, 128, nilKey)
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	f := account(h.drain())
	st := h.d.Stats()
	if st["reordered"] < 2*n/40 {
		t.Errorf("reordered %d of %d at reorder 0.05", st["reordered"], 2*n)
	}
	if f.reordered != st["reordered"] {
		t.Errorf("reordered deliveries = %d, broker reordered %d", f.reordered, st["reordered"])
	}
	if f.received != 2*n || f.duplicates != 0 {
		t.Errorf("received %d, duplicates %d; want %d, 0", f.received, f.duplicates, 2*n)
	}
}

// TestAllFaultsGroundTruth mixes every fault, keyed and unkeyed messages and
// several producers, and checks spate's figures against the ground truth.
func TestAllFaultsGroundTruth(t *testing.T) {
	o := memory.DefaultOptions()
	o.Streams, o.Drop, o.Duplicate, o.Reorder, o.Seed = 3, 0.05, 0.1, 0.2, 10
	h := newHarness(t, o, 3, 2)
	const n = 5000
	keys := [][]byte{nil, []byte("a"), []byte("b"), []byte("c"), nil}
	var wg sync.WaitGroup
	for pid := range 3 {
		p := h.producer(pid)
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.send(p, pid, 0, n, 50+pid*100, func(i int) []byte { return keys[i%len(keys)] })
			if err := p.Close(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	f := account(h.drain())
	st := h.d.Stats()
	for _, k := range []string{"dropped", "duplicated", "reordered"} {
		if st[k] == 0 {
			t.Errorf("the broker %s nothing; the test proves nothing", k)
		}
	}
	if lost := 3*n - f.received; lost != st["dropped"] {
		t.Errorf("lost %d, dropped %d", lost, st["dropped"])
	}
	if f.duplicates != st["duplicated"] {
		t.Errorf("duplicates %d, duplicated %d", f.duplicates, st["duplicated"])
	}
	if f.reordered != st["reordered"] {
		t.Errorf("reordered deliveries %d, broker reordered %d", f.reordered, st["reordered"])
	}
	if st["delivered"] != f.received+f.duplicates || st["accepted"] != 3*n || st["queued"] != 0 {
		t.Errorf("stats %v", st)
	}
}

// TestReproducible: the same seed makes the same faults; another seed others.
func TestReproducible(t *testing.T) {
	sequence := func(seed int64) []delivery {
		o := memory.DefaultOptions()
		o.Streams, o.Drop, o.Duplicate, o.Reorder, o.Seed = 2, 0.1, 0.1, 0.1, seed
		h := newHarness(t, o, 1, 1)
		p := h.producer(3)
		h.send(p, 3, 0, 2000, 100, nilKey)
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := h.drain()
		h.stop()
		// Order across streams depends on scheduling; within one it does not.
		var out []delivery
		for s := int32(0); s < 2; s++ {
			for _, d := range got {
				if d.stream == s {
					out = append(out, delivery{seq: d.seq, stream: s})
				}
			}
		}
		return out
	}
	a, b, c := sequence(5), sequence(5), sequence(6)
	if !reflect.DeepEqual(a, b) {
		t.Error("two runs with seed 5 delivered different sequences")
	}
	if reflect.DeepEqual(a, c) {
		t.Error("seeds 5 and 6 delivered the same sequence")
	}
}

func TestStreamsAndConsumers(t *testing.T) {
	o := memory.DefaultOptions()
	o.Streams = 4
	h := newHarness(t, o, 2, 3)
	// A fourth consumer beyond Env.Consumers owns nothing.
	extra, err := h.d.NewConsumer(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	extraDone := make(chan error, 1)
	go func() {
		extraDone <- extra.Consume(ctx, func([]drivers.Delivery) { t.Error("consumer 3 got a delivery") })
	}()
	keys := [][]byte{[]byte("alpha"), []byte("beta"), []byte("gamma")}
	p0, p1 := h.producer(0), h.producer(1)
	h.send(p0, 0, 0, 400, 33, nilKey)
	h.send(p1, 1, 0, 300, 33, func(i int) []byte { return keys[i%3] })
	got := h.drain()
	cancel()
	if err := <-extraDone; err != nil {
		t.Errorf("consumer 3: %v", err)
	}

	owner := map[int32]int{0: 0, 1: 1, 2: 2, 3: 0} // s mod 3
	keyStream := map[string]int32{}
	for _, d := range got {
		if owner[d.stream] != d.consumer {
			t.Fatalf("stream %d delivered to consumer %d, want %d", d.stream, d.consumer, owner[d.stream])
		}
		switch d.producer {
		case 0: // round-robin from stream 0 (producer id 0 mod 4)
			if want := int32(d.seq % 4); d.stream != want {
				t.Fatalf("producer 0 seq %d on stream %d, want %d", d.seq, d.stream, want)
			}
		case 1: // by key, the same stream every time
			k := string(keys[d.seq%3])
			if s, ok := keyStream[k]; ok && s != d.stream {
				t.Fatalf("key %q on streams %d and %d", k, s, d.stream)
			}
			keyStream[k] = d.stream
		}
	}
	if len(got) != 700 {
		t.Errorf("%d deliveries, want 700", len(got))
	}
}

func TestAcksAndMaxQueued(t *testing.T) {
	o := memory.DefaultOptions()
	o.MaxQueued = 100
	d, err := memory.New(o, testEnv(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	var calls []int
	var rejected []uint64
	p, err := d.NewProducer(context.Background(), 0, func(rs []drivers.Result) {
		calls = append(calls, len(rs))
		for _, r := range rs {
			switch {
			case errors.Is(r.Err, memory.ErrFull):
				rejected = append(rejected, r.Stamp.Seq)
			case r.Err != nil:
				t.Errorf("seq %d: outcome %v", r.Stamp.Seq, r.Err)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, d: d}
	h.send(p, 0, 0, 150, 60, nilKey) // no consumer: everything stays queued
	if want := []int{60, 60, 30}; !reflect.DeepEqual(calls, want) {
		t.Errorf("AckFunc calls with %v results, want %v (one call per Send, before it returns)", calls, want)
	}
	if len(rejected) != 50 || rejected[0] != 100 || rejected[49] != 149 {
		t.Errorf("rejected seqs %v, want 100..149", rejected)
	}
	st := d.Stats()
	if st["accepted"] != 100 || st["rejected"] != 50 || st["queued"] != 100 {
		t.Errorf("stats %v", st)
	}

	// Consuming makes room again.
	c, _ := d.NewConsumer(context.Background(), 0)
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int64
	done := make(chan error, 1)
	go func() { done <- c.Consume(ctx, func(b []drivers.Delivery) { n.Add(int64(len(b))) }) }()
	waitUntil(t, func() bool { return n.Load() == 100 })
	rejected = nil
	h.send(p, 0, 150, 100, 100, nilKey)
	if len(rejected) != 0 {
		t.Errorf("%d rejected after the queue drained", len(rejected))
	}
	waitUntil(t, func() bool { return n.Load() == 200 })
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

// TestDuplicatesNeedRoom: a message whose two copies do not fit is rejected.
func TestDuplicatesNeedRoom(t *testing.T) {
	o := memory.DefaultOptions()
	o.MaxQueued, o.Duplicate = 101, 1
	d, _ := memory.New(o, testEnv(1, 1))
	defer d.Close(context.Background())
	var failed int
	p, _ := d.NewProducer(context.Background(), 0, func(rs []drivers.Result) {
		for _, r := range rs {
			if r.Err != nil {
				failed++
			}
		}
	})
	(&harness{t: t, d: d}).send(p, 0, 0, 80, 80, nilKey)
	st := d.Stats()
	if failed != 30 || st["rejected"] != 30 || st["queued"] != 100 || st["duplicated"] != 50 {
		t.Errorf("failed %d, stats %v", failed, st)
	}
}

func TestClose(t *testing.T) {
	d, _ := memory.New(memory.DefaultOptions(), testEnv(1, 1))
	c, _ := d.NewConsumer(context.Background(), 0)
	p, _ := d.NewProducer(context.Background(), 0, func([]drivers.Result) {})
	done := make(chan error, 1)
	go func() { done <- c.Consume(context.Background(), func([]drivers.Delivery) {}) }()
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, memory.ErrClosed) {
			t.Errorf("Consume after Close returned %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Consume did not return after Driver.Close")
	}
	msg := []drivers.Message{{Head: make([]byte, stamp.Size)}}
	if err := p.Send(context.Background(), msg); !errors.Is(err, memory.ErrClosed) {
		t.Errorf("Send after Close: %v", err)
	}
	if _, err := d.NewProducer(context.Background(), 1, func([]drivers.Result) {}); !errors.Is(err, memory.ErrClosed) {
		t.Errorf("NewProducer after Close: %v", err)
	}
	if err := d.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestBacklog queues a large backlog (ring growth) and drains it (ring release).
func TestBacklog(t *testing.T) {
	defer memory.SetReleaseRing(1 << 16)()
	o := memory.DefaultOptions()
	o.Streams = 1
	d, _ := memory.New(o, testEnv(1, 1))
	defer d.Close(context.Background())
	p, _ := d.NewProducer(context.Background(), 0, func([]drivers.Result) {})
	h := &harness{t: t, d: d}
	const n = 200_000
	h.send(p, 0, 0, n, 1000, nilKey)
	if q := d.Stats()["queued"]; q != n {
		t.Fatalf("queued %d, want %d", q, n)
	}
	c, _ := d.NewConsumer(context.Background(), 0)
	ctx, cancel := context.WithCancel(context.Background())
	var next uint64
	var bad atomic.Bool
	done := make(chan error, 1)
	go func() {
		done <- c.Consume(ctx, func(b []drivers.Delivery) {
			if len(b) > memory.MaxBatch {
				bad.Store(true)
			}
			for _, dv := range b {
				s, _ := stamp.Parse(dv.Stamp)
				if s.Seq != next {
					bad.Store(true)
				}
				next++
			}
		})
	}()
	waitUntil(t, func() bool { return d.Stats()["delivered"] == n })
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
	if bad.Load() || next != n {
		t.Errorf("delivered %d, in order and in batches ≤ %d: %v", next, memory.MaxBatch, !bad.Load())
	}
	// After the release, the stream works again.
	h.send(p, 0, n, 10, 10, nilKey)
	if q := d.Stats()["queued"]; q != 10 {
		t.Errorf("queued %d after the backlog drained, want 10", q)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestLatency runs on virtual time: every message arrives latency after it
// was sent, plus at most jitter, and never overtakes an earlier one.
func TestLatency(t *testing.T) {
	for _, tc := range []struct{ latency, jitter time.Duration }{
		{20 * time.Millisecond, 0},
		{20 * time.Millisecond, 10 * time.Millisecond},
		{0, 5 * time.Millisecond},
	} {
		t.Run(fmt.Sprintf("%v+%v", tc.latency, tc.jitter), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				o := memory.DefaultOptions()
				o.Streams, o.Latency, o.Jitter = 2, tc.latency, tc.jitter
				h := newHarness(t, o, 1, 1)
				p := h.producer(0)
				for i := range 20 {
					h.send(p, 0, i*50, 50, 50, nilKey)
					time.Sleep(3 * time.Millisecond)
				}
				got := h.drain()
				if len(got) != 1000 {
					t.Fatalf("%d deliveries, want 1000", len(got))
				}
				var spread time.Duration
				last := map[int32]int64{}
				for _, d := range got {
					lat := time.Duration(d.at - d.sent)
					if lat < tc.latency || lat > tc.latency+tc.jitter {
						t.Fatalf("delivered %v after the send, want within [%v, %v]", lat, tc.latency, tc.latency+tc.jitter)
					}
					spread = max(spread, lat-tc.latency)
					if d.sent < last[d.stream] {
						t.Fatalf("stream %d: a message overtook an earlier one", d.stream)
					}
					last[d.stream] = d.sent
				}
				if tc.jitter > 0 && spread < tc.jitter/2 {
					t.Errorf("jitter %v produced a spread of only %v", tc.jitter, spread)
				}
				h.stop()
			})
		})
	}
}

// TestCapacity runs on virtual time: 2000 messages sent at once through a
// broker of 1000/s take about two seconds, and no prefix of the deliveries
// comes faster than the token bucket allows.
func TestCapacity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := memory.DefaultOptions()
		o.Streams, o.Capacity = 4, 1000
		h := newHarness(t, o, 1, 2)
		p := h.producer(0)
		start := time.Now()
		h.send(p, 0, 0, 2000, 500, nilKey)
		got := h.drain()
		elapsed := time.Since(start)
		if len(got) != 2000 {
			t.Fatalf("%d deliveries", len(got))
		}
		// burst = 1000/s × 100ms = 100 tokens at the start.
		if elapsed < 1890*time.Millisecond || elapsed > 1920*time.Millisecond {
			t.Errorf("2000 deliveries at 1000/s took %v, want about 1.9s", elapsed)
		}
		for k, d := range got {
			earliest := start.UnixNano() + int64(k+1-100)*int64(time.Millisecond)
			if d.at < earliest {
				t.Fatalf("delivery %d at %v, before the capacity allows (%v)", k,
					time.Duration(d.at-start.UnixNano()), time.Duration(earliest-start.UnixNano()))
			}
		}
		h.stop()
	})
}

// BenchmarkSendReceive measures the broker alone: one producer sending
// batches of 512 to consumers that count deliveries, with at most 64 Ki
// messages in flight. The faults case adds duplicates, reordering and jitter
// (drops would make the delivered count unknowable to the flow control).
func BenchmarkSendReceive(b *testing.B) {
	for _, bc := range []struct {
		name      string
		streams   int
		consumers int
		faults    bool
	}{
		{"streams=1/consumers=1", 1, 1, false},
		{"streams=4/consumers=1", 4, 1, false},
		{"streams=4/consumers=2", 4, 2, false},
		{"streams=4/consumers=2/faults", 4, 2, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			o := memory.DefaultOptions()
			o.Streams = bc.streams
			if bc.faults {
				o.Duplicate, o.Reorder, o.Jitter = 0.01, 0.01, 100*time.Microsecond
			}
			d, _ := memory.New(o, testEnv(1, bc.consumers))
			defer d.Close(context.Background())
			ctx, cancel := context.WithCancel(context.Background())
			var received atomic.Int64
			var wg sync.WaitGroup
			for i := range bc.consumers {
				c, _ := d.NewConsumer(ctx, i)
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = c.Consume(ctx, func(batch []drivers.Delivery) { received.Add(int64(len(batch))) })
				}()
			}
			var acked atomic.Int64
			p, _ := d.NewProducer(ctx, 0, func(rs []drivers.Result) { acked.Add(int64(len(rs))) })
			const batch = 512
			msgs := make([]drivers.Message, batch)
			for i := range msgs {
				s := stamp.Stamp{RunID: 1, Seq: uint64(i)}
				body := make([]byte, 100)
				s.Put(body)
				msgs[i] = drivers.Message{Stamp: s, Head: body[:stamp.Size], Tail: body[stamp.Size:]}
			}
			const window = 64 << 10 // bound the backlog like a real producer's in-flight limit
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for sent := 0; sent < b.N; {
				k := min(batch, b.N-sent)
				for int64(sent)-received.Load() > window {
					runtime.Gosched()
				}
				if err := p.Send(ctx, msgs[:k]); err != nil {
					b.Fatal(err)
				}
				sent += k
			}
			_ = p.Close(ctx)
			want := int64(b.N) + d.Stats()["duplicated"]
			for received.Load() < want {
				runtime.Gosched()
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			cancel()
			wg.Wait()
			if acked.Load() != int64(b.N) || received.Load() != want {
				b.Fatalf("acked %d, received %d of %d", acked.Load(), received.Load(), want)
			}
		})
	}
}
