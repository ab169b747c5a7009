package rabbitmq

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"gopkg.in/yaml.v3"

	"github.com/spate-dev/spate/scenarios"
)

// Defaults and limits of the options.
const (
	Managed               = "managed" // the url that makes spate run its own private node
	DefaultConfirmWindow  = 1000      // unconfirmed messages per producer channel
	MaxConfirmWindow      = 1 << 20
	DefaultPrefetch       = 1000 // unacknowledged deliveries per consumer channel
	MaxChannels           = 64   // per producer or consumer
	MaxRoutingKeys        = 1 << 16
	DefaultConnectTimeout = 10 * time.Second // one attempt: TCP and AMQP handshake
	DefaultReconnect      = time.Minute      // how long clients keep reconnecting
	DefaultHeartbeat      = 10 * time.Second
	HeaderName            = "spate-stamp" // the AMQP header that carries the stamp
)

// Typed values of the options, decoded once (the options table says what
// each one does).
type (
	ExchangeKind string // exchange.kind
	QueueType    string // queue.type
	Placement    string // stamp: where the stamp travels
	// StreamOffset is queue.offset: a named position (OffsetFirst, ...),
	// an RFC 3339 timestamp or an offset (a whole number).
	StreamOffset string
	Overflow     string // queue.overflow (x-overflow)
)

// The values the options accept.
const (
	DirectExchange   ExchangeKind = "direct"
	TopicExchange    ExchangeKind = "topic"
	FanoutExchange   ExchangeKind = "fanout"
	HeadersExchange  ExchangeKind = "headers"
	ClassicQueue     QueueType    = "classic"
	QuorumQueue      QueueType    = "quorum"
	StreamQueue      QueueType    = "stream"
	StampInBody      Placement    = "body"   // at the start of the body only
	StampInHeader    Placement    = "header" // also in the AMQP header HeaderName
	OffsetFirst      StreamOffset = "first"
	OffsetLast       StreamOffset = "last"
	OffsetNext       StreamOffset = "next"
	DropHead         Overflow     = "drop-head" // RabbitMQ's default: the oldest message goes
	RejectPublish    Overflow     = "reject-publish"
	RejectPublishDLX Overflow     = "reject-publish-dlx" // nacked and dead-lettered
)

var (
	ExchangeKinds   = []ExchangeKind{DirectExchange, TopicExchange, FanoutExchange, HeadersExchange}
	QueueTypes      = []QueueType{ClassicQueue, QuorumQueue, StreamQueue}
	StampPlacements = []Placement{StampInBody, StampInHeader}
	StreamOffsets   = []StreamOffset{OffsetFirst, OffsetLast, OffsetNext}
	Overflows       = []Overflow{DropHead, RejectPublish, RejectPublishDLX}
)

// Options configures the driver. The zero value is not ready for use: start
// from DefaultOptions. Each field is the option of the same name in the
// package doc's options table (Queue.MaxLength is queue.max-length,
// ProducerConnections connections.producers, ...), where a zero that
// means a default says so; Node, Cluster and NodeOptions are for Go
// callers only.
type Options struct {
	URL                 string // amqp://..., amqps://... or Managed; "" with URLs
	URLs                []string
	Nodes               int               // 0 or 1: a single node
	PartitionHandling   PartitionHandling // "": DefaultPartitionHandling
	Exchange            ExchangeOptions
	Queue               QueueOptions
	RoutingKey          string
	RoutingKeys         int
	Persistent          bool
	Confirms            bool
	ConfirmWindow       int
	Mandatory           bool
	Prefetch            int
	AutoAck             bool
	SingleActive        bool
	ProducerConnections int
	ConsumerConnections int
	ProducerChannels    int
	ConsumerChannels    int
	Stamp               Placement
	Reject              float64
	DeadLetter          string
	Seed                int64
	ConnectTimeout      time.Duration
	Reconnect           time.Duration
	Heartbeat           time.Duration
	Keep                bool

	// Node, when not nil, is a managed node started by the caller (a test
	// suite sharing one node); the driver uses it as if url were managed,
	// can restart it, and does not stop it.
	Node *Node
	// Cluster, when not nil, is a managed cluster started by the caller,
	// used as Node is (Nodes is then its size).
	Cluster *Cluster
	// NodeOptions configures the node that url: managed starts.
	NodeOptions NodeOptions
}

