package rabbitmq

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/spate-dev/spate/drivers"
)

// This file runs a private RabbitMQ node from the installed rabbitmq-server
// package: the broker behind `url: managed`, and the broker of this
// package's tests.

// DefaultServer is where the Debian and Ubuntu rabbitmq-server package puts
// the script that runs a node in the foreground.
const DefaultServer = "/usr/lib/rabbitmq/bin/rabbitmq-server"

// InstallHint says how to get the broker a managed node needs.
const InstallHint = "install the rabbitmq-server package (Debian/Ubuntu: apt-get install -y rabbitmq-server; " +
	"spate runs its own private node and does not need the system service), " +
	"or point url at a running broker, e.g. url: amqp://guest:guest@127.0.0.1:5672/"

// ErrNotInstalled is returned by Start when rabbitmq-server is missing.
var ErrNotInstalled = errors.New("rabbitmq: a managed broker needs rabbitmq-server, which is not installed: " + InstallHint)

// DefaultStartTimeout bounds each start of a managed node. A node is
// usually ready in about 4 s; a busy machine can take several times that.
const DefaultStartTimeout = 90 * time.Second

// NodeOptions configures Start. The zero value is ready to use.
type NodeOptions struct {
	// Dir holds the node's data, logs, configuration and Erlang cookie.
	// Empty: a new temporary directory, removed by Stop. A node started
	// again on the same Dir keeps its node name (recorded in Dir/nodename)
	// and so finds its data.
	Dir string
	// Port is the AMQP port on 127.0.0.1 (0: a free port).
	Port int
	// Server is the rabbitmq-server script (default DefaultServer).
	Server string
	// StartTimeout bounds each start, including restarts
	// (default DefaultStartTimeout).
	StartTimeout time.Duration
	// Log receives the node's lifecycle events (default: discarded).
	Log *slog.Logger
}

// Node is a private RabbitMQ node: its own node name, its own Erlang port
// mapper (epmd) on a private port, AMQP and distribution listeners bound to
// 127.0.0.1 only on ports below 32768, data and logs in its own directory.
// It never touches the system's RabbitMQ service or its files.
//
// The node and its epmd are children of this process. They also stop when
// this process dies without calling Stop: the node halts when its standard
// input (a pipe held by this process) closes, and both get SIGKILL from the
// kernel when their parent dies.
//
// A Node's methods are safe for concurrent use; Restart and Stop are
// serialized.
type Node struct {
	opts      NodeOptions
	log       *slog.Logger
	dir       string
	removeDir bool
	name      string // Erlang node name, name@localhost
	amqpPort  int
	distPort  int
	epmdPort  int
	env       []string

	// member is set for a node of a managed cluster, which shares the
	// cluster's port mapper and cookie instead of running its own epmd.
	member *member

	mu      sync.Mutex
	epmd    *exec.Cmd
	epmdEnd chan struct{}
	server  *exec.Cmd
	stdin   io.Closer
	done    chan struct{} // closed when the running server process exited
	beamPID int
	paused  bool // SIGSTOPped by Pause
	stopped bool
}

// member is a node's place in a managed cluster (cluster.go).
type member struct {
	index    int
	name     string // the full node name, name@localhost
	epmdPort int    // the cluster's port mapper
	cookie   []byte // shared by every node of the cluster
	conf     string // extra rabbitmq.conf lines
}

// Start runs a new node and returns once it accepts AMQP connections. ctx
// bounds the start (and so does opts.StartTimeout). On error nothing it
// started is left running.
func Start(ctx context.Context, opts NodeOptions) (*Node, error) {
	opts = opts.withDefaults()
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("rabbitmq: managed broker: port %d is not a port (1..65535, or 0 for a free one)", opts.Port)
	}
	epmd, err := checkInstall(opts.Server)
	if err != nil {
		return nil, err
	}

	// A port picked free can be taken before the node binds it; then the
	// node fails to start and another set of ports is tried.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		n, err := newNode(opts, nil)
		if err != nil {
			return nil, err
		}
		err = n.startAll(ctx, epmd)
		if err == nil {
			return n, nil
		}
		n.kill()
		n.cleanup()
		lastErr = err
		if !errors.Is(err, errPortTaken) || ctx.Err() != nil {
			break
		}
		n.log.Warn("rabbitmq: managed node could not bind its ports; trying others", "err", err)
	}
	return nil, lastErr
}

