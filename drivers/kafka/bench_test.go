package kafka_test

import (
	"context"
	"testing"

	"github.com/spate-dev/spate/drivers/kafka"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/scenarios"
)

// Throughput against a bare franz-go client is BenchmarkCompare's
// (compare_test.go, `make bench-compare`). BenchmarkSpateLatency runs
// 50,000 msg/s of 100-byte messages for 5 s on the embedded cluster and
// reports e2e p50 and p99:
//
//	go test ./drivers/kafka -run '^$' -bench SpateLatency -benchtime 1x
func BenchmarkSpateLatency(b *testing.B) {
	l := &scenarios.Loader{}
	l.Driver("kafka", kafka.Kind.Options)
	sc, err := l.Parse("bench.yaml", []byte(`
driver: {kafka: {partitions: 3}}
producers: 2
consumers: 2
message: {size: 100B}
traffic:
  - constant: {rate: 50000/s, for: 5s}
drain: 10s
`))
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		res, err := engine.Run(context.Background(), sc, engine.WithDrivers(kafka.Kind))
		if err != nil {
			b.Fatal(err)
		}
		if res.Counts.Lost != 0 || res.Counts.Failed != 0 {
			b.Fatalf("counts %+v", res.Counts)
		}
		b.ReportMetric(res.Rate.AchievedMean, "msg/s")
		b.ReportMetric(float64(res.LatencyUS.E2E.P50)/1000, "e2e-p50-ms")
		b.ReportMetric(float64(res.LatencyUS.E2E.P99)/1000, "e2e-p99-ms")
		b.ReportMetric(float64(res.LatencyUS.Publish.P50)/1000, "publish-p50-ms")
	}
}