// ExchangeOptions names the exchange messages are published to.
type ExchangeOptions struct {
	Name    string // "" is the default exchange, which routes by queue name
	Kind    ExchangeKind
	Durable bool
}

// QueueOptions describes the queue spate consumes; a zero count or ""
// leaves the setting to RabbitMQ (Name: spate-<run id>, Offset: next).
type QueueOptions struct {
	Name                   string
	Durable                bool
	Type                   QueueType
	Exclusive              bool
	QuorumInitialGroupSize int // x-quorum-initial-group-size
	DeliveryLimit          int // x-delivery-limit
	MaxLength              int // x-max-length
	Overflow               Overflow
	Offset                 StreamOffset
	// Arguments are extra x-arguments, e.g. x-message-ttl: int64(60000).
	// Values are bool, int64, float64 or string.
	Arguments map[string]any
}

// DefaultOptions returns the options of `driver: rabbitmq`: a managed node,
// the default exchange, a durable classic queue named after the run,
// persistent messages with publisher confirms (window 1000), manual acks
// with prefetch 1000, one connection and one channel per producer and per
// consumer, the stamp at the start of the body only.
func DefaultOptions() Options {
	return Options{
		URL:              Managed,
		Exchange:         ExchangeOptions{Kind: DirectExchange, Durable: true},
		Queue:            QueueOptions{Durable: true, Type: ClassicQueue},
		Persistent:       true,
		Confirms:         true,
		ConfirmWindow:    DefaultConfirmWindow,
		Prefetch:         DefaultPrefetch,
		ProducerChannels: 1,
		ConsumerChannels: 1,
		Stamp:            StampInBody,
		Seed:             1,
		ConnectTimeout:   DefaultConnectTimeout,
		Reconnect:        DefaultReconnect,
		Heartbeat:        DefaultHeartbeat,
	}
}