var errPortTaken = errors.New("a port was taken")

// withDefaults fills in the defaults of NodeOptions.
func (opts NodeOptions) withDefaults() NodeOptions {
	if opts.Server == "" {
		opts.Server = DefaultServer
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return opts
}

// checkInstall checks that the rabbitmq-server package is there and returns
// the path of epmd.
func checkInstall(server string) (string, error) {
	if _, err := os.Stat(server); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%w (looked for %s)", ErrNotInstalled, server)
		}
		return "", fmt.Errorf("rabbitmq: managed broker: %v", err)
	}
	epmd, err := findEPMD(server)
	if err != nil {
		return "", err
	}
	ctl := filepath.Join(filepath.Dir(server), "rabbitmqctl")
	if _, err := os.Stat(ctl); err != nil {
		return "", fmt.Errorf("rabbitmq: managed broker: %s is missing (%v); reinstall the rabbitmq-server package", ctl, err)
	}
	return epmd, nil
}

// newNode lays out a node in opts.Dir (or a new temporary directory) on
// free ports; m is nil for a node of its own, or its place in a cluster.
func newNode(opts NodeOptions, m *member) (*Node, error) {
	n := &Node{opts: opts, log: opts.Log, dir: opts.Dir, member: m}
	if n.dir == "" {
		dir, err := os.MkdirTemp("", "spate-rabbitmq-")
		if err != nil {
			return nil, fmt.Errorf("rabbitmq: managed broker: make a data directory: %v", err)
		}
		n.dir, n.removeDir = dir, true
	}
	if m != nil {
		n.name = m.name
	} else {
		var err error
		if n.name, err = nodeName(n.dir, !n.removeDir); err != nil {
			n.cleanup()
			return nil, err
		}
	}
	ports, err := freePorts(8)
	for try := 0; err == nil && opts.Port != 0 && slices.Contains(ports, opts.Port) && try < 10; try++ {
		ports, err = freePorts(8) // the node's other ports must not be opts.Port
	}
	if err != nil {
		n.cleanup()
		return nil, err
	}
	n.amqpPort, n.distPort = ports[0], ports[1]
	if opts.Port != 0 {
		n.amqpPort = opts.Port
	}
	distPort, ctlMin, ctlMax := ports[1], ports[3], ports[7]
	n.epmdPort = ports[2]
	if m != nil {
		n.epmdPort = m.epmdPort // ports[2] stays unused
	}
	if err := n.writeFiles(); err != nil {
		n.cleanup()
		return nil, err
	}
	loopback := "-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false"
	n.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"LC_ALL=C.UTF-8",
		"LANG=C.UTF-8",
		"HOME=" + filepath.Join(n.dir, "home"),
		"TMPDIR=" + os.TempDir(),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"ERL_EPMD_PORT=" + strconv.Itoa(n.epmdPort),
		"RABBITMQ_NODENAME=" + n.name,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT=" + strconv.Itoa(n.amqpPort),
		"RABBITMQ_DIST_PORT=" + strconv.Itoa(distPort),
		"RABBITMQ_CTL_DIST_PORT_MIN=" + strconv.Itoa(ctlMin),
		"RABBITMQ_CTL_DIST_PORT_MAX=" + strconv.Itoa(ctlMax),
		"RABBITMQ_MNESIA_BASE=" + filepath.Join(n.dir, "mnesia"),
		"RABBITMQ_LOG_BASE=" + filepath.Join(n.dir, "log"),
		"RABBITMQ_PID_FILE=" + n.pidFile(),
		"RABBITMQ_CONF_ENV_FILE=" + filepath.Join(n.dir, "rabbitmq-env.conf"),
		"RABBITMQ_CONFIG_FILE=" + filepath.Join(n.dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE=" + filepath.Join(n.dir, "advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE=" + filepath.Join(n.dir, "enabled_plugins"),
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=" + loopback,
		"RABBITMQ_CTL_ERL_ARGS=" + loopback,
		// Run the VM in the foreground with its shell reading our pipe:
		// the node is then our direct child, and it halts when the pipe
		// closes (this process died).
		"RABBITMQ_ALLOW_INPUT=true",
	}
	return n, nil
}

