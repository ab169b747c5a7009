package rabbitmq_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/rabbitmq"
)

// The package's tests share one managed node, started here on free
// loopback ports in a temporary directory and stopped at the end. Without
// rabbitmq-server every test that needs a broker fails with the install
// instruction, unless SPATE_SKIP_RABBITMQ=1 asks to skip them.

var (
	shared    *rabbitmq.Node
	sharedErr error
	skipAll   = os.Getenv("SPATE_SKIP_RABBITMQ") == "1"

	// The cluster tests share one 3-node cluster, started by the first
	// test that needs it (so that running other tests alone does not pay
	// for it) and stopped by TestMain.
	clusterOnce   sync.Once
	sharedCluster *rabbitmq.Cluster
	clusterErr    error
)

// clusterNodes is the size of the shared cluster.
const clusterNodes = 3

func TestMain(m *testing.M) {
	if !skipAll {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		// SPATE_RABBITMQ_SERVER names another rabbitmq-server script (a
		// tarball install), and lets the missing-package path be tried.
		shared, sharedErr = rabbitmq.Start(ctx, rabbitmq.NodeOptions{Server: os.Getenv("SPATE_RABBITMQ_SERVER")})
		cancel()
		if sharedErr != nil {
			fmt.Fprintf(os.Stderr, "drivers/rabbitmq: the tests need a RabbitMQ node and could not start one:\n%v\n"+
				"(set SPATE_SKIP_RABBITMQ=1 to skip the tests that need it)\n", sharedErr)
		}
	}
	code := m.Run()
	if shared != nil {
		_ = shared.Stop(context.Background())
	}
	if sharedCluster != nil {
		pids, ports, dir := sharedCluster.PIDs(), sharedCluster.Ports(), sharedCluster.Dir()
		_ = sharedCluster.Stop(context.Background())
		// Nothing of the cluster may outlive it.
		lt := &leakCheck{}
		checkGone(lt, pids, ports, dir)
		if lt.failed {
			code = 1
		}
	}
	os.Exit(code)
}

// leakCheck is the testing.TB of the checks TestMain makes after every
// test ran: it prints failures and remembers them.
type leakCheck struct {
	testing.TB
	failed bool
}

func (l *leakCheck) Helper() {}

func (l *leakCheck) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "drivers/rabbitmq: after stopping the shared cluster: "+format+"\n", args...)
	l.failed = true
}

// node returns the shared node, or skips or fails t when there is none.
func node(t testing.TB) *rabbitmq.Node {
	t.Helper()
	if skipAll {
		t.Skip("SPATE_SKIP_RABBITMQ=1: skipping a test that needs rabbitmq-server")
	}
	if sharedErr != nil {
		t.Fatalf("no RabbitMQ node: %v\n(CI installs it with .ci/rabbitmq.sh; set SPATE_SKIP_RABBITMQ=1 to skip)", sharedErr)
	}
	return shared
}

// cluster returns the shared 3-node cluster, starting it the first time,
// once it is healthy: every node up and in the cluster, none paused, no
// partition (a test that leaves it otherwise fails the next one here).
func cluster(t testing.TB) *rabbitmq.Cluster {
	t.Helper()
	node(t) // the same requirements
	clusterOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		began := time.Now()
		sharedCluster, clusterErr = rabbitmq.StartCluster(ctx, rabbitmq.ClusterOptions{
			Nodes: clusterNodes, Server: os.Getenv("SPATE_RABBITMQ_SERVER"),
		})
		fmt.Fprintf(os.Stderr, "drivers/rabbitmq: shared %d-node cluster started in %v (err %v)\n", clusterNodes, time.Since(began).Round(time.Millisecond), clusterErr)
	})
	if clusterErr != nil {
		t.Fatalf("no RabbitMQ cluster: %v", clusterErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := sharedCluster.WaitHealthy(ctx, 3*time.Minute); err != nil {
		t.Fatalf("the shared cluster is not healthy: %v", err)
	}
	return sharedCluster
}

// options returns the default options on the shared node, with a queue of
// the test's own.
func options(t testing.TB) rabbitmq.Options {
	o := rabbitmq.DefaultOptions()
	o.Node = node(t)
	o.ConnectTimeout = 20 * time.Second
	return o
}

func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%08x", prefix, rand.Uint32())
}

func testEnv(t testing.TB, producers, consumers int) drivers.Env {
	return drivers.Env{
		RunID:     rand.Uint64() | 1,
		Scenario:  strings.ReplaceAll(t.Name(), "/", "-"),
		Producers: producers,
		Consumers: consumers,
		Log:       testLogger(t),
	}
}

// testLogger writes log lines to t.Log while the test runs: from Info up
// in tests, from Warn up in benchmarks.
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	level := slog.LevelInfo
	if _, bench := t.(*testing.B); bench {
		level = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
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

// openDriver opens a driver with o and closes it when the test ends.
func openDriver(t testing.TB, o rabbitmq.Options, env drivers.Env) drivers.Driver {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := rabbitmq.Kind.Open(ctx, o, env)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	return d
}

// rawChannel opens a plain client channel on the shared node, for checks
// the driver does not offer.
func rawChannel(t testing.TB) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(node(t).URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// waitFor polls cond every 10ms until it holds or timeout passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
