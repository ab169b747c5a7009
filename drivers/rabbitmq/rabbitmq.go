// Package rabbitmq drives a RabbitMQ broker through
// github.com/rabbitmq/amqp091-go: producers publish to an exchange, with or
// without publisher confirms, and consumers compete on one queue (with
// several subscriptions, on a queue per subscription), with manual or
// automatic acknowledgements. With `url: managed` spate runs its
// own private node from the installed rabbitmq-server package (with
// `nodes: 3`, a private cluster) and can restart, pause and partition it.
// `spate serve rabbitmq` runs such a node on its own, for several processes
// to share (give its url), and can restart it when it is killed
// (--supervise). The README next to this file has the options as a table
// and the cluster claims spate checks.
//
// # Options
//
// A scenario selects it as `driver: rabbitmq` (all defaults: a managed
// node) or with an options block, e.g.
// `driver: {rabbitmq: {url: "amqp://guest:guest@127.0.0.1:5672/", prefetch: 100}}`:
//
//	url              amqp://user:pass@host:port/vhost, amqps://..., or managed
//	                 (default): a private node on loopback, stopped at the end
//	nodes            with url: managed, the nodes of a private cluster, 1..5
//	                 (default 1); see Managed cluster below
//	partition-handling with nodes: 2 or more, RabbitMQ's
//	                 cluster_partition_handling: pause_minority (default),
//	                 autoheal or ignore
//	urls             the nodes of an existing cluster, instead of url:
//	                 clients spread over them (see Nodes below)
//	exchange         {name, kind, durable}: name "" (default) is the default
//	                 exchange, which routes by queue name; kind direct
//	                 (default), topic, fanout or headers; durable (default true)
//	queue            {name, durable, type, exclusive, arguments}: name
//	                 (default spate-<run id>; with several subscriptions
//	                 the stem of their queues' names, see Subscriptions
//	                 below); durable (default true); type
//	                 classic (default) or quorum; exclusive (default false;
//	                 needs connections: {consumers: 1}); arguments: extra
//	                 x-arguments such as x-max-length, x-message-ttl,
//	                 x-dead-letter-exchange, x-single-active-consumer
//	routing-key      fixed routing key (default: the queue name, or stem)
//	routing-keys     N > 0: each producer goes round-robin over the keys
//	                 <routing-key>-0 .. <routing-key>-(N-1) (needs an exchange)
//	persistent       delivery mode 2, written to disk (default true)
//	confirms         publisher confirms (default true); false is
//	                 fire-and-forget: every outcome is drivers.ErrUnconfirmed
//	confirm-window   most messages a producer channel has sent and not yet
//	                 had confirmed; Send blocks beyond it (default 1000)
//	mandatory        unroutable messages come back (basic.return) and count
//	                 as failed (default false)
//	prefetch         QoS: unacknowledged deliveries per consumer channel
//	                 (default 1000; 0 unlimited)
//	auto-ack         the broker forgets a message once sent (default false)
//	single-active    only one consumer receives at a time; the broker fails
//	                 over to another when it goes (x-single-active-consumer)
//	connections      {producers, consumers}: connections shared round-robin
//	                 by producer (consumer) id; 0 (default): one each
//	channels         {producers, consumers}: channels per producer (consumer),
//	                 default 1. A producer's messages go round-robin over its
//	                 channels, so with more than one they may be reordered.
//	stamp            body (default): the 48-byte stamp travels at the start
//	                 of the body only; header: also in the AMQP header
//	                 "spate-stamp" (which costs the broker: about 30% fewer
//	                 persistent messages/s on RabbitMQ 3.10). The body is the
//	                 whole message either way; consumers read the header
//	                 when there is one, else the body.
//	reject           fraction 0..1 of deliveries spate's consumers reject
//	                 (basic.nack, no requeue), seeded; rejected deliveries
//	                 are not handed to the run (default 0)
//	dead-letter      a queue spate declares, routes rejected (and expired,
//	                 and overflowing) messages to, and consumes: its
//	                 deliveries come with DeadLetter set (with several
//	                 subscriptions, one per subscription: <dead-letter>-<n>)
//	seed             seeds the reject decisions (default 1)
//	connect-timeout  bounds one connection attempt, TCP and AMQP handshake
//	                 (default 10s)
//	reconnect        how long a client keeps trying to reconnect after losing
//	                 its connection before its Send or Consume fails
//	                 (default 1m; 0: never reconnect)
//	heartbeat        AMQP heartbeat interval (default 10s; 0: the server's)
//	keep             keep the queues and exchange spate created (default
//	                 false: they are deleted when the driver closes)
//
// Messages with a key (the scenario's message.keys) use it as their routing
// key, except on the default exchange, which routes by queue name. Open
// binds the queue to a direct exchange with the fixed key (or the N
// round-robin keys), a topic exchange with "#", a fanout or headers
// exchange with no condition; the first message with a new key binds that
// key to a direct exchange before it is published.
//
// # Subscriptions
//
// With several subscriptions (a scenario's `subscriptions: N`,
// Env.Subscriptions), each subscription is a queue of its own:
// "<queue>-<n>" for n = 0 .. N-1, where <queue> is queue.name (default
// spate-<run id>); there is no queue named <queue> alone. Open declares the
// N queues with the same options and x-arguments (durable, type,
// exclusive, single-active, ...) and binds each to the exchange exactly as
// the one queue would be bound (the fixed key, the round-robin keys, "#",
// or no condition; message keys are bound to every queue as they appear),
// so the broker routes every message to all N. Consumer i reads the queue
// of subscription i mod N (Env.SubscriptionOf); the consumers of one queue
// compete, and single-active means one active consumer per queue. With
// dead-letter, each subscription's queue dead-letters into a queue of its
// own, "<dead-letter>-<n>", which only that subscription's consumers read,
// so a message rejected in one subscription is dead-lettered once for it
// and not for the others. Queues that already exist with the same settings
// are used as they are and kept at Close (the driver never requires a
// queue to exist: it declares each one, and one that exists with other
// settings fails Open); those Open created are deleted at Close unless
// keep. Order is checked per producer within each queue (Stream 0, the
// dead-letter queue 1, in every subscription). Driver.Queues names them.
//
// Fan-out needs a named exchange: the default exchange routes a message to
// the one queue its routing key names, so with no exchange name Open
// fails for more than one subscription and Options.Abilities does not list
// scenarios.AbilityFanOut (scenario validation then rejects subscriptions >
// 1). Name one, e.g. `exchange: {name: spate, kind: fanout}`; spate
// declares it if it does not exist.
//
// # Semantics
//
// Publish latency is the time from Send to the publisher confirm. A nack
// from the broker is a failure (ErrNacked); so is a message returned as
// unroutable when mandatory is set (ErrReturned). When a producer's
// connection or channel is lost, the messages it published and had no
// confirm for are reported as drivers.ErrUnconfirmed: the broker may or may
// not have taken them, so they are neither acked (they would count as lost
// if they never arrive) nor failed (they would hide a delivery). A publish
// that fails locally (the socket is gone) is a failure. The producer then
// reconnects, declares the topology again (a transient queue is gone after
// a broker restart) and goes on; Send blocks meanwhile.
//
// Every delivery of the queue has Stream 0; of the dead-letter queue,
// Stream 1 and DeadLetter true. Redelivered is the broker's redelivered
// flag. A consumer hands each batch to the Handler and then acknowledges
// it with one multiple ack; a rejected delivery is nacked before. A
// delivery whose stamp carries stamp.FlagPoison is always rejected.
// Consumers that lose their connection reconnect and subscribe again; what
// they had not acked is redelivered, flagged.
//
// # Streams
//
// With queue.type: stream, consumers read the stream over AMQP 0.9.1 with
// x-stream-offset (queue.offset) and a prefetch limit, which RabbitMQ
// requires; acknowledging only grants credit. A stream is not consumed
// away: every consumer reads all of it, so each consumer is a
// subscription of its own (the scenario sets subscriptions equal to
// consumers; Options.Abilities lists scenarios.AbilityOwnReader, which
// scenario validation enforces), and every subscription reads the one
// stream. Each delivery carries its stream offset (Delivery.Offset). A
// consumer that reconnects reads on from the offset after the last
// delivery it received, so nothing is read twice or skipped; a new
// consumer made with the id of a crashed one starts from the offset after
// the last batch the crashed one handled (whose Handler returned), as an
// application storing its offset after processing would: what the crashed
// one was handling is read again, and counted as duplicates. Rejecting,
// dead-lettering and single-active are not available on a stream.
//
// # Nodes
//
// With several nodes (urls, or a managed cluster), connection slot i
// (producer i, consumer i, with shared connections the slot's number; the
// admin connection is slot 0) connects to node i mod N first, and to the
// next node that answers when that one does not, so clients spread over
// the nodes and reconnect to another when theirs goes away.
//
// Order is checked per producer on the queue. With several consumers (or
// consumer channels) the broker's FIFO deliveries are handled in parallel,
// so the reordering counted is what an application with competing
// consumers sees; with one consumer or single-active, it is the queue's.
//
// While the broker applies flow control (a memory or disk alarm blocks
// publishers) Send blocks in the socket write and cannot be interrupted.
//
// # Managed node
//
// With url: managed, Open starts a private node (see Start): the
// rabbitmq-server package's own scripts, run directly (not through systemd,
// and not the system's node) with a node name, AMQP port, distribution port
// and epmd port of its own, all on 127.0.0.1 and below 32768, its data and
// logs in a temporary directory. Open returns once the node accepts AMQP
// (about 4 s); Close stops the node and its epmd, by PID, and removes the
// directory. Without the package, Open fails with the command to install
// it (apt-get install -y rabbitmq-server).
//
// # Managed cluster
//
// With url: managed and nodes: N (2..5), Open starts a private cluster
// (see StartCluster): N such nodes, started in parallel, each with its own
// node name, ports and data directory, joined to node 0 with rabbitmqctl
// join_cluster, sharing an Erlang cookie. Their Erlang port mapper runs
// inside spate, and every connection between two nodes passes through a
// proxy of spate's in front of each node's distribution port, which is
// how a partition cuts one node off from the others while clients still
// reach it (see Cluster.Partition). Close stops every node; the port
// mapper and proxies end with it.
//
// # Abilities
//
// A driver on a managed node or cluster (url: managed, or Options.Node or
// Options.Cluster) is a ManagedDriver: a drivers.BrokerRestarter whose
// broker i is node i (0 for a single node): Graceful runs rabbitmqctl
// stop, Kill sends SIGKILL to the node's VM; both start the node again on
// the same ports with the same data. It is a drivers.BrokerPauser
// (SIGSTOP, then SIGCONT), a drivers.LeaderLocator (which node leads each
// queue, asked with rabbitmqctl list_queues), and on a cluster a
// drivers.BrokerPartitioner. Faults still in effect when the driver closes
// are taken back first. Consumers are drivers.Crasher: Crash
// closes the consumer's socket without a goodbye, so the broker requeues
// what it had not acked (and other consumers on the same connection, if
// connections are shared, lose theirs too). When Env.Dial is set every
// connection goes through it, with the side it serves (producers,
// consumers, admin for declarations). The Driver is a
// drivers.StatsReporter; see Driver.Stats.
package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
)

