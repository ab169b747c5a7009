package kafka_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/drivertest"
	"github.com/spate-dev/spate/drivers/kafka"
)

// testEnv is a run of producers and consumers with a discarded log.
func testEnv(producers, consumers int) drivers.Env {
	return drivers.Env{
		RunID: 0x5eed, Scenario: "kafka-test", Producers: producers, Consumers: consumers,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// openEmbedded opens the driver on a fresh embedded cluster, closed when t ends.
func openEmbedded(t *testing.T, o kafka.Options, env drivers.Env) *kafka.EmbeddedDriver {
	t.Helper()
	d, err := kafka.Open(context.Background(), o, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	return d.(*kafka.EmbeddedDriver)
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name        string
		o           func(*kafka.Options)
		unconfirmed bool
	}{
		{"defaults", func(*kafka.Options) {}, false},
		{"one broker, commit auto, lz4", func(o *kafka.Options) {
			o.Embedded.Brokers, o.Partitions, o.Commit, o.Compression = 1, 1, "auto", "lz4"
		}, false},
		{"acks none", func(o *kafka.Options) { o.Acks, o.Idempotent = "none", false }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			drivertest.Run(t, drivertest.Config{
				Open: func(t *testing.T, env drivers.Env) drivers.Driver {
					o := kafka.DefaultOptions()
					tc.o(&o)
					d, err := kafka.Kind.Open(context.Background(), o, env)
					if err != nil {
						t.Fatal(err)
					}
					return d
				},
				Unconfirmed: tc.unconfirmed,
				Messages:    500,
				Timeout:     30 * time.Second,
			})
		})
	}
}
