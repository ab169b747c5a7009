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

// Ability names, as AbilityLister reports them.
const (
	AbilityBrokerRestart = "broker-restart" // the driver implements BrokerRestarter
	AbilityLeaderMove    = "leader-move"    // LeaderMover
	AbilityProtocolError = "protocol-error" // ProtocolFaulter
	AbilityConsumerCrash = "consumer-crash" // its consumers implement Crasher
	AbilityDial          = "dial"           // it opens every connection through Env.Dial
	// AbilityPoison: its consumers fail to process messages whose stamp
	// carries stamp.FlagPoison (reject them, or skip them to a dead-letter
	// topic) and, when the scenario names a dead-letter queue, deliver
	// what arrives there with Delivery.DeadLetter set.
	AbilityPoison = "poison"
)

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
