package rabbitmq

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"gopkg.in/yaml.v3"

	"github.com/spate-dev/spate/scenarios"
)

// Defaults and limits of the options.
const (
	// Managed is the url that makes spate run its own private node.
	Managed = "managed"
	// DefaultConfirmWindow is the default number of messages a producer
	// channel may have sent and not yet had confirmed.
	DefaultConfirmWindow = 1000
	// MaxConfirmWindow bounds confirm-window.
	MaxConfirmWindow = 1 << 20
	// DefaultPrefetch is the default number of unacknowledged deliveries
	// the broker sends each consumer channel ahead.
	DefaultPrefetch = 1000
	// MaxChannels bounds channels per producer or consumer.
	MaxChannels = 64
	// MaxRoutingKeys bounds routing-keys.
	MaxRoutingKeys = 1 << 16
	// DefaultConnectTimeout bounds one connection attempt, TCP and AMQP
	// handshake together.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultReconnect is how long clients keep trying to reconnect after
	// losing their connection before they give up and end the run.
	DefaultReconnect = time.Minute
	// DefaultHeartbeat is the AMQP heartbeat interval clients ask for.
	DefaultHeartbeat = 10 * time.Second
	// HeaderName is the AMQP header that carries the 48-byte stamp.
	HeaderName = "spate-stamp"
)

// Exchange kinds, queue types and stamp placements the options accept.
var (
	ExchangeKinds  = []string{"direct", "topic", "fanout", "headers"}
	QueueTypes     = []string{"classic", "quorum", "stream"}
	StampPlacement = []string{"body", "header"}
)

// StreamOffsets are the named positions a stream consumer may start from;
// an RFC 3339 timestamp or an offset (a whole number) are valid too.
var StreamOffsets = []string{"first", "last", "next"}

// Options configures the driver. The zero value is not ready for use: start
// from DefaultOptions. See the package documentation for each field's YAML
// name and meaning.
type Options struct {
	URL        string // amqp://..., amqps://... or Managed; "" with URLs
	Exchange   ExchangeOptions
	Queue      QueueOptions
	RoutingKey string // fixed routing key; "" means the queue's name
	// RoutingKeys > 0 makes each producer go round-robin over the keys
	// RoutingKey-0 .. RoutingKey-(RoutingKeys-1).
	RoutingKeys   int
	Persistent    bool // delivery mode 2 (persistent) rather than 1
	Confirms      bool // publisher confirms; false is fire-and-forget
	ConfirmWindow int  // most unconfirmed messages per producer channel
	Mandatory     bool // unroutable messages come back and count as failed
	Prefetch      int  // QoS prefetch count per consumer channel; 0: unlimited
	AutoAck       bool // the broker forgets a message once it sent it
	SingleActive  bool // x-single-active-consumer on the queue
	// Connection counts: 0 means one connection per producer (consumer).
	ProducerConnections int
	ConsumerConnections int
	// Channels per producer and per consumer (at least 1).
	ProducerChannels int
	ConsumerChannels int
	Stamp            string  // "body" or "header"
	Reject           float64 // fraction of deliveries consumers reject
	DeadLetter       string  // dead-letter queue that spate declares and consumes
	Seed             int64   // seeds the reject decisions
	ConnectTimeout   time.Duration
	Reconnect        time.Duration // 0: never reconnect
	Heartbeat        time.Duration // 0: the server's choice
	Keep             bool          // keep the queues and exchange spate created

	// URLs are the nodes of an existing cluster (instead of URL): clients
	// spread over them and reconnect to another when one goes away.
	URLs []string
	// Nodes is the size of the managed cluster url: managed starts
	// (1..MaxNodes); 0 or 1 is a single node.
	Nodes int
	// PartitionHandling is the managed cluster's
	// cluster_partition_handling ("" for DefaultPartitionHandling).
	PartitionHandling string

	// Node, when not nil, is a managed node started by the caller (a test
	// suite sharing one node); the driver uses it as if url were managed,
	// can restart it, and does not stop it. Not settable from YAML.
	Node *Node
	// Cluster, when not nil, is a managed cluster started by the caller,
	// used as Node is (Nodes is then its size). Not settable from YAML.
	Cluster *Cluster
	// NodeOptions configures the node that url: managed starts.
	NodeOptions NodeOptions
}

