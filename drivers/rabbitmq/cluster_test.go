package rabbitmq_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spate-dev/spate/chaos"
	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/rabbitmq"
	"github.com/spate-dev/spate/drivers/stamp"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// These tests run scenarios on the shared 3-node cluster, each starting
// and ending with the cluster healthy (cluster() checks).

// redeliveryCheck records, from the deliveries handed to the run, which
// were a second delivery of the same message, and how many of those the
// broker did not flag as redelivered.
type redeliveryCheck struct {
	seen             map[[2]uint64]bool
	dups, notFlagged int64
}

func newRedeliveryCheck(h *harness) *redeliveryCheck {
	rc := &redeliveryCheck{seen: map[[2]uint64]bool{}}
	h.onBatch = func(_ int, batch []drivers.Delivery) {
		for _, d := range batch {
			s := stampOf(h.t, d)
			k := [2]uint64{uint64(s.Producer), s.Seq}
			if rc.seen[k] {
				rc.dups++
				if !d.Redelivered {
					rc.notFlagged++
				}
			}
			rc.seen[k] = true
		}
	}
	return rc
}

// onlyFault returns the one fault of res, or fails t.
func onlyFault(t *testing.T, res *report.Results) report.FaultResult {
	t.Helper()
	if len(res.Chaos) != 1 {
		t.Fatalf("%d faults, want 1: %+v", len(res.Chaos), res.Chaos)
	}
	f := res.Chaos[0]
	t.Logf("fault %+v", f)
	if f.RecoveryS == nil {
		// What the recovery was judged on: the e2e p99 and backlog over time.
		var b strings.Builder
		for _, iv := range res.Intervals {
			fmt.Fprintf(&b, "\n  %5.1f-%5.1fs e2e p99 %7dµs received %5d backlog %5d", iv.StartS, iv.EndS, iv.LatencyUS.E2E.P99, iv.Counts.Received, iv.Backlog)
		}
		t.Logf("no recovery; the intervals:%s", b.String())
	}
	if !f.OK {
		t.Fatalf("the fault failed: %s", f.Error)
	}
	return f
}

// leaderOf returns the broker leading queue in a fault's leaders_before or
// leaders_after detail, or fails t.
func leaderOf(t *testing.T, f report.FaultResult, key, queue string) int {
	t.Helper()
	m, ok := f.Details[key].(map[string]int)
	if !ok {
		t.Fatalf("fault details %s = %#v, want a map of queue to broker", key, f.Details[key])
	}
	id, ok := m[queue]
	if !ok {
		t.Fatalf("fault details %s = %v: no queue %s", key, m, queue)
	}
	return id
}

// checkConfirmedAccounting: every message sent has exactly one outcome,
// and spate's counts agree with the driver's own.
func checkConfirmedAccounting(t *testing.T, res *report.Results) {
	t.Helper()
	c, st := res.Counts, res.DriverStats
	expect(t, "acked + failed + unconfirmed", c.Acked+c.Failed+c.Unconfirmed, c.Sent)
	expect(t, "unconfirmed (driver)", st["unconfirmed"], c.Unconfirmed)
	expect(t, "failed (driver: nacked + returned + publish_failed)", st["nacked"]+st["returned"]+st["publish_failed"], c.Failed)
	expect(t, "acked (driver confirmed)", st["confirmed"], c.Acked)
}

