package engine_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// pipe is a fake driver for pipeline wiring: named in-process topics on a
// bus that a driver and its peers share. Producers append to the driver's
// topic (confirmed at once); consumers take from it; the built-in
// processor takes from the input's topic and appends to the output's,
// writing every dup-th record twice when the output's options say so.
var pipeKind = drivers.Kind{
	Name: "pipe",
	Options: func(d *scenarios.Decoder, n *yaml.Node, field string) any {
		o := pipeOptions{Topic: "in"}
		d.Decode(n, field, &o)
		return o
	},
	Open: func(_ context.Context, options any, _ drivers.Env) (drivers.Driver, error) {
		return &pipeDriver{bus: &pipeBus{topics: map[string]chan []byte{}}, topic: options.(pipeOptions).Topic, stats: &pipeStats{}}, nil
	},
}

type pipeOptions struct {
	Topic string `yaml:"topic"`
	Dup   int    `yaml:"dup"`
}

func (pipeOptions) Abilities() []string {
	return []string{scenarios.AbilityProcessor, scenarios.AbilityConsumerCrash}
}

type pipeBus struct {
	mu     sync.Mutex
	topics map[string]chan []byte
}

func (b *pipeBus) topic(name string) chan []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.topics[name] == nil {
		b.topics[name] = make(chan []byte, 1<<16)
	}
	return b.topics[name]
}

type pipeStats struct {
	delivered, processed, crashes, peers atomic.Int64
}

type pipeDriver struct {
	bus   *pipeBus
	topic string
	stats *pipeStats
}

func (d *pipeDriver) NewProducer(_ context.Context, _ int, ack drivers.AckFunc) (drivers.Producer, error) {
	return &pipeProducer{ch: d.bus.topic(d.topic), ack: ack}, nil
}

func (d *pipeDriver) NewConsumer(context.Context, int) (drivers.Consumer, error) {
	return &pipeConsumer{d: d, in: d.bus.topic(d.topic), crash: make(chan struct{})}, nil
}

func (d *pipeDriver) Close(context.Context) error { return nil }

func (d *pipeDriver) Stats() map[string]int64 {
	return map[string]int64{"delivered": d.stats.delivered.Load(), "processed": d.stats.processed.Load(),
		"crashes": d.stats.crashes.Load(), "peers": d.stats.peers.Load()}
}

func (d *pipeDriver) OpenPeer(_ context.Context, options any, _ drivers.Env) (drivers.Driver, error) {
	d.stats.peers.Add(1)
	return &pipeDriver{bus: d.bus, topic: options.(pipeOptions).Topic, stats: &pipeStats{}}, nil
}

func (d *pipeDriver) NewProcessor(_ context.Context, _ int, spec drivers.ProcessorSpec) (drivers.Consumer, error) {
	out := spec.Output.(pipeOptions)
	return &pipeConsumer{d: d, in: d.bus.topic(d.topic), out: d.bus.topic(out.Topic), dup: out.Dup, crash: make(chan struct{})}, nil
}

type pipeProducer struct {
	ch  chan []byte
	ack drivers.AckFunc
}

func (p *pipeProducer) Send(_ context.Context, msgs []drivers.Message) error {
	rs := make([]drivers.Result, len(msgs))
	for i := range msgs {
		p.ch <- append([]byte(nil), msgs[i].Head...)
		rs[i] = drivers.Result{Stamp: msgs[i].Stamp}
	}
	p.ack(rs)
	return nil
}

func (p *pipeProducer) Close(context.Context) error { return nil }

// pipeConsumer is a consumer, or with out set a processor instance.
type pipeConsumer struct {
	d         *pipeDriver
	in, out   chan []byte
	dup       int
	n         int
	crash     chan struct{}
	crashOnce sync.Once
}

func (c *pipeConsumer) Consume(ctx context.Context, h drivers.Handler) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.crash:
			return drivers.ErrCrashed
		case m := <-c.in:
			h([]drivers.Delivery{{Stamp: m, Stream: 0, HasOffset: true, Offset: int64(c.n)}})
			c.n++
			if c.out == nil {
				c.d.stats.delivered.Add(1)
				continue
			}
			c.out <- m
			if c.dup > 0 && c.n%c.dup == 0 {
				c.out <- m
			}
			c.d.stats.processed.Add(1)
		}
	}
}