// Kind is the RabbitMQ driver as scenarios name it: `driver: rabbitmq`.
var Kind = drivers.Kind{Name: "rabbitmq", Options: decodeOptions, Open: open}

// Errors reported as outcomes or returned by methods.
var (
	// ErrNacked is the outcome of a message the broker refused (basic.nack).
	ErrNacked = errors.New("rabbitmq: the broker nacked the message")
	// ErrReturned is the outcome of a mandatory message the broker could
	// not route to any queue (basic.return).
	ErrReturned = errors.New("rabbitmq: the broker returned the message as unroutable")
	// ErrClosed is returned by methods called after Driver.Close, and by
	// Send and Consume when the driver closes under them.
	ErrClosed = errors.New("rabbitmq: driver closed")
)

// MaxBatch is the most deliveries handed to one Handler call.
const MaxBatch = 512

// Stream numbers of deliveries.
const (
	QueueStream      int32 = 0 // the queue
	DeadLetterStream int32 = 1 // the dead-letter queue
)

func open(ctx context.Context, options any, env drivers.Env) (drivers.Driver, error) {
	var o Options
	switch v := options.(type) {
	case nil:
		o = DefaultOptions()
	case Options:
		o = v
	case *Options:
		if v == nil {
			o = DefaultOptions()
		} else {
			o = *v
		}
	default:
		return nil, fmt.Errorf("rabbitmq: options of type %T, want rabbitmq.Options", options)
	}
	d, err := New(ctx, o, env)
	if err != nil {
		return nil, err
	}
	if d.node != nil || d.cluster != nil {
		return &ManagedDriver{d}, nil
	}
	return d, nil
}

