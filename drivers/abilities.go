package drivers

import (
	"context"
	"errors"
	"net"
	"time"
)

// This file holds the optional abilities a Driver or Consumer may have. Chaos
// actions find them by type assertion, so neither chaos nor the engine
// imports a concrete driver. Each is small and documented with what must be
// true when its method returns.

// Side says which half of the traffic a connection belongs to, so faults can
// be applied to producers or consumers alone.
type Side int

const (
	ProducerSide Side = iota // producers' connections
	ConsumerSide             // consumers' connections
	AdminSide                // setup and administration (topic creation, provisioning)
)

func (s Side) String() string {
	switch s {
	case ProducerSide:
		return "producers"
	case ConsumerSide:
		return "consumers"
	}
	return "admin"
}

// DialFunc opens a network connection for one side. When Env.Dial is set,
// drivers open every connection to the system under test through it (for
// Kafka: to every broker, including the addresses brokers advertise), so the
// harness can put a fault-injecting proxy in the path.
type DialFunc func(ctx context.Context, side Side, network, address string) (net.Conn, error)

// RestartMode says how a broker goes down.
type RestartMode int

const (
	// Graceful stops the broker cleanly (flush, close connections).
	Graceful RestartMode = iota
	// Kill stops it abruptly, as kill -9 would: nothing is flushed.
	Kill
)

// AllBrokers selects every broker in BrokerRestarter.RestartBroker.
const AllBrokers = -1

// BrokerRestarter is a driver that can restart the brokers it manages (an
// embedded Kafka cluster, a managed RabbitMQ node), keeping their data.
type BrokerRestarter interface {
	// Brokers lists the ids RestartBroker accepts.
	Brokers() []int
	// RestartBroker stops broker id (or AllBrokers), waits down, starts it
	// again and returns once it accepts connections.
	RestartBroker(ctx context.Context, id int, mode RestartMode, down time.Duration) error
}

// BrokerPauser is a driver that can make a broker it manages hang without
// dying (SIGSTOP): its sockets stay open and nothing answers, as on a
// frozen host or in a very long GC pause, so peers and clients notice only
// through their own timeouts.
type BrokerPauser interface {
	// PauseBroker freezes broker id (one of BrokerRestarter.Brokers, or
	// AllBrokers) and returns a function that resumes it, safe to call
	// more than once. A paused broker is resumed when the driver closes at
	// the latest.
	PauseBroker(ctx context.Context, id int) (resume func() error, err error)
}

// BrokerPartitioner is a driver that can cut one broker of a cluster it
// manages off from the other brokers, while clients may still reach it.
type BrokerPartitioner interface {
	// PartitionBroker isolates broker id from the other brokers and
	// returns a function that heals the partition, safe to call more than
	// once. A partition is healed when the driver closes at the latest.
	PartitionBroker(ctx context.Context, id int) (heal func() error, err error)
}

// LeaderLocator is a driver that can say which broker leads each of its
// queues (RabbitMQ: a quorum queue's or a stream's Raft leader, the node a
// classic queue lives on), so faults can target the leader and report
// where leadership was before and after.
type LeaderLocator interface {
	// Leaders returns queue name -> broker id (as BrokerRestarter.Brokers
	// names them) for each queue the driver's consumers read; -1 when the
	// queue has no leader at the moment.
	Leaders(ctx context.Context) (map[string]int, error)
}

// BrokerLister is implemented by a driver's options value (what
// Kind.Options returns) when it knows, before the driver opens, which
// brokers a driver so configured manages, so scenario validation can
// reject a fault aimed at a broker that will not exist.
type BrokerLister interface {
	BrokerIDs() []int
}

// LeaderMover is a driver that can move partition leadership (Kafka).
type LeaderMover interface {
	// MoveLeaders gives every partition a different leader where possible
	// and returns once clients can find the new leaders.
	MoveLeaders(ctx context.Context) error
}

// ProtocolFault fails requests at the broker with a protocol error code.
type ProtocolFault struct {
	// Request names the request kind: produce, fetch, end-txn, commit, ...
	// as the driver documents them.
	Request string
	// Error is the protocol error name, e.g. REQUEST_TIMED_OUT,
	// NOT_LEADER_FOR_PARTITION. Where the protocol allows it, a timeout
	// fault is answered after the work is done (so a produce is appended
	// and the client retries: real duplicates without idempotence).
	Error string
	// Count is how many requests to fail; 0 means every matching request
	// until the fault is removed.
	Count int
}

