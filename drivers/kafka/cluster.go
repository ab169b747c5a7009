package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spate-dev/spate/drivers"
)

// ClusterOptions configures StartCluster. The zero value starts
// DefaultEmbeddedBrokers brokers on free loopback ports with their data in
// a temporary directory.
type ClusterOptions struct {
	// Brokers is the number of brokers, 1..MaxEmbeddedBrokers
	// (0: len(Ports), or DefaultEmbeddedBrokers without Ports).
	Brokers int
	// Ports are the brokers' ports on 127.0.0.1, one per broker in node
	// order (empty: free ports chosen by the system).
	Ports []int
	// Dir holds the cluster's data. It is created if missing, the cluster
	// starts from the data a previous cluster left there, and Close keeps
	// it. Empty: a temporary directory, removed by Close.
	Dir string
	// SyncWrites fsyncs every appended batch (slower; without it, what the
	// operating system holds survives a crash of the process, not of the
	// machine).
	SyncWrites bool
	// LogLevel is the level of the cluster's own log lines: one of
	// LogLevelValues (default "error").
	LogLevel string
	// Log receives the cluster's log lines (default: discarded).
	Log *slog.Logger
}

// Cluster is a standalone embedded Kafka cluster: the kfake brokers that
// `brokers: embedded` starts inside a run, started on their own so that
// other processes can share them (spate serve kafka, tests). The brokers
// listen on 127.0.0.1 only and keep their data on disk, so restarts keep
// it. A Cluster's methods are safe for concurrent use.
type Cluster struct{ c *cluster }

// StartCluster starts a cluster and returns once every broker listens.
func StartCluster(o ClusterOptions) (*Cluster, error) {
	if o.Brokers == 0 {
		o.Brokers = len(o.Ports)
		if o.Brokers == 0 {
			o.Brokers = DefaultEmbeddedBrokers
		}
	}
	if o.LogLevel == "" {
		o.LogLevel = "error"
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	opts := DefaultOptions()
	opts.Embedded = EmbeddedOptions{Brokers: o.Brokers, SyncWrites: o.SyncWrites, LogLevel: o.LogLevel}
	ports := o.Ports
	if len(ports) == 0 {
		ports = make([]int, o.Brokers) // free ones
	}
	c, err := startClusterIn(opts, o.Log, o.Dir, ports)
	if err != nil {
		return nil, err
	}
	return &Cluster{c}, nil
}

// validate lists every problem of o at once.
func (o ClusterOptions) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("kafka: cluster: "+format, args...)) }
	if o.Brokers < 1 || o.Brokers > MaxEmbeddedBrokers {
		bad("Brokers must be within 1..%d, got %d", MaxEmbeddedBrokers, o.Brokers)
	}
	if len(o.Ports) > 0 && len(o.Ports) != o.Brokers {
		bad("%d Ports for %d Brokers; give one port per broker", len(o.Ports), o.Brokers)
	}
	for i, p := range o.Ports {
		if p < 1 || p > 65535 {
			bad("Ports[%d] = %d is not a port (1..65535)", i, p)
		} else if slices.Index(o.Ports, p) < i {
			bad("port %d appears twice in Ports", p)
		}
	}
	if !slices.Contains(LogLevelValues, o.LogLevel) {
		bad("LogLevel %q is not one of %s", o.LogLevel, strings.Join(LogLevelValues, ", "))
	}
	return errors.Join(errs...)
}

// Addrs are the brokers' host:port addresses on 127.0.0.1, in node order:
// the bootstrap addresses clients connect to. They stay the same across
// restarts.
func (c *Cluster) Addrs() []string { return c.c.addrs() }

// Dir is the directory that holds the cluster's data.
func (c *Cluster) Dir() string { return c.c.root }

// Restart stops broker id (or every broker, with drivers.AllBrokers),
// leaves it down for down, and starts it again on the same port with its
// data, as the chaos action broker-restart does on `brokers: embedded`:
// drivers.Graceful closes it cleanly, drivers.Kill resets its connections
// first and restarts from the data a kill -9 would leave. It returns once
// the broker listens again.
func (c *Cluster) Restart(ctx context.Context, id int, mode drivers.RestartMode, down time.Duration) error {
	return c.c.restart(ctx, id, mode, down)
}

// Close stops the brokers, and removes the data unless it is in the
// caller's Dir. Calling Close again does nothing.
func (c *Cluster) Close() { c.c.close() }

// latestGen is the newest cluster generation whose data is in root
// (gen-0, gen-1, ...; a whole-cluster kill makes a new one), 0 when there
// is none yet.
func latestGen(root string) (int, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return 0, err
	}
	latest := 0
	for _, e := range entries {
		n, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "gen-"))
		if e.IsDir() && strings.HasPrefix(e.Name(), "gen-") && err == nil && n > latest {
			latest = n
		}
	}
	return latest, nil
}