// Driver is a RabbitMQ driver. Its methods are safe for concurrent use.
type Driver struct {
	opts     Options
	env      drivers.Env
	log      *slog.Logger
	urls     []string // every node's URL; clients spread over them
	node     *Node    // the managed node, or nil
	ownsNode bool
	cluster  *Cluster // the managed cluster, or nil
	ownsCl   bool
	queue    string // the queue's name, or with several subscriptions the stem of theirs
	dlq      string // the dead-letter queue's name (or stem), or ""
	// queues, dlqs and args are the queue, the dead-letter queue ("" for
	// none) and the queue's x-arguments of each subscription, indexed by
	// Env.SubscriptionOf: one each, named queue and dlq, with one
	// subscription; "<queue>-<n>" and "<dlq>-<n>" with several.
	queues []string
	dlqs   []string
	args   []amqp.Table
	admin  *connSlot

	closed    chan struct{}
	ctx       context.Context // ends when the driver closes
	cancel    context.CancelFunc
	closeOnce sync.Once

	mu       sync.Mutex
	pslots   map[int]*connSlot
	cslots   map[int]*connSlot
	bound    map[string]bool // routing keys bound to a direct exchange
	bindMu   sync.Mutex      // serializes binds of new keys
	created  []string        // what Open declared that did not exist: "exchange:x", "queue:y"
	consumed int             // consumer tags handed out
	// resume is, per consumer id, the stream offset after the last batch
	// its Handler returned from: where a new consumer with the same id
	// (replacing a crashed one) starts reading.
	resume map[int]int64
	// undo holds the faults in effect (paused brokers, partitions), each
	// taken back at the latest by Close.
	undo   map[int]func() error
	undoID int

	stats stats
}

// stats are the driver's own figures (Driver.Stats), declared once: the
// Stats map and the docs' tables (the package doc, the README) come from
// these fields. Safe for concurrent use.
//
//go:generate go test -run TestOptionsDocs -update-docs .
type stats struct {
	Published     drivers.Counter `stat:"published" doc:"messages the client library took (publish returned nil)"`
	Confirmed     drivers.Counter `stat:"confirmed" doc:"publisher confirms (acks)"`
	Nacked        drivers.Counter `stat:"nacked" doc:"publisher nacks"`
	Returned      drivers.Counter `stat:"returned" doc:"mandatory messages returned as unroutable"`
	PublishFailed drivers.Counter `stat:"publish_failed" doc:"messages reported failed without reaching the broker: the publish failed locally (connection gone), or Send gave up (driver closed, reconnect window passed, ctx)"`
	Unconfirmed   drivers.Counter `stat:"unconfirmed" doc:"messages whose outcome is ErrUnconfirmed: all of them without confirms, else those in flight when a connection was lost"`
	Delivered     drivers.Counter `stat:"delivered" doc:"deliveries of the queue handed to handlers"`
	Redelivered   drivers.Counter `stat:"redelivered" doc:"of those, with the broker's redelivered flag"`
	Rejected      drivers.Counter `stat:"rejected" doc:"deliveries consumers rejected (nack, no requeue)"`
	DeadLettered  drivers.Counter `stat:"dead_lettered" doc:"deliveries of the dead-letter queue handed to handlers"`
	Reconnects    drivers.Counter `stat:"reconnects" doc:"connections made again after one was lost"`
	Crashes       drivers.Counter `stat:"crashes" doc:"consumers crashed with Crash"`
}