// nodeName is a new Erlang node name, or for a kept directory the one
// recorded there (RabbitMQ keeps a node's data under its name).
func nodeName(dir string, kept bool) (string, error) {
	path := filepath.Join(dir, "nodename")
	if kept {
		if b, err := os.ReadFile(path); err == nil && len(bytes.TrimSpace(b)) > 0 {
			return string(bytes.TrimSpace(b)), nil
		}
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	name := "spate-" + hex.EncodeToString(id[:]) + "@localhost"
	if kept {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("rabbitmq: managed broker: %v", err)
		}
		if err := os.WriteFile(path, []byte(name+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("rabbitmq: managed broker: %v", err)
		}
	}
	return name, nil
}

// writeFiles lays out the node's directory: an empty environment file and
// plugin list (so nothing of /etc/rabbitmq applies), a configuration that
// binds AMQP to loopback, and an Erlang cookie private to this node.
func (n *Node) writeFiles() error {
	for _, d := range []string{"home", "mnesia", "log"} {
		if err := os.MkdirAll(filepath.Join(n.dir, d), 0o700); err != nil {
			return fmt.Errorf("rabbitmq: managed broker: %v", err)
		}
	}
	cookie := newCookie()
	conf := fmt.Sprintf("listeners.tcp.1 = 127.0.0.1:%d\nlog.file.level = info\nlog.console = false\n", n.amqpPort)
	if m := n.member; m != nil {
		cookie = m.cookie
		conf += m.conf
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"rabbitmq-env.conf", nil, 0o600},
		{"enabled_plugins", []byte("[].\n"), 0o600},
		{"rabbitmq.conf", []byte(conf), 0o600},
		{"home/.erlang.cookie", cookie, 0o400},
	}
	for _, f := range files {
		p := filepath.Join(n.dir, f.name)
		_ = os.Remove(p) // a kept Dir may hold a read-only cookie
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return fmt.Errorf("rabbitmq: managed broker: write %s: %v", p, err)
		}
	}
	return nil
}

// newCookie returns a random Erlang cookie.
func newCookie() []byte {
	cookie := make([]byte, 20)
	for i := range cookie {
		v, _ := rand.Int(rand.Reader, big.NewInt(26))
		cookie[i] = byte('A' + v.Int64())
	}
	return cookie
}

func (n *Node) pidFile() string { return filepath.Join(n.dir, "rabbit.pid") }

// consolePath is the file that collects the node's standard output and error.
func (n *Node) consolePath() string { return filepath.Join(n.dir, "console.log") }

// URL returns the AMQP URL of the node's default virtual host, with the
// default guest user (allowed from loopback only).
func (n *Node) URL() string {
	return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", n.amqpPort)
}

// Dir is the directory holding the node's data and logs.
func (n *Node) Dir() string { return n.dir }

// Name returns the node's Erlang node name, name@localhost.
func (n *Node) Name() string { return n.name }

// startAll starts epmd (unless the node belongs to a cluster, whose port
// mapper runs in this process) and the node.
func (n *Node) startAll(ctx context.Context, epmd string) error {
	if n.member != nil {
		return n.startServer(ctx)
	}
	n.epmd = exec.Command(epmd, "-port", strconv.Itoa(n.epmdPort), "-address", "127.0.0.1")
	n.epmd.Env = n.env
	n.epmd.SysProcAttr = childAttr()
	if err := n.epmd.Start(); err != nil {
		return fmt.Errorf("rabbitmq: managed broker: start epmd: %v", err)
	}
	n.epmdEnd = make(chan struct{})
	go func(c *exec.Cmd, end chan struct{}) { _ = c.Wait(); close(end) }(n.epmd, n.epmdEnd)
	n.log.Debug("rabbitmq: epmd started", "pid", n.epmd.Process.Pid)
	if err := waitListening(ctx, n.epmdAddr(), n.opts.StartTimeout, n.epmdEnd); err != nil {
		select {
		case <-n.epmdEnd: // it exited: most likely its port (or [::1]:port) was taken
			return fmt.Errorf("rabbitmq: managed broker: epmd did not listen on %s: %v: %w", n.epmdAddr(), err, errPortTaken)
		default:
		}
		return fmt.Errorf("rabbitmq: managed broker: epmd did not listen on %s: %v", n.epmdAddr(), err)
	}
	return n.startServer(ctx)
}