// exampleSource returns the text of examples/<name>.
func exampleSource(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkThresholds fails t unless every threshold of res passed.
func checkThresholds(t *testing.T, res *report.Results) {
	t.Helper()
	if res.Verdict != report.Pass {
		t.Errorf("verdict %s, want pass; thresholds: %+v", res.Verdict, res.Thresholds)
	}
}

// TestClusterQuorumKillLeader runs examples/rabbitmq-quorum-kill.yaml: a
// quorum queue on three nodes, persistent messages with confirms at
// 1,000/s; the node leading the queue is killed with SIGKILL mid-run and
// started again. Nothing confirmed is lost; every message sent is
// confirmed, failed or unconfirmed, as the driver counted them; a message
// delivered twice is always one the broker flagged as redelivered; the
// fault's recovery time is measured; leadership moved off the killed node,
// and the fault's details and driver_stats say where.
func TestClusterQuorumKillLeader(t *testing.T) {
	c := cluster(t)
	h := newHarness(t)
	h.onCluster = true
	rc := newRedeliveryCheck(h)
	res := h.run(exampleSource(t, "rabbitmq-quorum-kill.yaml"))
	cnt, st := res.Counts, res.DriverStats
	t.Logf("counts %+v\nstats %v\nduplicates seen %d, not flagged %d", cnt, st, rc.dups, rc.notFlagged)
	f := onlyFault(t, res)
	q := h.driver().Queue()
	killed := leaderOf(t, f, "leaders_before", q)
	if got := fmt.Sprint(f.Details["broker"]); got != fmt.Sprint(killed) {
		t.Errorf("killed broker %s, want the leader %d", got, killed)
	}
	after := leaderOf(t, f, "leaders_after", q)
	if after < 0 || after == killed {
		t.Errorf("leader after the kill: %d, want another node than the killed %d", after, killed)
	}
	expect(t, "leader_broker at the end", st["leader_broker"], int64(after))
	expect(t, "brokers", st["brokers"], int64(c.Size()))
	checkThresholds(t, res)
	expect(t, "lost", cnt.Lost, 0)
	checkConfirmedAccounting(t, res)
	expect(t, "duplicates not flagged redelivered", rc.notFlagged, 0)
	expect(t, "duplicates", cnt.Duplicates, rc.dups)
	if cnt.Acked < cnt.Sent*9/10 {
		t.Errorf("acked %d of %d sent", cnt.Acked, cnt.Sent)
	}
	// Producers 0 and 1 and the consumer connect to nodes 0 and 1 (the
	// queue's leader is node 0, where it was declared, unless RabbitMQ
	// placed it elsewhere).
	if killed < 2 && st["reconnects"] == 0 {
		t.Errorf("no client reconnected, though node %d had clients", killed)
	}
	if f.RecoveryS == nil {
		t.Errorf("the fault's recovery time was not measured: the node was back at %.1fs of %.0fs of traffic (restart took %v)", f.EndS, res.TrafficS, f.Details["took"])
	} else {
		t.Logf("recovered %.1fs after the node was back at %.1fs (restart took %v)", *f.RecoveryS, f.EndS, f.Details["took"])
	}
}

// TestClusterQuorumPauseLeader: as the kill, but the leader's node hangs
// (SIGSTOP) for 5 s instead of dying, then goes on (SIGCONT).
func TestClusterQuorumPauseLeader(t *testing.T) {
	c := cluster(t)
	h := newHarness(t)
	h.onCluster = true
	rc := newRedeliveryCheck(h)
	res := h.run(`
driver:
  rabbitmq:
    url: managed
    nodes: 3
    queue: {type: quorum, quorum-initial-group-size: 3}
    prefetch: 200
    reconnect: 2m
producers: 2
consumers: 2
message: {size: 256B}
traffic:
  - constant: {rate: 1000/s, for: 30s} # the backlog of the pause drains, and the traffic recovers, before it ends
chaos:
  - {action: broker-pause, at: 3s, for: 5s, target: leader}
drain: 60s
thresholds: [loss == 0]
`)
	cnt, st := res.Counts, res.DriverStats
	t.Logf("counts %+v\nstats %v\nduplicates seen %d, not flagged %d", cnt, st, rc.dups, rc.notFlagged)
	f := onlyFault(t, res)
	q := h.driver().Queue()
	paused := leaderOf(t, f, "leaders_before", q)
	if got := fmt.Sprint(f.Details["broker"]); got != fmt.Sprint(paused) {
		t.Errorf("paused broker %s, want the leader %d", got, paused)
	}
	if leaderOf(t, f, "leaders_after", q) < 0 {
		t.Error("no leader after the pause")
	}
	if w := f.EndS - f.StartS; w < 5 || w > 15 {
		t.Errorf("the pause lasted %.1fs, want about 5s", w)
	}
	if c.Node(paused).Paused() {
		t.Errorf("node %d is still paused after the run", paused)
	}
	checkThresholds(t, res)
	expect(t, "lost", cnt.Lost, 0)
	checkConfirmedAccounting(t, res)
	expect(t, "duplicates not flagged redelivered", rc.notFlagged, 0)
	expect(t, "duplicates", cnt.Duplicates, rc.dups)
	// The leader hung: nothing was confirmed or delivered for a while.
	if f.PeakBacklog < 1000 {
		t.Errorf("peak backlog %d during a 5 s pause of the leader at 1,000/s, want at least a second's worth", f.PeakBacklog)
	}
	if f.RecoveryS == nil {
		t.Error("the fault's recovery time was not measured")
	} else {
		t.Logf("recovered %.1fs after the node went on", *f.RecoveryS)
	}
}

// streamOrder records, per consumer, the stream offsets handed to the run.
type streamOrder struct {
	offsets  map[int][]int64
	noOffset int
}

func newStreamOrder(h *harness) *streamOrder {
	so := &streamOrder{offsets: map[int][]int64{}}
	h.onBatch = func(id int, batch []drivers.Delivery) {
		for _, d := range batch {
			if !d.HasOffset {
				so.noOffset++
				continue
			}
			so.offsets[id] = append(so.offsets[id], d.Offset)
		}
	}
	return so
}

// TestClusterStreamTwoConsumers runs examples/rabbitmq-stream.yaml: two
// consumers read a 3-node stream from the first offset, each as a
// subscription of its own, while the stream's leader restarts. Each
// receives every confirmed message exactly once in stream order: both see
// the same offsets, 0, 1, 2, ... without a gap or a repeat.
func TestClusterStreamTwoConsumers(t *testing.T) {
	cluster(t)
	h := newHarness(t)
	h.onCluster = true
	so := newStreamOrder(h)
	res := h.run(exampleSource(t, "rabbitmq-stream.yaml"))
	cnt, st := res.Counts, res.DriverStats
	t.Logf("counts %+v\nstats %v", cnt, st)
	f := onlyFault(t, res)
	q := h.driver().Queue()
	t.Logf("stream leader before %d, after %d", leaderOf(t, f, "leaders_before", q), leaderOf(t, f, "leaders_after", q))
	checkThresholds(t, res)
	expect(t, "subscriptions", int64(res.Subs()), 2)
	expect(t, "lost", cnt.Lost, 0)
	expect(t, "duplicates", cnt.Duplicates, 0)
	expect(t, "reordered", cnt.Reordered, 0)
	checkConfirmedAccounting(t, res)
	h.mu.Lock()
	defer h.mu.Unlock()
	if so.noOffset > 0 {
		t.Errorf("%d deliveries without a stream offset", so.noOffset)
	}
	if len(so.offsets) != 2 {
		t.Fatalf("offsets of %d consumers, want 2", len(so.offsets))
	}
	for id, offs := range so.offsets {
		for i, o := range offs {
			if o != int64(i) {
				t.Errorf("consumer %d: delivery %d has offset %d, want %d (every offset once, in order)", id, i, o, i)
				break
			}
		}
		// Every message the stream holds is one spate sent (what landed
		// of the unconfirmed too), each read once by each consumer.
		expect(t, fmt.Sprintf("consumer %d deliveries", id), int64(len(offs)), cnt.Received/2)
	}
	if fmt.Sprint(so.offsets[0]) != fmt.Sprint(so.offsets[1]) {
		t.Error("the two consumers read different offsets")
	}
	if restarted := leaderOf(t, f, "leaders_before", q); restarted < 2 && st["reconnects"] == 0 {
		t.Errorf("no client reconnected, though node %d had clients", restarted)
	}
}

// TestClusterStreamConsumerCrash: a stream consumer crashes in the middle
// of handling a batch (so the batch is never acknowledged) and a new
// consumer with its id resumes from the offset after the last batch it
// handled: it reads the crashed batch again, and exactly those re-read
// deliveries are the run's duplicates. The other consumer sees each
// message once.
func TestClusterStreamConsumerCrash(t *testing.T) {
	cluster(t)
	h := newHarness(t)
	h.onCluster = true
	h.crashID.Store(0)
	h.crashAfter = 1500
	so := newStreamOrder(h)
	res := h.run(`
driver:
  rabbitmq:
    url: managed
    nodes: 3
    queue: {type: stream, offset: first}
    prefetch: 300
producers: 1
consumers: 2
subscriptions: 2
message: {size: 256B}
traffic:
  - constant: {rate: 1000/s, for: 4s}
drain: 30s
`)
	cnt := res.Counts
	t.Logf("crashed batch %d\ncounts %+v\nstats %v", h.crashBatch.Load(), cnt, res.DriverStats)
	if !h.crashed.Load() {
		t.Fatal("consumer 0 never crashed; the test proves nothing")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	// What consumer 0 re-read: deliveries at an offset it had been
	// handed before.
	var reRead int64
	seen := map[int64]bool{}
	for _, o := range so.offsets[0] {
		if seen[o] {
			reRead++
		}
		seen[o] = true
	}
	if reRead == 0 {
		t.Fatal("consumer 0 re-read nothing after its crash")
	}
	expect(t, "re-read by consumer 0", reRead, h.crashBatch.Load())
	expect(t, "duplicates", cnt.Duplicates, reRead)
	expect(t, "lost", cnt.Lost, 0)
	expect(t, "driver crashes", res.DriverStats["crashes"], 1)
	for i, o := range so.offsets[1] {
		if o != int64(i) {
			t.Errorf("consumer 1: delivery %d has offset %d, want %d", i, o, i)
			break
		}
	}
}

// TestClusterClassicKill: a classic queue (not replicated, transient
// messages) on the node that is killed loses exactly the messages it held.
// Consumers subscribe only after the kill, and the producer (connected to
// the queue's node, as everything of this driver is) is held while the
// queue's depth is read and its node killed and started again, so nothing
// else is in flight: loss equals the depth at the kill.
func TestClusterClassicKill(t *testing.T) {
	c := cluster(t)
	h := newHarness(t)
	h.onCluster = true
	h.lazy = true
	wait := h.start(`
driver:
  rabbitmq:
    url: managed
    nodes: 3
    queue: {type: classic, durable: false}
    persistent: false
producers: 1
consumers: 1
traffic:
  - constant: {rate: 500/s, for: 12s}
drain: 10s # what was lost never arrives: the drain always runs out
`)
	waitFor(t, "300 acked messages", time.Minute, func() bool { return h.acked.Load() >= 300 })
	h.closeGate()
	h.quiet(time.Minute)
	d := h.driver()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	leaders, err := d.Leaders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	home := leaders[d.Queue()]
	if home < 0 {
		t.Fatalf("the queue has no node: %v", leaders)
	}
	depth, err := d.QueueDepth(ctx, d.Queue())
	if err != nil {
		t.Fatal(err)
	}
	acked := h.acked.Load()
	if int64(depth) != acked {
		t.Errorf("queue depth %d before the kill, want every acked message (%d): nobody consumed yet", depth, acked)
	}
	if err := d.RestartBroker(ctx, home, drivers.Kill, 0); err != nil {
		t.Fatal(err)
	}
	h.openGate()
	close(h.release)
	res := wait()
	cnt := res.Counts
	t.Logf("queue on node %d of %d, depth at the kill %d\ncounts %+v\nstats %v", home, c.Size(), depth, cnt, res.DriverStats)
	if depth == 0 {
		t.Fatal("the queue was empty at the kill; the test proves nothing")
	}
	expect(t, "lost", cnt.Lost, int64(depth))
	expect(t, "duplicates", cnt.Duplicates, 0)
	expect(t, "received", cnt.Received, cnt.Acked-int64(depth))
	if cnt.Acked <= int64(depth) {
		t.Errorf("acked %d: nothing was acked after the kill (did the producer reconnect?)", cnt.Acked)
	}
}

// TestClusterPartitionLeader: the node leading a quorum queue is cut off
// from the other two (its Erlang distribution connections closed and
// refused) for 8 s while clients still reach it. With pause_minority it
// pauses itself; the majority elects a new leader; nothing confirmed is
// lost, and once healed the cluster is whole again.
func TestClusterPartitionLeader(t *testing.T) {
	c := cluster(t)
	h := newHarness(t)
	h.onCluster = true
	rc := newRedeliveryCheck(h)
	res := h.run(`
driver:
  rabbitmq:
    url: managed
    nodes: 3
    queue: {type: quorum}
    prefetch: 200
    reconnect: 2m
producers: 2
consumers: 2
message: {size: 256B}
traffic:
  - constant: {rate: 500/s, for: 20s}
chaos:
  - {action: broker-partition, at: 4s, for: 8s, target: leader}
drain: 60s
thresholds: [loss == 0]
`)
	cnt, st := res.Counts, res.DriverStats
	t.Logf("counts %+v\nstats %v", cnt, st)
	f := onlyFault(t, res)
	q := h.driver().Queue()
	isolated := leaderOf(t, f, "leaders_before", q)
	after := leaderOf(t, f, "leaders_after", q)
	if after < 0 || after == isolated {
		t.Errorf("leader after the partition: %d, want another node than the isolated %d", after, isolated)
	}
	checkThresholds(t, res)
	expect(t, "lost", cnt.Lost, 0)
	checkConfirmedAccounting(t, res)
	expect(t, "duplicates not flagged redelivered", rc.notFlagged, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.WaitHealthy(ctx, 3*time.Minute); err != nil {
		t.Errorf("after the partition healed: %v", err)
	}
}

// TestClusterInterruptUndoesFaults: a run interrupted while a node is
// paused and another is cut off still resumes the one and heals the
// other before it returns.
func TestClusterInterruptUndoesFaults(t *testing.T) {
	c := cluster(t)
	h := newHarness(t)
	h.onCluster = true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.ctx = ctx
	wait := h.start(`
driver:
  rabbitmq:
    url: managed
    nodes: 3
    queue: {type: quorum}
producers: 1
consumers: 1
traffic:
  - constant: {rate: 200/s, for: 60s}
chaos:
  - {action: broker-pause, at: 1s, for: 50s, target: 2}
  - {action: broker-partition, at: 1s, for: 50s, target: 1}
drain: 5s
`)
	waitFor(t, "both faults in effect", time.Minute, func() bool { return c.Node(2).Paused() && c.Partitioned() })
	cancel()
	res := wait()
	if !res.Interrupted {
		t.Error("the run was not marked interrupted")
	}
	for _, f := range res.Chaos {
		t.Logf("fault %+v", f)
		if !f.OK {
			t.Errorf("fault %s: %s", f.Action, f.Error)
		}
	}
	if c.Node(2).Paused() {
		t.Error("node 2 is still paused")
	}
	if c.Partitioned() {
		t.Error("the partition was not healed")
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer wcancel()
	if err := c.WaitHealthy(wctx, 3*time.Minute); err != nil {
		t.Errorf("after the interrupted run: %v", err)
	}
}

// TestManagedCluster: `url: managed` with `nodes: 2` starts a private
// cluster, makes the driver able to restart (one node or all), pause and
// partition its two brokers and say which leads the queue, spreads clients
// over both nodes, and Close stops everything it started, undoing the
// faults left in effect: no node process, no listening port, no directory
// remains.
func TestManagedCluster(t *testing.T) {
	node(t) // the same requirements; the shared cluster is not used
	o := rabbitmq.DefaultOptions()
	o.Nodes = 2
	o.Queue.Type = "quorum"
	o.NodeOptions.Server = os.Getenv("SPATE_RABBITMQ_SERVER")
	env := testEnv(t, 2, 2)
	ctx := context.Background()
	d, err := rabbitmq.Kind.Open(ctx, o, env)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = d.Close(ctx)
		}
	}()
	md, ok := d.(*rabbitmq.ManagedDriver)
	if !ok {
		t.Fatalf("%T is not a ManagedDriver", d)
	}
	c := md.Cluster()
	if c == nil || c.Size() != 2 || len(md.URLs()) != 2 || md.URLs()[0] == md.URLs()[1] {
		t.Fatalf("cluster %v, urls %v", c, md.URLs())
	}
	if b := md.Brokers(); fmt.Sprint(b) != "[0 1]" {
		t.Errorf("Brokers() = %v, want [0 1]", b)
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"restart", md.RestartBroker(ctx, 2, drivers.Kill, 0)},
		{"pause", func() error { _, err := md.PauseBroker(ctx, 2); return err }()},
		{"partition", func() error { _, err := md.PartitionBroker(ctx, -5); return err }()},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), "no broker") {
			t.Errorf("%s of a broker that does not exist: %v", tc.name, tc.err)
		}
	}
	beams := c.PIDs()
	ports := c.Ports()
	checkLoopback(t, append(beams, os.Getpid())...)

	// A message from the producer on node 0 reaches the consumer on node 1.
	got := make(chan drivers.Delivery, 1)
	cons, err := d.NewConsumer(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		_ = cons.Consume(cctx, func(b []drivers.Delivery) {
			select {
			case got <- b[0]:
			default:
			}
		})
	}()
	acked := make(chan error, 1)
	p, err := d.NewProducer(ctx, 0, func(rs []drivers.Result) { acked <- rs[0].Err })
	if err != nil {
		t.Fatal(err)
	}
	s := stamp.Stamp{RunID: env.RunID, Seq: 0}
	body := make([]byte, stamp.Size)
	s.Put(body)
	if err := p.Send(ctx, []drivers.Message{{Stamp: s, Head: body[:stamp.Size], Tail: body[stamp.Size:]}}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-acked:
		if err != nil {
			t.Errorf("outcome %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("no outcome")
	}
	select {
	case <-got:
	case <-time.After(time.Minute):
		t.Fatal("no delivery")
	}
	leaders, err := md.Leaders(ctx)
	if err != nil || len(leaders) != 1 || leaders[md.Queue()] < 0 {
		t.Errorf("Leaders() = %v, %v; want the queue's leader", leaders, err)
	}
	// The quick way (erl_call) and rabbitmqctl agree.
	if cli, err := c.LeadersByCLI(ctx, []string{md.Queue()}); err != nil || fmt.Sprint(cli) != fmt.Sprint(leaders) {
		t.Errorf("rabbitmqctl says %v (%v), Leaders() %v", cli, err, leaders)
	}
	_ = p.Close(ctx)
	stop()

	// Every node killed at once, all started again in parallel: the
	// cluster forms again and the quorum queue has a leader.
	if err := md.RestartBroker(ctx, drivers.AllBrokers, drivers.Kill, 0); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Minute)
	defer wcancel()
	if err := c.WaitHealthy(wctx, 3*time.Minute); err != nil {
		t.Fatalf("after restarting every node: %v", err)
	}
	waitFor(t, "a leader for the queue after every node restarted", time.Minute, func() bool {
		l, err := md.Leaders(ctx)
		return err == nil && l[md.Queue()] >= 0
	})
	if newBeams := c.PIDs(); len(newBeams) != 2 || newBeams[0] == beams[0] || newBeams[1] == beams[1] {
		t.Errorf("node processes %v after restarting every node, were %v", newBeams, beams)
	} else {
		beams = append(beams, newBeams...)
	}

	// Faults left in effect: Close must undo them and stop everything.
	if _, err := md.PauseBroker(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := md.PartitionBroker(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if !c.Node(1).Paused() || !c.Partitioned() {
		t.Fatal("the faults did not take effect")
	}
	closed = true
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Node(1).Paused() || c.Partitioned() {
		t.Error("Close left a fault in effect")
	}
	checkGone(t, beams, ports, c.Dir())
}

// checkGone fails t if any of pids still exists, any of ports is still
// taken on 127.0.0.1, or dir is still there.
func checkGone(t testing.TB, pids, ports []int, dir string) {
	t.Helper()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists (kill -0: %v)", pid, err)
		}
	}
	for _, port := range ports {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Errorf("port %d is still taken: %v", port, err)
			continue
		}
		_ = l.Close()
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory %s is still there (%v)", dir, err)
	}
}