// ProtocolFaulter is a driver that can inject broker-side protocol errors.
type ProtocolFaulter interface {
	// InjectFault starts failing matching requests and returns a function
	// that removes the fault; remove is safe to call more than once.
	InjectFault(ctx context.Context, f ProtocolFault) (remove func(), err error)
}

// ErrCrashed is what Consume returns after Crash.
var ErrCrashed = errors.New("consumer crashed")

// Crasher is a Consumer that can die abruptly: no offset commit, no ack, no
// leave-group where the protocol allows it, as a process killed with -9.
// Messages it held are redelivered to other consumers (or to a new consumer
// made with the same id) after the system notices.
type Crasher interface {
	// Crash makes Consume return ErrCrashed promptly and releases the
	// consumer's connections without any clean shutdown.
	Crash()
}

// Processor modes, as ProcessorSpec.Mode and scenarios name them.
const (
	// ExactlyOnce: consume, produce and commit the consumed offsets in one
	// transaction (Kafka: franz-go's GroupTransactSession), reading the
	// input with read_committed.
	ExactlyOnce = "exactly-once"
	// AtLeastOnce: produce, wait for the confirmations, then commit the
	// consumed offsets now and then; what was produced after the last
	// commit is processed again after a crash.
	AtLeastOnce = "at-least-once"
)

// ProcessorSpec configures spate's built-in processor.
type ProcessorSpec struct {
	// Mode is ExactlyOnce or AtLeastOnce.
	Mode string
	// Output is the options (a Kind.Options result) of the pipeline's
	// output end, of the same kind as the driver that makes the processor:
	// where the processed messages go.
	Output any
	// CommitInterval is how long a transaction stays open (ExactlyOnce) or
	// how often consumed offsets are committed (AtLeastOnce); 0 means the
	// driver's default.
	CommitInterval time.Duration
}

// ProcessorMaker is a driver that can run spate's built-in pipeline
// processor: a consume-transform-produce loop that reads what the driver's
// producers send and writes every message again, stamp and all, to the
// pipeline's output, as a real exactly-once (or at-least-once) service
// would.
type ProcessorMaker interface {
	// NewProcessor returns processor instance id, ready (subscribed) when
	// it returns. Its Consume runs the loop: it hands each batch of input
	// deliveries to the Handler before processing it (so the engine can
	// pause or slow it), and returns as a Consumer's does. Instances of one
	// run share the work as a consumer group does. A processor is a
	// Crasher: Crash kills it mid-work, as kill -9 would, leaving its open
	// transaction or uncommitted offsets behind. A new processor made with
	// the same id takes over its identity (Kafka: the transactional id,
	// which fences the dead one and aborts what it left open).
	NewProcessor(ctx context.Context, id int, spec ProcessorSpec) (Consumer, error)
}

// PeerOpener is a driver that can open another driver of its kind on the
// same system, for the output end of a pipeline: the built-in processor
// needs both ends on one system (Kafka: one cluster, so consumed offsets
// and produced records commit in one transaction).
type PeerOpener interface {
	// OpenPeer opens a driver with options (a Kind.Options result of the
	// same kind) on this driver's system where options name none of its
	// own (Kafka: no brokers, or brokers: embedded). The peer shares
	// nothing else and is closed on its own; it never stops the system.
	OpenPeer(ctx context.Context, options any, env Env) (Driver, error)
}

// AbilityLister is implemented by a driver's options value (what
// Kind.Options returns) to say, before the driver opens, which abilities a
// driver so configured will have. Scenario validation uses it to reject a
// fault the driver cannot perform, with the reason.
type AbilityLister interface {
	Abilities() []string
}

// HasAbility reports whether options (a Kind.Options result) lists ability.
func HasAbility(options any, ability string) bool {
	l, ok := options.(AbilityLister)
	if !ok {
		return false
	}
	for _, a := range l.Abilities() {
		if a == ability {
			return true
		}
	}
	return false
}
