package kafka_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spate-dev/spate/chaos"
	"github.com/spate-dev/spate/drivers/kafka"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// TestExactlyOnceExamples runs every examples/exactly-once*.yaml on the
// embedded cluster through the engine: their thresholds state the
// guarantees (no aborted reads, no loss, no duplicates, in order), so each
// must pass, every fault must have been applied, and the claim must hold.
func TestExactlyOnceExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("runs each example for real; skipped with -short")
	}
	files, err := filepath.Glob("../../examples/exactly-once*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("exactly-once examples: %v %v", files, err)
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
			t.Logf("counts %+v", res.Counts)
			t.Logf("driver %v", res.DriverStats)
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
			if res.Verdict != report.Pass || res.Claim == nil || !res.Claim.Held {
				t.Errorf("verdict %s, claim %+v", res.Verdict, res.Claim)
			}
			if res.Counts.Aborted == 0 {
				t.Error("no transaction aborted: the isolation check proves nothing")
			}
			var text strings.Builder
			if err := report.WriteText(&text, res); err != nil {
				t.Fatal(err)
			}
			t.Logf("summary:\n%s", text.String())
			if testing.Verbose() {
				dir := filepath.Join(os.TempDir(), "spate-"+strings.TrimSuffix(filepath.Base(file), ".yaml"))
				if _, err := report.WriteDir(dir, res, nil); err == nil {
					t.Logf("report in %s", dir)
				}
			}
		})
	}
}
