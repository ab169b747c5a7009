//go:build kafka

package report_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/spate-dev/spate/chaos"
	"github.com/spate-dev/spate/drivers/kafka"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// TestSweepKafka is TestSweepMemory's sweep, 3 rates × 2 sizes, on
// spate's embedded Kafka cluster (franz-go's kfake) on the wall clock,
// with the same headless-browser check of sweep.html. It is built with
// -tags kafka (go test -tags kafka -run TestSweepKafka ./report), so the
// report package's tests do not depend on the Kafka driver; the CLI's
// TestSweepKafka runs the same sweep through spate sweep once kafka is
// registered in cmd/spate/drivers.go.
func TestSweepKafka(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("base.yaml", `
name: kafka-sweep
driver: {kafka: {brokers: embedded, partitions: 4}}
producers: 2
consumers: 2
message: {size: 256B}
traffic:
  - constant: {rate: 500/s, for: 3s}
drain: 10s
report: {formats: [json, html]}
`)
	file := write("sweep.yaml", `
scenario: base.yaml
grid:
  traffic[0].constant.rate: [500/s, 1000/s, 2000/s]
  message.size: [256B, 4KiB]
`)
	l := &scenarios.Loader{}
	l.Driver(kafka.Kind.Name, kafka.Kind.Options)
	chaos.Register(l)
	sw, err := l.LoadSweep(file)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	sr, err := engine.Sweep(context.Background(), sw, out, nil, engine.WithDrivers(kafka.Kind))
	if err != nil {
		t.Fatal(err)
	}
	if len(sr.Points) != 6 {
		t.Fatalf("%d points, want 6", len(sr.Points))
	}
	for _, line := range sr.Lines() {
		pts := sr.SweepLine(line)
		for i, p := range pts {
			if p.Counts.Sent == 0 || p.Counts.Received != p.Counts.Sent || p.Counts.Lost != 0 || p.LatencyUS.E2E.Count == 0 {
				t.Errorf("%s point %d: %+v", line, p.Point, p)
			}
			if i > 0 && p.AchievedRate < pts[i-1].AchievedRate {
				t.Errorf("%s: throughput fell from %v to %v as the rate rose", line, pts[i-1].AchievedRate, p.AchievedRate)
			}
		}
	}
	art := report.ArtifactDir(t)
	report.CheckInBrowser(t, filepath.Join(out, "sweep.html"), report.SweepCharts, filepath.Join(art, "sweep-kafka.png"))
}
