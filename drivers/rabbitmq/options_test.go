package rabbitmq_test

import (
	"reflect"
	"testing"
	"time"

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
		{"queue: {type: stream}", []string{`test.yaml:1:15: driver.rabbitmq.queue.type: unknown queue type "stream"; valid: classic, quorum`}},
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
