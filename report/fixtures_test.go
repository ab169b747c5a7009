package report

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/scenarios"
)

func f64(v float64) *float64 { return &v }

// withChaos adds faults to testResults' run of 2 s: a restart that
// recovered, a partition that did not, and a command that failed.
func withChaos(r *Results) *Results {
	r.Chaos = []FaultResult{
		{
			Action: "broker-restart", Target: "broker-0", StartS: 0.5, EndS: 1.2, OK: true,
			Details:         map[string]any{"broker": "0"},
			WindowLatencyUS: &accounting.LatencySummary{Count: 700, Min: 900, Mean: 15000, P50: 11200, P90: 34100, P99: 251000, P999: 282000, Max: 289000},
			LostInWindow:    4, DuplicatesInWindow: 12, PeakBacklog: 180, RecoveryS: f64(0.35),
		},
		{
			Action: "partition", Target: "consumers", StartS: 1.5, EndS: 1.9, OK: true,
			WindowLatencyUS: &accounting.LatencySummary{Count: 380, P50: 20000, P99: 260000, P999: 280000, Max: 285000},
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
	totals := map[string]*hdr.Histogram{accounting.E2E: accounting.NewHistogram(), accounting.Service: accounting.NewHistogram(), accounting.Publish: accounting.NewHistogram()}
	var intervals []IntervalResult
	var backlog int64
	var counts accounting.Counts
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
		ivh := map[string]*hdr.Histogram{accounting.E2E: accounting.NewHistogram(), accounting.Service: accounting.NewHistogram(), accounting.Publish: accounting.NewHistogram()}
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
			ivh[accounting.E2E].RecordValue(v)
			ivh[accounting.Service].RecordValue(v * 9 / 10)
		}
		pubMedian := 800.0
		if outage {
			pubMedian = 4000
		}
		for range sent {
			ivh[accounting.Publish].RecordValue(int64(math.Exp(rng.NormFloat64()*0.4) * pubMedian))
		}
		ic := accounting.Counts{Sent: sent, Acked: sent, Received: received}
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
			LatencyUS: accounting.LatencySet{E2E: accounting.Summarize(ivh[accounting.E2E]), Service: accounting.Summarize(ivh[accounting.Service]), Publish: accounting.Summarize(ivh[accounting.Publish])},
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
				WindowLatencyUS: &accounting.LatencySummary{Count: 1500, P50: 1_800_000, P90: 2_300_000, P99: 2_450_000, P999: 2_500_000, Max: 2_510_000},
				LostInWindow:    0, DuplicatesInWindow: 25, PeakBacklog: 8500, RecoveryS: f64(3.2)},
			{Action: "kill-consumer", Target: "consumer-1", StartS: 50, EndS: 50, OK: true, PeakBacklog: 12},
		},
		DriverStats: map[string]int64{"duplicated": 25},
	}
	sum := accounting.Summary{Counts: counts, Histograms: totals,
		Latency: accounting.LatencySet{E2E: accounting.Summarize(totals[accounting.E2E]), Service: accounting.Summarize(totals[accounting.Service]), Publish: accounting.Summarize(totals[accounting.Publish])}}
	if err := r.SetSummary(sum); err != nil {
		t.Fatal(err)
	}
	target := 1000.0 * 50 / 60
	target += 3000.0 * 10 / 60
	r.Rate = Rates{TargetMean: &target, AchievedMean: float64(counts.Received) / 60, SentMean: float64(counts.Sent) / 60, AckedMean: float64(counts.Acked) / 60}
	r.Evaluate(parseThresholds(t, "e2e.p99 < 250ms", "loss == 0", "duplicates.ratio <= 0.1%", "achieved_rate >= 0.95 * target_rate"))
	return r
}

// findMaxResults is testResults with the find-max search of a broker that
// delivers about 5,000/s: climbs from 1,000/s by 2x, fails at 8,000/s,
// bisects to 5,000/s within 5%, against a peak of 1,200/s with a headroom
// threshold.
func findMaxResults(t testing.TB) *Results {
	t.Helper()
	r := testResults(t)
	step := func(n int, kind string, rate, achieved float64, p50, p99, p999 int64, bStart, bMid, bEnd int64, ok bool) FindMaxStep {
		h := accounting.NewHistogram()
		if p50 > 0 {
			_ = h.RecordValues(p50, 980)
			_ = h.RecordValues(p99, 19)
			_ = h.RecordValues(p999, 1)
		}
		s := NewFindMaxStep(n, kind, rate, accounting.StepFigures{
			Counts:     accounting.StepCounts{Acked: int64(rate * 2), Received: int64(rate * 2), ReceivedAcked: int64(rate * 2)},
			Latency:    accounting.LatencySet{E2E: accounting.Summarize(h)},
			Histograms: map[string]*hdr.Histogram{accounting.E2E: h, accounting.Service: h, accounting.Publish: accounting.NewHistogram()},
		})
		s.StartS, s.EndS, s.JudgedS = float64(n)*4, float64(n)*4+2, float64(n)*4+2.5
		s.Scheduled, s.AchievedRate = int64(rate*2), achieved
		s.BacklogStart, s.BacklogMid, s.BacklogEnd = bStart, bMid, bEnd
		s.BacklogGrowing = scenarios.BacklogGrew(rate*2, bMid, bEnd)
		s.Judge(parseThresholds(t, "e2e.p99 < 100ms"), scenarios.BacklogMustDrain)
		if s.OK != ok {
			t.Fatalf("fixture step %d: ok %v, want %v (%s)", n, s.OK, ok, s.Why)
		}
		return s
	}
	sustained, failed := 5000.0, 5250.0
	r.FindMax = &FindMaxResult{
		Phase: 0, Name: "capacity", SLO: []string{"e2e.p99 < 100ms"}, Backlog: scenarios.BacklogMustDrain,
		StartRate: 1000, MaxRate: 50000, StepFactor: 2, HoldS: 2, SettleS: 2, Precision: 0.05, MaxSteps: 12, TimeBoundS: 48,
		StartS: 0, EndS: 17.9, Outcome: scenarios.SearchConverged,
		Message:       "sustained 5,000/s within e2e.p99 < 100ms with a draining backlog; 5,250/s was too much (e2e.p99 = 101ms, not < 100ms); the two are within 5% of each other",
		SustainedRate: &sustained, FailedRate: &failed,
		Steps: []FindMaxStep{
			step(1, StepClimb, 1000, 1000, 1000, 1000, 1000, 0, 0, 0, true),
			step(2, StepClimb, 2000, 2000, 1000, 1000, 1000, 1, 1, 1, true),
			step(3, StepClimb, 4000, 3999, 1000, 1010, 1020, 1, 2, 3, true),
			step(4, StepClimb, 8000, 5247, 418000, 1140000, 1150000, 0, 2506, 5506, false),
			step(5, StepBisect, 6000, 5035, 186000, 470000, 482000, 0, 931, 1931, false),
			step(6, StepBisect, 5000, 4998, 1000, 1020, 1030, 0, 2, 5, true),
			step(7, StepBisect, 5500, 5072, 71300, 210000, 222000, 1, 356, 856, false),
			step(8, StepBisect, 5250, 5035, 36400, 101000, 115000, 0, 182, 431, false),
		},
	}
	r.FindMax.Finish(1200)
	r.Evaluate(parseThresholds(t, "loss == 0", "headroom >= 2", "headroom >= 5"))
	return r
}
