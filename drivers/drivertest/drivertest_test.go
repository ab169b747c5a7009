package drivertest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/drivertest"
	"github.com/spate-dev/spate/drivers/memory"
)

// The suite is checked against deliberately broken drivers: each must make
// the named subtest fail with the given message. A failing suite would fail
// this test, so each broken driver runs in a child process (this test binary
// with TestBrokenDriver selected).

const envBroken = "DRIVERTEST_BROKEN"

type brokenDriver struct {
	subtest string // the subtest that must fail
	want    string // part of its failure message
	options func(*memory.Options)
	wrap    wrapper
	cfg     func(*drivertest.Config)
}

var broken = map[string]brokenDriver{
	"lossy": {subtest: "round-trip", want: "messages delivered after",
		options: func(o *memory.Options) { o.Drop = 0.02 },
		cfg:     func(c *drivertest.Config) { c.Timeout = 300 * time.Millisecond }},
	"reordering": {subtest: "order", want: "arrived after a higher sequence number",
		options: func(o *memory.Options) { o.Reorder = 0.1 },
		cfg:     func(c *drivertest.Config) { c.Timeout = 300 * time.Millisecond }},
	"double-ack": {subtest: "round-trip", want: "have more than one outcome",
		wrap: wrapper{ack: func(ack drivers.AckFunc, rs []drivers.Result) { ack(rs); ack(rs) }}},
	"lost-ack": {subtest: "round-trip", want: "have no outcome",
		wrap: wrapper{ack: func(ack drivers.AckFunc, rs []drivers.Result) { ack(rs[:len(rs)/2]) }}},
	"failing-ack": {subtest: "round-trip", want: "outcomes are not nil",
		wrap: wrapper{ack: func(ack drivers.AckFunc, rs []drivers.Result) {
			for i := range rs {
				rs[i].Err = errors.New("boom")
			}
			ack(rs)
		}}},
	"confirmed-when-unconfirmed": {subtest: "round-trip", want: "outcomes are not drivers.ErrUnconfirmed",
		cfg: func(c *drivertest.Config) { c.Unconfirmed = true }},
	"late-ack": {subtest: "close-flushes", want: "have no outcome",
		wrap: wrapper{ack: func(ack drivers.AckFunc, rs []drivers.Result) {
			rs = append([]drivers.Result(nil), rs...)
			go func() { time.Sleep(200 * time.Millisecond); ack(rs) }()
		}}},
	"corrupting": {subtest: "round-trip", want: "delivered stamp",
		wrap: wrapper{deliver: func(h drivers.Handler, batch []drivers.Delivery) {
			for i := range batch {
				b := append([]byte(nil), batch[i].Stamp...)
				b[40] ^= 1 // Txn
				batch[i].Stamp = b
			}
			h(batch)
		}}},
	"phantom": {subtest: "many", want: "delivered but never sent",
		wrap: wrapper{deliver: func(h drivers.Handler, batch []drivers.Delivery) {
			b := append([]byte(nil), batch[0].Stamp...)
			b[23] = 0x7f // Seq far beyond what was sent
			h(append(batch, drivers.Delivery{Stamp: b}))
		}}},
	"negative-stream": {subtest: "round-trip", want: "delivered on stream -1",
		wrap: wrapper{deliver: func(h drivers.Handler, batch []drivers.Delivery) {
			for i := range batch {
				batch[i].Stream = drivers.Unordered
			}
			h(batch)
		}}},
	"concurrent-handler": {subtest: "handler-batches", want: "while a call of it was still running",
		wrap: wrapper{deliver: func(h drivers.Handler, batch []drivers.Delivery) {
			var wg sync.WaitGroup
			for _, part := range [][]drivers.Delivery{batch[:len(batch)/2], batch[len(batch)/2:]} {
				wg.Add(1)
				go func() { defer wg.Done(); h(part) }()
			}
			wg.Wait()
		}}},
	"consume-hangs": {subtest: "consume-stops", want: "did not return within",
		wrap: wrapper{consume: func(ctx context.Context, c drivers.Consumer, h drivers.Handler) error {
			_ = c.Consume(ctx, h)
			<-make(chan struct{}) // never returns
			return nil
		}},
		cfg: func(c *drivertest.Config) { c.Timeout = 300 * time.Millisecond }},
	"consume-errs": {subtest: "consume-stops", want: "want nil",
		wrap: wrapper{consume: func(ctx context.Context, c drivers.Consumer, h drivers.Handler) error {
			_ = c.Consume(ctx, h)
			return ctx.Err()
		}}},
}