// options is the driver's options, declared once: the scenario block is
// decoded, Go callers' options checked and the options tables of the
// README and the package doc written from these rows. Rules between
// options are Options.check's.
//
//go:generate go test -run TestOptionsDocs -update-docs .
var options = scenarios.OptionsTable[Options]{
	Defaults: DefaultOptions,
	Opts: []scenarios.Opt[Options]{
		scenarios.StrOpt("url", func(o *Options) *string { return &o.URL }, nil,
			"one broker, or a private node (a cluster with `nodes`) spate starts on loopback and stops at the end").
			WithValues("`managed`, or `amqp://user:pass@host:port/vhost`, `amqps://...`"),
		scenarios.IntOpt("nodes", func(o *Options) *int { return &o.Nodes }, 1, MaxNodes,
			"with `url: managed`: the nodes of a private cluster (see Clusters in the driver's README)").Optional(func(o *Options) bool { return o.Nodes == 0 }).WithDefault("`1`"),
		scenarios.NamedEnumOpt("partition-handling", "partition handling", func(o *Options) *PartitionHandling { return &o.PartitionHandling },
			PartitionHandlings, "with `nodes` ≥ 2: the cluster's `cluster_partition_handling`").
			Optional(func(o *Options) bool { return o.PartitionHandling == "" }).WithDefault("`" + string(DefaultPartitionHandling) + "`"),
		scenarios.ValueOpt("urls", "list of `amqp://` URLs", func(o *Options) *[]string { return &o.URLs }, func(v []string) string {
			if len(v) == 0 {
				return "needs at least one amqp:// or amqps:// URL, one per node of the cluster"
			}
			return ""
		}, "the nodes of an existing cluster, instead of `url`: clients spread over them and reconnect to another when theirs goes away").
			Optional(func(o *Options) bool { return len(o.URLs) == 0 }).WithDefault("none"),
		scenarios.BlockOpt("exchange", func(*Options) {}, nil, "the exchange messages are published to").WithDefault("the default exchange"),
		scenarios.StrOpt("exchange.name", func(o *Options) *string { return &o.Exchange.Name }, nil,
			"none: the default exchange, which routes by queue name; a name is needed for several subscriptions over classic or quorum queues (spate declares it if it does not exist)").WithDefault("none"),
		scenarios.NamedEnumOpt("exchange.kind", "exchange kind", func(o *Options) *ExchangeKind { return &o.Exchange.Kind }, ExchangeKinds,
			"the exchange's type; the default exchange is `direct`"),
		scenarios.BoolOpt("exchange.durable", func(o *Options) *bool { return &o.Exchange.Durable }, "the exchange survives a broker restart"),
		scenarios.BlockOpt("queue", func(*Options) {}, nil, "the queue spate consumes (with several subscriptions, the stem of their queues' names)").WithDefault("a durable classic queue"),
		scenarios.StrOpt("queue.name", func(o *Options) *string { return &o.Queue.Name }, nil,
			"created and deleted by spate unless it existed (or `keep`)").WithDefault("`spate-<run id>`"),
		scenarios.NamedEnumOpt("queue.type", "queue type", func(o *Options) *QueueType { return &o.Queue.Type }, QueueTypes,
			"see Queue types in the driver's README"),
		scenarios.BoolOpt("queue.durable", func(o *Options) *bool { return &o.Queue.Durable },
			"the queue survives a broker restart; quorum queues and streams are always durable"),
		scenarios.BoolOpt("queue.exclusive", func(o *Options) *bool { return &o.Queue.Exclusive },
			"classic only: the queue belongs to one connection; needs `connections: {consumers: 1}`"),
		scenarios.ValueOpt("queue.quorum-initial-group-size", "1..nodes", func(o *Options) *int { return &o.Queue.QuorumInitialGroupSize }, atLeastOne,
			"quorum queues: replicas (`x-quorum-initial-group-size`)").Optional(func(o *Options) bool { return o.Queue.QuorumInitialGroupSize == 0 }).WithDefault("every node"),
		scenarios.ValueOpt("queue.delivery-limit", "≥ 1", func(o *Options) *int { return &o.Queue.DeliveryLimit }, atLeastOne,
			"quorum queues: deliveries of a message before it is dropped or dead-lettered (`x-delivery-limit`)").Optional(func(o *Options) bool { return o.Queue.DeliveryLimit == 0 }).WithDefault("none"),
		scenarios.IntOpt("queue.max-length", func(o *Options) *int { return &o.Queue.MaxLength }, 1, 0,
			"most messages the queue holds (`x-max-length`); beyond it `overflow` decides").Optional(func(o *Options) bool { return o.Queue.MaxLength == 0 }).WithDefault("none"),
		scenarios.NamedEnumOpt("queue.overflow", "overflow", func(o *Options) *Overflow { return &o.Queue.Overflow }, Overflows,
			"with `max-length` (`x-overflow`): `drop-head` drops the oldest message (lost, if spate was owed it), `reject-publish` nacks the publish (failed), `reject-publish-dlx` nacks it and dead-letters it").
			Optional(func(o *Options) bool { return o.Queue.Overflow == "" }).WithDefault("`drop-head`"),
		scenarios.ValueOpt("queue.offset", "`first`, `last`, `next`, an RFC 3339 timestamp, an offset", func(o *Options) *StreamOffset { return &o.Queue.Offset },
			func(v StreamOffset) string {
				if _, err := streamOffset(v); v != "" && err != nil {
					return err.Error()
				}
				return ""
			}, "streams: where consumers start (`x-stream-offset`)").WithDefault("`next`"),
		scenarios.CustomOpt("queue.arguments", "mapping of x-arguments", "extra x-arguments, e.g. `x-message-ttl`, `x-max-length-bytes`: numbers, strings, true or false",
			decodeArguments, nil, nil),
		scenarios.StrOpt("routing-key", func(o *Options) *string { return &o.RoutingKey }, nil, "fixed routing key (another than the queue name needs an exchange)").WithDefault("the queue name"),
		scenarios.IntOpt("routing-keys", func(o *Options) *int { return &o.RoutingKeys }, 0, MaxRoutingKeys,
			"N > 0: each producer goes round-robin over the keys `<routing-key>-0` .. `<routing-key>-(N-1)` (needs an exchange)"),
		scenarios.BoolOpt("persistent", func(o *Options) *bool { return &o.Persistent }, "delivery mode 2: written to disk"),
		scenarios.BoolOpt("confirms", func(o *Options) *bool { return &o.Confirms }, "publisher confirms; `false` is fire-and-forget (every outcome unconfirmed)"),
		scenarios.ValueOpt("confirm-window", fmt.Sprintf("1..%d", MaxConfirmWindow), func(o *Options) *int { return &o.ConfirmWindow }, nil,
			"unconfirmed messages per producer channel; Send blocks beyond it"),
		scenarios.BoolOpt("mandatory", func(o *Options) *bool { return &o.Mandatory }, "unroutable messages come back (basic.return) and count as failed"),
		scenarios.ValueOpt("prefetch", "0..65535", func(o *Options) *int { return &o.Prefetch }, func(v int) string {
			if v < 0 || v > math.MaxUint16 {
				return fmt.Sprintf("must be a whole number from 0 (unlimited) to 65535, got %d", v)
			}
			return ""
		}, "QoS: unacknowledged deliveries per consumer channel (0 unlimited); streams need 1 or more"),
		scenarios.BoolOpt("auto-ack", func(o *Options) *bool { return &o.AutoAck }, "the broker forgets a message once sent (not for streams)"),
		scenarios.BoolOpt("single-active", func(o *Options) *bool { return &o.SingleActive },
			"only one consumer receives at a time; the broker fails over to another when it goes (`x-single-active-consumer`; not for streams)"),
		scenarios.BlockOpt("connections", func(*Options) {}, nil, "AMQP connections of the producers and of the consumers").WithDefault("one each"),
		scenarios.ValueOpt("connections.producers", "≥ 0", func(o *Options) *int { return &o.ProducerConnections }, atLeastZero("producer"),
			"connections the producers share round-robin by producer id; 0: one per producer"),
		scenarios.ValueOpt("connections.consumers", "≥ 0", func(o *Options) *int { return &o.ConsumerConnections }, atLeastZero("consumer"),
			"connections the consumers share round-robin by consumer id; 0: one per consumer"),
		scenarios.BlockOpt("channels", func(*Options) {}, nil, "AMQP channels of each producer and of each consumer").WithDefault("one each"),
		scenarios.IntOpt("channels.producers", func(o *Options) *int { return &o.ProducerChannels }, 1, MaxChannels,
			"channels per producer; its messages go round-robin over them, so with more than one they may be reordered"),
		scenarios.IntOpt("channels.consumers", func(o *Options) *int { return &o.ConsumerChannels }, 1, MaxChannels, "channels per consumer (a stream: 1)"),
		scenarios.NamedEnumOpt("stamp", "stamp placement", func(o *Options) *Placement { return &o.Stamp }, StampPlacements,
			"where the 48-byte stamp travels: at the start of the body only, or also in the AMQP header `spate-stamp` (which costs the broker: about 30% fewer persistent messages/s on RabbitMQ 3.10)"),
		scenarios.RatioOpt("reject", func(o *Options) *float64 { return &o.Reject },
			"fraction of deliveries consumers reject (basic.nack, no requeue), seeded; not handed to the run (not for streams)"),
		scenarios.StrOpt("dead-letter", func(o *Options) *string { return &o.DeadLetter }, nil,
			"a queue spate declares, routes rejected (and expired, and overflowing) messages to, and reads: `dead_lettered` (not for streams)").WithDefault("none"),
		scenarios.Int64Opt("seed", func(o *Options) *int64 { return &o.Seed }, "seeds the reject decisions"),
		scenarios.DurOpt("connect-timeout", func(o *Options) *time.Duration { return &o.ConnectTimeout }, 0, 0,
			"bounds one connection attempt, TCP and AMQP handshake (more than 0s)"),
		scenarios.DurOpt("reconnect", func(o *Options) *time.Duration { return &o.Reconnect }, 0, 0,
			"how long a client keeps reconnecting after losing its connection before its Send or Consume fails; 0: never"),
		scenarios.DurOpt("heartbeat", func(o *Options) *time.Duration { return &o.Heartbeat }, 0, 0, "AMQP heartbeat interval; 0: the server's"),
		scenarios.BoolOpt("keep", func(o *Options) *bool { return &o.Keep }, "keep the queues and exchange spate created"),
	},
}

