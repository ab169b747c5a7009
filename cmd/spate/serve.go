package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/kafka"
	"github.com/spate-dev/spate/drivers/rabbitmq"
)

// spate serve runs a system under test as a process of its own, on
// loopback, until a signal: the embedded Kafka cluster or a private
// RabbitMQ node, for processes that must share one (the shards of a
// distributed run, tests, trials).

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve kafka|rabbitmq",
		Short: "Run a local Kafka cluster or RabbitMQ node for other processes to share",
		Long: `serve runs the system that a scenario's brokers: embedded (Kafka) or
url: managed (RabbitMQ) starts inside one run as a process of its own, on
127.0.0.1, so that several processes can share it: the shards of a
distributed run, your own clients, tests. It prints one line on stdout
once the system accepts connections (the address a scenario names), logs
on stderr, and runs until SIGINT or SIGTERM (Ctrl-C).

Exit codes: 0 stopped on a signal; 1 the system could not start (a port
or the data directory in use, rabbitmq-server missing, a signal before it
was ready, ...) or died for good; 2 invalid flags.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return invalidf("serve: unknown system %q; want kafka or rabbitmq", args[0])
			}
			return invalidf("serve: name the system to run: spate serve kafka, or spate serve rabbitmq")
		},
	}
	cmd.AddCommand(newServeKafkaCmd(), newServeRabbitMQCmd())
	return cmd
}

// serveFlags are the flags of every spate serve command.
type serveFlags struct {
	data      string // the data directory; "": a temporary one
	readyFile string // written with the announced line once ready
}

func (f *serveFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.data, "data", "", "keep the data in `DIR` (created if missing, kept at exit); default: a temporary directory, removed at exit")
	cmd.Flags().StringVar(&f.readyFile, "ready-file", "", "once ready, write the line printed on stdout to `FILE` (atomically; removed at exit)")
}

// server is a system spate serve runs.
type server interface {
	// announce is the one line printed on stdout once the system is ready.
	announce() string
	// watch returns nil when ctx is done, or an error when the system
	// died and cannot come back.
	watch(ctx context.Context) error
	// stop stops the system and everything it started.
	stop(ctx context.Context)
}

// stopTimeout bounds a clean stop; a second signal ends the process at
// once.
const stopTimeout = 2 * time.Minute

// serve starts a system with start (given the data directory, absolute,
// or ""), announces it on stdout and in the ready file, and keeps it
// running until SIGINT or SIGTERM, or until it dies for good. The data
// directory is locked while it runs, so two servers never share one.
func serve(cmd *cobra.Command, f serveFlags, start func(ctx context.Context, log *slog.Logger, data string) (server, error)) error {
	stderr := cmd.ErrOrStderr()
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if f.data != "" {
		// Absolute: the node's processes run in their own directory.
		abs, err := filepath.Abs(f.data)
		if err != nil {
			return &exitError{code: exitRuntime, err: fmt.Errorf("--data: %w", err)}
		}
		f.data = abs
		unlock, err := lockDataDir(f.data)
		if err != nil {
			return &exitError{code: exitRuntime, err: fmt.Errorf("--data: %w", err)}
		}
		defer unlock()
	}
	if f.readyFile != "" {
		// A file left by an earlier server must not pass for this one.
		if err := os.Remove(f.readyFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return &exitError{code: exitRuntime, err: fmt.Errorf("--ready-file: %w", err)}
		}
	}

	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	srv, err := start(ctx, log, f.data)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("stopped by a signal before it was ready: %w", err)
		}
		return &exitError{code: exitRuntime, err: err}
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			sctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
			defer cancel()
			srv.stop(sctx)
		}
	}
	defer stop() // on every path out, a panic of this goroutine included

	line := srv.announce()
	fmt.Fprintln(cmd.OutOrStdout(), line)
	if f.readyFile != "" {
		if err := writeFileAtomic(f.readyFile, line+"\n"); err != nil {
			return &exitError{code: exitRuntime, err: fmt.Errorf("--ready-file: %w", err)}
		}
		defer os.Remove(f.readyFile)
	}

	werr := srv.watch(ctx)
	stopSignals() // a second signal gets Go's default handling: exit at once
	if werr == nil {
		log.Info("stopping on a signal (another one exits at once)")
	}
	if f.readyFile != "" {
		_ = os.Remove(f.readyFile) // no longer ready
	}
	stop()
	if werr != nil {
		return &exitError{code: exitRuntime, err: werr}
	}
	log.Info("stopped")
	return nil
}

// invalidf is an invalid-usage error (exit 2).
func invalidf(format string, args ...any) error {
	return &exitError{code: exitInvalid, err: fmt.Errorf(format, args...)}
}

// --- spate serve kafka

type serveKafkaFlags struct {
	serveFlags
	brokers int
	ports   string
	port    int
}

func newServeKafkaCmd() *cobra.Command {
	var f serveKafkaFlags
	cmd := &cobra.Command{
		Use:   "kafka",
		Short: "Run the embedded Kafka cluster as a process of its own",
		Long: `serve kafka runs the Kafka cluster that brokers: embedded starts inside a
