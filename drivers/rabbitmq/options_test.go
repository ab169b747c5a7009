package rabbitmq_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/chaos"
	"github.com/spate-dev/spate/drivers/drivertest"
	"github.com/spate-dev/spate/drivers/rabbitmq"
	"github.com/spate-dev/spate/scenarios"
)

// decode runs Kind.Options on the YAML src (nil for `driver: rabbitmq`).
func decode(t *testing.T, src *string) (any, scenarios.Problems) {
	t.Helper()
	return drivertest.DecodeOptions(t, rabbitmq.Kind, src)
}

func TestOptions(t *testing.T) {
	def := rabbitmq.DefaultOptions()
	with := func(f func(*rabbitmq.Options)) rabbitmq.Options {
		o := rabbitmq.DefaultOptions()
		f(&o)
		return o
	}
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name string
		src  *string
		want rabbitmq.Options
	}{
		{"bare kind", nil, def},
		{"empty block", str("{}"), def},
		{"every field", str(`
url: amqps://spate:secret@mq.example.com:5671/load
exchange: {name: orders, kind: topic, durable: false}
queue:
  name: orders-q
  durable: true
  type: quorum
  exclusive: false
  arguments: {x-max-length: 100000, x-message-ttl: 60000, x-overflow: reject-publish, x-single-active-consumer: true}
routing-key: order
routing-keys: 8
persistent: false
confirms: true
confirm-window: 64
mandatory: true
prefetch: 0
auto-ack: false
single-active: true
connections: {producers: 2, consumers: 3}
channels: {producers: 4, consumers: 2}
stamp: header
reject: 0.05
dead-letter: orders-dlq
seed: 42
connect-timeout: 3s
reconnect: 0s
heartbeat: 5s
keep: true
`), rabbitmq.Options{
			URL:      "amqps://spate:secret@mq.example.com:5671/load",
			Exchange: rabbitmq.ExchangeOptions{Name: "orders", Kind: "topic"},
			Queue: rabbitmq.QueueOptions{Name: "orders-q", Durable: true, Type: "quorum", Arguments: map[string]any{
				"x-max-length": int64(100000), "x-message-ttl": int64(60000), "x-overflow": "reject-publish", "x-single-active-consumer": true,
			}},
			RoutingKey: "order", RoutingKeys: 8, Confirms: true, ConfirmWindow: 64, Mandatory: true,
			SingleActive: true, ProducerConnections: 2, ConsumerConnections: 3, ProducerChannels: 4, ConsumerChannels: 2,
			Stamp: "header", Reject: 0.05, DeadLetter: "orders-dlq", Seed: 42, ConnectTimeout: 3 * time.Second,
			Heartbeat: 5 * time.Second, Keep: true,
		}},
		{"fire-and-forget", str("{confirms: false, confirm-window: 0}"), with(func(o *rabbitmq.Options) { o.Confirms, o.ConfirmWindow = false, 0 })},
		{"exclusive queue", str("{queue: {exclusive: true, durable: false}, connections: {consumers: 1}}"), with(func(o *rabbitmq.Options) {
			o.Queue.Exclusive, o.Queue.Durable, o.ConsumerConnections = true, false, 1
		})},
		{"managed cluster, quorum queue", str(`
url: managed
nodes: 3
partition-handling: autoheal
queue: {type: quorum, quorum-initial-group-size: 3, delivery-limit: 5}
`), with(func(o *rabbitmq.Options) {
			o.Nodes, o.PartitionHandling = 3, "autoheal"
			o.Queue.Type, o.Queue.QuorumInitialGroupSize, o.Queue.DeliveryLimit = "quorum", 3, 5
		})},
		{"bounded queue", str("queue: {max-length: 10, overflow: reject-publish}"), with(func(o *rabbitmq.Options) {
			o.Queue.MaxLength, o.Queue.Overflow = 10, rabbitmq.RejectPublish
		})},
		{"existing cluster, stream", str(`
urls: ["amqp://u:p@mq-0:5672/", "amqp://u:p@mq-1:5672/"]
queue: {type: stream, offset: "2024-05-01T12:00:00Z"}
prefetch: 100
`), with(func(o *rabbitmq.Options) {
			o.URL, o.URLs = "", []string{"amqp://u:p@mq-0:5672/", "amqp://u:p@mq-1:5672/"}
			o.Queue.Type, o.Queue.Offset, o.Prefetch = "stream", "2024-05-01T12:00:00Z", 100
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ps := decode(t, tc.src)
			if len(ps) > 0 {
				t.Fatalf("problems:\n%v", ps)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("options =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestOptionProblems(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want []string // each problem's Error(), in order; "~" prefix: a substring
	}{
		{"url: http://x", []string{`test.yaml:1:6: driver.rabbitmq.url: "http://x" is not an amqp:// or amqps:// URL (nor "managed"), e.g. amqp://guest:guest@127.0.0.1:5672/`}},
		{"url: amqp://u:secret@h:notaport/", []string{"~driver.rabbitmq.url: \"amqp://u:xxxxx@h:notaport/\" is not a valid AMQP URL"}},
		{`url: ""`, []string{"~driver.rabbitmq.url: needs a value"}},
		{"exchange: {kind: fan}", []string{`test.yaml:1:18: driver.rabbitmq.exchange.kind: unknown exchange kind "fan"; valid: direct, topic, fanout, headers`}},
		{"exchange: {kind: topic}", []string{"~driver.rabbitmq.exchange.kind: the default exchange (no exchange name) is direct"}},
		{"queue: {type: streams}", []string{`test.yaml:1:15: driver.rabbitmq.queue.type: unknown queue type "streams"; valid: classic, quorum, stream`}},
		{"queue: {type: quorum, durable: false}", []string{"~driver.rabbitmq.queue.durable: a quorum queue is always durable"}},
		{"queue: {exclusive: true}", []string{"~driver.rabbitmq.queue.exclusive: an exclusive queue belongs to one connection; set connections: {consumers: 1}"}},
		{"queue: {arguments: {x-max-length: -1}}", []string{"~test.yaml:1:35: driver.rabbitmq.queue.arguments.x-max-length: must be a whole number of 0 or more"}},
		{"queue: {arguments: {x-message-ttl: 1s}}", []string{"~driver.rabbitmq.queue.arguments.x-message-ttl: must be a whole number of 0 or more"}},
		{"queue: {arguments: {x-queue-type: quorum}}", []string{"~driver.rabbitmq.queue.arguments.x-queue-type: set the queue type with queue.type"}},
		{"queue: {arguments: {x-a: [1]}}", []string{"~driver.rabbitmq.queue.arguments.x-a: want a number, a string, true or false"}},
		{"queue: {arguments: [x]}", []string{"~driver.rabbitmq.queue.arguments: want a mapping of x-arguments"}},
		{"single-active: true\nqueue: {arguments: {x-single-active-consumer: false}}", []string{"~queue.arguments.x-single-active-consumer: contradicts single-active: true"}},
		{"dead-letter: dlq\nqueue: {arguments: {x-dead-letter-exchange: dlx}}", []string{"~queue.arguments.x-dead-letter-exchange: dead-letter routes rejected messages"}},
		{"routing-key: other", []string{"~driver.rabbitmq.routing-key: the default exchange routes by queue name"}},
		{"routing-keys: 4", []string{"~driver.rabbitmq.routing-keys: the default exchange routes by queue name"}},
		{"exchange: {name: x}\nrouting-keys: -1", []string{"~driver.rabbitmq.routing-keys: must be a whole number from 0 to 65536, got -1"}},
		{"confirm-window: 0", []string{"test.yaml:1:17: driver.rabbitmq.confirm-window: must be a whole number from 1 to 1048576, got 0"}},
		{"prefetch: 70000", []string{"~driver.rabbitmq.prefetch: must be a whole number from 0 (unlimited) to 65535, got 70000"}},
		{"connections: {producers: -1}", []string{"~driver.rabbitmq.connections.producers: must be at least 0"}},
		{"channels: {consumers: 0}", []string{"~driver.rabbitmq.channels.consumers: must be a whole number from 1 to 64, got 0"}},
		{"stamp: trailer", []string{`~driver.rabbitmq.stamp: unknown stamp placement "trailer"; valid: body, header`}},
		{"reject: 1.5", []string{"test.yaml:1:9: driver.rabbitmq.reject: must be a fraction from 0 to 1, such as 0.05; got 1.5"}},
		{"reject: 0.1\nauto-ack: true", []string{"~driver.rabbitmq.reject: consumers cannot reject with auto-ack: true"}},
		{"queue: {name: q}\ndead-letter: q", []string{`~driver.rabbitmq.dead-letter: the dead-letter queue must differ from the queue "q"`}},
		{"connect-timeout: 0s", []string{"~driver.rabbitmq.connect-timeout: must be more than 0s"}},
		{"connect-timeout: 5", []string{`~driver.rabbitmq.connect-timeout: duration "5" needs a unit`}},
		{"prefech: 10", []string{`~test.yaml:1:1: driver.rabbitmq.prefech: unknown field (did you mean "prefetch"?)`}},
		{"exchange: direct", []string{`test.yaml:1:11: driver.rabbitmq.exchange: want a mapping, got "direct"`}},
		{"- url: managed", []string{"test.yaml:1:1: driver.rabbitmq: want a mapping, got a list"}},
		{"nodes: 9", []string{"test.yaml:1:8: driver.rabbitmq.nodes: must be a whole number from 1 to 5, got 9"}},
		{"nodes: 0", []string{"test.yaml:1:8: driver.rabbitmq.nodes: must be a whole number from 1 to 5, got 0"}},
		{"url: amqp://h/\nnodes: 3", []string{"test.yaml:2:8: driver.rabbitmq.nodes: applies to a cluster spate starts (url: managed); for an existing cluster list its nodes in urls"}},
		{"urls: [amqp://a/, http://b]", []string{`~test.yaml:1:19: driver.rabbitmq.urls[1]: "http://b" is not an amqp:// or amqps:// URL`}},
		{"url: amqp://a/\nurls: [amqp://b/]", []string{"~test.yaml:2:7: driver.rabbitmq.urls: give url or urls, not both"}},
		{"urls: []", []string{"test.yaml:1:7: driver.rabbitmq.urls: needs at least one amqp:// or amqps:// URL, one per node of the cluster"}},
		{"partition-handling: pause_minority", []string{"test.yaml:1:21: driver.rabbitmq.partition-handling: applies to a cluster spate starts (url: managed, nodes: 2 or more)"}},
		{"nodes: 3\npartition-handling: pause-minority", []string{`test.yaml:2:21: driver.rabbitmq.partition-handling: unknown partition handling "pause-minority"; valid: pause_minority, autoheal, ignore`}},
		{"queue: {type: stream}\nprefetch: 0", []string{"test.yaml:2:11: driver.rabbitmq.prefetch: a stream needs prefetch (1 to 65535): RabbitMQ delivers a stream only to consumers with a prefetch limit"}},
		{"queue: {type: stream}\nauto-ack: true", []string{"~test.yaml:2:11: driver.rabbitmq.auto-ack: a stream's consumers must acknowledge"}},
		{"queue: {type: stream, durable: false}", []string{"~driver.rabbitmq.queue.durable: a stream queue is always durable"}},
		{"queue: {type: stream}\nreject: 0.1\ndead-letter: dlq\nsingle-active: true", []string{
			"~test.yaml:2:9: driver.rabbitmq.reject: a stream keeps every message",
			"~test.yaml:3:14: driver.rabbitmq.dead-letter: a stream does not dead-letter",
			"~test.yaml:4:16: driver.rabbitmq.single-active: RabbitMQ has no single active consumer on a stream",
		}},
		{"queue: {type: stream}\nchannels: {consumers: 2}", []string{"test.yaml:2:23: driver.rabbitmq.channels.consumers: a consumer reads a stream once per channel, so with 2 channels it would read every message 2 times; set channels: {consumers: 1}"}},
		{"queue: {type: stream, offset: yesterday}", []string{`test.yaml:1:31: driver.rabbitmq.queue.offset: unknown stream offset "yesterday"; valid: first, last, next, an RFC 3339 timestamp (2024-05-01T12:00:00Z) or an offset (0 or more)`}},
		{"queue: {offset: first}", []string{"test.yaml:1:17: driver.rabbitmq.queue.offset: applies to streams; set type: stream or leave it out"}},
		{"nodes: 3\nqueue: {type: quorum, quorum-initial-group-size: 4}", []string{"test.yaml:2:50: driver.rabbitmq.queue.quorum-initial-group-size: must be at most the 3 nodes of the managed cluster, got 4"}},
		{"queue: {quorum-initial-group-size: 2}", []string{"~driver.rabbitmq.queue.quorum-initial-group-size: applies to quorum queues"}},
		{"queue: {type: quorum, delivery-limit: 0}", []string{"test.yaml:1:39: driver.rabbitmq.queue.delivery-limit: must be at least 1 (leave it out for RabbitMQ's default), got 0"}},
		{"queue: {type: quorum, delivery-limit: 3, arguments: {x-delivery-limit: 5}}", []string{
			"~driver.rabbitmq.queue.arguments.x-delivery-limit: given twice: as queue.delivery-limit and as an argument",
		}},
		{"queue: {max-length: 0}", []string{"test.yaml:1:21: driver.rabbitmq.queue.max-length: must be at least 1, got 0"}},
		{"queue: {overflow: drop-tail}", []string{`test.yaml:1:19: driver.rabbitmq.queue.overflow: unknown overflow "drop-tail"; valid: drop-head, reject-publish, reject-publish-dlx`}},
		{"queue: {overflow: reject-publish}", []string{"test.yaml:1:19: driver.rabbitmq.queue.overflow: applies to a queue with a length limit; set max-length or leave overflow out"}},
		{"queue: {max-length: 10, arguments: {x-max-length: 5}}", []string{"~driver.rabbitmq.queue.arguments.x-max-length: given twice: as queue.max-length and as an argument"}},
		{"queue: {type: stream, max-length: 10}", []string{"~test.yaml:1:35: driver.rabbitmq.queue.max-length: a stream keeps every message"}},
		{"prefetch: 70000\nstamp: x\nreject: -1\nbogus: 1", []string{
			"~test.yaml:1:11: driver.rabbitmq.prefetch:",
			"~test.yaml:2:8: driver.rabbitmq.stamp:",
			"~test.yaml:3:9: driver.rabbitmq.reject:",
			"~test.yaml:4:1: driver.rabbitmq.bogus: unknown field",
		}},
	} {
		t.Run(tc.src, func(t *testing.T) {
			_, ps := decode(t, &tc.src)
			drivertest.CheckProblems(t, ps, tc.want)
		})
	}
}

// TestClusterScenarioProblems: node faults and stream consumers are
// checked against the driver's options when the scenario loads.
func TestClusterScenarioProblems(t *testing.T) {
	l := &scenarios.Loader{}
	l.Driver(rabbitmq.Kind.Name, rabbitmq.Kind.Options)
	chaos.Register(l)
	for _, tc := range []struct {
		name, driver, rest string
		want               []string
	}{
		{"valid", "{url: managed, nodes: 3, queue: {type: quorum}}", `chaos:
  - {action: broker-restart, at: 1s, for: 1s, target: 2, mode: kill}
  - {action: broker-pause, at: 1s, for: 5s, target: leader}
  - {action: broker-partition, at: 1s, for: 5s, target: 0}
  - {action: broker-restart, at: 1s, target: all}`, nil},
		{"a broker that will not exist", "{url: managed, nodes: 3}", `chaos:
  - {action: broker-restart, at: 1s, target: 7}
  - {action: broker-pause, at: 1s, for: 1s, target: 3}`, []string{
			"s.yaml:4:5: chaos[0].target: no broker 7: the rabbitmq driver as configured manages brokers 0 to 2; want all, a broker id (0, 1, ...) or leader",
			"s.yaml:5:5: chaos[1].target: no broker 3: the rabbitmq driver as configured manages brokers 0 to 2; want all, a broker id (0, 1, ...) or leader",
		}},
		{"one node", "rabbitmq", `chaos:
  - {action: broker-restart, at: 1s, target: 1}
  - {action: broker-partition, at: 1s, for: 1s, target: 0}`, []string{
			"s.yaml:4:5: chaos[0].target: no broker 1: the rabbitmq driver as configured manages brokers 0; want all, a broker id (0, 1, ...) or leader",
			`s.yaml:5:5: chaos[1].action: broker-partition cannot run on driver "rabbitmq" as configured: it manages no cluster of two or more brokers to partition (rabbitmq with url: managed and nodes: 2 or more does); to cut clients off instead, use the network action`,
		}},
		{"an external broker", `{url: "amqp://guest:guest@mq:5672/"}`, `chaos:
  - {action: broker-pause, at: 1s, for: 1s}
  - {action: broker-restart, at: 1s, target: leader, stop: "systemctl stop rabbitmq-server", start: "systemctl start rabbitmq-server"}`, []string{
			`s.yaml:4:5: chaos[0].action: broker-pause cannot run on driver "rabbitmq" as configured: it cannot pause the brokers (rabbitmq with url: managed can); to freeze a broker of your own, use exec with kill -STOP and a revert with kill -CONT`,
			"s.yaml:5:5: chaos[1].target: target: leader needs a broker spate manages; with stop and start commands, the commands say which broker stops",
		}},
		{"partition needs a target and a window", "{url: managed, nodes: 3}", `chaos:
  - {action: broker-partition, at: 1s}
  - {action: broker-partition, at: 1s, for: 1s, target: all}
  - {action: broker-pause, at: 1s, target: x}`, []string{
			"s.yaml:4:5: chaos[0]: broker-partition needs `for` (how long the broker stays cut off)",
			"s.yaml:4:5: chaos[0].target: broker-partition needs target: a broker id (0, 1, ...) or leader (the broker leading the queue when the fault starts)",
			"s.yaml:5:5: chaos[1].target: broker-partition needs target: a broker id (0, 1, ...) or leader (the broker leading the queue when the fault starts)",
			"s.yaml:6:5: chaos[2]: broker-pause needs `for` (how long the broker stays paused)",
			`s.yaml:6:5: chaos[2].target: want all, a broker id (0, 1, ...) or leader, got "x"`,
		}},
		{"stream consumers compete", "{url: managed, nodes: 3, queue: {type: stream}}", "consumers: 2", []string{
			`s.yaml:3:12: consumers: the rabbitmq driver (driver), as configured, gives each consumer every message (no competing consumers; see the driver's documentation), so each consumer must be a subscription of its own: set subscriptions: 2 (as many as consumers), or consumers: 1`,
		}},
		{"stream consumers alone", "{url: managed, nodes: 3, queue: {type: stream, offset: first}}", "consumers: 2\nsubscriptions: 2", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			drv := "rabbitmq"
			if tc.driver != "rabbitmq" {
				drv = "{rabbitmq: " + tc.driver + "}"
			}
			src := "driver: " + drv + "\ntraffic: [{constant: {rate: 10/s, for: 10s}}]\n" + tc.rest + "\n"
			_, err := l.Parse("s.yaml", []byte(src))
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