var (
	_ drivers.Driver          = (*Driver)(nil)
	_ drivers.StatsReporter   = (*Driver)(nil)
	_ drivers.BrokerRestarter = (*ManagedDriver)(nil)
	_ drivers.BrokerPauser    = (*ManagedDriver)(nil)
	_ drivers.LeaderLocator   = (*ManagedDriver)(nil)
	_ drivers.BrokerLister    = Options{}
	_ drivers.Crasher         = (*consumer)(nil)
	_ drivers.AbilityLister   = Options{}
)

// ManagedDriver is a Driver on a managed node or cluster (url: managed, or
// Options.Node or Options.Cluster), whose brokers it can restart and pause
// (drivers.BrokerRestarter, drivers.BrokerPauser), partition when there
// are two or more (drivers.BrokerPartitioner), and ask which leads each
// queue (drivers.LeaderLocator). Broker i is node i. Its methods are safe
// for concurrent use.
type ManagedDriver struct{ *Driver }

var _ drivers.BrokerPartitioner = (*ManagedDriver)(nil)

// Brokers returns the ids of the managed nodes: [0] for one node, 0 ..
// nodes-1 for a cluster.
func (m *ManagedDriver) Brokers() []int {
	if m.cluster == nil {
		return []int{0}
	}
	ids := make([]int, m.cluster.Size())
	for i := range ids {
		ids[i] = i
	}
	return ids
}

// RestartBroker restarts managed node id, or every node
// (drivers.AllBrokers): Graceful runs rabbitmqctl stop, Kill sends SIGKILL
// to the node's VM; the node is down for down, then starts on the same
// ports with its data (a cluster's nodes rejoin by themselves; all of them
// start in parallel), and RestartBroker returns once it accepts
// connections. Clients reconnect on their own, to another node while
// theirs is down.
func (m *ManagedDriver) RestartBroker(ctx context.Context, id int, mode drivers.RestartMode, down time.Duration) error {
	m.log.Info("rabbitmq: restarting managed broker", "broker", id, "mode", modeName(mode), "down", down)
	if m.cluster != nil {
		return m.cluster.Restart(ctx, id, mode, down)
	}
	if id != 0 && id != drivers.AllBrokers {
		return fmt.Errorf("rabbitmq: no broker %d; the managed node is broker 0", id)
	}
	return m.node.Restart(ctx, mode, down)
}

// PauseBroker freezes managed node id (or every node) with SIGSTOP and
// returns a function that resumes it with SIGCONT (drivers.BrokerPauser).
// Close resumes it at the latest.
func (m *ManagedDriver) PauseBroker(ctx context.Context, id int) (func() error, error) {
	var resume func() error
	if m.cluster != nil {
		var err error
		if resume, err = m.cluster.Pause(id); err != nil {
			return nil, err
		}
	} else {
		if id != 0 && id != drivers.AllBrokers {
			return nil, fmt.Errorf("rabbitmq: no broker %d; the managed node is broker 0", id)
		}
		if err := m.node.Pause(); err != nil {
			return nil, err
		}
		resume = m.node.Resume
	}
	return m.keepUndo(resume), nil
}

// PartitionBroker cuts managed node id off from the other nodes of the
// cluster (see Cluster.Partition) and returns a function that heals the
// partition (drivers.BrokerPartitioner). Close heals it at the latest.
func (m *ManagedDriver) PartitionBroker(ctx context.Context, id int) (func() error, error) {
	if m.cluster == nil {
		return nil, errors.New("rabbitmq: a partition needs a managed cluster (url: managed with nodes: 2 or more)")
	}
	heal, err := m.cluster.Partition(id)
	if err != nil {
		return nil, err
	}
	return m.keepUndo(func() error { heal(); return nil }), nil
}

// keepUndo records undo until it is called, so that Close can call it, and
// returns it, made safe to call more than once.
func (m *ManagedDriver) keepUndo(undo func() error) func() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.undoID++
	id := m.undoID
	m.undo[id] = undo
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() {
			m.mu.Lock()
			delete(m.undo, id)
			m.mu.Unlock()
			err = undo()
		})
		return err
	}
}

// Leaders returns which managed node leads each queue the consumers read
// (drivers.LeaderLocator): a quorum queue's or stream's Raft leader, the
// node a classic queue lives on; -1 when a queue has no leader now. A
// cluster is asked with rabbitmqctl list_queues on a node that is up
// (about a second); on a single node every queue is node 0's.
func (m *ManagedDriver) Leaders(ctx context.Context) (map[string]int, error) {
	queues := m.distinctQueues()
	if m.cluster != nil {
		return m.cluster.QueueLeaders(ctx, queues)
	}
	out := map[string]int{}
	for _, q := range queues {
		out[q] = 0
	}
	return out, nil
}