run (franz-go's kfake brokers, the versions of the latest stable Kafka) as
a process of its own, so that several processes can share it. Once every
broker listens it prints one line on stdout,

  brokers: 127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094

whose value is what a scenario's brokers field takes, logs on stderr, and
runs until SIGINT or SIGTERM, then stops the brokers (exit 0). A second
signal exits at once.

The brokers listen on 127.0.0.1 only and there is no flag to change that:
they have no authentication, and spate keeps its traffic on the machine it
runs on. Shards on other hosts need a real cluster.

Ports: free ones chosen by the system (the default), --port P for P, P+1,
..., or --ports for a list (one per broker).

Data is on disk, so restarts keep it: in --data DIR (created if missing,
kept at exit), or in a temporary directory removed at exit (but not after
a kill -9 of spate serve itself). A cluster started again on the same DIR,
with the same ports, has the topics and records of the last one, even
after a kill -9 of this process. The cluster creates no topic by itself:
spate run creates its own (create-topic: true), other clients create
theirs.

Exit codes: 0 stopped on a signal; 1 the cluster could not start (a port
or the data directory in use); 2 invalid flags.`,
		Example: `  spate serve kafka --port 9092 --data /tmp/kafka --ready-file /tmp/kafka.ready &
  until [ -s /tmp/kafka.ready ]; do sleep 0.1; done
  spate run scenario.yaml   # driver: {kafka: {brokers: "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094"}}
  kill %1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := f.options(cmd)
			if err != nil {
				return &exitError{code: exitInvalid, err: err}
			}
			return serve(cmd, f.serveFlags, func(_ context.Context, log *slog.Logger, data string) (server, error) {
				flag := "--port"
				if f.ports != "" {
					flag = "--ports"
				}
				if err := checkPortsFree(flag, o.Ports); err != nil {
					return nil, err
				}
				o.Log, o.Dir = log, data
				c, err := kafka.StartCluster(o)
				if err != nil {
					return nil, err
				}
				return kafkaServer{c}, nil
			})
		},
	}
	f.register(cmd)
	cmd.Flags().IntVar(&f.brokers, "brokers", kafka.DefaultEmbeddedBrokers, fmt.Sprintf("number of brokers, 1..%d", kafka.MaxEmbeddedBrokers))
	cmd.Flags().IntVar(&f.port, "port", 0, "the first broker's port on 127.0.0.1; the others follow it (0: free ports)")
	cmd.Flags().StringVar(&f.ports, "ports", "", "the brokers' ports on 127.0.0.1, comma-separated, one per broker (e.g. 9092,9093,9094)")
	return cmd
}

// options checks the flags, listing every problem at once, and returns
// the cluster's options.
func (f *serveKafkaFlags) options(cmd *cobra.Command) (kafka.ClusterOptions, error) {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{flag}, args...)...))
	}
	o := kafka.ClusterOptions{Brokers: f.brokers}
	if f.brokers < 1 || f.brokers > kafka.MaxEmbeddedBrokers {
		bad("--brokers", "want 1..%d, got %d", kafka.MaxEmbeddedBrokers, f.brokers)
	}
	switch {
	case f.ports != "" && cmd.Flags().Changed("port"):
		bad("--ports", "give --ports or --port, not both")
	case f.ports != "":
		for _, s := range strings.Split(f.ports, ",") {
			s = strings.TrimSpace(s)
			p, err := strconv.Atoi(s)
			switch {
			case err != nil && strings.Contains(s, ":"):
				bad("--ports", "%q: give port numbers; spate serve listens on 127.0.0.1 only", s)
			case err != nil:
				bad("--ports", "%q is not a port number", s)
			case p < 1 || p > 65535:
				bad("--ports", "%d is not a port (1..65535)", p)
			case slices.Contains(o.Ports, p):
				bad("--ports", "port %d appears twice", p)
			default:
				o.Ports = append(o.Ports, p)
			}
		}
		if !cmd.Flags().Changed("brokers") {
			o.Brokers = len(o.Ports)
		} else if len(o.Ports) != f.brokers && len(errs) == 0 {
			bad("--ports", "%d ports for --brokers %d; give one port per broker", len(o.Ports), f.brokers)
		}
		if o.Brokers > kafka.MaxEmbeddedBrokers {
			bad("--ports", "%d ports: at most %d brokers", o.Brokers, kafka.MaxEmbeddedBrokers)
		}
	case f.port < 0 || f.port > 65535:
		bad("--port", "%d is not a port (1..65535, or 0 for free ports)", f.port)
	case f.port > 0 && f.port+f.brokers-1 > 65535:
		bad("--port", "%d brokers from port %d go past 65535", f.brokers, f.port)
	case f.port > 0:
		for i := range f.brokers {
			o.Ports = append(o.Ports, f.port+i)
		}
	}
	return o, errors.Join(errs...)
}

