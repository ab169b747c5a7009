package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spate-dev/spate/report"
)

// The tests here run distributed runs as they run on several hosts: the
// built spate binary, one process per shard, against one Kafka cluster
// that `spate serve kafka` runs in a process of its own, all on loopback.

// sharedKafka is the shared cluster, started on first use and stopped by
// TestMain's cleanup (stopServers).
var sharedKafka struct {
	once    sync.Once
	cmd     *exec.Cmd
	brokers string
	err     error
}

// servedKafka returns the brokers of the shared `spate serve kafka`.
func servedKafka(t testing.TB) string {
	t.Helper()
	s := &sharedKafka
	s.once.Do(func() {
		dir, err := os.MkdirTemp("", "spate-serve-kafka")
		if err != nil {
			s.err = err
			return
		}
		ready := filepath.Join(dir, "ready")
		cmd := exec.Command(binary, "serve", "kafka", "--data", filepath.Join(dir, "data"), "--ready-file", ready)
		cmd.Stdout, cmd.Stderr = &bytes.Buffer{}, &bytes.Buffer{}
		if s.err = cmd.Start(); s.err != nil {
			return
		}
		s.cmd = cmd
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if b, err := os.ReadFile(ready); err == nil && strings.Contains(string(b), "\n") {
				line := strings.TrimSpace(string(b))
				s.brokers = strings.TrimSpace(strings.TrimPrefix(line, "brokers:"))
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		s.err = fmt.Errorf("spate serve kafka was not ready within 30s: %s", cmd.Stderr)
	})
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.brokers
}

// stopServers stops what servedKafka started; TestMain calls it.
func stopServers() {
	if c := sharedKafka.cmd; c != nil {
		_ = c.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = c.Process.Kill()
			<-done
		}
	}
}

// freeAddr returns a loopback address no one listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// shardProc is one shard's process.
type shardProc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	out            string // its report directory
}

// startShards starts n shard processes of the scenario in file, each with
// extra[i] as more arguments, and returns them; the coordinator first.
func startShards(t *testing.T, file string, n int, extra map[int][]string) []*shardProc {
	t.Helper()
	coord := freeAddr(t)
	var procs []*shardProc
	for i := range n {
		p := &shardProc{out: filepath.Join(t.TempDir(), fmt.Sprintf("shard%d", i))}
		args := append([]string{"run", file, "--shard", fmt.Sprintf("%d/%d", i, n), "--coordinator", coord,
			"--progress", "off", "--out", p.out, "--join-timeout", "60s", "--lost-after", "3s"}, extra[i]...)
		p.cmd = exec.Command(binary, args...)
		p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	t.Cleanup(func() {
		for _, p := range procs {
			if p.cmd.ProcessState == nil {
				_ = p.cmd.Process.Kill()
				_ = p.cmd.Wait()
			}
		}
	})
	return procs
}

// wait waits for a shard (bounded) and returns its exit code.
func (p *shardProc) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(limit):
		_ = p.cmd.Process.Kill()
		<-done
		t.Fatalf("shard did not end within %s:\n%s\n%s", limit, p.stdout.String(), p.stderr.String())
		return -1
	}
}

