package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spate-dev/spate/drivers"
)

// This file runs a private RabbitMQ cluster: the broker behind
// `url: managed` with `nodes: 2` or more. Its nodes are ordinary managed
// nodes (node.go) that share a port mapper and a distribution network run
// by this process (epmd.go, distnet.go), so that spate can partition them.

// MaxNodes bounds the nodes of a managed cluster.
const MaxNodes = 5

// A PartitionHandling is what a cluster does about a partition (RabbitMQ's
// cluster_partition_handling).
type PartitionHandling string

// Partition handling strategies.
const (
	PauseMinority    PartitionHandling = "pause_minority"
	Autoheal         PartitionHandling = "autoheal"
	IgnorePartitions PartitionHandling = "ignore"
)

// PartitionHandlings are the strategies a managed cluster accepts.
var PartitionHandlings = []PartitionHandling{PauseMinority, Autoheal, IgnorePartitions}

// DefaultPartitionHandling is what a managed cluster does about a
// partition unless told: the nodes on the minority side pause themselves
// (RabbitMQ's recommendation for clusters of three or more nodes).
const DefaultPartitionHandling = PauseMinority

// ClusterOptions configures StartCluster. Only Nodes is required.
type ClusterOptions struct {
	// Nodes is how many nodes to start: 1..MaxNodes.
	Nodes int
	// Server is the rabbitmq-server script (default DefaultServer).
	Server string
	// StartTimeout bounds each node's start (default DefaultStartTimeout).
	StartTimeout time.Duration
	// PartitionHandling is RabbitMQ's cluster_partition_handling, one of
	// PartitionHandlings (default DefaultPartitionHandling).
	PartitionHandling PartitionHandling
	// Log receives the cluster's lifecycle events (default: discarded).
	Log *slog.Logger
}

// Cluster is a private RabbitMQ cluster on loopback: Nodes nodes, each
// with its own node name, AMQP port, distribution port, data directory and
// log, joined with rabbitmqctl join_cluster, sharing an Erlang cookie and
// a port mapper that runs in this process. Node i is broker i. Every
// connection between two nodes passes through a proxy of this process, so
// Partition can cut one node off from the others while AMQP clients still
// reach it.
//
// The nodes are children of this process and die with it (as a Node's
// do); the port mapper and the proxies are part of it. A Cluster's methods
// are safe for concurrent use.
type Cluster struct {
	opts   ClusterOptions
	log    *slog.Logger
	dir    string
	cookie []byte
	epmd   *epmdServer
	net    *distNet
	nodes  []*Node

	mu      sync.Mutex
	stopped bool
}

// StartCluster starts opts.Nodes nodes in parallel, joins nodes 1.. to
// node 0 with rabbitmqctl, and returns once every node runs in one cluster
// and accepts AMQP connections. ctx bounds it all. On error nothing it
// started is left running.
func StartCluster(ctx context.Context, opts ClusterOptions) (*Cluster, error) {
	if opts.Nodes < 1 || opts.Nodes > MaxNodes {
		return nil, fmt.Errorf("rabbitmq: managed cluster: nodes must be from 1 to %d, got %d", MaxNodes, opts.Nodes)
	}
	if opts.PartitionHandling == "" {
		opts.PartitionHandling = DefaultPartitionHandling
	}
	if !slices.Contains(PartitionHandlings, opts.PartitionHandling) {
		return nil, fmt.Errorf("rabbitmq: managed cluster: unknown partition handling %q; valid: pause_minority, autoheal, ignore", opts.PartitionHandling)
	}
	no := NodeOptions{Server: opts.Server, StartTimeout: opts.StartTimeout, Log: opts.Log}.withDefaults()
	opts.Server, opts.StartTimeout, opts.Log = no.Server, no.StartTimeout, no.Log
	if _, err := checkInstall(opts.Server); err != nil {
		return nil, err
	}
	began := time.Now()
	dir, err := os.MkdirTemp("", "spate-rabbitmq-cluster-")
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: managed cluster: make a data directory: %v", err)
	}
	c := &Cluster{opts: opts, log: opts.Log, dir: dir, cookie: newCookie()}
	ok := false
	defer func() {
		if !ok {
			_ = c.Stop(context.Background())
		}
	}()
	if c.epmd, err = startEPMD(c.log); err != nil {
		return nil, err
	}
	c.net = newDistNet(c.log, c.epmd)
	var id [4]byte
	_, _ = rand.Read(id[:])
	prefix := "spate-" + hex.EncodeToString(id[:])
	conf := "cluster_partition_handling = " + string(opts.PartitionHandling) + "\n"
	c.nodes = make([]*Node, opts.Nodes)
	for i := range c.nodes {
		base := fmt.Sprintf("%s-%d", prefix, i)
		if _, err := c.net.addMember(i, base); err != nil {
			return nil, err
		}
		m := &member{index: i, name: base + "@localhost", epmdPort: c.epmd.Port(), cookie: c.cookie, conf: conf}
		nodeDir := filepath.Join(dir, strconv.Itoa(i))
		if err := os.Mkdir(nodeDir, 0o700); err != nil {
			return nil, fmt.Errorf("rabbitmq: managed cluster: %v", err)
		}
		mo := no
		mo.Dir = nodeDir
		if c.nodes[i], err = newNode(mo, m); err != nil {
			return nil, err
		}
	}
	if err := c.parallel(func(i int, n *Node) error { return c.startMember(ctx, i) }); err != nil {
		return nil, err
	}
	c.log.Info("rabbitmq: managed cluster nodes started", "nodes", opts.Nodes, "took", time.Since(began).Round(time.Millisecond))
	if err := c.join(ctx); err != nil {
		return nil, err
	}
	if err := c.WaitHealthy(ctx, opts.StartTimeout); err != nil {
		return nil, err
	}
	ok = true
	c.log.Info("rabbitmq: managed cluster ready", "nodes", opts.Nodes, "urls", strings.Join(c.URLs(), " "),
		"partition_handling", opts.PartitionHandling, "took", time.Since(began).Round(time.Millisecond))
	return c, nil
}

