package report

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

func f64(v float64) *float64 { return &v }

// withChaos adds faults to testResults' run of 2 s: a restart that
// recovered, a partition that did not, and a command that failed.
func withChaos(r *Results) *Results {
	r.Chaos = []FaultResult{
		{
			Action: "broker-restart", Target: "broker-0", StartS: 0.5, EndS: 1.2, OK: true,
			Details:         map[string]any{"broker": "0"},
			WindowLatencyUS: &LatencySummary{Count: 700, Min: 900, Mean: 15000, P50: 11200, P90: 34100, P99: 251000, P999: 282000, Max: 289000},
			LostInWindow:    4, DuplicatesInWindow: 12, PeakBacklog: 180, RecoveryS: f64(0.35),
		},
		{
			Action: "partition", Target: "consumers", StartS: 1.5, EndS: 1.9, OK: true,
			WindowLatencyUS: &LatencySummary{Count: 380, P50: 20000, P99: 260000, P999: 280000, Max: 285000},
			LostInWindow:    3, PeakBacklog: 420,
		},
		{Action: "exec", StartS: 1, EndS: 1, OK: false, Error: "exit status 1: connection refused"},
	}
	return r
}

// chartResults is a synthetic run of a minute with a spike from 20 s to
// 30 s and a broker outage from 35 s to 45 s that raises latency and
// backlog, then recovers; a point event at 50 s. Its figures are made up
// but consistent enough to draw every chart.
func chartResults(t testing.TB) *Results {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	start := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	totals := map[string]*hdr.Histogram{E2E: newHist(), Service: newHist(), Publish: newHist()}
	var intervals []IntervalResult
	var backlog int64
	var counts Counts
	for i := range 60 {
		target := 1000.0
		if i >= 20 && i < 30 {
			target = 3000
		}
		sent := int64(target)
		recvCap := int64(4000)
		outage := i >= 35 && i < 45
		if outage {
			recvCap = 150
		}
		backlog += sent
		received := min(backlog, recvCap)
		backlog -= received
		ivh := map[string]*hdr.Histogram{E2E: newHist(), Service: newHist(), Publish: newHist()}
		median := 2000.0
		if i >= 20 && i < 30 {
			median = 3500
		}
		if backlog > 0 {
			median += float64(backlog) / 4000 * 1e6 // queueing delay in µs
		}
		for range received {
			v := int64(math.Exp(rng.NormFloat64()*0.5) * median)
			if rng.IntN(500) == 0 {
				v *= 20
			}
			ivh[E2E].RecordValue(v)
			ivh[Service].RecordValue(v * 9 / 10)
		}
		pubMedian := 800.0
		if outage {
			pubMedian = 4000
		}
		for range sent {
			ivh[Publish].RecordValue(int64(math.Exp(rng.NormFloat64()*0.4) * pubMedian))
		}
		ic := Counts{Sent: sent, Acked: sent, Received: received}
		if i == 40 {
			ic.Duplicates = 25
		}
		counts.Sent += ic.Sent
		counts.Acked += ic.Acked
		counts.Received += ic.Received
		counts.Duplicates += ic.Duplicates
		tr := target
		intervals = append(intervals, IntervalResult{
			StartS: float64(i), EndS: float64(i + 1), TargetRate: &tr, Counts: ic, Backlog: backlog,
			LatencyUS: LatencySet{E2E: summarize(ivh[E2E]), Service: summarize(ivh[Service]), Publish: summarize(ivh[Publish])},
		})
		for k, h := range ivh {
			totals[k].Merge(h)
		}
	}
	counts.Lost = backlog
	counts.Received += 0
	r := &Results{
		SchemaVersion: SchemaVersion,
		Scenario:      "checkout-spike",
		File:          "examples/checkout-spike.yaml",
		Description:   "A spike to 3x the base rate, then a broker restart under load.",
		Driver:        "memory",
		RunID:         "00000000deadbeef",
		StartedAt:     start,
		DurationS:     62,
		TrafficS:      60,
		DrainS:        2,
		Producers:     4,
		Consumers:     2,
		Intervals:     intervals,
		Chaos: []FaultResult{
			{Action: "broker-restart", Target: "broker-0", StartS: 35, EndS: 45, OK: true,
				WindowLatencyUS: &LatencySummary{Count: 1500, P50: 1_800_000, P90: 2_300_000, P99: 2_450_000, P999: 2_500_000, Max: 2_510_000},
				LostInWindow:    0, DuplicatesInWindow: 25, PeakBacklog: 8500, RecoveryS: f64(3.2)},
			{Action: "kill-consumer", Target: "consumer-1", StartS: 50, EndS: 50, OK: true, PeakBacklog: 12},
		},
		DriverStats: map[string]int64{"duplicated": 25},
	}
	sum := Summary{Counts: counts, Histograms: totals,
		Latency: LatencySet{E2E: summarize(totals[E2E]), Service: summarize(totals[Service]), Publish: summarize(totals[Publish])}}
	if err := r.SetSummary(sum); err != nil {
		t.Fatal(err)
	}
	target := 1000.0 * 50 / 60
	target += 3000.0 * 10 / 60
	r.Rate = Rates{TargetMean: &target, AchievedMean: float64(counts.Received) / 60, SentMean: float64(counts.Sent) / 60, AckedMean: float64(counts.Acked) / 60}
	r.Evaluate(parseThresholds(t, "e2e.p99 < 250ms", "loss == 0", "duplicates.ratio <= 0.1%", "achieved_rate >= 0.95 * target_rate"))
	return r
}