func (n *Node) epmdAddr() string { return fmt.Sprintf("127.0.0.1:%d", n.epmdPort) }

// startServer runs the node process and waits until it accepts AMQP.
// n.mu is held by the caller or the node is not shared yet.
func (n *Node) startServer(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.opts.StartTimeout)
	defer cancel()
	start := time.Now()
	_ = os.Remove(n.pidFile())
	out, err := os.OpenFile(n.consolePath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("rabbitmq: managed broker: %v", err)
	}
	defer out.Close() // the child has its own copy
	cmd := exec.Command(n.opts.Server)
	cmd.Env = n.env
	cmd.Dir = n.dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = childAttr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("rabbitmq: managed broker: %v", err)
	}
	if err := cmd.Start(); err != nil {
		_ = stdin.Close()
		return fmt.Errorf("rabbitmq: managed broker: start %s: %v", n.opts.Server, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	n.server, n.stdin, n.done, n.beamPID = cmd, stdin, done, cmd.Process.Pid
	n.log.Debug("rabbitmq: node starting", "node", n.name, "pid", cmd.Process.Pid, "dir", n.dir)

	// rabbitmqctl wait follows the pid file, then the node's boot; it is
	// reliable right after launch where await_startup is not. A cluster's
	// node is waited for by its AMQP listener instead, which opens at the
	// end of the boot: that spares a second Erlang VM starting beside it
	// on a machine that is busy with the rest of the cluster.
	secs := int(n.opts.StartTimeout / time.Second)
	waitErr := make(chan error, 1)
	go func() {
		if n.member != nil {
			waitErr <- waitAMQP(ctx, n.URL(), done)
			return
		}
		_, err := n.ctl(ctx, "wait", n.pidFile(), "--timeout", strconv.Itoa(max(secs, 1)))
		waitErr <- err
	}()
	select {
	case err = <-waitErr:
	case <-done:
		err = errors.New("the node exited during startup")
		cancel()
		<-waitErr
	}
	if err == nil {
		err = waitListening(ctx, fmt.Sprintf("127.0.0.1:%d", n.amqpPort), n.opts.StartTimeout, done)
	}
	if err != nil {
		tail := n.tail()
		if strings.Contains(tail, "eaddrinuse") {
			err = fmt.Errorf("%w: %v", errPortTaken, err)
		}
		return fmt.Errorf("rabbitmq: managed broker %s did not start: %w\n%s", n.name, err, tail)
	}
	if pid, err := readPID(n.pidFile()); err == nil {
		n.beamPID = pid
	}
	n.log.Info("rabbitmq: managed node ready", "node", n.name, "url", n.URL(), "pid", n.beamPID, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// ctl runs rabbitmqctl against the node.
func (n *Node) ctl(ctx context.Context, args ...string) (string, error) {
	bin := filepath.Join(filepath.Dir(n.opts.Server), "rabbitmqctl")
	cmd := exec.CommandContext(ctx, bin, append([]string{"-n", n.name}, args...)...)
	cmd.Env = n.env
	cmd.Dir = n.dir
	cmd.SysProcAttr = childAttr()
	cmd.WaitDelay = 5 * time.Second
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return b.String(), fmt.Errorf("rabbitmqctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(b.String()))
	}
	return b.String(), nil
}

// Restart stops the node (Graceful: rabbitmqctl stop, which closes client
// connections and flushes; Kill: SIGKILL to the node's VM, nothing
// flushed), waits down, starts it again on the same ports with the same
// data, and returns once it accepts AMQP connections. Durable queues and
// persistent messages survive; transient ones do not. A paused node is
// resumed first.
func (n *Node) Restart(ctx context.Context, mode drivers.RestartMode, down time.Duration) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.takeDown(ctx, mode); err != nil {
		return err
	}
	if err := n.hold(ctx, down); err != nil {
		return err
	}
	return n.bringUp(ctx)
}

// takeDown stops the node as mode says. n.mu is held.
func (n *Node) takeDown(ctx context.Context, mode drivers.RestartMode) error {
	if n.stopped {
		return errors.New("rabbitmq: managed broker: restart after Stop")
	}
	switch mode {
	case drivers.Graceful:
		if err := n.stopGracefully(ctx); err != nil {
			return err
		}
	case drivers.Kill:
		n.killServer()
	default:
		return fmt.Errorf("rabbitmq: unknown restart mode %d", mode)
	}
	n.log.Info("rabbitmq: managed node down", "node", n.name, "mode", modeName(mode))
	return nil
}

// hold waits down, or until ctx is done (an error: the node stays down).
func (n *Node) hold(ctx context.Context, down time.Duration) error {
	if down <= 0 {
		return nil
	}
	t := time.NewTimer(down)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("rabbitmq: managed broker %s left down: %w", n.name, ctx.Err())
	case <-t.C:
		return nil
	}
}

// bringUp starts the node again after takeDown. n.mu is held.
func (n *Node) bringUp(ctx context.Context) error {
	if n.stopped {
		return errors.New("rabbitmq: managed broker: start after Stop")
	}
	if err := n.startServer(ctx); err != nil {
		n.killServer()
		return err
	}
	return nil
}

// Pause stops the node's VM with SIGSTOP: the node hangs, its sockets stay
// open and nothing answers, as a node stuck in a long GC pause or on a
// frozen host would, until Resume. Erlang peers and AMQP clients notice
// only through their own timeouts (heartbeats, net_ticktime, Raft's
// failure detector). Stop and Restart resume a paused node first.
func (n *Node) Pause() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.stopped:
		return errors.New("rabbitmq: managed broker: pause after Stop")
	case n.server == nil:
		return fmt.Errorf("rabbitmq: managed broker %s is down; cannot pause it", n.name)
	case n.paused:
		return fmt.Errorf("rabbitmq: managed broker %s is paused already", n.name)
	}
	if err := syscall.Kill(n.beamPID, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("rabbitmq: pause managed broker %s: %v", n.name, err)
	}
	n.paused = true
	n.log.Info("rabbitmq: managed node paused (SIGSTOP)", "node", n.name, "pid", n.beamPID)
	return nil
}