// startMember starts node i the first time, on other free ports when the
// ones it picked were taken meanwhile.
func (c *Cluster) startMember(ctx context.Context, i int) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		n := c.nodes[i]
		n.mu.Lock()
		err = n.startServer(ctx)
		n.mu.Unlock()
		if err == nil {
			return nil
		}
		n.kill()
		if !errors.Is(err, errPortTaken) || ctx.Err() != nil {
			return err
		}
		c.log.Warn("rabbitmq: managed cluster node could not bind its ports; trying others", "node", n.name, "err", err)
		mo := n.opts
		if c.nodes[i], err = newNode(mo, n.member); err != nil {
			return err
		}
	}
	return err
}

// join makes nodes 1.. members of node 0's cluster: stop_app on each (in
// parallel), join_cluster one at a time (concurrent joins race in Mnesia),
// start_app on each (in parallel).
func (c *Cluster) join(ctx context.Context) error {
	if len(c.nodes) < 2 {
		return nil
	}
	began := time.Now()
	first := c.nodes[0].name
	others := func(f func(i int, n *Node) error) error {
		return c.parallel(func(i int, n *Node) error {
			if i == 0 {
				return nil
			}
			return f(i, n)
		})
	}
	if err := others(func(_ int, n *Node) error { _, err := n.ctl(ctx, "stop_app"); return err }); err != nil {
		return fmt.Errorf("rabbitmq: managed cluster: %w", err)
	}
	for _, n := range c.nodes[1:] {
		if _, err := n.ctl(ctx, "join_cluster", first); err != nil {
			return fmt.Errorf("rabbitmq: managed cluster: %w", err)
		}
	}
	err := others(func(_ int, n *Node) error {
		if _, err := n.ctl(ctx, "start_app"); err != nil {
			return err
		}
		if _, err := n.ctl(ctx, "await_startup", "--timeout", strconv.Itoa(max(1, int(c.opts.StartTimeout/time.Second)))); err != nil {
			return err
		}
		return waitListening(ctx, fmt.Sprintf("127.0.0.1:%d", n.amqpPort), c.opts.StartTimeout, nil)
	})
	if err != nil {
		return fmt.Errorf("rabbitmq: managed cluster: %w", err)
	}
	c.log.Info("rabbitmq: managed cluster joined", "nodes", len(c.nodes), "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// parallel runs f for every node at once and returns the first error.
func (c *Cluster) parallel(f func(i int, n *Node) error) error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f(i, n) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Size is the number of nodes.
func (c *Cluster) Size() int { return len(c.nodes) }

// Node returns node i (0 <= i < Size).
func (c *Cluster) Node(i int) *Node { return c.nodes[i] }

// URLs returns the AMQP URL of every node, node 0 first.
func (c *Cluster) URLs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.URL()
	}
	return out
}

