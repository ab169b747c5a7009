package rabbitmq_test

import (
	"testing"
	"time"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/drivertest"
	"github.com/spate-dev/spate/drivers/rabbitmq"
)

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name        string
		o           func(*rabbitmq.Options)
		unconfirmed bool
	}{
		{"defaults", func(*rabbitmq.Options) {}, false},
		// Message keys become routing keys, bound one by one as they appear.
		{"direct exchange quorum queue", func(o *rabbitmq.Options) {
			o.Exchange.Name = uniqueName("spate-direct")
			o.Queue.Type = "quorum"
			o.Prefetch = 64
		}, false},
		{"fire-and-forget topic auto-ack stamp in header", func(o *rabbitmq.Options) {
			o.Exchange = rabbitmq.ExchangeOptions{Name: uniqueName("spate-topic"), Kind: "topic"}
			o.Confirms = false
			o.Persistent = false
			o.Queue.Durable = false
			o.AutoAck = true
			o.Stamp = "header"
		}, true},
		// Several channels per producer would fail the order subtest: a
		// producer's messages on different channels reach the queue in
		// any order (documented).
		{"headers exchange", func(o *rabbitmq.Options) {
			o.Exchange = rabbitmq.ExchangeOptions{Name: uniqueName("spate-headers"), Kind: "headers"}
		}, false},
		{"exclusive queue", func(o *rabbitmq.Options) {
			o.Queue.Exclusive, o.Queue.Durable = true, false
			o.ConsumerConnections = 1
		}, false},
		{"shared connections fanout small window", func(o *rabbitmq.Options) {
			o.Exchange = rabbitmq.ExchangeOptions{Name: uniqueName("spate-fanout"), Kind: "fanout", Durable: true}
			o.ProducerConnections, o.ConsumerConnections = 1, 1
			o.ConfirmWindow = 8
			o.Prefetch = 10
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node(t)
			drivertest.Run(t, drivertest.Config{
				Open: func(t *testing.T, env drivers.Env) drivers.Driver {
					o := options(t)
					tc.o(&o)
					return openDriver(t, o, env)
				},
				Unconfirmed: tc.unconfirmed,
				Timeout:     60 * time.Second,
				Messages:    1000,
			})
		})
	}
}
