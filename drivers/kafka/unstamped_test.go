package kafka_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/kafka"
)

// TestUnstamped: records without the spate-stamp header, written by
// another client, are delivered with a nil Stamp and counted as
// unstamped; the stamped ones beside them are not.
func TestUnstamped(t *testing.T) {
	e := openEmbedded(t, kafka.DefaultOptions(), testEnv(1, 1))
	c, err := e.NewConsumer(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var stamped, bare int
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Consume(ctx, func(batch []drivers.Delivery) {
			mu.Lock()
			defer mu.Unlock()
			for _, dv := range batch {
				if dv.Stamp == nil {
					bare++
				} else {
					stamped++
				}
			}
		})
	}()

	cl, err := kgo.NewClient(kgo.SeedBrokers(e.BootstrapBrokers()...), kgo.DefaultProduceTopic(e.Topic()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, pcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer pcancel()
	if err := cl.ProduceSync(pctx,
		&kgo.Record{Value: []byte("not spate's")},
		&kgo.Record{Value: []byte("nor this"), Headers: []kgo.RecordHeader{{Key: "other", Value: []byte("x")}}},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	newTraffic(t, e).send(0, 3)

	waitFor(t, "the 5 records", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return stamped+bare >= 5
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Consume: %v", err)
	}
	mu.Lock()
	expect(t, "deliveries without a stamp", int64(bare), 2)
	expect(t, "deliveries with a stamp", int64(stamped), 3)
	mu.Unlock()
	st := e.Stats()
	expect(t, "unstamped", st["unstamped"], 2)
	expect(t, "delivered", st["delivered"], 5)
}