func readRun(t *testing.T, dir string) *report.Results {
	t.Helper()
	r, err := report.ReadResults(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runShards runs the scenario as n shards and returns the coordinator's
// results, failing unless every shard exits with want[i] (default 0).
func runShards(t *testing.T, scenario string, n int, extra map[int][]string) (*report.Results, []*shardProc) {
	t.Helper()
	procs := startShards(t, writeScenario(t, scenario), n, extra)
	for i, p := range procs {
		if code := p.wait(t, 2*time.Minute); code != 0 {
			t.Fatalf("shard %d exited %d:\n%s\n%s", i, code, p.stdout.String(), p.stderr.String())
		}
	}
	return readRun(t, procs[0].out), procs
}

// waitForRecords waits until topic holds at least n records: the run's
// traffic is flowing.
func waitForRecords(t *testing.T, brokers, topic string, n int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		var total int64
		if ends, err := adm.ListEndOffsets(ctx, topic); err == nil {
			ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
		}
		if total >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("topic %s holds %d records after a minute, want %d", topic, total, n)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestDistributedKafka: three shard processes against `spate serve
// kafka`: the merged sent, acked and received are the sums of the shards'
// (no message went to two shards), nothing is lost or duplicated, the
// e2e histogram holds one value per message received, the shards started
// within 5ms of each other; and spate merge of the shards' directories
// gives the coordinator's results.json exactly.
func TestDistributedKafka(t *testing.T) {
	t.Parallel()
	brokers := servedKafka(t)
	res, procs := runShards(t, fmt.Sprintf(`
name: distributed-kafka
driver: {kafka: {brokers: [%s], topic: dist-%d, partitions: 6}}
producers: 3
consumers: 3
traffic:
  - constant: {rate: 2000/s, for: 3s}
drain: 10s
thresholds: [loss == 0, duplicates == 0]
`, brokers, time.Now().UnixNano()), 3, nil)
	c := res.Counts
	if c.Sent != 6000 || c.Acked != 6000 || c.Received != 6000 || c.Lost != 0 || c.Duplicates != 0 {
		t.Errorf("counts %+v, want 6,000 sent, acked and received", c)
	}
	if res.LatencyUS.E2E.Count != c.Received {
		t.Errorf("e2e histogram count %d, received %d", res.LatencyUS.E2E.Count, c.Received)
	}
	var sent, acked, received int64
	for _, s := range res.Shards.Each {
		sent, acked, received = sent+s.Sent, acked+s.Acked, received+s.Received
	}
	if sent != c.Sent || acked != c.Acked || received != c.Received {
		t.Errorf("shards' sums %d/%d/%d, run's %d/%d/%d", sent, acked, received, c.Sent, c.Acked, c.Received)
	}
	// Measured and printed; how small it is on a quiet machine is
	// BenchmarkDistributedStart's to say, not a loaded test run's.
	if sk := res.Shards.StartSkewMS; sk <= 0 || sk > 250 {
		t.Errorf("start skew %.2fms", sk)
	}
	if res.Verdict != report.Pass {
		t.Errorf("verdict %s: %+v", res.Verdict, res.Thresholds)
	}
	// spate merge from the shards' own directories (not the coordinator's copies).
	out := t.TempDir()
	dirs := []string{filepath.Join(procs[0].out, "shards", "0")}
	for i, p := range procs[1:] {
		dirs = append(dirs, filepath.Join(p.out, "shards", fmt.Sprint(i+1)))
	}
	if r := spate(t, append([]string{"merge", "-o", out}, dirs...)...); r.code != 0 {
		t.Fatalf("spate merge exited %d: %s", r.code, r.stderr)
	}
	want, _ := os.ReadFile(filepath.Join(procs[0].out, "results.json"))
	got, _ := os.ReadFile(filepath.Join(out, "results.json"))
	if !bytes.Equal(want, got) {
		t.Errorf("spate merge's results.json differs from the coordinator's")
	}
	if r := spate(t, "merge", "-o", t.TempDir(), dirs[0], dirs[1]); r.code != exitInvalid || !strings.Contains(r.stderr, "shard 2 of 3 missing") {
		t.Errorf("merge of 2 of 3 shards: exit %d: %s", r.code, r.stderr)
	}
}

// TestDistributedDuplicatesFromOutside: messages re-produced into the
// topic from outside the run while it goes (a retrying client elsewhere)
// are counted exactly as duplicates in the merged result, wherever they
// are delivered.
func TestDistributedDuplicatesFromOutside(t *testing.T) {
	t.Parallel()
	brokers := servedKafka(t)
	topic := fmt.Sprintf("dist-dups-%d", time.Now().UnixNano())
	procs := startShards(t, writeScenario(t, fmt.Sprintf(`
name: distributed-dups
driver: {kafka: {brokers: [%s], topic: %s, partitions: 6}}
producers: 2
consumers: 2
traffic:
  - constant: {rate: 1000/s, for: 3s}
drain: 10s
`, brokers, topic)), 2, nil)

	// Read the first 100 records of the run and produce them again.
	const again = 100
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var records []*kgo.Record
	for len(records) < again && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if len(records) < again {
				records = append(records, &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Headers: r.Headers})
			}
		})
	}
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for i, p := range procs {
		if code := p.wait(t, 2*time.Minute); code != 0 {
			t.Fatalf("shard %d exited %d:\n%s", i, code, p.stderr.String())
		}
	}
	res := readRun(t, procs[0].out)
	if c := res.Counts; c.Duplicates != again || c.Received != c.Sent || c.Lost != 0 {
		t.Errorf("counts %+v, want %d duplicates and nothing lost", c, again)
	}
}