// kafkaServer is a served kafka.Cluster.
type kafkaServer struct{ c *kafka.Cluster }

func (k kafkaServer) announce() string { return "brokers: " + strings.Join(k.c.Addrs(), ",") }

// watch waits for ctx: the brokers run inside this process, so they end
// only with it.
func (k kafkaServer) watch(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func (k kafkaServer) stop(context.Context) { k.c.Close() }

// --- spate serve rabbitmq

type serveRabbitMQFlags struct {
	serveFlags
	port      int
	pidFile   string
	supervise bool
}

func newServeRabbitMQCmd() *cobra.Command {
	var f serveRabbitMQFlags
	cmd := &cobra.Command{
		Use:   "rabbitmq",
		Short: "Run a private RabbitMQ node as a process of its own",
		Long: `serve rabbitmq runs a private RabbitMQ node, the one url: managed starts
inside a run, as a process of its own, so that several processes can share
it. It needs the rabbitmq-server package, and neither uses nor touches the
system's RabbitMQ service: the node has a name of its own, its own Erlang
port mapper (epmd) on a private port, and listens on 127.0.0.1 only (it has
the default guest user, and spate keeps its traffic on the machine it runs
on; shards on other hosts need a real broker). Once the node accepts
connections it prints one line on stdout,

  url: amqp://guest:guest@127.0.0.1:5672/

whose value is what a scenario's url field takes, logs on stderr, and runs
until SIGINT or SIGTERM, then stops the node and its epmd (exit 0). They
are children of this process and stop with it however it ends; a second
signal exits at once.

Data: in --data DIR (created if missing, kept at exit: a node started
again on DIR keeps its name, so its durable queues and persistent messages
are there), or in a temporary directory removed at exit (but not after a
kill -9 of spate serve itself).

Crashes: without --supervise, a node that dies on its own (its Erlang VM
killed, out of memory, ...) ends spate serve with exit 1. With --supervise
spate starts it again at once, on the same port with the same data, and
logs it: a real crash and recovery for chaos tests. --pid-file FILE holds
the pid of the node's VM while the node accepts connections; the file is
removed as soon as spate sees the VM dead (it looks every 100ms) and
written again once the new VM accepts connections. A scenario's
broker-restart can then crash the node and wait for it:

  - action: broker-restart
    at: 10s
    stop: p=$(cat /tmp/rmq.pid) && kill -9 $p && while [ "$(cat /tmp/rmq.pid 2>/dev/null)" = "$p" ]; do sleep 0.1; done
    start: until [ -s /tmp/rmq.pid ]; do sleep 0.1; done
    timeout: 2m

(stop returns once spate has seen the crash, start once the node is
back; the node is down from the kill until then, a few seconds of
RabbitMQ's boot, and for only delays start).

Exit codes: 0 stopped on a signal; 1 the node could not start (the port or
the data directory in use, rabbitmq-server missing) or died and was not
(or could not be) restarted; 2 invalid flags.`,
		Example: `  spate serve rabbitmq --port 5672 --supervise --pid-file /tmp/rmq.pid --ready-file /tmp/rmq.ready &
  until [ -s /tmp/rmq.ready ]; do sleep 0.1; done
  spate run scenario.yaml   # driver: {rabbitmq: {url: "amqp://guest:guest@127.0.0.1:5672/"}}
  kill %1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.port < 0 || f.port > 65535 {
				return invalidf("--port: %d is not a port (1..65535, or 0 for a free one)", f.port)
			}
			return serve(cmd, f.serveFlags, func(ctx context.Context, log *slog.Logger, data string) (server, error) {
				var ports []int
				if f.port != 0 {
					ports = []int{f.port}
				}
				if err := checkPortsFree("--port", ports); err != nil {
					return nil, err
				}
				if f.pidFile != "" {
					if err := os.Remove(f.pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
						return nil, fmt.Errorf("--pid-file: %w", err)
					}
				}
				node, err := rabbitmq.Start(ctx, rabbitmq.NodeOptions{Dir: data, Port: f.port, Log: log})
				if err != nil {
					return nil, err
				}
				s := &rabbitServer{node: node, log: log, pidFile: f.pidFile, supervise: f.supervise}
				if err := s.writePID(); err != nil {
					_ = node.Stop(context.Background())
					return nil, err
				}
				return s, nil
			})
		},
	}
	f.register(cmd)
	cmd.Flags().IntVar(&f.port, "port", 0, "the AMQP port on 127.0.0.1 (0: a free port)")
	cmd.Flags().BoolVar(&f.supervise, "supervise", false, "start the node again when it dies on its own (kill -9 of its VM), on the same port with the same data")
	cmd.Flags().StringVar(&f.pidFile, "pid-file", "", "keep the pid of the node's Erlang VM in `FILE` while it accepts connections (removed when it dies, rewritten when it is back, removed at exit)")
	return cmd
}

// rabbitServer is a served rabbitmq.Node, restarted when it dies if
// supervise is set.
type rabbitServer struct {
	node      *rabbitmq.Node
	log       *slog.Logger
	pidFile   string
	supervise bool
}

func (s *rabbitServer) announce() string { return "url: " + s.node.URL() }

// superviseEvery is how often the node's VM is checked.
const superviseEvery = 100 * time.Millisecond

// watch checks every superviseEvery that the node's VM is alive. When it
// is not, the node is started again if s.supervise is set, and otherwise
// watch returns an error; so does a restart that fails.
func (s *rabbitServer) watch(ctx context.Context) error {
	tick := time.NewTicker(superviseEvery)
	defer tick.Stop()
	restarts := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		beam, _ := s.node.PIDs()
		if beam != 0 && processAlive(beam) {
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		s.removePID()
		if !s.supervise {
			return fmt.Errorf("the RabbitMQ node's VM (pid %d) exited on its own (--supervise would have started it again)", beam)
		}
		s.log.Warn("the RabbitMQ node's VM exited on its own; starting it again (--supervise)", "pid", beam)
		began := time.Now()
		if err := s.node.Restart(ctx, drivers.Kill, 0); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("--supervise: the RabbitMQ node's VM (pid %d) exited and did not start again: %w", beam, err)
		}
		restarts++
		if err := s.writePID(); err != nil {
			return err
		}
		pid, _ := s.node.PIDs()
		s.log.Info("the RabbitMQ node is back", "pid", pid, "url", s.node.URL(), "took", time.Since(began).Round(time.Millisecond), "restarts", restarts)
	}
}

func (s *rabbitServer) stop(ctx context.Context) {
	s.removePID()
	_ = s.node.Stop(ctx)
}

// writePID writes the VM's pid to the pid file, if there is one.
func (s *rabbitServer) writePID() error {
	if s.pidFile == "" {
		return nil
	}
	beam, _ := s.node.PIDs()
	if err := writeFileAtomic(s.pidFile, strconv.Itoa(beam)+"\n"); err != nil {
		return fmt.Errorf("--pid-file: %w", err)
	}
	return nil
}

func (s *rabbitServer) removePID() {
	if s.pidFile != "" {
		_ = os.Remove(s.pidFile)
	}
}

// processAlive reports whether process pid exists (and is not yet reaped).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// --- helpers

// checkPortsFree fails, naming flag, when one of ports cannot be bound on
// 127.0.0.1: a clearer error than the system's own, found before a slow
// start.
func checkPortsFree(flag string, ports []int) error {
	for _, p := range ports {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return fmt.Errorf("%s: cannot listen on 127.0.0.1:%d: %w", flag, p, err)
		}
		_ = ln.Close()
	}
	return nil
}

// writeFileAtomic writes data to path through a temporary file renamed
// over it, so a reader never sees part of it.
func writeFileAtomic(path, data string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, werr := io.WriteString(tmp, data)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp.Name(), 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
	}
	return werr
}

// lockDataDir creates dir if needed and takes an exclusive lock on it
// (dir/.spate-serve.lock, holding the pid), so that two servers never run
// on one data directory. The lock ends with the returned function or with
// this process.
func lockDataDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, ".spate-serve.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is in use by another spate serve (pid %s)", dir, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}