// Node returns the managed node the driver runs on, or nil.
func (d *Driver) Node() *Node { return d.node }

// Cluster returns the managed cluster the driver runs on, or nil.
func (d *Driver) Cluster() *Cluster { return d.cluster }

// URLs returns the URL of every node the driver's clients connect to.
func (d *Driver) URLs() []string { return slices.Clone(d.urls) }

// New opens a driver with options o for the run env: it starts the managed
// node if url is managed, connects, and declares the exchange, the queue,
// the dead-letter queue and the bindings. Problems with the options, the
// connection or conflicting declarations are returned at once; nothing
// waits longer than connect-timeout per connection attempt (and the start
// of a managed node, bounded by its own timeout).
func New(ctx context.Context, o Options, env drivers.Env) (*Driver, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if env.Log == nil {
		env.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d := &Driver{
		opts:   o,
		env:    env,
		log:    env.Log,
		queue:  o.Queue.Name,
		dlq:    o.DeadLetter,
		closed: make(chan struct{}),
		pslots: map[int]*connSlot{},
		cslots: map[int]*connSlot{},
		bound:  map[string]bool{},
		resume: map[int]int64{},
		undo:   map[int]func() error{},
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	if d.queue == "" {
		d.queue = "spate-" + stamp.RunIDString(env.RunID)
	}
	if err := d.subscriptions(); err != nil {
		return nil, err
	}
	switch {
	case o.Cluster != nil:
		d.cluster = o.Cluster
		d.urls = o.Cluster.URLs()
	case o.Node != nil:
		d.node = o.Node
		d.urls = []string{o.Node.URL()}
	case len(o.URLs) > 0:
		d.urls = slices.Clone(o.URLs)
	case o.URL == Managed && o.Nodes > 1:
		no := o.NodeOptions
		if no.Log == nil {
			no.Log = env.Log
		}
		c, err := StartCluster(ctx, ClusterOptions{Nodes: o.Nodes, Server: no.Server, StartTimeout: no.StartTimeout,
			PartitionHandling: o.PartitionHandling, Log: no.Log})
		if err != nil {
			return nil, err
		}
		d.cluster, d.ownsCl, d.urls = c, true, c.URLs()
	case o.URL == Managed:
		no := o.NodeOptions
		if no.Log == nil {
			no.Log = env.Log
		}
		n, err := Start(ctx, no)
		if err != nil {
			return nil, err
		}
		d.node, d.ownsNode, d.urls = n, true, []string{n.URL()}
	default:
		d.urls = []string{o.URL}
	}
	d.admin = &connSlot{d: d, side: drivers.AdminSide, name: "admin"}
	if err := d.provision(ctx); err != nil {
		_ = d.Close(context.Background())
		return nil, err
	}
	d.log.Info("rabbitmq: driver open", "broker", d.addresses(), "queues", strings.Join(d.distinctQueues(), ","), "exchange", o.Exchange.Name,
		"dead-letter", strings.Join(d.dlqs, ","))
	return d, nil
}

// subscriptions names the queues of each subscription (Env.Subscriptions)
// and their arguments. With several, every subscription needs a queue of
// its own that every message reaches, so the scenario must name an
// exchange: the default exchange routes a message to the one queue its
// routing key names.
func (d *Driver) subscriptions() error {
	o := &d.opts
	n := max(1, d.env.Subscriptions)
	if n > 1 && o.Exchange.Name == "" && o.Queue.Type != StreamQueue {
		return fmt.Errorf("rabbitmq: subscriptions: %d needs a named exchange: each subscription reads a queue of its own (%s-0 .. %s-%d), "+
			"and the default exchange (no exchange name) routes each message to one queue only; "+
			"name one, e.g. exchange: {name: spate, kind: fanout}, or use subscriptions: 1", n, d.queue, d.queue, n-1)
	}
	base := amqp.Table{}
	for k, v := range o.Queue.Arguments {
		base[k] = v
	}
	if q := o.Queue; q.MaxLength > 0 {
		base["x-max-length"] = int64(q.MaxLength)
	}
	if o.Queue.Overflow != "" {
		base["x-overflow"] = string(o.Queue.Overflow)
	}
	switch q := o.Queue; q.Type {
	case QuorumQueue:
		base["x-queue-type"] = string(QuorumQueue)
		if q.QuorumInitialGroupSize > 0 {
			base["x-quorum-initial-group-size"] = int64(q.QuorumInitialGroupSize)
		}
		if q.DeliveryLimit > 0 {
			base["x-delivery-limit"] = int64(q.DeliveryLimit)
		}
	case StreamQueue:
		base["x-queue-type"] = string(StreamQueue)
	}
	// Every subscription reads the one stream: a stream is not consumed
	// away, so each subscription (each consumer) reads all of it.
	stream := o.Queue.Type == StreamQueue
	if o.SingleActive {
		base["x-single-active-consumer"] = true
	}
	for sub := range n {
		q, dlq := d.queue, d.dlq
		if n > 1 && !stream {
			q = fmt.Sprintf("%s-%d", d.queue, sub)
			if dlq != "" {
				dlq = fmt.Sprintf("%s-%d", d.dlq, sub)
			}
		}
		args := maps.Clone(base)
		if dlq != "" {
			args["x-dead-letter-exchange"] = ""
			args["x-dead-letter-routing-key"] = dlq
		}
		d.queues = append(d.queues, q)
		d.dlqs = append(d.dlqs, dlq)
		d.args = append(d.args, args)
	}
	return nil
}

// distinctQueues returns the queues the consumers read, each once (the
// subscriptions of a stream share it).
func (d *Driver) distinctQueues() []string {
	var out []string
	for _, q := range d.queues {
		if !slices.Contains(out, q) {
			out = append(out, q)
		}
	}
	return out
}

// owner is the slot whose connection declares the queue and its bindings:
// the admin connection, or for an exclusive queue the consumers' one.
func (d *Driver) owner() *connSlot {
	if d.opts.Queue.Exclusive {
		return d.consumerSlot(0)
	}
	return d.admin
}

// provision notes what exists already, then declares the topology.
func (d *Driver) provision(ctx context.Context) error {
	ch, err := d.admin.channel(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = ch.Close() }()
	// A passive declare of something missing closes the channel; each
	// check that finds nothing opens a new one.
	exists := func(kind, name string) (bool, error) {
		var err error
		if kind == "exchange" {
			err = ch.ExchangeDeclarePassive(name, string(d.opts.Exchange.Kind), d.opts.Exchange.Durable, false, false, false, nil)
		} else {
			_, err = ch.QueueDeclarePassive(name, false, false, false, false, nil)
		}
		if err == nil {
			return true, nil
		}
		if !isNotFound(err) {
			return false, explainDeclare(kind, name, err)
		}
		if ch, err = d.admin.channel(ctx); err != nil {
			return false, err
		}
		return false, nil
	}
	type object struct{ kind, name string }
	var objects []object
	if d.opts.Exchange.Name != "" {
		objects = append(objects, object{"exchange", d.opts.Exchange.Name})
	}
	if !d.opts.Queue.Exclusive {
		for _, q := range d.distinctQueues() {
			objects = append(objects, object{"queue", q})
		}
	}
	for _, q := range d.dlqs {
		if q != "" {
			objects = append(objects, object{"queue", q})
		}
	}
	for _, obj := range objects {
		ok, err := exists(obj.kind, obj.name)
		if err != nil {
			return err
		}
		switch {
		case !ok && d.env.Attach:
			return fmt.Errorf("rabbitmq: %s %q does not exist; the coordinator of the distributed run declares it", obj.kind, obj.name)
		case !ok:
			d.created = append(d.created, obj.kind+":"+obj.name)
		}
	}
	if d.opts.Queue.Exclusive {
		if ch, err = d.owner().channel(ctx); err != nil {
			return err
		}
		defer func() { _ = ch.Close() }()
	}
	return d.declare(ch, true, true)
}

// transient reports whether a broker restart (or, for an exclusive queue,
// the loss of its connection) can take the queue or its bindings away.
func (d *Driver) transient() bool {
	o := &d.opts
	return !o.Queue.Durable || o.Queue.Exclusive || o.Exchange.Name != "" && !o.Exchange.Durable
}

// declare declares the exchange and, with queues, the dead-letter queue and
// the queue of every subscription, and with bindings every binding of each
// queue, on ch. Declaring what exists
// with the same settings changes nothing, so clients call it again when
// they (re)connect: a transient queue and its bindings do not survive a
// broker restart, and nothing must be published before they exist again.
func (d *Driver) declare(ch *amqp.Channel, queues, bindings bool) error {
	o := &d.opts
	if ex := o.Exchange; ex.Name != "" {
		if err := ch.ExchangeDeclare(ex.Name, string(ex.Kind), ex.Durable, false, false, false, nil); err != nil {
			return explainDeclare("exchange", ex.Name, err)
		}
	}
	if !queues {
		return nil
	}
	for sub, q := range d.queues {
		if sub > 0 && q == d.queues[0] {
			break // a stream: the one queue of every subscription
		}
		if dlq := d.dlqs[sub]; dlq != "" {
			if _, err := ch.QueueDeclare(dlq, o.Queue.Durable, false, false, false, nil); err != nil {
				return explainDeclare("queue", dlq, err)
			}
		}
		if _, err := ch.QueueDeclare(q, o.Queue.Durable, false, o.Queue.Exclusive, false, d.args[sub]); err != nil {
			return explainDeclare("queue", q, err)
		}
	}
	if o.Exchange.Name == "" || !bindings {
		return nil
	}
	keys := []string{""}
	var args amqp.Table
	switch o.Exchange.Kind {
	case TopicExchange:
		keys = []string{"#"}
	case HeadersExchange:
		args = amqp.Table{"x-match": "all"}
	case DirectExchange:
		keys = d.staticKeys()
		d.mu.Lock()
		for _, k := range sortedKeys(d.bound) {
			keys = append(keys, k)
		}
		d.mu.Unlock()
	}
	for _, q := range d.distinctQueues() {
		for _, k := range keys {
			if err := ch.QueueBind(q, k, o.Exchange.Name, false, args); err != nil {
				return fmt.Errorf("rabbitmq: bind queue %q to exchange %q with key %q: %w", q, o.Exchange.Name, k, err)
			}
		}
	}
	return nil
}

// routingKey is the fixed routing key.
func (d *Driver) routingKey() string {
	if d.opts.RoutingKey != "" {
		return d.opts.RoutingKey
	}
	return d.queue
}

// staticKeys are the routing keys known before any message: the fixed key,
// or the round-robin keys.
func (d *Driver) staticKeys() []string {
	n := d.opts.RoutingKeys
	if n == 0 {
		return []string{d.routingKey()}
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s-%d", d.routingKey(), i)
	}
	return keys
}

// bindKey binds a message key to a direct exchange, for the queue of every
// subscription, once per driver. While the broker is unreachable it keeps
// trying for the reconnect window.
func (d *Driver) bindKey(ctx context.Context, key string) error {
	d.bindMu.Lock()
	defer d.bindMu.Unlock()
	d.mu.Lock()
	done := d.bound[key]
	d.mu.Unlock()
	if done {
		return nil
	}
	var deadline time.Time
	wait := 50 * time.Millisecond
	queue := d.queues[0]
	for {
		_, err := d.owner().getRetry(ctx)
		if err == nil {
			var ch *amqp.Channel
			if ch, err = d.owner().channel(ctx); err == nil {
				for _, queue = range d.distinctQueues() {
					if err = ch.QueueBind(queue, key, d.opts.Exchange.Name, false, nil); err != nil {
						break
					}
				}
				_ = ch.Close()
			}
		}
		if err == nil {
			d.mu.Lock()
			d.bound[key] = true
			d.mu.Unlock()
			return nil
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(d.opts.Reconnect)
		}
		if errors.Is(err, ErrClosed) || ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("rabbitmq: bind queue %q to exchange %q with key %q: %w", queue, d.opts.Exchange.Name, key, err)
		}
		if err := d.sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(2*wait, time.Second)
	}
}

// producerSlot returns the connection slot of producer id.
func (d *Driver) producerSlot(id int) *connSlot {
	return d.slot(d.pslots, drivers.ProducerSide, id, d.opts.ProducerConnections)
}

// consumerSlot returns the connection slot of consumer id.
func (d *Driver) consumerSlot(id int) *connSlot {
	return d.slot(d.cslots, drivers.ConsumerSide, id, d.opts.ConsumerConnections)
}

func (d *Driver) slot(slots map[int]*connSlot, side drivers.Side, id, n int) *connSlot {
	i := id
	if n > 0 {
		i = id % n
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s := slots[i]
	if s == nil {
		s = &connSlot{d: d, side: side, name: slotName(side, i), pref: i % len(d.urls)}
		slots[i] = s
	}
	return s
}

func (d *Driver) isClosed() bool {
	select {
	case <-d.closed:
		return true
	default:
		return false
	}
}

// Stats returns the driver's own figures: its counters (the stats
// struct),
//
// stats:begin (generated by go generate from the declaration)
//
//	published       messages the client library took (publish returned nil)
//	confirmed       publisher confirms (acks)
//	nacked          publisher nacks
//	returned        mandatory messages returned as unroutable
//	publish_failed  messages reported failed without reaching the broker: the publish failed locally (connection gone), or Send gave up (driver closed, reconnect window passed, ctx)
//	unconfirmed     messages whose outcome is ErrUnconfirmed: all of them without confirms, else those in flight when a connection was lost
//	delivered       deliveries of the queue handed to handlers
//	redelivered     of those, with the broker's redelivered flag
//	rejected        deliveries consumers rejected (nack, no requeue)
//	dead_lettered   deliveries of the dead-letter queue handed to handlers
//	reconnects      connections made again after one was lost
//	crashes         consumers crashed with Crash
//
// stats:end
//
// and the depths of its queues:
//
//	queue_depth       messages ready in the queue now (-1: unknown)
//	dead_letter_depth messages ready in the dead-letter queue (-1: unknown)
//
// With several subscriptions, delivered, redelivered, rejected and
// dead_lettered count the deliveries of every subscription's queues
// (each message is owed once to each), queue_depth and dead_letter_depth
// are the sums over the subscriptions' queues (-1 when any is unknown),
// and queue_depth_<n> and dead_letter_depth_<n> are those of subscription
// n's. The depths are asked of the broker, waiting at most 2 s in all; a
// driver opened attached (drivers.Env.Attach, a shard of a distributed
// run) leaves them to the coordinator, so they are not added up once per
// shard. A stream is not consumed away, so its depth says nothing of a
// backlog: queue_depth is -1 for a stream.
//
// On a managed node or cluster (ManagedDriver) there are also:
//
//	brokers           the managed nodes
//	leader_broker     the node leading the queue at the end (Leaders): a
//	                  quorum queue's or stream's Raft leader, the node of a
//	                  classic queue; -1 when it has none or it could not be
//	                  asked (rabbitmqctl, within 20 s)
//	leader_broker_<n> with several subscriptions reading several queues,
//	                  the leader of subscription n's queue
func (d *Driver) Stats() map[string]int64 {
	m := drivers.StatsOf(&d.stats)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	several := len(d.queues) > 1
	depths := func(key string, queues []string) {
		total := int64(0)
		for sub, q := range queues {
			n := d.depth(ctx, q)
			if several {
				m[fmt.Sprintf("%s_%d", key, sub)] = n
			}
			if n < 0 || total < 0 {
				total = -1
			} else {
				total += n
			}
		}
		m[key] = total
	}
	if d.env.Attach {
		return m // the depths are the system's: the coordinator reports them, once
	}
	if d.opts.Queue.Type == StreamQueue {
		m["queue_depth"] = -1
	} else {
		depths("queue_depth", d.queues)
	}
	if d.dlq != "" {
		depths("dead_letter_depth", d.dlqs)
	}
	if d.node != nil || d.cluster != nil {
		d.leaderStats(m)
	}
	return m
}

// leaderStats adds the managed figures to m.
func (d *Driver) leaderStats(m map[string]int64) {
	md := &ManagedDriver{d}
	m["brokers"] = int64(len(md.Brokers()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	leaders, err := md.Leaders(ctx)
	if err != nil {
		d.log.Warn("rabbitmq: which node leads the queue", "err", err)
	}
	queues := d.distinctQueues()
	for i, q := range queues {
		l, ok := leaders[q]
		if !ok {
			l = -1
		}
		if i == 0 {
			m["leader_broker"] = int64(l)
		}
		if len(queues) > 1 {
			m[fmt.Sprintf("leader_broker_%d", i)] = int64(l)
		}
	}
}

// depth returns the number of ready messages in queue, or -1.
func (d *Driver) depth(ctx context.Context, queue string) int64 {
	if d.isClosed() || d.opts.Queue.Exclusive && slices.Contains(d.queues, queue) {
		return -1
	}
	res := make(chan int64, 1)
	go func() {
		n, err := d.QueueDepth(ctx, queue)
		if err != nil {
			n = -1
		}
		res <- int64(n)
	}()
	select {
	case n := <-res:
		return n
	case <-ctx.Done():
		return -1
	}
}

// QueueDepth asks the broker how many messages are ready in queue (not
// counting those delivered and not yet acknowledged).
func (d *Driver) QueueDepth(ctx context.Context, queue string) (int, error) {
	ch, err := d.admin.channel(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { _ = ch.Close() }()
	q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
	if err != nil {
		return 0, fmt.Errorf("rabbitmq: depth of queue %q: %w", queue, err)
	}
	return q.Messages, nil
}

// Queue returns the name of the queue consumers read, or with several
// subscriptions the stem of their queues' names (see Queues).
func (d *Driver) Queue() string { return d.queue }

// Queues returns the queue of each subscription, in subscription order:
// Queue alone with one subscription, "<queue>-<n>" for n = 0 ..
// Env.Subscriptions-1 with several.
func (d *Driver) Queues() []string { return slices.Clone(d.queues) }

// DeadLetterQueues returns the dead-letter queue of each subscription, in
// subscription order ("<dead-letter>-<n>" with several), or nil without
// dead-letter.
func (d *Driver) DeadLetterQueues() []string {
	if d.dlq == "" {
		return nil
	}
	return slices.Clone(d.dlqs)
}

// Close resumes the brokers it paused and heals the partitions it made,
// stops consumers and clients, deletes the queues and exchange Open
// created (unless keep), closes every connection and stops the managed
// node or cluster it started. Calling it again does nothing.
func (d *Driver) Close(ctx context.Context) error {
	d.closeOnce.Do(func() {
		// Faults first: a paused node would hold up every clean close.
		d.mu.Lock()
		undo := slices.Collect(maps.Values(d.undo))
		clear(d.undo)
		d.mu.Unlock()
		for _, f := range undo {
			if err := f(); err != nil {
				d.log.Warn("rabbitmq: taking back a fault at close", "err", err)
			}
		}
		close(d.closed)
		d.cancel()
		deadline := time.Now().Add(5 * time.Second)
		if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
			deadline = dl
		}
		if !d.opts.Keep && len(d.created) > 0 {
			d.unprovision(deadline)
		}
		d.mu.Lock()
		slots := []*connSlot{d.admin}
		for _, s := range d.pslots {
			slots = append(slots, s)
		}
		for _, s := range d.cslots {
			slots = append(slots, s)
		}
		d.mu.Unlock()
		var wg sync.WaitGroup
		for _, s := range slots {
			if s == nil {
				continue
			}
			wg.Add(1)
			go func() { defer wg.Done(); s.close(deadline) }()
		}
		wg.Wait()
		if d.ownsNode {
			_ = d.node.Stop(ctx)
		}
		if d.ownsCl {
			_ = d.cluster.Stop(ctx)
		}
	})
	return nil
}

// unprovision deletes what provision created, in reverse order.
func (d *Driver) unprovision(deadline time.Time) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The driver is closed: the admin slot must not refuse to dial.
		conn, raw, err := d.dialAny(ctx, drivers.AdminSide, "admin-cleanup", 0)
		if err != nil {
			d.log.Warn("rabbitmq: could not delete what the run created", "err", err)
			return
		}
		defer func() { _ = conn.CloseDeadline(deadline); _ = raw.Close() }()
		for i := len(d.created) - 1; i >= 0; i-- {
			ch, err := conn.Channel()
			if err != nil {
				return
			}
			kind, name, _ := strings.Cut(d.created[i], ":")
			if kind == "exchange" {
				err = ch.ExchangeDelete(name, false, false)
			} else {
				_, err = ch.QueueDelete(name, false, false, false)
			}
			if err != nil {
				d.log.Warn("rabbitmq: delete "+kind, "name", name, "err", err)
			}
			_ = ch.Close()
		}
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