// TestDistributedClockSkew: a shard whose clock is 300ms ahead measures
// its offset to within 5ms, and the run's e2e latencies are as they are
// without the skew: its median within 5ms of an unskewed run's.
func TestDistributedClockSkew(t *testing.T) {
	t.Parallel()
	brokers := servedKafka(t)
	scenario := func(name string) string {
		return fmt.Sprintf(`
name: %s
driver: {kafka: {brokers: [%s], topic: %s-%d, partitions: 4}}
producers: 2
consumers: 2
traffic:
  - constant: {rate: 1000/s, for: 3s}
drain: 10s
`, name, brokers, name, time.Now().UnixNano())
	}
	plain, _ := runShards(t, scenario("skew-none"), 2, nil)
	skewed, _ := runShards(t, scenario("skew-300ms"), 2, map[int][]string{1: {"--test-clock-offset", "300ms"}})
	s1 := skewed.Shards.Each[1]
	if off := s1.ClockOffsetMS; off < -305 || off > -295 {
		t.Errorf("shard 1's offset measured %.3fms ± %.3fms, want -300ms ± 5ms", off, s1.ClockUncertaintyMS)
	}
	p50, q50 := plain.LatencyUS.E2E.P50, skewed.LatencyUS.E2E.P50
	if d := p50 - q50; d > 5000 || d < -5000 {
		t.Errorf("e2e p50 %s with a skewed clock, %s without", report.FormatMicros(q50), report.FormatMicros(p50))
	}
	if skewed.Counts.Negative != 0 {
		t.Errorf("%d negative latencies with the skew corrected", skewed.Counts.Negative)
	}
}

// TestDistributedShardKilled: a shard killed with SIGKILL mid-run makes
// the run incomplete: the coordinator exits 1 and says so, claims no
// loss (the dead shard's consumers may have received what the others did
// not), reverts the fault it carried out, and no shard process is left.
func TestDistributedShardKilled(t *testing.T) {
	t.Parallel()
	brokers := servedKafka(t)
	marker := filepath.Join(t.TempDir(), "fault-on")
	topic := fmt.Sprintf("dist-killed-%d", time.Now().UnixNano())
	procs := startShards(t, writeScenario(t, fmt.Sprintf(`
name: distributed-killed
driver: {kafka: {brokers: [%s], topic: %s, partitions: 6}}
producers: 3
consumers: 3
traffic:
  - constant: {rate: 1000/s, for: 8s}
chaos:
  - {action: exec, at: 500ms, command: "touch %s", revert: "rm %s"}
drain: 5s
thresholds: [loss == 0]
`, brokers, topic, marker, marker)), 3, nil)
	// Kill shard 2 mid-run: once the fault is on and a second of traffic is in the topic.
	waitForRecords(t, brokers, topic, 1000)
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the fault is not on: %v", err)
	}
	if err := procs[2].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := procs[0].wait(t, 2*time.Minute); code != exitRuntime {
		t.Errorf("coordinator exited %d, want 1:\n%s", code, procs[0].stderr.String())
	}
	if code := procs[1].wait(t, time.Minute); code != 0 {
		t.Errorf("shard 1 exited %d:\n%s", code, procs[1].stderr.String())
	}
	_ = procs[2].wait(t, 10*time.Second)
	res := readRun(t, procs[0].out)
	if !res.Incomplete || len(res.Shards.Missing) != 1 || res.Shards.Missing[0] != 2 {
		t.Fatalf("incomplete %v, missing %v", res.Incomplete, res.Shards.Missing)
	}
	if tr := res.Thresholds[0]; tr.OK || tr.Value != nil || !strings.Contains(tr.Error, "not claimed") {
		t.Errorf("loss threshold %+v: loss must not be claimed", tr)
	}
	if !regexp.MustCompile(`lost +not claimed`).MatchString(procs[0].stdout.String()) || !strings.Contains(procs[0].stderr.String(), "incomplete") {
		t.Errorf("the summary does not say loss is not claimed:\n%s\n%s", procs[0].stdout.String(), procs[0].stderr.String())
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the fault was not reverted: %v", err)
	}
	if res.Verdict != report.Fail {
		t.Errorf("verdict %s", res.Verdict)
	}
	b, _ := json.Marshal(res.Shards.Each[2])
	if !strings.Contains(string(b), "missing") {
		t.Errorf("shard 2: %s", b)
	}
}

