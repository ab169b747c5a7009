package engine_test

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/spate-dev/spate/drivers/memory"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
)

// benchRun runs a scenario once per benchmark iteration (use -benchtime=1x
// for one run) and reports the last run's figures.
func benchRun(b *testing.B, yaml string) *report.Results {
	b.Helper()
	sc := load(&testing.T{}, yaml)
	var res *report.Results
	for b.Loop() {
		var err error
		res, err = engine.Run(context.Background(), sc, engine.WithDrivers(memory.Kind))
		if err != nil {
			b.Fatal(err)
		}
	}
	if res.Counts.Lost != 0 || res.Counts.Received != res.Counts.Sent {
		b.Fatalf("accounting broke under load: %+v", res.Counts)
	}
	return res
}

// BenchmarkEndToEnd1M drives the memory broker at a fixed 1,000,000
// messages/s for 3 s: pacing, stamping, sending, receiving and accounting
// every message. achieved/target below 1 means the harness fell behind.
func BenchmarkEndToEnd1M(b *testing.B) {
	res := benchRun(b, `
driver: {memory: {streams: 4}}
producers: 2
consumers: 2
message: {size: 64B}
traffic:
  - constant: {rate: 1000000/s, for: 3s}
drain: 5s
`)
	b.ReportMetric(res.Rate.AchievedMean, "msgs/s")
	b.ReportMetric(res.Rate.AchievedMean / *res.Rate.TargetMean, "achieved/target")
	b.ReportMetric(float64(res.Counts.Unsent), "unsent")
	b.ReportMetric(float64(res.LatencyUS.E2E.P99), "e2e-p99-µs")
}

// BenchmarkEndToEndMax finds the harness's own ceiling with the memory
// broker: a closed loop with 100,000 messages in flight.
func BenchmarkEndToEndMax(b *testing.B) {
	res := benchRun(b, `
driver: {memory: {streams: 4}}
producers: 2
consumers: 2
message: {size: 64B}
traffic:
  - max: {for: 3s, in-flight: 100000}
drain: 5s
`)
	b.ReportMetric(res.Rate.AchievedMean, "msgs/s")
}

// BenchmarkPacerAccuracy measures, on the wall clock, how closely the pacer
// holds high rates: the worst deviation of any whole interval's sent count
// from its target. (TestPacerHoldsRate checks the arithmetic on virtual
// time from 10/s up; this is the real machine.)
func BenchmarkPacerAccuracy(b *testing.B) {
	for _, rate := range []int{1000, 10000, 100000, 200000} {
		b.Run(fmt.Sprintf("%d/s", rate), func(b *testing.B) {
			res := benchRun(b, fmt.Sprintf(`
driver: {memory: {streams: 4}}
message: {size: 64B}
traffic:
  - constant: {rate: %d/s, for: 3s}
drain: 2s
report: {interval: 1s}
`, rate))
			worst := 0.0
			for _, iv := range res.Intervals {
				if iv.TargetRate == nil || iv.EndS > 3 || iv.EndS-iv.StartS < 0.5 {
					continue
				}
				want := *iv.TargetRate * (iv.EndS - iv.StartS)
				worst = math.Max(worst, math.Abs(float64(iv.Counts.Sent)-want)/want)
			}
			b.ReportMetric(100*worst, "worst-interval-dev-%")
			b.ReportMetric(100*math.Abs(res.Rate.SentMean / *res.Rate.TargetMean - 1), "total-dev-%")
		})
	}
}
