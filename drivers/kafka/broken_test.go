package kafka_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/kafka"
	"github.com/spate-dev/spate/drivers/stamp"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// brokenProcessor is a test double of a user's pipeline service with
// known bugs: it copies records from one topic to another, partition to
// partition, but writes some twice, drops some, and holds some back until
// the next record of the same producer on the same partition has been
// written. It counts what it did: the checker must find exactly that.
type brokenProcessor struct {
	cl *kgo.Client

	mu                     sync.Mutex
	copied, twice, dropped int64
	reordered              int64
	droppedSeqs            map[[2]uint64]bool       // producer, seq
	held                   map[[2]int64]*kgo.Record // producer, partition
	heldAt                 map[[2]int64]time.Time
	stop                   chan struct{}
	done                   chan struct{}
}

// Which records go wrong is decided by sequence number, disjointly.
func writeTwice(seq uint64) bool { return seq%97 == 3 }
func drop(seq uint64) bool       { return seq%101 == 5 }
func holdBack(seq uint64) bool   { return seq%89 == 7 }

func startBroken(t *testing.T, brokers []string, in, out string) *brokenProcessor {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic(out),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	b := &brokenProcessor{cl: cl, droppedSeqs: map[[2]uint64]bool{}, held: map[[2]int64]*kgo.Record{},
		heldAt: map[[2]int64]time.Time{}, stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

func (b *brokenProcessor) run() {
	defer close(b.done)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-b.stop; cancel() }()
	write := func(r *kgo.Record) {
		b.cl.Produce(ctx, &kgo.Record{Key: r.Key, Value: r.Value, Headers: r.Headers, Partition: r.Partition}, nil)
	}
	for ctx.Err() == nil {
		pctx, cancelPoll := context.WithTimeout(ctx, 50*time.Millisecond)
		fetches := b.cl.PollFetches(pctx)
		cancelPoll()
		// A record held back with nothing after it (the end of the
		// traffic) is written as it is: in order.
		b.mu.Lock()
		for k, at := range b.heldAt {
			if time.Since(at) > 300*time.Millisecond {
				write(b.held[k])
				b.copied++
				delete(b.held, k)
				delete(b.heldAt, k)
			}
		}
		b.mu.Unlock()
		fetches.EachRecord(func(r *kgo.Record) {
			s, err := stamp.Parse(r.Headers[0].Value)
			if err != nil {
				return
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			key := [2]int64{int64(s.Producer), int64(r.Partition)}
			switch {
			case drop(s.Seq):
				b.dropped++
				b.droppedSeqs[[2]uint64{uint64(s.Producer), s.Seq}] = true
				return
			case holdBack(s.Seq) && b.held[key] == nil:
				b.held[key], b.heldAt[key] = r, time.Now()
				return
			}
			write(r)
			b.copied++
			if writeTwice(s.Seq) {
				write(r)
				b.twice++
			}
			if h := b.held[key]; h != nil { // delivered after a later one
				write(h)
				b.copied++
				b.reordered++
				delete(b.held, key)
				delete(b.heldAt, key)
			}
		})
	}
}

func (b *brokenProcessor) close() {
	close(b.stop)
	<-b.done
	b.cl.Close()
}

// TestBrokenProcessorCaught: an external processor with known bugs is
// caught with exactly its counts of duplicates, losses and reorderings,
// and the examples name the very messages it got wrong, with where they
// were found.
func TestBrokenProcessorCaught(t *testing.T) {
	var bp *brokenProcessor
	kind := drivers.Kind{
		Name:    "kafka",
		Options: kafka.Kind.Options,
		Open: func(ctx context.Context, options any, env drivers.Env) (drivers.Driver, error) {
			d, err := kafka.Kind.Open(ctx, options, env)
			if err == nil {
				bp = startBroken(t, d.(*kafka.EmbeddedDriver).BootstrapBrokers(), "in", "out")
			}
			return d, err
		},
	}
	res := runOwnKind(t, kind, `
pipeline:
  input: {kafka: {topic: in, partitions: 3}}
  output: {kafka: {topic: out, partitions: 3}}
  processor: external
producers: 2
consumers: 2
message: {size: 100B, keys: {strategy: round-robin, count: 12}}
traffic:
  - constant: {rate: 3000/s, for: 2s}
drain: 3s
thresholds: [lost == 0, duplicates == 0, reordered == 0]
`)
	bp.close()
	c := res.Counts
	t.Logf("processor: copied %d, twice %d, dropped %d, reordered %d", bp.copied, bp.twice, bp.dropped, bp.reordered)
	if bp.twice == 0 || bp.dropped == 0 || bp.reordered == 0 {
		t.Fatalf("the double did too little to prove anything")
	}
	expect(t, "duplicates", c.Duplicates, bp.twice)
	expect(t, "lost", c.Lost, bp.dropped)
	expect(t, "reordered", c.Reordered, bp.reordered)
	expect(t, "received", c.Received, c.Sent-bp.dropped)
	if res.Verdict != report.Fail || res.Claim == nil || res.Claim.Held {
		t.Fatalf("verdict %s, claim %+v", res.Verdict, res.Claim)
	}
	t.Logf("claim: %s", res.Claim.Statement)
	want := fmt.Sprintf("exactly-once (in order) violated: %d lost, %d duplicates, %d reordered (examples below)", bp.dropped, bp.twice, bp.reordered)
	if res.Claim.Statement != want {
		t.Errorf("claim %q, want %q", res.Claim.Statement, want)
	}
	// Every example is a real fault of the double's, with its location.
	kinds := map[string]int{}
	for _, e := range res.Examples {
		kinds[e.Kind]++
		switch e.Kind {
		case accounting.ExampleLost:
			if !bp.droppedSeqs[[2]uint64{uint64(e.Producer), e.Seq}] {
				t.Errorf("lost example %+v was not dropped", e)
			}
		case accounting.ExampleDuplicate:
			if !writeTwice(e.Seq) || e.Partition == nil || e.Offset == nil {
				t.Errorf("duplicate example %+v", e)
			}
		case accounting.ExampleReordered:
			if !holdBack(e.Seq) || e.Partition == nil || e.Offset == nil {
				t.Errorf("reordered example %+v", e)
			}
		default:
			t.Errorf("unexpected example %+v", e)
		}
	}
	if len(res.Examples) != accounting.MaxExamples || kinds[accounting.ExampleLost] == 0 || kinds[accounting.ExampleDuplicate] == 0 || kinds[accounting.ExampleReordered] == 0 {
		t.Errorf("%d examples by kind %v", len(res.Examples), kinds)
	}
}

// lyingOptions are Kafka options that claim read_committed consumers
// whatever the isolation: a consumer that breaks isolation.
type lyingOptions struct{ kafka.Options }

func (o lyingOptions) Abilities() []string {
	return append(o.Options.Abilities(), scenarios.AbilityReadCommitted)
}

// TestAbortedReadsCaught: consumers that claim to read committed data but
// read uncommitted see every record of the aborted transactions; each is
// an aborted read, with its partition, offset and transaction.
func TestAbortedReadsCaught(t *testing.T) {
	kind := drivers.Kind{
		Name: "kafka",
		Options: func(d *scenarios.Decoder, n *yaml.Node, field string) any {
			return lyingOptions{kafka.Kind.Options(d, n, field).(kafka.Options)}
		},
		Open: func(ctx context.Context, options any, env drivers.Env) (drivers.Driver, error) {
			return kafka.Kind.Open(ctx, options.(lyingOptions).Options, env)
		},
	}
	res := runOwnKind(t, kind, `
driver: {kafka: {partitions: 3, isolation: read_uncommitted, transactions: {records: 50, abort: 20%}}}
thresholds: [aborted_reads == 0]
`+txnTraffic)
	c := res.Counts
	expect(t, "aborted", c.Aborted, res.DriverStats["txn_aborted_records"])
	if c.Aborted == 0 {
		t.Fatal("nothing aborted")
	}
	expect(t, "aborted_reads", c.AbortedReads, c.Aborted)
	expect(t, "aborted_visible", c.AbortedVisible, 0)
	expect(t, "lost", c.Lost, 0)
	if len(res.Examples) != accounting.MaxExamples {
		t.Errorf("%d examples", len(res.Examples))
	}
	for _, e := range res.Examples {
		if e.Kind != accounting.ExampleAbortedRead || e.Partition == nil || e.Offset == nil || e.Txn == 0 {
			t.Errorf("example %+v", e)
		}
	}
	if res.Claim == nil || res.Claim.Held || res.Claim.Guarantee != "read-committed" {
		t.Errorf("claim %+v", res.Claim)
	}
	t.Logf("claim: %s; first example %+v", res.Claim.Statement, res.Examples[0])
}

// runOwnKind runs the scenario yaml with driver kind k, options decoded by
// k's own Options, through the engine.
func runOwnKind(t *testing.T, k drivers.Kind, src string) *report.Results {
	t.Helper()
	l := &scenarios.Loader{}
	l.Driver(k.Name, k.Options)
	sc, err := l.Parse(t.Name()+".yaml", []byte(src))
	if err != nil {
		t.Fatalf("scenario: %v", err)
	}
	res, err := engine.Run(context.Background(), sc, engine.WithDrivers(k))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Logf("counts %+v", res.Counts)
	t.Logf("driver %v", res.DriverStats)
	return res
}