// atLeastOne is the problem of a count given as 0 or less, which is better
// left out for RabbitMQ's default.
func atLeastOne(v int) string {
	if v < 1 {
		return fmt.Sprintf("must be at least 1 (leave it out for RabbitMQ's default), got %d", v)
	}
	return ""
}

// atLeastZero is the problem of a negative connection count.
func atLeastZero(side string) func(int) string {
	return func(v int) string {
		if v < 0 {
			return fmt.Sprintf("must be at least 0 (0: one connection per %s), got %d", side, v)
		}
		return ""
	}
}

// Abilities lists what a driver opened with o can do, for scenario
// validation (drivers.AbilityLister): restart, pause and locate the
// leaders of its brokers when it manages them (url: managed, Node or
// Cluster), partition them when it manages two or more, crash consumers,
// dial through Env.Dial, reject poison messages unless auto-ack or a
// stream (which keeps every message), and fan out (several subscriptions)
// when o names an exchange (a queue each) or reads a stream (each
// subscription reads it all): the default exchange routes each message to
// one queue. A stream's consumers each read every message (own-reader).
func (o Options) Abilities() []string {
	a := []string{scenarios.AbilityConsumerCrash, scenarios.AbilityDial}
	if o.managed() {
		a = append(a, scenarios.AbilityBrokerRestart, scenarios.AbilityBrokerPause, scenarios.AbilityLeaderLocate)
		if o.brokers() >= 2 {
			a = append(a, scenarios.AbilityBrokerPartition)
		}
	} else {
		a = append(a, scenarios.AbilityShared) // brokers of their own: shards can share them
	}
	stream := o.Queue.Type == StreamQueue
	if o.Exchange.Name != "" || stream {
		a = append(a, scenarios.AbilityFanOut)
	}
	if stream {
		a = append(a, scenarios.AbilityOwnReader)
	}
	if !o.AutoAck && !stream { // rejecting needs manual acknowledgements
		a = append(a, scenarios.AbilityPoison)
	}
	return a
}

