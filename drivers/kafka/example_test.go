package kafka_test

import (
	"context"
	"testing"

	"github.com/spate-dev/spate/drivers/kafka"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// TestQuickstartExample checks examples/quickstart.yaml: it must
// load without problems, and run on the embedded cluster with every
// threshold passing (skipped with -short and under the race detector, which
// slow a 10k/s spike beyond what a 2-core machine sustains).
func TestQuickstartExample(t *testing.T) {
	l := &scenarios.Loader{}
	l.Driver("kafka", kafka.Kind.Options)
	sc, err := l.Load("../../examples/quickstart.yaml")
	if err != nil {
		t.Fatalf("the example does not load:\n%v", err)
	}
	o, ok := sc.Driver.Options.(kafka.Options)
	if !ok || !o.IsEmbedded() || o.Topic != "spate-quickstart" {
		t.Fatalf("options %+v", sc.Driver.Options)
	}
	if testing.Short() || raceEnabled {
		t.Skip("the full run is skipped with -short and -race")
	}
	res, err := engine.Run(context.Background(), sc, engine.WithDrivers(kafka.Kind))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("counts %+v", res.Counts)
	t.Logf("e2e %+v", res.LatencyUS.E2E)
	for _, th := range res.Thresholds {
		t.Logf("threshold %+v", th)
	}
	if res.Counts.Lost != 0 || res.Counts.Duplicates != 0 || res.Counts.Reordered != 0 {
		t.Errorf("counts %+v", res.Counts)
	}
	if res.Verdict != report.Pass {
		t.Errorf("verdict %s", res.Verdict)
	}
}