// ExchangeOptions names the exchange messages are published to.
type ExchangeOptions struct {
	Name    string // "" is the default exchange, which routes by queue name
	Kind    string // direct, topic, fanout or headers
	Durable bool
}

// QueueOptions describes the queue spate consumes.
type QueueOptions struct {
	Name      string // "" means spate-<run id>, deleted at the end
	Durable   bool
	Type      string // classic, quorum or stream
	Exclusive bool
	// QuorumInitialGroupSize is a quorum queue's replicas
	// (x-quorum-initial-group-size); 0: every node, as RabbitMQ decides.
	QuorumInitialGroupSize int
	// DeliveryLimit is how often a quorum queue delivers a message before
	// it drops (or dead-letters) it (x-delivery-limit); 0: no limit.
	DeliveryLimit int
	// Offset is where a stream's consumers start (x-stream-offset): first,
	// last, next, an RFC 3339 timestamp or an offset; "" is next.
	Offset string
	// Arguments are extra x-arguments, e.g. x-max-length: int64(1000).
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
		Exchange:         ExchangeOptions{Kind: "direct", Durable: true},
		Queue:            QueueOptions{Durable: true, Type: "classic"},
		Persistent:       true,
		Confirms:         true,
		ConfirmWindow:    DefaultConfirmWindow,
		Prefetch:         DefaultPrefetch,
		ProducerChannels: 1,
		ConsumerChannels: 1,
		Stamp:            "body",
		Seed:             1,
		ConnectTimeout:   DefaultConnectTimeout,
		Reconnect:        DefaultReconnect,
		Heartbeat:        DefaultHeartbeat,
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
	stream := o.Queue.Type == "stream"
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

// check returns every problem of o, in field order.
func (o *Options) check() []problem {
	var ps []problem
	add := func(key, format string, args ...any) {
		ps = append(ps, problem{key, fmt.Sprintf(format, args...)})
	}
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
	switch {
	case o.Nodes != 1 && o.Nodes != 0 && !(o.URL == Managed && len(o.URLs) == 0):
		add("nodes", "applies to a cluster spate starts (url: managed); for an existing cluster list its nodes in urls")
	case o.Nodes < 0 || o.Nodes > MaxNodes:
		add("nodes", "must be a whole number from 1 to %d, got %d", MaxNodes, o.Nodes)
	}
	if o.PartitionHandling != "" {
		switch {
		case !oneOf(o.PartitionHandling, PartitionHandlings):
			add("partition-handling", "unknown partition handling %q; valid: %s", o.PartitionHandling, strings.Join(PartitionHandlings, ", "))
		case !o.managed() || o.brokers() < 2 || o.Node != nil || o.Cluster != nil:
			add("partition-handling", "applies to a cluster spate starts (url: managed, nodes: 2 or more)")
		}
	}
	if !oneOf(o.Exchange.Kind, ExchangeKinds) {
		add("exchange.kind", "unknown exchange kind %q; valid: %s", o.Exchange.Kind, strings.Join(ExchangeKinds, ", "))
	} else if o.Exchange.Name == "" && o.Exchange.Kind != "direct" {
		add("exchange.kind", "the default exchange (no exchange name) is direct; name an exchange to use a %s one", o.Exchange.Kind)
	}
	if !oneOf(o.Queue.Type, QueueTypes) {
		add("queue.type", "unknown queue type %q; valid: %s", o.Queue.Type, strings.Join(QueueTypes, ", "))
	} else if o.Queue.Type != "classic" {
		t := o.Queue.Type
		if !o.Queue.Durable {
			add("queue.durable", "a %s queue is always durable; set durable: true or use type: classic", t)
		}
		if o.Queue.Exclusive {
			add("queue.exclusive", "a %s queue cannot be exclusive; use type: classic", t)
		}
	}
	ps = append(ps, o.checkQuorum()...)
	ps = append(ps, o.checkStream()...)
	if o.Queue.Exclusive && o.ConsumerConnections != 1 {
		add("queue.exclusive", "an exclusive queue belongs to one connection; set connections: {consumers: 1} so every consumer shares it")
	}
	ps = append(ps, o.checkArguments()...)
	if o.Exchange.Name == "" {
		if o.RoutingKey != "" && o.RoutingKey != o.Queue.Name {
			add("routing-key", "the default exchange routes by queue name, so routing-key would make every message unroutable; name an exchange or leave routing-key out")
		}
		if o.RoutingKeys > 0 {
			add("routing-keys", "the default exchange routes by queue name; name an exchange (e.g. exchange: {name: spate, kind: direct}) to route over several keys")
		}
	}
	if o.RoutingKeys < 0 || o.RoutingKeys > MaxRoutingKeys {
		add("routing-keys", "must be a whole number from 0 to %d, got %d", MaxRoutingKeys, o.RoutingKeys)
	}
	if o.Confirms && (o.ConfirmWindow < 1 || o.ConfirmWindow > MaxConfirmWindow) {
		add("confirm-window", "must be a whole number from 1 to %d, got %d", MaxConfirmWindow, o.ConfirmWindow)
	}
	if o.Prefetch < 0 || o.Prefetch > math.MaxUint16 {
		add("prefetch", "must be a whole number from 0 (unlimited) to 65535, got %d", o.Prefetch)
	}
	if o.ProducerConnections < 0 {
		add("connections.producers", "must be at least 0 (0: one connection per producer), got %d", o.ProducerConnections)
	}
	if o.ConsumerConnections < 0 {
		add("connections.consumers", "must be at least 0 (0: one connection per consumer), got %d", o.ConsumerConnections)
	}
	if o.ProducerChannels < 1 || o.ProducerChannels > MaxChannels {
		add("channels.producers", "must be a whole number from 1 to %d, got %d", MaxChannels, o.ProducerChannels)
	}
	if o.ConsumerChannels < 1 || o.ConsumerChannels > MaxChannels {
		add("channels.consumers", "must be a whole number from 1 to %d, got %d", MaxChannels, o.ConsumerChannels)
	}
	if !oneOf(o.Stamp, StampPlacement) {
		add("stamp", "unknown stamp placement %q; valid: %s", o.Stamp, strings.Join(StampPlacement, ", "))
	}
	switch {
	case !(o.Reject >= 0 && o.Reject <= 1):
		add("reject", "must be a fraction from 0 to 1, such as 0.05; got %v", o.Reject)
	case o.Reject > 0 && o.AutoAck:
		add("reject", "consumers cannot reject with auto-ack: true (the broker already forgot the message); set auto-ack: false")
	}
	if o.DeadLetter != "" && o.DeadLetter == o.Queue.Name {
		add("dead-letter", "the dead-letter queue must differ from the queue %q", o.Queue.Name)
	}
	if o.ConnectTimeout <= 0 {
		add("connect-timeout", "must be more than 0s, got %v", o.ConnectTimeout)
	}
	if o.Reconnect < 0 || o.Heartbeat < 0 {
		add("reconnect", "reconnect and heartbeat must not be negative, got %v and %v", o.Reconnect, o.Heartbeat)
	}
	return ps
}

// checkQuorum checks the options of quorum queues.
func (o *Options) checkQuorum() []problem {
	var ps []problem
	add := func(key, format string, args ...any) { ps = append(ps, problem{key, fmt.Sprintf(format, args...)}) }
	q := &o.Queue
	if q.QuorumInitialGroupSize != 0 {
		switch n := o.brokers(); {
		case q.Type != "quorum":
			add("queue.quorum-initial-group-size", "applies to quorum queues; set type: quorum or leave it out")
		case q.QuorumInitialGroupSize < 1:
			add("queue.quorum-initial-group-size", "must be at least 1, got %d", q.QuorumInitialGroupSize)
		case n > 0 && q.QuorumInitialGroupSize > n:
			add("queue.quorum-initial-group-size", "must be at most the %d nodes of the managed cluster, got %d", n, q.QuorumInitialGroupSize)
		}
	}
	if q.DeliveryLimit != 0 {
		switch {
		case q.Type != "quorum":
			add("queue.delivery-limit", "applies to quorum queues; set type: quorum or leave it out")
		case q.DeliveryLimit < 1:
			add("queue.delivery-limit", "must be at least 1 (leave it out for no limit), got %d", q.DeliveryLimit)
		}
	}
	return ps
}

// checkStream checks the options of streams: consumed over AMQP 0.9.1, a
// stream needs manual acknowledgements with a prefetch limit, and keeps
// every message, so nothing is rejected or dead-lettered.
func (o *Options) checkStream() []problem {
	var ps []problem
	add := func(key, format string, args ...any) { ps = append(ps, problem{key, fmt.Sprintf(format, args...)}) }
	if o.Queue.Type != "stream" {
		if o.Queue.Offset != "" {
			add("queue.offset", "applies to streams; set type: stream or leave it out")
		}
		return ps
	}
	if o.Queue.Offset != "" {
		if _, err := streamOffset(o.Queue.Offset); err != nil {
			add("queue.offset", "%v", err)
		}
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
	return ps
}

// streamOffset turns queue.offset into the x-stream-offset argument: a
// named position, a timestamp or an offset.
func streamOffset(s string) (any, error) {
	if oneOf(s, StreamOffsets) {
		return s, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return n, nil
	}
	return nil, fmt.Errorf("unknown stream offset %q; valid: %s, an RFC 3339 timestamp (2024-05-01T12:00:00Z) or an offset (0 or more)", s, strings.Join(StreamOffsets, ", "))
}

// checkArguments checks queue.arguments against the options that set
// arguments themselves, and the types of the well-known ones.
func (o *Options) checkArguments() []problem {
	var ps []problem
	for _, k := range sortedKeys(o.Queue.Arguments) {
		v := o.Queue.Arguments[k]
		key := "queue.arguments." + k
		add := func(format string, args ...any) { ps = append(ps, problem{key, fmt.Sprintf(format, args...)}) }
		switch v.(type) {
		case bool, int64, float64, string:
		default:
			add("value of type %T is not supported; use a number, a string, true or false", v)
			continue
		}
		switch k {
		case "x-queue-type":
			add("set the queue type with queue.type (classic, quorum or stream), not an argument")
		case "x-quorum-initial-group-size", "x-delivery-limit":
			field := strings.TrimPrefix(k, "x-")
			if n, ok := v.(int64); !ok || n < 1 {
				add("must be a whole number of 1 or more, got %v", v)
			} else if k == "x-quorum-initial-group-size" && o.Queue.QuorumInitialGroupSize != 0 || k == "x-delivery-limit" && o.Queue.DeliveryLimit != 0 {
				add("given twice: as queue.%s and as an argument; keep queue.%s", field, field)
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
	return ps
}

// validate returns every problem of o as one error.
func (o *Options) validate() error {
	ps := o.check()
	if len(ps) == 0 {
		return nil
	}
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = fmt.Errorf("rabbitmq: %s: %s", p.key, p.msg)
	}
	return errors.Join(errs...)
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

func oneOf(s string, valid []string) bool {
	for _, v := range valid {
		if s == v {
			return true
		}
	}
	return false
}

// yamlOptions is the scenario's options block as written.
type yamlOptions struct {
	URL            string             `yaml:"url"`
	Exchange       yamlExchange       `yaml:"exchange"`
	Queue          yamlQueue          `yaml:"queue"`
	RoutingKey     string             `yaml:"routing-key"`
	RoutingKeys    int                `yaml:"routing-keys"`
	Persistent     bool               `yaml:"persistent"`
	Confirms       bool               `yaml:"confirms"`
	ConfirmWindow  int                `yaml:"confirm-window"`
	Mandatory      bool               `yaml:"mandatory"`
	Prefetch       int                `yaml:"prefetch"`
	AutoAck        bool               `yaml:"auto-ack"`
	SingleActive   bool               `yaml:"single-active"`
	Connections    yamlCounts         `yaml:"connections"`
	Channels       yamlCounts         `yaml:"channels"`
	Stamp          string             `yaml:"stamp"`
	Reject         float64            `yaml:"reject"`
	DeadLetter     string             `yaml:"dead-letter"`
	Seed           int64              `yaml:"seed"`
	ConnectTimeout scenarios.Duration `yaml:"connect-timeout"`
	Reconnect      scenarios.Duration `yaml:"reconnect"`
	Heartbeat      scenarios.Duration `yaml:"heartbeat"`
	Keep           bool               `yaml:"keep"`

	URLs              []string `yaml:"urls"`
	Nodes             int      `yaml:"nodes"`
	PartitionHandling string   `yaml:"partition-handling"`
}

type yamlExchange struct {
	Name    string `yaml:"name"`
	Kind    string `yaml:"kind"`
	Durable bool   `yaml:"durable"`
}

type yamlQueue struct {
	Name                   string     `yaml:"name"`
	Durable                bool       `yaml:"durable"`
	Type                   string     `yaml:"type"`
	Exclusive              bool       `yaml:"exclusive"`
	QuorumInitialGroupSize *int       `yaml:"quorum-initial-group-size"`
	DeliveryLimit          *int       `yaml:"delivery-limit"`
	Offset                 string     `yaml:"offset"`
	Arguments              *yaml.Node `yaml:"arguments"`
}

type yamlCounts struct {
	Producers int `yaml:"producers"`
	Consumers int `yaml:"consumers"`
}

// decodeOptions is Kind.Options: it decodes the options block n (nil for
// `driver: rabbitmq`) into an Options value, recording every problem on d.
func decodeOptions(d *scenarios.Decoder, n *yaml.Node, field string) any {
	def := DefaultOptions()
	if n == nil {
		return def
	}
	y := yamlOptions{
		URL:            def.URL,
		Exchange:       yamlExchange{Kind: def.Exchange.Kind, Durable: def.Exchange.Durable},
		Queue:          yamlQueue{Durable: def.Queue.Durable, Type: def.Queue.Type},
		Persistent:     def.Persistent,
		Confirms:       def.Confirms,
		ConfirmWindow:  def.ConfirmWindow,
		Prefetch:       def.Prefetch,
		Channels:       yamlCounts{Producers: def.ProducerChannels, Consumers: def.ConsumerChannels},
		Stamp:          def.Stamp,
		Seed:           def.Seed,
		ConnectTimeout: scenarios.Duration(def.ConnectTimeout),
		Reconnect:      scenarios.Duration(def.Reconnect),
		Heartbeat:      scenarios.Duration(def.Heartbeat),
	}
	d.Decode(n, field, &y)
	if len(y.URLs) > 0 && scenarios.Child(n, "url") == nil {
		y.URL = "" // urls replaces the default url
	}
	if un := scenarios.Child(n, "urls"); un != nil && len(y.URLs) == 0 && un.Kind == yaml.SequenceNode {
		d.Errorf(un, field+".urls", "needs at least one amqp:// or amqps:// URL, one per node of the cluster")
	}
	if nn := scenarios.Child(n, "nodes"); nn != nil && nn.Tag == "!!int" && y.Nodes == 0 {
		d.Errorf(nn, field+".nodes", "must be a whole number from 1 to %d, got 0", MaxNodes)
	}
	o := Options{
		URL:                 y.URL,
		URLs:                y.URLs,
		Nodes:               y.Nodes,
		PartitionHandling:   y.PartitionHandling,
		Exchange:            ExchangeOptions(y.Exchange),
		Queue:               QueueOptions{Name: y.Queue.Name, Durable: y.Queue.Durable, Type: y.Queue.Type, Exclusive: y.Queue.Exclusive, Offset: y.Queue.Offset},
		RoutingKey:          y.RoutingKey,
		RoutingKeys:         y.RoutingKeys,
		Persistent:          y.Persistent,
		Confirms:            y.Confirms,
		ConfirmWindow:       y.ConfirmWindow,
		Mandatory:           y.Mandatory,
		Prefetch:            y.Prefetch,
		AutoAck:             y.AutoAck,
		SingleActive:        y.SingleActive,
		ProducerConnections: y.Connections.Producers,
		ConsumerConnections: y.Connections.Consumers,
		ProducerChannels:    y.Channels.Producers,
		ConsumerChannels:    y.Channels.Consumers,
		Stamp:               y.Stamp,
		Reject:              y.Reject,
		DeadLetter:          y.DeadLetter,
		Seed:                y.Seed,
		ConnectTimeout:      y.ConnectTimeout.D(),
		Reconnect:           y.Reconnect.D(),
		Heartbeat:           y.Heartbeat.D(),
		Keep:                y.Keep,
	}
	if y.Queue.Arguments != nil {
		o.Queue.Arguments = decodeArguments(d, y.Queue.Arguments, field+".queue.arguments")
	}
	// Given as 0, these must be reported (0 is "not set" in Options).
	for _, f := range []struct {
		key string
		v   *int
		out *int
	}{
		{"quorum-initial-group-size", y.Queue.QuorumInitialGroupSize, &o.Queue.QuorumInitialGroupSize},
		{"delivery-limit", y.Queue.DeliveryLimit, &o.Queue.DeliveryLimit},
	} {
		if f.v == nil {
			continue
		}
		if *f.v == 0 {
			d.Errorf(nodeAt(n, "queue."+f.key), field+".queue."+f.key, "must be at least 1 (leave it out for RabbitMQ's default), got 0")
			continue
		}
		*f.out = *f.v
	}

	// Cross-field and range checks, on fields that decoded: each mistake
	// is reported once, at the option it names.
	failed := map[string]bool{}
	for _, p := range d.Problems() {
		failed[p.Field] = true
	}
	for _, p := range o.check() {
		f := field + "." + p.key
		if failed[f] || strings.HasPrefix(f, field+".queue.arguments") && failed[field+".queue.arguments"] {
			continue
		}
		d.Errorf(nodeAt(n, p.key), f, "%s", p.msg)
	}
	return o
}

// decodeArguments reads queue.arguments: a mapping of names to scalars.
func decodeArguments(d *scenarios.Decoder, n *yaml.Node, field string) map[string]any {
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, field, "want a mapping of x-arguments, e.g. {x-max-length: 10000}")
		return nil
	}
	args := map[string]any{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f := field + "." + k.Value
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		if _, dup := args[k.Value]; dup {
			d.Errorf(k, f, "given twice")
			continue
		}
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			d.Errorf(v, f, "want a number, a string, true or false")
			continue
		}
		switch v.Tag {
		case "!!int":
			x, err := strconv.ParseInt(v.Value, 0, 64)
			if err != nil {
				d.Errorf(v, f, "%q is out of range", v.Value)
				continue
			}
			args[k.Value] = x
		case "!!float":
			var x float64
			if err := v.Decode(&x); err != nil {
				d.Errorf(v, f, "want a number, got %q", v.Value)
				continue
			}
			args[k.Value] = x
		case "!!bool":
			var x bool
			_ = v.Decode(&x)
			args[k.Value] = x
		default:
			args[k.Value] = v.Value
		}
	}
	return args
}

// nodeAt returns the node of a dotted option path in n (a part may end in
// an index, urls[1]), or the nearest ancestor that exists, for problem
// positions.
func nodeAt(n *yaml.Node, path string) *yaml.Node {
	at := n
	for _, part := range strings.Split(path, ".") {
		key, index, indexed := strings.Cut(strings.TrimSuffix(part, "]"), "[")
		c := scenarios.Child(at, key)
		if c == nil {
			return at
		}
		at = c
		if indexed {
			i, err := strconv.Atoi(index)
			if err != nil || at.Kind != yaml.SequenceNode || i < 0 || i >= len(at.Content) {
				return at
			}
			at = at.Content[i]
		}
	}
	return at
}