// Resume sends SIGCONT to a node Pause stopped; it does nothing to a node
// that is not paused, so it is safe to call more than once.
func (n *Node) Resume() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.resume()
}

// resume is Resume with n.mu held.
func (n *Node) resume() error {
	if !n.paused {
		return nil
	}
	n.paused = false
	if err := syscall.Kill(n.beamPID, syscall.SIGCONT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("rabbitmq: resume managed broker %s: %v", n.name, err)
	}
	n.log.Info("rabbitmq: managed node resumed (SIGCONT)", "node", n.name, "pid", n.beamPID)
	return nil
}

// Paused reports whether the node is paused.
func (n *Node) Paused() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.paused
}

func modeName(m drivers.RestartMode) string {
	if m == drivers.Kill {
		return "kill"
	}
	return "graceful"
}

// stopGracefully runs rabbitmqctl stop, which returns once the VM exited,
// and falls back to SIGKILL if that fails.
func (n *Node) stopGracefully(ctx context.Context) error {
	if n.server == nil {
		return nil
	}
	_ = n.resume()
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	_, err := n.ctl(sctx, "stop", n.pidFile())
	if err == nil {
		select {
		case <-n.done:
		case <-sctx.Done():
			err = sctx.Err()
		}
	}
	if err != nil {
		n.log.Warn("rabbitmq: graceful stop failed; killing the node", "node", n.name, "err", err)
	}
	n.killServer()
	return nil
}

// killServer sends SIGKILL to the node's VM (by its PID) and waits for it.
func (n *Node) killServer() {
	if n.server == nil {
		return
	}
	n.paused = false // SIGKILL ends a stopped process too
	select {
	case <-n.done:
	default:
		_ = syscall.Kill(n.beamPID, syscall.SIGKILL)
		if n.beamPID != n.server.Process.Pid {
			_ = n.server.Process.Kill()
		}
		select {
		case <-n.done:
		case <-time.After(30 * time.Second):
			n.log.Error("rabbitmq: managed node did not exit after SIGKILL", "pid", n.beamPID)
		}
	}
	_ = n.stdin.Close()
	n.server = nil
}