// BrokerIDs lists the brokers a driver opened with o manages: 0 ..
// nodes-1 with url: managed (or Node, Cluster), none otherwise
// (drivers.BrokerLister).
func (o Options) BrokerIDs() []int {
	if !o.managed() {
		return nil
	}
	ids := make([]int, o.brokers())
	for i := range ids {
		ids[i] = i
	}
	return ids
}

// managed reports whether the driver runs on a node or cluster spate
// manages.
func (o *Options) managed() bool {
	return o.Node != nil || o.Cluster != nil || o.URL == Managed && len(o.URLs) == 0
}

// brokers is the number of managed nodes (0 for an external broker).
func (o *Options) brokers() int {
	switch {
	case o.Cluster != nil:
		return o.Cluster.Size()
	case o.Node != nil:
		return 1
	case o.managed():
		return max(o.Nodes, 1)
	}
	return 0
}

// problem is one mistake in Options: the option's dotted YAML path and
// what is wrong with it.
type problem struct{ key, msg string }

type problems []problem

func (ps *problems) add(key, format string, args ...any) {
	*ps = append(*ps, problem{key, fmt.Sprintf(format, args...)})
}

// check returns the problems of o that relate several options (each
// option's own range and values are the options table's), in field order.
func (o *Options) check() []problem {
	var ps problems
	add := ps.add
	switch {
	case len(o.URLs) > 0:
		if o.URL != "" {
			add("urls", "give url or urls, not both: urls names the nodes of an existing cluster, url one broker or %q", Managed)
		}
		for i, u := range o.URLs {
			if err := checkURL(u); err != nil {
				add(fmt.Sprintf("urls[%d]", i), "%v", err)
			}
		}
	case o.URL != Managed:
		if err := checkURL(o.URL); err != nil {
			add("url", "%v", err)
		}
	}
	if o.Nodes != 1 && o.Nodes != 0 && !(o.URL == Managed && len(o.URLs) == 0) {
		add("nodes", "applies to a cluster spate starts (url: managed); for an existing cluster list its nodes in urls")
	}
	if o.PartitionHandling != "" && (!o.managed() || o.brokers() < 2 || o.Node != nil || o.Cluster != nil) {
		add("partition-handling", "applies to a cluster spate starts (url: managed, nodes: 2 or more)")
	}
	if o.Exchange.Name == "" && o.Exchange.Kind != DirectExchange && slices.Contains(ExchangeKinds, o.Exchange.Kind) {
		add("exchange.kind", "the default exchange (no exchange name) is direct; name an exchange to use a %s one", o.Exchange.Kind)
	}
	if t := o.Queue.Type; t != ClassicQueue && slices.Contains(QueueTypes, t) {
		if !o.Queue.Durable {
			add("queue.durable", "a %s queue is always durable; set durable: true or use type: classic", t)
		}
		if o.Queue.Exclusive {
			add("queue.exclusive", "a %s queue cannot be exclusive; use type: classic", t)
		}
	}
	o.checkQueue(add)
	o.checkStream(add)
	if o.Queue.Exclusive && o.ConsumerConnections != 1 {
		add("queue.exclusive", "an exclusive queue belongs to one connection; set connections: {consumers: 1} so every consumer shares it")
	}
	o.checkArguments(add)
	if o.Exchange.Name == "" {
		if o.RoutingKey != "" && o.RoutingKey != o.Queue.Name {
			add("routing-key", "the default exchange routes by queue name, so routing-key would make every message unroutable; name an exchange or leave routing-key out")
		}
		if o.RoutingKeys > 0 {
			add("routing-keys", "the default exchange routes by queue name; name an exchange (e.g. exchange: {name: spate, kind: direct}) to route over several keys")
		}
	}
	if o.Confirms && (o.ConfirmWindow < 1 || o.ConfirmWindow > MaxConfirmWindow) {
		add("confirm-window", "must be a whole number from 1 to %d, got %d", MaxConfirmWindow, o.ConfirmWindow)
	}
	if o.Reject > 0 && o.AutoAck {
		add("reject", "consumers cannot reject with auto-ack: true (the broker already forgot the message); set auto-ack: false")
	}
	if o.DeadLetter != "" && o.DeadLetter == o.Queue.Name {
		add("dead-letter", "the dead-letter queue must differ from the queue %q", o.Queue.Name)
	}
	if o.ConnectTimeout <= 0 {
		add("connect-timeout", "must be more than 0s, got %v", o.ConnectTimeout)
	}
	return ps
}

