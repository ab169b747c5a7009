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

// TestChaosExamples runs every examples/chaos-*.yaml on the embedded
// cluster: their thresholds state the outcome each fault must have (no loss
// through a broker kill, duplicates from a crash or from retries without
// idempotence, none with it), so each must pass.
func TestChaosExamples(t *testing.T) {
	runExamples(t, "chaos-*.yaml", 5, nil)
}

// runExamples runs every examples/<glob> (at least `least` of them) on the
// embedded cluster through the engine, and checks that every fault was
// applied, every threshold held and the verdict is pass; check, if not
// nil, checks each result further. With -short it skips.
func runExamples(t *testing.T, glob string, least int, check func(t *testing.T, res *report.Results)) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs each example for real; skipped with -short")
	}
	files, err := filepath.Glob(filepath.Join("..", "..", "examples", glob))
	if err != nil || len(files) < least {
		t.Fatalf("examples/%s: %v %v", glob, files, err)
	}
	l := &scenarios.Loader{}
	l.Driver("kafka", kafka.Kind.Options)
	chaos.Register(l)
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
			if res.Verdict != report.Pass {
				t.Errorf("verdict %s; counts %+v", res.Verdict, res.Counts)
			}
			if check != nil {
				check(t, res)
			}
			if t.Failed() || testing.Verbose() {
				var text strings.Builder
				if err := report.WriteText(&text, res); err == nil {
					t.Logf("summary:\n%s", text.String())
				}
			}
			if testing.Verbose() {
				dir := filepath.Join(os.TempDir(), "spate-"+strings.TrimSuffix(filepath.Base(file), ".yaml"))
				if _, err := report.WriteDir(dir, res, nil); err == nil {
					t.Logf("report in %s", dir)
				}
			}
		})
	}
}
