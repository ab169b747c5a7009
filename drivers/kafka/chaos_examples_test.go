package kafka_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/spate-dev/spate/chaos"
	"github.com/spate-dev/spate/drivers/kafka"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/scenarios"
)

// TestChaosExamples runs every examples/chaos-*.yaml on the embedded
// cluster: their thresholds state the outcome each fault must have (no loss
// through a broker kill, duplicates from a crash or from retries without
// idempotence, none with it), so each must pass.
func TestChaosExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("runs each chaos example for real; skipped with -short")
	}
	files, err := filepath.Glob("../../examples/chaos-*.yaml")
	if err != nil || len(files) < 5 {
		t.Fatalf("chaos examples: %v %v", files, err)
	}
	l := &scenarios.Loader{}
	l.Driver("kafka", kafka.Kind.Options)
	for _, a := range chaos.Actions() {
		l.Action(a.Name, a.Decode)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			sc, err := l.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			res, err := engine.Run(context.Background(), sc, engine.WithDrivers(kafka.Kind))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range res.Chaos {
				if !f.OK {
					t.Errorf("fault %s failed: %s", f.Action, f.Error)
				}
			}
			for _, th := range res.Thresholds {
				if !th.OK {
					v := "undefined"
					if th.Value != nil {
						v = strconv.FormatFloat(*th.Value, 'g', -1, 64)
					}
					t.Errorf("threshold %q does not hold: measured %s %s", th.Expr, v, th.Error)
				}
			}
			if res.Verdict != "pass" {
				t.Errorf("verdict %s; counts %+v", res.Verdict, res.Counts)
			}
		})
	}
}
