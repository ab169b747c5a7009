package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spate-dev/spate/drivers/rabbitmq"
)

// These tests run `spate serve` as the real binary, wait on its ready file
// (never on fixed sleeps), use the system it serves through the real
// clients and through `spate run`, and check that it stops cleanly and
// leaves nothing running.

func TestServeUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string // in stderr; every problem is listed
	}{
		{[]string{"serve"}, []string{"name the system to run"}},
		{[]string{"serve", "kafak"}, []string{`unknown system "kafak"`}},
		{[]string{"serve", "kafka", "--brokers", "0"}, []string{"--brokers: want 1..16, got 0"}},
		{[]string{"serve", "kafka", "--ports", "9092,x,0.0.0.0:9093,0,9092"}, []string{
			`--ports: "x" is not a port number`,
			`--ports: "0.0.0.0:9093": give port numbers; spate serve listens on 127.0.0.1 only`,
			"--ports: 0 is not a port",
			"--ports: port 9092 appears twice",
		}},
		{[]string{"serve", "kafka", "--ports", "9092,9093", "--brokers", "3"}, []string{"--ports: 2 ports for --brokers 3"}},
		{[]string{"serve", "kafka", "--ports", "9092", "--port", "9092"}, []string{"give --ports or --port, not both"}},
		{[]string{"serve", "kafka", "--port", "65534"}, []string{"--port: 3 brokers from port 65534 go past 65535"}},
		{[]string{"serve", "kafka", "--port", "-1"}, []string{"--port: -1 is not a port"}},
		{[]string{"serve", "kafka", "--brokers", "x"}, []string{`invalid argument "x" for "--brokers"`}},
		{[]string{"serve", "rabbitmq", "--port", "70000"}, []string{"--port: 70000 is not a port"}},
		{[]string{"serve", "rabbitmq", "--superviser"}, []string{"unknown flag: --superviser"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := spate(t, tc.args...)
			if r.code != exitInvalid {
				t.Fatalf("exit %d, want 2\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}

// A port in use is a start failure (exit 1) that names the flag.
func TestServeKafkaPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	r := spate(t, "serve", "kafka", "--brokers", "1", "--port", port)
	if r.code != exitRuntime || !strings.Contains(r.stderr, "--port: cannot listen on 127.0.0.1:"+port) {
		t.Fatalf("exit %d, want 1 naming --port\nstderr:\n%s", r.code, r.stderr)
	}
}

func TestServeKafka(t *testing.T) {
	noneLeft(t)
	ready := filepath.Join(t.TempDir(), "kafka.ready")
	s := startServe(t, "", "serve", "kafka", "--brokers", "3", "--ready-file", ready)
	line := s.waitReady(t, ready, time.Minute)
	addrs := strings.Split(strings.TrimPrefix(line, "brokers: "), ",")
	if !strings.HasPrefix(line, "brokers: ") || len(addrs) != 3 {
		t.Fatalf("ready line %q, want brokers: and three addresses", line)
	}
	for _, a := range addrs {
		if !strings.HasPrefix(a, "127.0.0.1:") {
			t.Errorf("broker %q is not on 127.0.0.1", a)
		}
	}
	if first, _, _ := strings.Cut(s.stdout.String(), "\n"); first != line {
		t.Errorf("first stdout line %q, want the ready line %q", first, line)
	}
	m := regexp.MustCompile(`data=(\S+)`).FindStringSubmatch(s.stderr.String())
	if m == nil {
		t.Fatalf("the log names no data directory:\n%s", s.stderr.String())
	}
	dataDir := m[1]

	// A plain franz-go client, then a whole spate run, on the brokers.
	kafkaProduce(t, addrs, "served", 100)
	if n := kafkaConsume(t, addrs, "served", 100); n != 100 {
		t.Fatalf("read back %d of 100 records", n)
	}
	sc := writeScenario(t, fmt.Sprintf(`
name: served-kafka
driver: {kafka: {brokers: %q, topic: served-run, partitions: 3}}
producers: 2
consumers: 2
traffic:
  - constant: {rate: 500/s, for: 2s}
drain: 20s
thresholds: [loss == 0, duplicates == 0, reordered == 0]
`, strings.Join(addrs, ",")))
	out := t.TempDir()
	r := spate(t, "run", "--progress=off", "--out", out, sc)
	if r.code != 0 {
		t.Fatalf("spate run on the served cluster: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if c := readRun(t, out).Counts; c.Sent != 1000 || c.Received != 1000 {
		t.Errorf("spate run counted %+v, want 1000 sent and received", c)
	}

	s.stop(t, syscall.SIGTERM, 30*time.Second, 0)
	assertNotListening(t, addrs...)
	assertGone(t, ready, dataDir)
}

// With --data and fixed ports, the records outlive a kill -9 of the
// server: a server started again on them has them. A second server on
// the same data directory is refused while the first runs.
func TestServeKafkaDataOutlivesKill(t *testing.T) {
	noneLeft(t)
	dir := t.TempDir()
	data, ready := filepath.Join(dir, "data"), filepath.Join(dir, "kafka.ready")
	port := strconv.Itoa(freeConsecutivePorts(t, 2))
	args := []string{"serve", "kafka", "--brokers", "2", "--port", port, "--data", data, "--ready-file", ready}
	s := startServe(t, "", args...)
	addrs := strings.Split(strings.TrimPrefix(s.waitReady(t, ready, time.Minute), "brokers: "), ",")
	if want := "127.0.0.1:" + port; addrs[0] != want || len(addrs) != 2 {
		t.Fatalf("brokers %v, want two from %s", addrs, want)
	}
	kafkaProduce(t, addrs, "kept", 50)

	r := spate(t, "serve", "kafka", "--brokers", "1", "--data", data)
	if r.code != exitRuntime || !strings.Contains(r.stderr, "--data: "+data+" is in use by another spate serve (pid "+strconv.Itoa(s.cmd.Process.Pid)) {
		t.Errorf("a second server on the data directory: exit %d, want 1 naming --data and the first's pid\n%s", r.code, r.stderr)
	}

	s.stop(t, syscall.SIGKILL, 10*time.Second, -1)
	assertNotListening(t, addrs...)
	again := startServe(t, "", args...)
	if line := again.waitReady(t, ready, time.Minute); line != "brokers: "+strings.Join(addrs, ",") {
		t.Fatalf("restarted on %q, want the same brokers %v", line, addrs)
	}
	if n := kafkaConsume(t, addrs, "kept", 50); n != 50 {
		t.Fatalf("after kill -9 and a new server on the data read %d of 50 records", n)
	}
	again.stop(t, syscall.SIGINT, 30*time.Second, 0)
	assertNotListening(t, addrs...)
	if _, err := os.Stat(data); err != nil {
		t.Errorf("--data directory not kept: %v", err)
	}
}

// A supervised node is crashed (kill -9 of its VM) by a spate run's
// broker-restart with the commands the help shows, comes back on the same
// port with its data, and stops cleanly on SIGTERM with its epmd. A node
// started again on the same --data has the durable messages; one whose
// server is killed dies with it.
func TestServeRabbitMQSupervised(t *testing.T) {
	needRabbitMQ(t)
	noneLeft(t)
	dir := t.TempDir()
	ready, pidFile := filepath.Join(dir, "rmq.ready"), filepath.Join(dir, "rmq.pid")
	port := strconv.Itoa(freeConsecutivePorts(t, 1))
	// --data relative to the server's working directory
	args := []string{"serve", "rabbitmq", "--supervise", "--port", port, "--data", "data", "--pid-file", pidFile, "--ready-file", ready}
	s := startServe(t, dir, args...)
	line := s.waitReady(t, ready, 3*time.Minute)
	url := strings.TrimPrefix(line, "url: ")
	if want := "url: amqp://guest:guest@127.0.0.1:" + port + "/"; line != want {
		t.Fatalf("ready line %q, want %q", line, want)
	}
	pid0 := readPID(t, pidFile)
	if kids := descendants(s.cmd.Process.Pid); !slices.Contains(kids, pid0) {
		t.Fatalf("--pid-file holds %d, not one of the server's processes %v", pid0, kids)
	}
	amqpPublish(t, url, "kept", 100)

	sc := writeScenario(t, fmt.Sprintf(`
name: served-rabbitmq-crash
driver:
  rabbitmq:
    url: %q
    queue: {name: served-crash, durable: true}
    persistent: true
    confirms: true
    reconnect: 2m
producers: 2
consumers: 2
traffic:
  - constant: {rate: 200/s, for: 5s}
chaos:
  - action: broker-restart
    at: 1s
    stop: p=$(cat %[2]s) && kill -9 $p && while [ "$(cat %[2]s 2>/dev/null)" = "$p" ]; do sleep 0.1; done
    start: until [ -s %[2]s ]; do sleep 0.1; done
    timeout: 3m
drain: 60s
thresholds: [loss == 0]
`, url, pidFile))
	out := t.TempDir()
	r := spate(t, "run", "--progress=off", "--out", out, sc)
	if r.code != 0 {
		t.Fatalf("spate run with a crash of the served node: exit %d\nstdout:\n%s\nstderr:\n%s\nserver log:\n%s", r.code, r.stdout, r.stderr, s.stderr.String())
	}
	res := readRun(t, out)
	if len(res.Chaos) != 1 || !res.Chaos[0].OK || res.Chaos[0].Details["stop_exit_code"] != 0.0 || res.Chaos[0].Details["start_exit_code"] != 0.0 {
		t.Errorf("the broker-restart fault: %+v", res.Chaos)
	}
	if res.Counts.Acked == 0 || res.Counts.Lost != 0 {
		t.Errorf("counts %+v, want acked messages and none lost", res.Counts)
	}
	pid1 := readPID(t, pidFile)
	if pid1 == pid0 || !strings.Contains(s.stderr.String(), "the RabbitMQ node is back") {
		t.Errorf("after the crash the pid file holds %d (was %d); server log:\n%s", pid1, pid0, s.stderr.String())
	}
	if n := amqpQueued(t, url, "kept"); n != 100 {
		t.Errorf("the durable queue holds %d of 100 persistent messages after the crash", n)
	}

	kids := descendants(s.cmd.Process.Pid)
	s.stop(t, syscall.SIGTERM, 2*time.Minute, 0)
	assertNotListening(t, "127.0.0.1:"+port)
	assertExited(t, kids)
	assertGone(t, ready, pidFile)

	// Started again on the data: the node keeps its name, so its data.
	if _, err := os.Stat(filepath.Join(dir, "data", "nodename")); err != nil {
		t.Errorf("the relative --data directory: %v", err)
	}
	again := startServe(t, dir, args...)
	again.waitReady(t, ready, 3*time.Minute)
	if n := amqpQueued(t, url, "kept"); n != 100 {
		t.Errorf("a node started again on --data holds %d of 100 persistent messages", n)
	}
	// However the server ends, the node and its epmd end with it.
	kids = descendants(again.cmd.Process.Pid)
	if len(kids) < 2 {
		t.Fatalf("the server's processes are %v, want the node's VM and epmd at least", kids)
	}
	again.stop(t, syscall.SIGKILL, 10*time.Second, -1)
	assertExited(t, kids)
	assertNotListening(t, "127.0.0.1:"+port)
}

// Without --supervise a node that dies on its own ends the server with
// exit 1, its epmd stopped.
func TestServeRabbitMQUnsupervisedDeath(t *testing.T) {
	needRabbitMQ(t)
	noneLeft(t)
	dir := t.TempDir()
	ready, pidFile := filepath.Join(dir, "rmq.ready"), filepath.Join(dir, "rmq.pid")
	s := startServe(t, "", "serve", "rabbitmq", "--pid-file", pidFile, "--ready-file", ready)
	url := strings.TrimPrefix(s.waitReady(t, ready, 3*time.Minute), "url: ")
	kids := descendants(s.cmd.Process.Pid)
	if err := syscall.Kill(readPID(t, pidFile), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.wait(t, time.Minute, exitRuntime)
	if !strings.Contains(s.stderr.String(), "exited on its own (--supervise would have started it again)") {
		t.Errorf("stderr does not say the node died:\n%s", s.stderr.String())
	}
	assertExited(t, kids)
	u, _ := strings.CutPrefix(strings.TrimSuffix(url, "/"), "amqp://guest:guest@")
	assertNotListening(t, u)
	assertGone(t, ready, pidFile)
}

// --- helpers: the served process

// served is a running `spate serve`.
type served struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{} // closed when it exited
	code           int
}

// startServe starts spate with args in directory wd ("": this one); a
// cleanup kills it if a test left it running.
func startServe(t *testing.T, wd string, args ...string) *served {
	t.Helper()
	s := &served{cmd: exec.Command(binary, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	s.cmd.Dir = wd
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := s.cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			s.code = ee.ExitCode()
		}
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			kids := descendants(s.cmd.Process.Pid)
			_ = s.cmd.Process.Kill()
			<-s.done
			assertExited(t, kids)
		}
	})
	return s
}

// waitReady waits until the ready file holds a line and returns it.
func (s *served) waitReady(t *testing.T, path string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			if !bytes.HasSuffix(b, []byte("\n")) {
				t.Fatalf("ready file holds %q: not one whole line", b)
			}
			return strings.TrimSuffix(string(b), "\n")
		}
		select {
		case <-s.done:
			t.Fatalf("spate serve exited with %d before it was ready\nstderr:\n%s", s.code, s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after %v\nstderr:\n%s", timeout, s.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends sig and waits up to bound for the exit with code (-1: killed
// by the signal).
func (s *served) stop(t *testing.T, sig syscall.Signal, bound time.Duration, code int) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	s.wait(t, bound, code)
}

func (s *served) wait(t *testing.T, bound time.Duration, code int) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(bound):
		t.Fatalf("spate serve still running %v after it was told to stop\nstderr:\n%s", bound, s.stderr.String())
	}
	if s.code != code {
		t.Fatalf("spate serve exited with %d, want %d\nstderr:\n%s", s.code, code, s.stderr.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// --- helpers: processes, ports, files

// noneLeft checks, when the test ends, that no process started by this
// test process still runs.
func noneLeft(t *testing.T) {
	t.Cleanup(func() { assertExited(t, descendants(os.Getpid())) })
}

// descendants are the live processes below pid, from /proc.
func descendants(pid int) []int {
	parents := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, state, ok := procStat(p); ok && state != "Z" {
			parents[ppid] = append(parents[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		kids := parents[queue[0]]
		queue = append(queue[1:], kids...)
		out = append(out, kids...)
	}
	return out
}

// procStat reads a process's parent and state from /proc/PID/stat.
func procStat(pid int) (ppid int, state string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", false
	}
	i := bytes.LastIndexByte(b, ')') // the command name may hold anything
	if i < 0 {
		return 0, "", false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0], err == nil
}

// assertExited waits up to 30s for every process of pids to be gone (or a
// zombie, left for its new parent to reap).
func assertExited(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range pids {
		for {
			_, state, ok := procStat(p)
			if !ok || state == "Z" {
				break
			}
			if time.Now().After(deadline) {
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
				t.Errorf("process %d (%s) still runs", p, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// assertNotListening checks that nothing accepts connections on addrs.
func assertNotListening(t *testing.T, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections", a)
		}
	}
}

// assertGone checks that the paths do not exist.
func assertGone(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is left behind (%v)", p, err)
		}
	}
}

// freeConsecutivePorts returns the first of n consecutive ports free on
// 127.0.0.1, below the ephemeral range so that no outgoing connection
// takes one before the server binds it.
func freeConsecutivePorts(t *testing.T, n int) int {
	t.Helper()
	for range 200 {
		base := 20000 + rand.IntN(12000-n)
		free := true
		for p := base; p < base+n && free; p++ {
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				free = false
				continue
			}
			ln.Close()
		}
		if free {
			return base
		}
	}
	t.Fatalf("no %d free consecutive ports", n)
	return 0
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("--pid-file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("--pid-file holds %q: %v", b, err)
	}
	return pid
}

// --- helpers: clients

// kafkaProduce creates topic and writes n records to it, acked by every
// replica.
func kafkaProduce(t *testing.T, addrs []string, topic string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 3, int16(len(addrs)), nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("creating topic %s: %v", topic, err)
	}
	for i := range n {
		if err := cl.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint("record-", i))).FirstErr(); err != nil {
			t.Fatalf("producing record %d: %v", i, err)
		}
	}
}

// kafkaConsume reads topic from its start until it has want distinct
// records or a minute passes, and returns how many it read.
func kafkaConsume(t *testing.T, addrs []string, topic string, want int) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seen := map[string]bool{}
	for len(seen) < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	return len(seen)
}

// needRabbitMQ fails the test without rabbitmq-server, as drivers/rabbitmq
// does, unless SPATE_SKIP_RABBITMQ=1 asks to skip it.
func needRabbitMQ(t *testing.T) {
	t.Helper()
	if os.Getenv("SPATE_SKIP_RABBITMQ") == "1" {
		t.Skip("SPATE_SKIP_RABBITMQ=1: skipping a test that needs rabbitmq-server")
	}
	if _, err := os.Stat(rabbitmq.DefaultServer); err != nil {
		t.Fatalf("%v: %s\n(CI installs it with .ci/rabbitmq.sh; set SPATE_SKIP_RABBITMQ=1 to skip)", err, rabbitmq.InstallHint)
	}
}

// amqpPublish declares the durable queue and publishes n persistent
// messages to it, each confirmed by the broker.
func amqpPublish(t *testing.T, url, queue string, n int) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range n {
		c, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(fmt.Sprint("message-", i))})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := c.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("message %d not confirmed: %v", i, err)
		}
	}
}

// amqpQueued is the number of messages ready in queue, connecting for up
// to a minute (a node just back may still be opening its queues).
func amqpQueued(t *testing.T, url, queue string) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		n, err := queued(url, queue)
		if err == nil {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue %s: %v", queue, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func queued(url, queue string) (int, error) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	return q.Messages, err
}
