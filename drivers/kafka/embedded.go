package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/spate-dev/spate/drivers"
)

// cluster is the embedded Kafka cluster of `brokers: embedded`: kfake
// brokers listening on loopback ports, their data in a temporary directory
// so that restarts keep it. Its methods are safe for concurrent use; a
// restart holds the cluster's lock, so other administrative calls wait for
// it.
type cluster struct {
	log  *slog.Logger
	opts Options // filled and validated
	root string  // the data directory: temporary and removed at close, or the caller's and kept
	keep bool    // root is the caller's: close keeps it

	mu      sync.Mutex
	c       *kfake.Cluster
	dataDir string // the current generation's data
	gen     int
	ports   []int // by node id
	lns     map[int]*trackedListener
	closed  bool
	faults  []*fault // installed faults, reinstalled after a whole-cluster restart

	stats clusterStats
	hits  atomic.Int64 // fault hits as last counted, for Stats during a restart
}

// clusterStats are the embedded cluster's counts, in the driver's Stats
// with faultHitsStat (a figure computed from kfake's faults, not counted).
type clusterStats struct {
	BrokerRestarts drivers.Counter `stat:"broker_restarts" doc:"RestartBroker calls"`
}

// faultHitsStat is the embedded cluster's figure that is no counter: the
// requests its protocol faults answered (cluster.faultHits).
var faultHitsStat = drivers.StatDoc{Name: "fault_hits", Doc: "requests the protocol faults answered"}

// fault is one ProtocolFault installed in the cluster.
type fault struct {
	spec    kfake.Fault
	h       *kfake.FaultHandle
	hits    int // from earlier cluster generations
	removed bool
}

// startCluster starts the embedded cluster described by o.
func startCluster(o Options, log *slog.Logger) (*cluster, error) {
	return startClusterIn(o, log, "", make([]int, o.Embedded.Brokers))
}

// startClusterIn starts the cluster described by o on ports (all 0: free
// ones chosen by the system), one per broker. Its data goes under dir, which
// is created if missing and kept at close, starting from the data a
// previous cluster left there; with dir "" it goes to a temporary
// directory, removed at close.
func startClusterIn(o Options, log *slog.Logger, dir string, ports []int) (*cluster, error) {
	root, keep := dir, dir != ""
	var err error
	if keep {
		err = os.MkdirAll(root, 0o755)
	} else {
		root, err = os.MkdirTemp("", "spate-kafka-")
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: embedded cluster: cannot create its data directory: %w", err)
	}
	c := &cluster{log: log, opts: o, root: root, keep: keep, lns: map[int]*trackedListener{}}
	if c.gen, err = latestGen(root); err != nil {
		return nil, fmt.Errorf("kafka: embedded cluster: reading its data directory: %w", err)
	}
	c.dataDir = filepath.Join(root, "gen-"+strconv.Itoa(c.gen))
	if ports[0] != 0 {
		c.ports = append([]int(nil), ports...)
	}
	if err := c.start(ports); err != nil {
		if !keep {
			_ = os.RemoveAll(root)
		}
		return nil, err
	}
	log.Info("embedded kafka cluster started", "brokers", c.addrs(), "data", root)
	return c, nil
}