// Stop stops the node and its epmd, and removes the node's directory when
// Start made it. A node in a temporary directory is killed (its data is
// about to be removed); one in a caller's Dir is stopped gracefully.
// Calling Stop again does nothing.
func (n *Node) Stop(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return nil
	}
	n.stopped = true
	if !n.removeDir {
		_ = n.stopGracefully(ctx)
	}
	n.kill()
	n.cleanup()
	n.log.Info("rabbitmq: managed node stopped", "node", n.name)
	return nil
}

// kill stops the node and epmd with SIGKILL, by PID.
func (n *Node) kill() {
	n.killServer()
	if n.epmd != nil && n.epmd.Process != nil {
		_ = n.epmd.Process.Kill()
		select {
		case <-n.epmdEnd:
		case <-time.After(10 * time.Second):
		}
		n.epmd = nil
	}
}

func (n *Node) cleanup() {
	if n.removeDir {
		_ = os.RemoveAll(n.dir)
	}
}

// PIDs returns the process ids of the node's VM and its epmd (0 when not
// running), so tests can check that nothing is left behind.
func (n *Node) PIDs() (beam, epmd int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.server != nil {
		beam = n.beamPID
	}
	if n.epmd != nil && n.epmd.Process != nil {
		epmd = n.epmd.Process.Pid
	}
	return beam, epmd
}

// tail returns the end of the node's console output and log, for errors.
func (n *Node) tail() string {
	var b strings.Builder
	for _, p := range []string{n.consolePath(), filepath.Join(n.dir, "log", n.name+".log")} {
		data, err := os.ReadFile(p)
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		lines = lines[max(0, len(lines)-15):]
		fmt.Fprintf(&b, "--- last lines of %s:\n%s\n", p, strings.Join(lines, "\n"))
	}
	return b.String()
}

// findEPMD locates the Erlang port mapper daemon.
func findEPMD(server string) (string, error) {
	if p, err := exec.LookPath("epmd"); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/erlang/erts-*/bin/epmd")
	if len(matches) > 0 {
		return matches[len(matches)-1], nil
	}
	return "", fmt.Errorf("rabbitmq: managed broker: epmd (from the erlang-base package) not found next to %s or in PATH; reinstall rabbitmq-server: apt-get install -y rabbitmq-server", server)
}

// childAttr puts a child in its own process group (so a terminal's Ctrl-C
// reaches this process, which stops the child cleanly) and has the kernel
// kill it if this process dies.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// portLow and portHigh bound the ports a managed node uses: below the
// Linux ephemeral range (32768 and up), so an outgoing connection cannot
// take one between picking and binding.
const portLow, portHigh = 10000, 32000

// freePorts returns n consecutive ports that are free on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	for attempt := 0; attempt < 200; attempt++ {
		v, _ := rand.Int(rand.Reader, big.NewInt(int64(portHigh-portLow-n)))
		base := portLow + int(v.Int64())
		ok := true
		for p := base; p < base+n && ok; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			_ = l.Close()
		}
		if ok {
			ports := make([]int, n)
			for i := range ports {
				ports[i] = base + i
			}
			return ports, nil
		}
	}
	return nil, fmt.Errorf("rabbitmq: managed broker: found no %d free consecutive ports between %d and %d on 127.0.0.1", n, portLow, portHigh)
}

// waitListening waits until addr accepts TCP connections, the process
// behind it exits (exited is closed), ctx is done or timeout passes.
func waitListening(ctx context.Context, addr string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening after %v: %v", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return errors.New("the process exited")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitAMQP waits until url completes an AMQP handshake, the process behind
// it exits (exited is closed) or ctx is done.
func waitAMQP(ctx context.Context, url string, exited <-chan struct{}) error {
	for {
		conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
		if err == nil {
			_ = conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no AMQP handshake: %w (last: %v)", ctx.Err(), err)
		case <-exited:
			return errors.New("the node exited during startup")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}
