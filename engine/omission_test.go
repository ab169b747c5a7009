package engine_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/memory"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
)

// TestSpikeBacklogIsVisible: a broker that delivers at most 2000/s gets a
// spike of 4000/s for 1 s. The excess (2000 messages) queues, so the last
// message of the spike waits about 1 s. e2e latency must show that wait, and
// the interval backlog must reach about 2000.
func TestSpikeBacklogIsVisible(t *testing.T) {
	sc := load(t, `
driver: {memory: {capacity: 2000/s, streams: 2}}
consumers: 2
traffic:
  - spike: {base: 1000/s, peak: 4000/s, for: 3s, hold: 1s}
drain: 5s
report: {interval: 250ms}
`)
	// Virtual time (synctest) makes the queueing exact and the test immune
	// to a busy machine; the broker's capacity logic runs unchanged.
	var res *report.Results
	synctest.Test(t, func(t *testing.T) { res = run(t, sc) })
	if res.Counts.Lost != 0 || res.Counts.Received != res.Counts.Sent {
		t.Fatalf("counts %+v", res.Counts)
	}
	maxE2E := res.LatencyUS.E2E.Max
	if maxE2E < 800_000 || maxE2E > 1_300_000 {
		t.Errorf("e2e max = %dµs, want about 1s (the queue at the end of the spike)", maxE2E)
	}
	var peak int64
	var before int64 = -1
	for _, iv := range res.Intervals {
		peak = max(peak, iv.Backlog)
		if iv.EndS <= 1 && iv.LatencyUS.E2E.Count > 0 {
			before = max(before, iv.LatencyUS.E2E.P99)
		}
	}
	if peak < 1500 || peak > 2500 {
		t.Errorf("backlog peak = %d, want about 2000", peak)
	}
	if before < 0 || before*10 > maxE2E {
		t.Errorf("pre-spike e2e p99 %dµs is not far below the spike's max %dµs", before, maxE2E)
	}
}

// TestStalledSendIsCounted: the producer's client blocks for 500 ms once,
// at 1 s into the run. Messages due during the stall are sent late; a
// closed-loop tool would time them from their late send and see nothing.
// spate times them from their intended send, so e2e shows the stall while
// service latency (from the actual send) does not.
func TestStalledSendIsCounted(t *testing.T) {
	stall := stallKind(time.Second, 500*time.Millisecond)
	sc := load(t, `
driver: stall
traffic:
  - constant: {rate: 1000/s, for: 3s}
drain: 2s
`, stall)
	var res *report.Results
	synctest.Test(t, func(t *testing.T) {
		var err error
		if res, err = engine.Run(context.Background(), sc, engine.WithDrivers(stall)); err != nil {
			t.Fatal(err)
		}
	})
	if res.Counts.Received != res.Counts.Sent || res.Counts.Sent < 2990 {
		t.Fatalf("counts %+v", res.Counts)
	}
	if e2e := res.LatencyUS.E2E.Max; e2e < 450_000 {
		t.Errorf("e2e max = %dµs, want ≥ 450ms: the stall is hidden", e2e)
	}
	if svc := res.LatencyUS.Service.P99; svc > 100_000 {
		t.Errorf("service p99 = %dµs, want small: messages were sent late, not delivered late", svc)
	}
}

// stallKind is the memory driver whose producers block once, for d, in the
// first Send after `after` has passed.
func stallKind(after, d time.Duration) drivers.Kind {
	return drivers.Kind{
		Name:    "stall",
		Options: memory.Kind.Options,
		Open: func(ctx context.Context, options any, env drivers.Env) (drivers.Driver, error) {
			drv, err := memory.Kind.Open(ctx, options, env)
			if err != nil {
				return nil, err
			}
			return &stallDriver{Driver: drv, after: after, d: d}, nil
		},
	}
}

type stallDriver struct {
	drivers.Driver
	after, d time.Duration
}

func (s *stallDriver) NewProducer(ctx context.Context, id int, ack drivers.AckFunc) (drivers.Producer, error) {
	p, err := s.Driver.NewProducer(ctx, id, ack)
	if err != nil {
		return nil, err
	}
	return &stallProducer{Producer: p, at: time.Now().Add(s.after), d: s.d}, nil
}

type stallProducer struct {
	drivers.Producer
	at   time.Time
	d    time.Duration
	once sync.Once
}

func (s *stallProducer) Send(ctx context.Context, msgs []drivers.Message) error {
	if time.Now().After(s.at) {
		s.once.Do(func() { time.Sleep(s.d) })
	}
	return s.Producer.Send(ctx, msgs)
}
