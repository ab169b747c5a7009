package scenarios

// Ability names: what a driver's options list (drivers.AbilityLister)
// to say what the driver can do. Validation here and the drivers both
// read them, and drivers imports scenarios, so they live here, once.
const (
	AbilityBrokerRestart = "broker-restart" // the driver implements drivers.BrokerRestarter
	AbilityLeaderMove    = "leader-move"    // drivers.LeaderMover
	AbilityProtocolError = "protocol-error" // drivers.ProtocolFaulter
	AbilityConsumerCrash = "consumer-crash" // its consumers implement drivers.Crasher
	AbilityDial          = "dial"           // it opens every connection through drivers.Env.Dial
	AbilityBrokerPause   = "broker-pause"   // drivers.BrokerPauser
	AbilityLeaderLocate  = "leader-locate"  // drivers.LeaderLocator
	// AbilityBrokerPartition: drivers.BrokerPartitioner, on a cluster of
	// at least two brokers.
	AbilityBrokerPartition = "broker-partition"
	// AbilityPoison: its consumers fail to process messages whose stamp
	// carries stamp.FlagPoison (reject them, or skip them to a dead-letter
	// topic) and, when the scenario names a dead-letter queue, deliver
	// what arrives there with Delivery.DeadLetter set.
	AbilityPoison = "poison"
	// AbilityReadCommitted: its consumers deliver only messages of
	// committed transactions, so a delivered message whose transaction was
	// aborted (drivers.ErrAborted) is an aborted read, a violation; without
	// it such a message is merely visible (read_uncommitted).
	AbilityReadCommitted = "read-committed"
	// AbilityProcessor: the driver implements drivers.ProcessorMaker and
	// drivers.PeerOpener, so it can run spate's built-in pipeline
	// processor between its own topic and a peer's.
	AbilityProcessor = "processor"
	// AbilityFanOut: its consumers honour drivers.Env.Subscriptions:
	// consumers of different subscriptions each receive every message
	// (Kafka: a consumer group per subscription), consumers of the same
	// one compete (subscriptions > 1).
	AbilityFanOut = "fan-out"
	// AbilityOwnReader: each consumer reads every message by itself, with
	// no competing consumers (a RabbitMQ stream read over AMQP 0.9.1), so
	// each consumer must be a subscription of its own, or the copies the
	// others read would count as duplicates.
	AbilityOwnReader = "own-reader"
	// AbilityShared: the system under test lives outside this process
	// (external brokers, not an embedded cluster or a managed node), so
	// the shards of a distributed run, each its own process, share it;
	// opened with drivers.Env.Attach, the driver neither creates nor
	// removes what the coordinator provisions.
	AbilityShared = "shared"
)

// hasAbility reports whether a driver's options list ability, as
// drivers.HasAbility does.
func hasAbility(options any, ability string) bool {
	l, ok := options.(interface{ Abilities() []string })
	return ok && contains(l.Abilities(), ability)
}