// checkQueue checks the options that apply to some queue types only.
func (o *Options) checkQueue(add func(key, format string, args ...any)) {
	q := &o.Queue
	if q.QuorumInitialGroupSize != 0 {
		if n := o.brokers(); q.Type != QuorumQueue {
			add("queue.quorum-initial-group-size", "applies to quorum queues; set type: quorum or leave it out")
		} else if n > 0 && q.QuorumInitialGroupSize > n {
			add("queue.quorum-initial-group-size", "must be at most the %d nodes of the managed cluster, got %d", n, q.QuorumInitialGroupSize)
		}
	}
	if q.DeliveryLimit != 0 && q.Type != QuorumQueue {
		add("queue.delivery-limit", "applies to quorum queues; set type: quorum or leave it out")
	}
	if q.Overflow != "" && q.MaxLength == 0 && q.Arguments["x-max-length"] == nil && q.Arguments["x-max-length-bytes"] == nil {
		add("queue.overflow", "applies to a queue with a length limit; set max-length or leave overflow out")
	}
	if q.Type != StreamQueue && q.Offset != "" {
		add("queue.offset", "applies to streams; set type: stream or leave it out")
	}
}

// checkStream checks the options of streams: consumed over AMQP 0.9.1, a
// stream needs manual acknowledgements with a prefetch limit, and keeps
// every message, so nothing is rejected or dead-lettered, and it has no
// length limit in messages.
func (o *Options) checkStream(add func(key, format string, args ...any)) {
	if o.Queue.Type != StreamQueue {
		return
	}
	if o.Prefetch < 1 {
		add("prefetch", "a stream needs prefetch (1 to 65535): RabbitMQ delivers a stream only to consumers with a prefetch limit")
	}
	if o.AutoAck {
		add("auto-ack", "a stream's consumers must acknowledge what they read (auto-ack: false)")
	}
	if o.Reject > 0 {
		add("reject", "a stream keeps every message: consumers cannot reject one (reject: 0)")
	}
	if o.DeadLetter != "" {
		add("dead-letter", "a stream does not dead-letter; leave dead-letter out")
	}
	if o.SingleActive {
		add("single-active", "RabbitMQ has no single active consumer on a stream read over AMQP 0.9.1; leave single-active out")
	}
	if o.ConsumerChannels > 1 {
		add("channels.consumers", "a consumer reads a stream once per channel, so with %d channels it would read every message %d times; set channels: {consumers: 1}", o.ConsumerChannels, o.ConsumerChannels)
	}
	if o.Queue.MaxLength > 0 || o.Queue.Overflow != "" {
		add("queue.max-length", "a stream keeps every message: it has no length limit in messages (limit its size with the argument x-max-length-bytes); leave max-length and overflow out")
	}
}