// TestExistingClusterURLs: `urls:` names the nodes of a cluster spate does
// not manage (here the shared cluster, as if it were someone else's).
// Clients spread over its nodes; when one node is killed mid-run (by the
// test: the driver manages nothing), its clients reconnect to the others
// and nothing confirmed to a quorum queue is lost.
func TestExistingClusterURLs(t *testing.T) {
	c := cluster(t)
	urls := c.URLs()
	src := fmt.Sprintf(`
driver:
  rabbitmq:
    urls: [%q, %q, %q]
    queue: {type: quorum}
    prefetch: 200
    reconnect: 2m
producers: 3
consumers: 3
message: {size: 256B}
traffic:
  - constant: {rate: 600/s, for: 10s}
drain: 60s
thresholds: [loss == 0]
`, urls[0], urls[1], urls[2])
	l := &scenarios.Loader{}
	l.Driver(rabbitmq.Kind.Name, rabbitmq.Kind.Options)
	chaos.Register(l)
	sc, err := l.Parse("urls.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if drivers.HasAbility(sc.Driver.Options, scenarios.AbilityBrokerRestart) {
		t.Error("a driver on urls: lists broker-restart: it manages no broker")
	}
	// Node 2 is killed once 2,000 messages are confirmed (a third of the
	// traffic), and started again.
	var confirmed atomic.Int64
	kind := rabbitmq.Kind
	kind.Open = func(ctx context.Context, options any, env drivers.Env) (drivers.Driver, error) {
		d, err := rabbitmq.Kind.Open(ctx, options, env)
		if err != nil {
			return nil, err
		}
		return &countingDriver{Driver: d, confirmed: &confirmed}, nil
	}
	killed := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(time.Minute)
		for confirmed.Load() < 2000 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		killed <- c.Restart(context.Background(), 2, drivers.Kill, 0)
	}()
	res, err := engine.Run(context.Background(), sc, engine.WithDrivers(kind), engine.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-killed; err != nil {
		t.Fatal(err)
	}
	cnt, st := res.Counts, res.DriverStats
	t.Logf("counts %+v\nstats %v", cnt, st)
	checkThresholds(t, res)
	expect(t, "lost", cnt.Lost, 0)
	checkConfirmedAccounting(t, res)
	if st["reconnects"] == 0 {
		t.Error("no client reconnected after node 2 was killed")
	}
	if _, ok := st["leader_broker"]; ok {
		t.Error("driver_stats has leader_broker on a cluster spate does not manage")
	}
}

// countingDriver counts the messages its producers had confirmed, and
// passes the driver's figures on.
type countingDriver struct {
	drivers.Driver
	confirmed *atomic.Int64
}

func (d *countingDriver) NewProducer(ctx context.Context, id int, ack drivers.AckFunc) (drivers.Producer, error) {
	return d.Driver.NewProducer(ctx, id, func(rs []drivers.Result) {
		var ok int64
		for _, r := range rs {
			if r.Err == nil {
				ok++
			}
		}
		d.confirmed.Add(ok)
		ack(rs)
	})
}

func (d *countingDriver) Stats() map[string]int64 { return d.Driver.(drivers.StatsReporter).Stats() }