// Dir is the directory holding every node's data and logs (a subdirectory
// per node, named by its number).
func (c *Cluster) Dir() string { return c.dir }

// node checks a broker id.
func (c *Cluster) node(id int) (*Node, error) {
	if id < 0 || id >= len(c.nodes) {
		return nil, fmt.Errorf("rabbitmq: no broker %d; the managed cluster has brokers 0 to %d", id, len(c.nodes)-1)
	}
	return c.nodes[id], nil
}

// targets returns the nodes id names: one, or all for drivers.AllBrokers.
func (c *Cluster) targets(id int) ([]*Node, error) {
	if id == drivers.AllBrokers {
		return c.nodes, nil
	}
	n, err := c.node(id)
	if err != nil {
		return nil, err
	}
	return []*Node{n}, nil
}

// Restart stops node id, or every node (drivers.AllBrokers), as mode says,
// keeps it down for down, starts it again with its data and returns once
// it accepts AMQP connections. A node rejoins the cluster by itself; all
// nodes restart in parallel, so each finds the others while it boots.
func (c *Cluster) Restart(ctx context.Context, id int, mode drivers.RestartMode, down time.Duration) error {
	nodes, err := c.targets(id)
	if err != nil {
		return err
	}
	if err := c.live(); err != nil {
		return err
	}
	for _, n := range nodes {
		n.mu.Lock()
		defer n.mu.Unlock()
	}
	each := func(f func(n *Node) error) error {
		errs := make([]error, len(nodes))
		var wg sync.WaitGroup
		for i, n := range nodes {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = f(n) }()
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	if err := each(func(n *Node) error { return n.takeDown(ctx, mode) }); err != nil {
		return err
	}
	if err := nodes[0].hold(ctx, down); err != nil {
		return err
	}
	return each(func(n *Node) error { return n.bringUp(ctx) })
}

// Pause stops node id (or every node) with SIGSTOP, as Node.Pause, and
// returns a function that resumes it, safe to call more than once.
func (c *Cluster) Pause(id int) (resume func() error, err error) {
	nodes, err := c.targets(id)
	if err != nil {
		return nil, err
	}
	if err := c.live(); err != nil {
		return nil, err
	}
	var paused []*Node
	resume = func() error {
		var errs []error
		for _, n := range paused {
			errs = append(errs, n.Resume())
		}
		return errors.Join(errs...)
	}
	for _, n := range nodes {
		if err := n.Pause(); err != nil {
			_ = resume()
			return nil, err
		}
		paused = append(paused, n)
	}
	return resume, nil
}

// Partition cuts node id off from the other nodes: every Erlang
// distribution connection between it and them is closed and new ones are
// refused until heal is called (heal is safe to call more than once).
// Clients still reach every node. What the nodes do about it is
// RabbitMQ's partition handling (ClusterOptions.PartitionHandling): with
// pause_minority the cut-off node pauses itself and closes its client
// connections, and resumes once it sees the majority again.
func (c *Cluster) Partition(id int) (heal func(), err error) {
	if _, err := c.node(id); err != nil {
		return nil, err
	}
	if len(c.nodes) < 2 {
		return nil, errors.New("rabbitmq: a partition needs a cluster of at least two nodes")
	}
	if err := c.live(); err != nil {
		return nil, err
	}
	closed := c.net.isolate(id)
	c.log.Info("rabbitmq: managed cluster partitioned", "isolated", c.nodes[id].name, "connections_closed", closed)
	var once sync.Once
	return func() {
		once.Do(func() {
			c.net.heal(id)
			c.log.Info("rabbitmq: managed cluster partition healed", "node", c.nodes[id].name)
		})
	}, nil
}

func (c *Cluster) live() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("rabbitmq: managed cluster: used after Stop")
	}
	return nil
}

// QueueLeaders asks the cluster which node leads each queue of the
// default virtual host named in queues (all of them when queues is
// empty): a quorum queue's or a stream's Raft leader, or the node a
// classic queue lives on. It returns queue name -> broker id; a queue
// whose leader is unknown (no leader at the moment) is -1. It asks the
// first node that is up, with erl_call (milliseconds) or, should that
// fail, rabbitmqctl list_queues (a second or more).
func (c *Cluster) QueueLeaders(ctx context.Context, queues []string) (map[string]int, error) {
	return queueLeaders(ctx, c.nodes, queues)
}