// streamOffset turns queue.offset into the x-stream-offset argument: a
// named position, a timestamp or an offset.
func streamOffset(s StreamOffset) (any, error) {
	if slices.Contains(StreamOffsets, s) {
		return string(s), nil
	}
	if t, err := time.Parse(time.RFC3339, string(s)); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(string(s), 10, 64); err == nil && n >= 0 {
		return n, nil
	}
	return nil, fmt.Errorf("unknown stream offset %q; valid: first, last, next, an RFC 3339 timestamp (2024-05-01T12:00:00Z) or an offset (0 or more)", s)
}

// checkArguments checks queue.arguments against the options that set
// arguments themselves, and the types of the well-known ones.
func (o *Options) checkArguments(report func(key, format string, args ...any)) {
	q := &o.Queue
	byOption := map[string]bool{ // the arguments options set, when set
		"x-quorum-initial-group-size": q.QuorumInitialGroupSize != 0, "x-delivery-limit": q.DeliveryLimit != 0,
		"x-max-length": q.MaxLength != 0, "x-overflow": q.Overflow != "",
	}
	for _, k := range sortedKeys(q.Arguments) {
		v := q.Arguments[k]
		add := func(format string, args ...any) { report("queue.arguments."+k, format, args...) }
		switch v.(type) {
		case bool, int64, float64, string:
		default:
			add("value of type %T is not supported; use a number, a string, true or false", v)
			continue
		}
		if byOption[k] {
			field := strings.TrimPrefix(k, "x-")
			add("given twice: as queue.%s and as an argument; keep queue.%s", field, field)
			continue
		}
		switch k {
		case "x-queue-type":
			add("set the queue type with queue.type (classic, quorum or stream), not an argument")
		case "x-quorum-initial-group-size", "x-delivery-limit":
			if n, ok := v.(int64); !ok || n < 1 {
				add("must be a whole number of 1 or more, got %v", v)
			}
		case "x-max-length", "x-max-length-bytes", "x-message-ttl", "x-expires", "x-max-priority":
			if n, ok := v.(int64); !ok || n < 0 {
				add("must be a whole number of 0 or more, got %v", v)
			}
		case "x-single-active-consumer":
			b, ok := v.(bool)
			if !ok {
				add("must be true or false, got %v", v)
			} else if o.SingleActive && !b {
				add("contradicts single-active: true")
			}
		case "x-dead-letter-exchange", "x-dead-letter-routing-key":
			if _, ok := v.(string); !ok {
				add("must be a string, got %v", v)
			} else if o.DeadLetter != "" {
				add("dead-letter routes rejected messages to its queue itself; remove %s, or leave dead-letter out and route dead letters yourself", k)
			}
		}
	}
}