// start starts a cluster generation on ports (0: any free port), from the
// data in c.dataDir. c.mu is held or c is not shared yet.
func (c *cluster) start(ports []int) error {
	o := c.opts
	// kfake bumps a partition's leader epoch on a leader change without
	// recording where the new epoch starts, and answers
	// OffsetForLeaderEpoch for an older epoch with "unknown" until a batch
	// is written in a newer one. franz-go consumers take that as data loss
	// and rewind to the start of the partition, which would show as
	// duplicates that a real broker never causes. Capping
	// OffsetForLeaderEpoch below v2 turns off the clients' epoch checks
	// (KIP-320) on the embedded cluster only.
	//
	// The versions are those of the latest stable Kafka (kversion.Stable,
	// kfake's own default). kversion.Tip is a ZooKeeper-era table whose
	// features announce KIP-890 transactions (no AddPartitionsToTxn) while
	// its Produce version predates them: transactional writes then fail
	// with INVALID_TXN_STATE.
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(int16(kmsg.OffsetForLeaderEpoch), 1)
	opts := []kfake.Opt{
		kfake.MaxVersions(versions),
		kfake.NumBrokers(len(ports)),
		kfake.ListenFn(c.listen),
		kfake.DataDir(c.dataDir),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
		kfake.WithLogger(kfakeLogger{c.log, kfakeLevel(o.Embedded.LogLevel)}),
	}
	if ports[0] != 0 {
		opts = append(opts, kfake.Ports(ports...))
	}
	if o.Embedded.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	if o.BatchMaxBytes > DefaultBatchMaxBytes {
		opts = append(opts, kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(o.BatchMaxBytes + 1024)}))
	}
	if s := o.SASL; s != nil {
		pass, err := password(s)
		if err != nil {
			return err
		}
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser(s.Mechanism, s.Username, pass))
	}
	kc, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("kafka: embedded cluster did not start: %w", err)
	}
	c.c = kc
	if ports[0] == 0 {
		c.ports = c.ports[:0]
		for _, a := range kc.ListenAddrs() { // in node order at start
			_, p, _ := net.SplitHostPort(a)
			n, _ := strconv.Atoi(p)
			c.ports = append(c.ports, n)
		}
	}
	return nil
}

// listen is kfake's ListenFn: loopback only, every listener tracked.
func (c *cluster) listen(network, address string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("kafka: embedded brokers listen on loopback only, not %q", address)
	}
	ln, err := net.Listen(network, net.JoinHostPort(host, port))
	if err != nil {
		return nil, err
	}
	tl := &trackedListener{Listener: ln, conns: map[*serverConn]struct{}{}}
	n := ln.Addr().(*net.TCPAddr).Port
	c.lns[n] = tl // kfake calls listen from NewCluster and AddNode, both under c.mu
	return tl, nil
}

// addrs are the brokers' addresses, by node id.
func (c *cluster) addrs() []string {
	out := make([]string, len(c.ports))
	for i, p := range c.ports {
		out[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	return out
}

// nodes are the broker ids.
func (c *cluster) nodes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]int, len(c.ports))
	for i := range out {
		out[i] = i
	}
	return out
}

// restart stops broker id (or all of them), waits down, and starts it again.
func (c *cluster) restart(ctx context.Context, id int, mode drivers.RestartMode, down time.Duration) error {
	if mode != drivers.Graceful && mode != drivers.Kill {
		return fmt.Errorf("kafka: unknown restart mode %d", mode)
	}
	if down < 0 {
		return fmt.Errorf("kafka: negative down time %v", down)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if id != drivers.AllBrokers && (id < 0 || id >= len(c.ports)) {
		return fmt.Errorf("kafka: no broker %d; the embedded brokers are 0 to %d", id, len(c.ports)-1)
	}
	c.stats.BrokerRestarts.Add(1)
	if id == drivers.AllBrokers || len(c.ports) == 1 {
		return c.restartAll(ctx, mode, down)
	}
	return c.restartNode(ctx, id, mode, down)
}

// restartNode takes one broker out of the cluster and back. Its partitions
// get new leaders among the others meanwhile, as after a failover; the data
// stays, since kfake's brokers share one log.
func (c *cluster) restartNode(ctx context.Context, id int, mode drivers.RestartMode, down time.Duration) error {
	port := c.ports[id]
	ln := c.lns[port]
	if mode == drivers.Kill && ln != nil {
		ln.shut(true) // connections reset first: requests in flight are never answered
	}
	if err := c.c.RemoveNode(int32(id)); err != nil {
		return fmt.Errorf("kafka: stopping broker %d: %w", id, err)
	}
	if ln != nil {
		ln.shut(false)
	}
	delete(c.lns, port)
	err := sleep(ctx, down)
	if _, _, aerr := c.addNode(ctx, id, port); aerr != nil {
		return aerr
	}
	c.log.Info("embedded broker restarted", "broker", id, "mode", modeName(mode), "down", down)
	return err
}

// addNode starts broker id on port again, retrying while the port is
// still held by the connections of its previous life.
func (c *cluster) addNode(ctx context.Context, id, port int) (int32, int, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, p, err := c.c.AddNode(int32(id), port)
		if err == nil || time.Now().After(deadline) {
			if err != nil {
				return 0, 0, fmt.Errorf("kafka: starting broker %d again on port %d: %w", id, port, err)
			}
			return n, p, nil
		}
		if sleep(ctx, 50*time.Millisecond) != nil {
			ctx = context.Background() // the broker must come back even so
		}
	}
}