// queueLeaders asks the first of nodes that is up which node leads each
// queue: with erl_call (a few milliseconds: no Erlang VM to start, it
// calls rabbit_amqqueue:info_all/2 as rabbitmqctl list_queues does), or
// when that fails, with rabbitmqctl list_queues (a second or more).
func queueLeaders(ctx context.Context, nodes []*Node, queues []string) (map[string]int, error) {
	index := map[string]int{}
	for i, n := range nodes {
		index[n.name] = i
	}
	var errs []error
	for _, n := range nodes {
		if !n.mu.TryLock() {
			continue // being restarted
		}
		up := n.server != nil && !n.paused && !n.stopped
		n.mu.Unlock()
		if !up {
			continue
		}
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		out, err := n.leadersByCall(qctx)
		if err == nil {
			cancel()
			return parseCallLeaders(out, index, queues), nil
		}
		n.log.Debug("rabbitmq: erl_call failed; asking rabbitmqctl", "node", n.name, "err", err)
		out, err = n.ctl(qctx, "list_queues", "-q", "--no-table-headers", "--timeout", "20", "name", "type", "leader", "pid")
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return parseLeaders(out, index, queues), nil
	}
	if len(errs) == 0 {
		return nil, errors.New("rabbitmq: no node is up to say which leads the queues")
	}
	return nil, fmt.Errorf("rabbitmq: which node leads the queues: %w", errors.Join(errs...))
}

// leadersExpr is what leadersByCall evaluates on a node: for each queue of
// the default virtual host, its name in hexadecimal (so no character needs
// quoting), "=", the node leading it (a quorum queue's or stream's leader,
// a classic queue's node), ";".
const leadersExpr = `lists:flatten([begin
  {resource, _, queue, N} = proplists:get_value(name, I),
  L = case proplists:get_value(leader, I, '') of
        '' -> case proplists:get_value(pid, I) of P when is_pid(P) -> node(P); _ -> '' end;
        X -> X
      end,
  io_lib:format("~s=~s;", [binary:encode_hex(N), L])
end || I <- rabbit_amqqueue:info_all(<<"/">>, [name, leader, pid])]).
`

// leadersByCall evaluates leadersExpr on the node with erl_call, straight
// to its distribution port, and returns the string it made.
func (n *Node) leadersByCall(ctx context.Context) (string, error) {
	if n.member == nil {
		return "", errors.New("not a cluster node")
	}
	bin, err := findErlCall()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, bin, "-address", fmt.Sprintf("127.0.0.1:%d", n.distPort), "-r", "-c", string(n.member.cookie), "-timeout", "20", "-e")
	cmd.Stdin = strings.NewReader(leadersExpr)
	cmd.Env = n.env
	cmd.SysProcAttr = childAttr()
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		return "", fmt.Errorf("erl_call: %v: %s", err, s)
	}
	// {ok, "..."}: the string has no character that needs quoting.
	body, ok := strings.CutPrefix(s, `{ok, "`)
	if body, ok2 := strings.CutSuffix(body, `"}`); ok && ok2 {
		return body, nil
	}
	return "", fmt.Errorf("erl_call answered %q", s)
}

// findErlCall locates erl_call (erlang-base, which rabbitmq-server needs).
func findErlCall() (string, error) {
	if p, err := exec.LookPath("erl_call"); err == nil {
		return p, nil
	}
	for _, pattern := range []string{"/usr/lib/erlang/bin/erl_call", "/usr/lib/erlang/lib/erl_interface-*/bin/erl_call"} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return m[len(m)-1], nil
		}
	}
	return "", errors.New("erl_call not found")
}

// parseCallLeaders reads leadersByCall's string.
func parseCallLeaders(out string, index map[string]int, queues []string) map[string]int {
	res := map[string]int{}
	for _, q := range queues {
		res[q] = -1
	}
	for _, item := range strings.Split(out, ";") {
		hexName, leader, ok := strings.Cut(item, "=")
		if !ok {
			continue
		}
		b, err := hex.DecodeString(hexName)
		if err != nil {
			continue
		}
		name := string(b)
		if len(queues) > 0 && !slices.Contains(queues, name) {
			continue
		}
		if i, ok := index[leader]; ok {
			res[name] = i
		} else {
			res[name] = -1
		}
	}
	return res
}