// validate returns every problem of o (options made in Go) as one error.
func (o *Options) validate() error {
	var errs []error
	for _, p := range options.Check(o) {
		errs = append(errs, fmt.Errorf("rabbitmq: %s", p))
	}
	for _, p := range o.check() {
		errs = append(errs, fmt.Errorf("rabbitmq: %s: %s", p.key, p.msg))
	}
	return errors.Join(errs...)
}

// decodeOptions is Kind.Options: it decodes the options block n (nil for
// `driver: rabbitmq`) into an Options value, recording every problem on d:
// each option's own with the options table, then those between options,
// each at the option it names and once (not at an option that did not
// decode).
func decodeOptions(d *scenarios.Decoder, n *yaml.Node, field string) any {
	o := options.Decode(d, n, field)
	if len(o.URLs) > 0 && scenarios.Child(n, "url") == nil {
		o.URL = "" // urls replaces the default url
	}
	for _, p := range o.check() {
		scenarios.ReportAt(d, n, field, p.key, p.msg)
	}
	return o
}

// decodeArguments reads queue.arguments: a mapping of names to scalars.
func decodeArguments(d *scenarios.Decoder, n *yaml.Node, field string, o *Options) {
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, field, "want a mapping of x-arguments, e.g. {x-max-length: 10000}")
		return
	}
	args := map[string]any{}
	o.Queue.Arguments = args
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f := field + "." + k.Value
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		var x any = v.Value // a string
		var err error
		switch _, dup := args[k.Value]; {
		case dup:
			d.Errorf(k, f, "given twice")
			continue
		case v.Kind != yaml.ScalarNode || v.Tag == "!!null":
			d.Errorf(v, f, "want a number, a string, true or false")
			continue
		case v.Tag == "!!int":
			if x, err = strconv.ParseInt(v.Value, 0, 64); err != nil {
				d.Errorf(v, f, "%q is out of range", v.Value)
				continue
			}
		case v.Tag == "!!float" || v.Tag == "!!bool":
			if err = v.Decode(&x); err != nil {
				d.Errorf(v, f, "want a number, got %q", v.Value)
				continue
			}
		}
		args[k.Value] = x
	}
}

// checkURL accepts amqp:// and amqps:// URLs the client can parse.
func checkURL(s string) error {
	if s == "" {
		return fmt.Errorf("needs a value: an amqp:// or amqps:// URL, or %q for a private node spate starts", Managed)
	}
	scheme, _, ok := strings.Cut(s, "://")
	if !ok || (scheme != "amqp" && scheme != "amqps") {
		return fmt.Errorf("%q is not an amqp:// or amqps:// URL (nor %q), e.g. amqp://guest:guest@127.0.0.1:5672/", redact(s), Managed)
	}
	if _, err := amqp.ParseURI(s); err != nil {
		return fmt.Errorf("%q is not a valid AMQP URL: %v", redact(s), err)
	}
	return nil
}

// redact hides the password of a URL for messages.
func redact(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return s
	}
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return s
}