func TestSuiteCatchesBrokenDrivers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	for name, b := range broken {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenDriver$", "-test.v")
			cmd.Env = append(os.Environ(), envBroken+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a driver that is broken (%s):\n%s", name, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestBrokenDriver/"+b.subtest+" ") {
				t.Errorf("subtest %s did not fail:\n%s", b.subtest, out)
			}
			if !strings.Contains(string(out), b.want) {
				t.Errorf("no failure says %q:\n%s", b.want, out)
			}
		})
	}
}

// TestBrokenDriver is the child process of TestSuiteCatchesBrokenDrivers.
func TestBrokenDriver(t *testing.T) {
	name := os.Getenv(envBroken)
	if name == "" {
		t.Skip("run by TestSuiteCatchesBrokenDrivers")
	}
	b, ok := broken[name]
	if !ok {
		t.Fatalf("no broken driver %q", name)
	}
	cfg := drivertest.Config{
		Open: func(t *testing.T, env drivers.Env) drivers.Driver {
			o := memory.DefaultOptions()
			if b.options != nil {
				b.options(&o)
			}
			d, err := memory.New(o, env)
			if err != nil {
				t.Fatal(err)
			}
			w := b.wrap
			w.Driver = d
			return &w
		},
		Timeout:  time.Second,
		Messages: 500,
	}
	if b.cfg != nil {
		b.cfg(&cfg)
	}
	drivertest.Run(t, cfg)
}

// TestMemoryPasses guards the child: unbroken, the same setup passes.
func TestMemoryPasses(t *testing.T) {
	drivertest.Run(t, drivertest.Config{
		Open: func(t *testing.T, env drivers.Env) drivers.Driver {
			d, err := memory.New(memory.DefaultOptions(), env)
			if err != nil {
				t.Fatal(err)
			}
			return &wrapper{Driver: d}
		},
		Timeout:  5 * time.Second,
		Messages: 500,
	})
}

// wrapper breaks a driver in one of several ways.
type wrapper struct {
	drivers.Driver
	ack     func(ack drivers.AckFunc, rs []drivers.Result)
	deliver func(h drivers.Handler, batch []drivers.Delivery)
	consume func(ctx context.Context, c drivers.Consumer, h drivers.Handler) error
}

func (w *wrapper) NewProducer(ctx context.Context, id int, ack drivers.AckFunc) (drivers.Producer, error) {
	if w.ack != nil {
		inner := ack
		ack = func(rs []drivers.Result) { w.ack(inner, rs) }
	}
	return w.Driver.NewProducer(ctx, id, ack)
}

func (w *wrapper) NewConsumer(ctx context.Context, id int) (drivers.Consumer, error) {
	c, err := w.Driver.NewConsumer(ctx, id)
	if err != nil {
		return nil, err
	}
	return &wrappedConsumer{w: w, c: c}, nil
}

type wrappedConsumer struct {
	w *wrapper
	c drivers.Consumer
}

func (wc *wrappedConsumer) Consume(ctx context.Context, h drivers.Handler) error {
	if wc.w.deliver != nil {
		inner := h
		h = func(batch []drivers.Delivery) { wc.w.deliver(inner, batch) }
	}
	if wc.w.consume != nil {
		return wc.w.consume(ctx, wc.c, h)
	}
	return wc.c.Consume(ctx, h)
}
