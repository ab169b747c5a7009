package eventbridge_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awseb "github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/eventbridge"
	"github.com/spate-dev/spate/drivers/stamp"
)

// The benchmarks compare spate's driver with a bare aws-sdk-go-v2 loop
// against the same emulator, with the same event size (256 bytes as
// EventBridge counts it), batches of 10 and 16 requests in flight (the
// driver's 2 producers × in-flight 8). The machine is shared by the
// emulator and the benchmark, so run them alone:
//
//	go test -run '^$' -bench . -benchtime 1x ./drivers/eventbridge/
//
// For BenchmarkPutEventsBare and BenchmarkDriverPutEvents b.N is in events;
// compare them on the same count, e.g. -benchtime 20000x.

const benchSize = 256

// BenchmarkPutEventsBare is the ceiling: PutEvents in a loop on 16
// goroutines, each request 10 entries, with nothing else running: no
// pacing, no stamps, no accounting, no consumers. routed: the events match
// the run's rule and the emulator delivers each to the queue, as in a
// spate run; unrouted: they match no rule, so the emulator only accepts
// them.
func BenchmarkPutEventsBare(b *testing.B) {
	b.Run("routed", func(b *testing.B) { benchBare(b, true) })
	b.Run("unrouted", func(b *testing.B) { benchBare(b, false) })
}

func benchBare(b *testing.B, routed bool) {
	k := startKumo(b)
	o := kumoOptions(k)
	env := testEnv(b, 1, 1)
	d := openDriver(b, o, env)
	eb, _ := sdkClients(b, k)
	// An entry shaped and sized like the driver's, of its run, so that the
	// rule matches it and the emulator delivers it to the queue.
	pad := benchSize - eventbridge.EntrySize(0, o.Source, o.DetailType)
	run := env.RunID
	if !routed {
		run++ // another run: the rule does not match
	}
	detail := fmt.Sprintf(`{"run":"%016x","spate":"%s","pad":"%s"}`, run, strings.Repeat("A", 64), strings.Repeat("x", max(0, pad)))
	entries := make([]ebtypes.PutEventsRequestEntry, 10)
	for i := range entries {
		entries[i] = ebtypes.PutEventsRequestEntry{
			EventBusName: aws.String(d.Bus()), Source: aws.String(o.Source),
			DetailType: aws.String(o.DetailType), Detail: aws.String(detail),
		}
	}
	// b.N events, in requests of 10, on 16 goroutines.
	requests := int64((b.N + len(entries) - 1) / len(entries))
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= requests {
				out, err := eb.PutEvents(context.Background(), &awseb.PutEventsInput{Entries: entries})
				if err != nil || out.FailedEntryCount > 0 {
					b.Errorf("PutEvents: %v %v", err, out)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(requests*int64(len(entries)))/time.Since(start).Seconds(), "events/s")
}

// BenchmarkDriverPutEvents is the driver's producer side on the same
// terms as BenchmarkPutEventsBare: 2 producers with 8 requests in flight
// each, messages handed over 100 at a time (full requests of 10), each
// stamped, built into an entry of 256 bytes and acked through AckFunc; no
// consumers. b.N is in events.
func BenchmarkDriverPutEvents(b *testing.B) {
	k := startKumo(b)
	o := kumoOptions(k)
	env := testEnv(b, 2, 1)
	d := openDriver(b, o, env)
	var acked atomic.Int64
	ack := func(rs []drivers.Result) {
		for _, r := range rs {
			if r.Err != nil {
				b.Errorf("outcome: %v", r.Err)
			}
		}
		acked.Add(int64(len(rs)))
	}
	prods := make([]drivers.Producer, 2)
	for i := range prods {
		var err error
		if prods[i], err = d.NewProducer(context.Background(), i, ack); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for pid, p := range prods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := b.N / len(prods)
			msgs := make([]drivers.Message, 0, 100)
			for seq := 0; seq < n; {
				msgs = msgs[:0]
				for ; len(msgs) < cap(msgs) && seq < n; seq++ {
					now := time.Now().UnixNano()
					st := stamp.Stamp{RunID: env.RunID, Producer: uint32(pid), Seq: uint64(seq), Intended: now, Sent: now}
					body := make([]byte, benchSize)
					st.Put(body)
					msgs = append(msgs, drivers.Message{Stamp: st, Head: body[:stamp.Size], Tail: body[stamp.Size:]})
				}
				if err := p.Send(context.Background(), msgs); err != nil {
					b.Error(err)
					return
				}
			}
			if err := p.Close(context.Background()); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(acked.Load())/time.Since(start).Seconds(), "events/s")
}

// BenchmarkDriverMax is spate's whole path at its ceiling: a max phase of
// 5s (2 producers, 2,000 messages in flight, 2 consumers), every event
// put, routed, received, deleted and accounted for.
func BenchmarkDriverMax(b *testing.B) {
	k := startKumo(b)
	sc := load(b, fmt.Sprintf(`
driver: {eventbridge: {endpoint: %q, provision: true}}
producers: 2
consumers: 2
message: {size: %dB}
traffic:
  - max: {for: 5s, in-flight: 2000}
drain: 30s
`, k.URL(), benchSize), eventbridge.Kind)
	for b.Loop() {
		res := runScenario(b, sc, eventbridge.Kind)
		if res.Counts.Lost != 0 || res.Counts.Failed != 0 {
			b.Fatalf("counts %+v", res.Counts)
		}
		b.ReportMetric(res.Rate.AchievedMean, "events/s")
		b.ReportMetric(res.Rate.AckedMean, "acked/s")
		b.ReportMetric(float64(res.LatencyUS.E2E.P50), "e2e-p50-µs")
		b.ReportMetric(float64(res.LatencyUS.E2E.P99), "e2e-p99-µs")
	}
}

// BenchmarkDriverRate is the latency at steady rates under the ceiling:
// e2e covers PutEvents, the rule, the queue and the long poll.
func BenchmarkDriverRate(b *testing.B) {
	for _, rate := range []int{500, 1500} {
		b.Run(fmt.Sprintf("%dps", rate), func(b *testing.B) {
			k := startKumo(b)
			sc := load(b, fmt.Sprintf(`
driver: {eventbridge: {endpoint: %q, provision: true}}
producers: 2
consumers: 2
message: {size: %dB}
traffic:
  - constant: {rate: %d/s, for: 5s}
drain: 30s
`, k.URL(), benchSize, rate), eventbridge.Kind)
			for b.Loop() {
				res := runScenario(b, sc, eventbridge.Kind)
				if res.Counts.Lost != 0 || res.Counts.Failed != 0 {
					b.Fatalf("counts %+v", res.Counts)
				}
				b.ReportMetric(res.Rate.AchievedMean, "events/s")
				b.ReportMetric(float64(res.LatencyUS.E2E.P50), "e2e-p50-µs")
				b.ReportMetric(float64(res.LatencyUS.E2E.P99), "e2e-p99-µs")
				b.ReportMetric(float64(res.LatencyUS.Publish.P50), "publish-p50-µs")
			}
		})
	}
}