// restartAll stops every broker. Graceful stops the cluster cleanly (it
// writes its state); Kill resets every connection and restarts from a copy
// of the data directory taken at that moment, before the cluster's own
// shutdown writes anything: what kill -9 leaves behind, with the appended
// records that the operating system already holds.
func (c *cluster) restartAll(ctx context.Context, mode drivers.RestartMode, down time.Duration) error {
	old, oldDir := c.c, c.dataDir
	c.gen++
	if mode == drivers.Kill {
		for _, ln := range c.lns {
			ln.shut(true)
		}
		_ = old.ListenAddrs() // a pass through the cluster's loop: what it was doing is done
		c.dataDir = filepath.Join(c.root, "gen-"+strconv.Itoa(c.gen))
		if err := copyDir(oldDir, c.dataDir); err != nil {
			old.Close()
			return fmt.Errorf("kafka: taking the killed cluster's data: %w", err)
		}
		old.Close()
		_ = os.RemoveAll(oldDir)
	} else {
		old.Close()
		for _, ln := range c.lns {
			ln.shut(false)
		}
	}
	c.lns = map[int]*trackedListener{}
	err := sleep(ctx, down)
	ports := append([]int(nil), c.ports...)
	deadline := time.Now().Add(5 * time.Second)
	for {
		serr := c.start(ports)
		if serr == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kafka: embedded cluster did not come back on ports %v: %w", ports, serr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, f := range c.faults {
		if !f.removed {
			f.hits += f.h.Hits()
			spec := f.spec
			if spec.Count > 0 {
				spec.Count -= f.hits
				if spec.Count <= 0 {
					f.removed = true
					continue
				}
			}
			f.h = c.c.Fault(spec)
		}
	}
	c.log.Info("embedded cluster restarted", "mode", modeName(mode), "down", down)
	return err
}

// faultHits is the number of requests the faults answered. During a
// restart, which holds the lock, it is the count from before.
func (c *cluster) faultHits() int64 {
	if !c.mu.TryLock() {
		return c.hits.Load()
	}
	defer c.mu.Unlock()
	var n int64
	for _, f := range c.faults {
		n += int64(f.hits + f.h.Hits())
	}
	c.hits.Store(n)
	return n
}

// close stops the cluster and removes its data, unless the directory is
// the caller's.
func (c *cluster) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.c.Close()
	for _, ln := range c.lns {
		ln.shut(false)
	}
	if c.keep {
		return
	}
	if err := os.RemoveAll(c.root); err != nil {
		c.log.Warn("removing the embedded cluster's data", "dir", c.root, "err", err)
	}
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func modeName(m drivers.RestartMode) string {
	if m == drivers.Kill {
		return "kill"
	}
	return "graceful"
}

// copyDir copies the regular files under src to dst.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walk, as a crash may find it
			}
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if !e.Type().IsRegular() {
			return nil
		}
		return copyFile(path, to)
	})
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// kfakeLogger sends the embedded cluster's log lines to the driver's log.
type kfakeLogger struct {
	l     *slog.Logger
	level kfake.LogLevel
}

func (k kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	if level > k.level || level == kfake.LogLevelNone {
		return
	}
	l := slog.LevelDebug
	switch level {
	case kfake.LogLevelError:
		l = slog.LevelError
	case kfake.LogLevelWarn:
		l = slog.LevelWarn
	case kfake.LogLevelInfo:
		l = slog.LevelInfo
	}
	k.l.Log(context.Background(), l, "kfake: "+fmt.Sprintf(format, args...))
}

func kfakeLevel(s string) kfake.LogLevel {
	switch s {
	case "error":
		return kfake.LogLevelError
	case "warn":
		return kfake.LogLevelWarn
	case "info":
		return kfake.LogLevelInfo
	case "debug":
		return kfake.LogLevelDebug
	}
	return kfake.LogLevelNone
}