func (c *pipeConsumer) Crash() {
	c.crashOnce.Do(func() {
		c.d.stats.crashes.Add(1)
		close(c.crash)
	})
}

var (
	_ drivers.ProcessorMaker = (*pipeDriver)(nil)
	_ drivers.PeerOpener     = (*pipeDriver)(nil)
	_ drivers.Crasher        = (*pipeConsumer)(nil)
)

// TestPipelineWiring: producers write to the input, the built-in processor
// (made by the input's driver) copies to the output, opened on the input's
// system; consumers read the output. Chaos's consumer-crash acts on the
// processor's instances, the output's stats come prefixed, the pipeline
// latency is timed, and the claim holds.
func TestPipelineWiring(t *testing.T) {
	sc := load(t, `
pipeline:
  input: {pipe: {topic: in}}
  output: {pipe: {topic: out}}
  processor: {builtin: {instances: 2}}
consumers: 3
traffic:
  - constant: {rate: 2000/s, for: 1s}
chaos:
  - {action: consumer-crash, at: 300ms, for: 200ms, count: 2}
drain: 5s
thresholds: [lost == 0, duplicates == 0, pipeline.p99 < 1s]
`, pipeKind)
	res := run(t, sc, engine.WithDrivers(pipeKind))
	c := res.Counts
	if c.Sent < 1900 {
		t.Fatalf("sent %d", c.Sent)
	}
	expect(t, "received", c.Received, c.Sent)
	expect(t, "lost", c.Lost, 0)
	expect(t, "duplicates", c.Duplicates, 0)
	st := res.DriverStats
	expect(t, "processor crashes (input driver)", st["crashes"], 2)
	expect(t, "output consumers crashed", st["output.crashes"], 0)
	expect(t, "peers opened", st["peers"], 1)
	expect(t, "processed", st["processed"], c.Sent)
	expect(t, "output.delivered", st["output.delivered"], c.Sent)
	want := report.PipelineResult{Input: "pipe", Output: "pipe", Processor: "builtin", Mode: "exactly-once", Instances: 2}
	got := *res.Pipeline
	got.LatencyUS, got.Untimed = accounting.LatencySummary{}, 0
	if got != want {
		t.Errorf("pipeline %+v, want %+v", got, want)
	}
	if l := res.Pipeline.LatencyUS; l.Count+res.Pipeline.Untimed != c.Received {
		t.Errorf("pipeline latency of %d messages, %d untimed; %d received", l.Count, res.Pipeline.Untimed, c.Received)
	}
	if res.Verdict != report.Pass || res.Claim == nil || !res.Claim.Held {
		t.Fatalf("verdict %s, claim %+v, thresholds %+v", res.Verdict, res.Claim, res.Thresholds)
	}
	if want := "exactly-once held for " + groupInt(c.Acked) + " messages across 2 processor crashes"; res.Claim.Statement != want {
		t.Errorf("claim %q, want %q", res.Claim.Statement, want)
	}
}

// TestPipelineDuplicatingProcessor: a processor that writes every 50th
// record twice is caught with exactly that many duplicates.
func TestPipelineDuplicatingProcessor(t *testing.T) {
	sc := load(t, `
pipeline:
  input: {pipe: {topic: in}}
  output: {pipe: {topic: out, dup: 50}}
  processor: builtin
traffic:
  - constant: {rate: 2000/s, for: 1s}
drain: 5s
thresholds: [lost == 0, duplicates == 0]
`, pipeKind)
	res := run(t, sc, engine.WithDrivers(pipeKind))
	expect(t, "duplicates", res.Counts.Duplicates, res.Counts.Sent/50)
	expect(t, "lost", res.Counts.Lost, 0)
	if res.Claim == nil || res.Claim.Held || res.Verdict != report.Fail {
		t.Errorf("verdict %s, claim %+v", res.Verdict, res.Claim)
	}
	for _, e := range res.Examples {
		if e.Kind != accounting.ExampleDuplicate || e.Partition == nil || *e.Partition != 0 || e.Offset == nil {
			t.Errorf("example %+v", e)
		}
	}
}

// groupInt formats n with commas between groups of three digits.
func groupInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, d := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return b.String()
}