// parseLeaders reads list_queues output, one queue per line: name, type,
// leader and pid separated by tabs. A classic queue has no leader: its
// node is in its pid, <node.a.b.c>.
func parseLeaders(out string, index map[string]int, queues []string) map[string]int {
	res := map[string]int{}
	for _, q := range queues {
		res[q] = -1
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(strings.TrimRight(line, "\r"), "\t")
		if len(f) < 4 {
			continue
		}
		name, leader, pid := f[0], f[2], f[3]
		if len(queues) > 0 && !slices.Contains(queues, name) {
			continue
		}
		if leader == "" && strings.HasPrefix(pid, "<") {
			if at := strings.LastIndex(pid, "@localhost."); at >= 0 {
				leader = pid[1:at] + "@localhost"
			}
		}
		if i, ok := index[leader]; ok {
			res[name] = i
		} else {
			res[name] = -1
		}
	}
	return res
}

// clusterStatus is the part of rabbitmqctl cluster_status we read.
type clusterStatus struct {
	RunningNodes []string `json:"running_nodes"`
	Partitions   any      `json:"partitions"`
}

// WaitHealthy waits until every node runs, none is paused, no partition is
// in effect, and node 0 (or the first node up) reports every node running
// and no partition, polling for at most timeout.
func (c *Cluster) WaitHealthy(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		last = c.healthy(ctx)
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rabbitmq: managed cluster not healthy after %v: %w", timeout, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rabbitmq: managed cluster not healthy: %w (%v)", ctx.Err(), last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (c *Cluster) healthy(ctx context.Context) error {
	if err := c.live(); err != nil {
		return err
	}
	if c.net.isolated() {
		return errors.New("a partition is in effect")
	}
	for _, n := range c.nodes {
		if !n.mu.TryLock() {
			return fmt.Errorf("node %s is being restarted", n.name)
		}
		up, paused := n.server != nil, n.paused
		n.mu.Unlock()
		if !up || paused {
			return fmt.Errorf("node %s is down or paused", n.name)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := c.nodes[0].ctl(sctx, "cluster_status", "--formatter", "json")
	if err != nil {
		return err
	}
	var st clusterStatus
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &st); err != nil {
		return fmt.Errorf("cluster_status: %v", err)
	}
	if len(st.RunningNodes) != len(c.nodes) {
		return fmt.Errorf("%d of %d nodes running: %s", len(st.RunningNodes), len(c.nodes), strings.Join(st.RunningNodes, ", "))
	}
	if p, ok := st.Partitions.(map[string]any); ok && len(p) > 0 {
		return fmt.Errorf("partitions reported: %v", p)
	}
	if p, ok := st.Partitions.([]any); ok && len(p) > 0 {
		return fmt.Errorf("partitions reported: %v", p)
	}
	return nil
}

// Stop heals any partition, resumes paused nodes, stops every node (with
// SIGKILL: their data is about to be removed), the distribution proxies
// and the port mapper, and removes the cluster's directory. Calling it
// again does nothing.
func (c *Cluster) Stop(ctx context.Context) error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	c.mu.Unlock()
	if c.net != nil {
		c.net.healAll()
	}
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		if n == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.mu.Lock()
			defer n.mu.Unlock()
			n.stopped = true
			n.kill()
		}()
	}
	wg.Wait()
	if c.net != nil {
		c.net.close()
	}
	if c.epmd != nil {
		c.epmd.close()
	}
	_ = os.RemoveAll(c.dir)
	c.log.Info("rabbitmq: managed cluster stopped", "nodes", len(c.nodes))
	return nil
}

// PIDs returns the process id of every running node's VM, for tests that
// check nothing is left behind.
func (c *Cluster) PIDs() []int {
	var out []int
	for _, n := range c.nodes {
		if beam, _ := n.PIDs(); beam != 0 {
			out = append(out, beam)
		}
	}
	return out
}

// Ports returns the TCP ports the cluster listens on in this process (the
// port mapper and the distribution proxies) and its nodes' AMQP ports.
func (c *Cluster) Ports() []int {
	out := []int{c.epmd.Port()}
	out = append(out, c.net.ports()...)
	for _, n := range c.nodes {
		out = append(out, n.amqpPort)
	}
	return out
}

// Partitioned reports whether a partition made by Partition is in effect.
func (c *Cluster) Partitioned() bool { return c.net.isolated() }