// TestDistributedCoordinatorLost: when the coordinator dies mid-run, the
// other shards stop their traffic, write their own account and exit 1,
// saying why.
func TestDistributedCoordinatorLost(t *testing.T) {
	t.Parallel()
	brokers := servedKafka(t)
	topic := fmt.Sprintf("dist-lost-%d", time.Now().UnixNano())
	procs := startShards(t, writeScenario(t, fmt.Sprintf(`
name: distributed-coordinator-lost
driver: {kafka: {brokers: [%s], topic: %s, partitions: 4}}
producers: 2
consumers: 2
traffic:
  - constant: {rate: 1000/s, for: 20s}
drain: 5s
`, brokers, topic)), 2, nil)
	waitForRecords(t, brokers, topic, 1000) // half a second of both shards' traffic at least
	if err := procs[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = procs[0].wait(t, 10*time.Second)
	began := time.Now()
	if code := procs[1].wait(t, time.Minute); code != exitRuntime {
		t.Errorf("shard 1 exited %d, want 1:\n%s", code, procs[1].stderr.String())
	}
	if took := time.Since(began); took > 15*time.Second {
		t.Errorf("shard 1 took %s to give up (lost-after 3s, interrupt drain 3s)", took)
	}
	if !strings.Contains(procs[1].stderr.String(), "lost the coordinator") {
		t.Errorf("shard 1 does not say it lost the coordinator:\n%s", procs[1].stderr.String())
	}
	if _, err := os.Stat(filepath.Join(procs[1].out, "shards", "1", "shard.json")); err != nil {
		t.Errorf("shard 1 left no account of its own: %v", err)
	}
}

// TestDistributedConsumerCrash: consumer 0 (on the coordinator) dies
// abruptly before it ever commits, so everything it had delivered is read
// again by the consumers that take its partitions over, on any shard: the
// merged duplicates are exactly the records it delivered
// (crash_uncommitted, counted where it crashed), and nothing is lost.
// Only one consumer in the whole run crashes.
func TestDistributedConsumerCrash(t *testing.T) {
	t.Parallel()
	brokers := servedKafka(t)
	res, _ := runShards(t, fmt.Sprintf(`
name: distributed-crash
driver: {kafka: {brokers: [%s], topic: dist-crash-%d, partitions: 6, session-timeout: 3s, commit-interval: 30s}}
producers: 3
consumers: 3
message: {keys: {strategy: round-robin, count: 12}}
traffic:
  - constant: {rate: 1500/s, for: 5s}
chaos:
  - {action: consumer-crash, at: 1500ms, for: 2s, count: 1}
drain: 20s
`, brokers, time.Now().UnixNano()), 3, nil)
	st, c := res.DriverStats, res.Counts
	if st["crashes"] != 1 || res.Chaos[0].Details["consumers"] != 1.0 {
		t.Fatalf("crashes %d, fault details %v: one consumer in the run should crash", st["crashes"], res.Chaos[0].Details)
	}
	if c.Lost != 0 || c.Received != c.Acked {
		t.Errorf("counts %+v: nothing may be lost", c)
	}
	if st["crash_uncommitted"] == 0 {
		t.Fatal("the crashed consumer had delivered nothing: the test proves little")
	}
	if lost := st["partitions_lost"]; lost > 0 {
		t.Logf("%d partitions were taken from a live member: duplicates %d, crash_uncommitted %d", lost, c.Duplicates, st["crash_uncommitted"])
		if c.Duplicates < st["crash_uncommitted"] {
			t.Errorf("duplicates %d, fewer than the %d records the crashed consumer delivered", c.Duplicates, st["crash_uncommitted"])
		}
		return
	}
	if c.Duplicates != st["crash_uncommitted"] {
		t.Errorf("duplicates %d, want the %d records the crashed consumer delivered", c.Duplicates, st["crash_uncommitted"])
	}
}

// TestDistributedSystemUnreachable: when the coordinator cannot reach the
// system under test, every shard exits 1 at once, saying why, rather than
// wait for a start that will not come.
func TestDistributedSystemUnreachable(t *testing.T) {
	t.Parallel()
	procs := startShards(t, writeScenario(t, fmt.Sprintf(`
name: distributed-unreachable
driver: {kafka: {brokers: [%s], connect-timeout: 1s}}
producers: 2
consumers: 2
traffic:
  - constant: {rate: 100/s, for: 5s}
`, freeAddr(t))), 2, nil)
	for i, p := range procs {
		if code := p.wait(t, 30*time.Second); code != exitRuntime {
			t.Errorf("shard %d exited %d, want 1:\n%s", i, code, p.stderr.String())
		}
	}
	if !strings.Contains(procs[0].stderr.String(), "no broker answered") {
		t.Errorf("the coordinator does not say why:\n%s", procs[0].stderr.String())
	}
	if !strings.Contains(procs[1].stderr.String(), "the run stopped before it started") {
		t.Errorf("shard 1 does not say why:\n%s", procs[1].stderr.String())
	}
}

// TestDistributedRabbitMQTransientQueueKilled: two shards against `spate
// serve rabbitmq --supervise`, their consumers paused so a backlog stands
// in a transient queue; the coordinator's exec fault hands the timeline to
// the test, which reads the queue's depth from the node, then kills the
// node (the supervisor starts it again, empty). The merged run has lost
// exactly that depth: no more, though the messages were acked on two
// shards, and no less.
func TestDistributedRabbitMQTransientQueueKilled(t *testing.T) {
	needRabbitMQ(t)
	t.Parallel()
	dir := t.TempDir()
	ready, pidFile := filepath.Join(dir, "ready"), filepath.Join(dir, "beam.pid")
	srv := startServe(t, "", "serve", "rabbitmq", "--supervise", "--pid-file", pidFile, "--ready-file", ready)
	url := strings.TrimPrefix(srv.waitReady(t, ready, 2*time.Minute), "url: ")
	t.Cleanup(func() { srv.stop(t, syscall.SIGTERM, time.Minute, 0) })
	measure, measured := filepath.Join(dir, "measure"), filepath.Join(dir, "measured")
	kill := fmt.Sprintf(`touch %[1]s; until [ -f %[2]s ]; do sleep 0.05; done; p=$(cat %[3]s) && kill -9 $p && while [ "$(cat %[3]s 2>/dev/null)" = "$p" ]; do sleep 0.1; done; until [ -s %[3]s ]; do sleep 0.1; done`,
		measure, measured, pidFile)
	queue := fmt.Sprintf("dist-transient-%d", time.Now().UnixNano())
	procs := startShards(t, writeScenario(t, fmt.Sprintf(`
name: distributed-transient
driver: {rabbitmq: {url: %q, queue: {name: %s, durable: false}, persistent: false, prefetch: 1}}
producers: 2
consumers: 2
traffic:
  - constant: {rate: 400/s, for: 2s}
  - pause: {for: 10s}
chaos:
  - {action: consumer-pause, at: 0s, for: 6s}
  - {action: exec, at: 3s, timeout: 2m, command: %q}
drain: 10s
`, url, queue, kill)), 2, nil)

	// The traffic is over and the consumers paused: read the backlog.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(measure); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the exec fault never ran:\n%s", procs[0].stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
	if err := os.WriteFile(measured, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, p := range procs {
		if code := p.wait(t, 2*time.Minute); code != 0 {
			t.Fatalf("shard %d exited %d:\n%s\n%s", i, code, p.stdout.String(), p.stderr.String())
		}
	}
	res := readRun(t, procs[0].out)
	c := res.Counts
	t.Logf("depth at the kill %d; counts %+v", q.Messages, c)
	if q.Messages < 100 {
		t.Fatalf("the queue held %d messages at the kill: the test proves little", q.Messages)
	}
	if c.Lost != int64(q.Messages) || c.Duplicates != 0 || c.Acked != c.Sent {
		t.Errorf("lost %d, duplicates %d, acked %d of %d sent; want the depth at the kill (%d) lost, nothing duplicated, every send acked",
			c.Lost, c.Duplicates, c.Acked, c.Sent, q.Messages)
	}
}

// BenchmarkDistributedStart runs a short 3-shard run against `spate serve
// kafka` and reports the skew of the shards' traffic starts (the latest
// − the earliest, on the coordinator's clock) and the coordinator's
// process CPU share; run it on a quiet machine:
//
//	go test ./cmd/spate -run '^$' -bench DistributedStart -benchtime 5x
func BenchmarkDistributedStart(b *testing.B) {
	brokers := servedKafka(b)
	var worst, sum float64
	for i := 0; b.Loop(); i++ {
		dir := b.TempDir()
		file := filepath.Join(dir, "s.yaml")
		body := fmt.Sprintf(`
name: start-skew
driver: {kafka: {brokers: [%s], topic: skew-%d-%d, partitions: 3}}
producers: 3
consumers: 3
traffic:
  - constant: {rate: 300/s, for: 1s}
drain: 5s
`, brokers, time.Now().UnixNano(), i)
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		coord := ln.Addr().String()
		ln.Close()
		var cmds []*exec.Cmd
		for s := range 3 {
			cmd := exec.Command(binary, "run", file, "--shard", fmt.Sprintf("%d/3", s), "--coordinator", coord,
				"--progress", "off", "--out", filepath.Join(dir, fmt.Sprint(s)))
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			cmds = append(cmds, cmd)
		}
		for s, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				b.Fatalf("shard %d: %v", s, err)
			}
		}
		res, err := report.ReadResults(filepath.Join(dir, "0", "results.json"))
		if err != nil {
			b.Fatal(err)
		}
		skew := res.Shards.StartSkewMS
		worst, sum = max(worst, skew), sum+skew
	}
	b.ReportMetric(sum/float64(b.N), "start-skew-ms")
	b.ReportMetric(worst, "worst-start-skew-ms")
}
