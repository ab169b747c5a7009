package scenarios_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/spate-dev/spate/chaos"
	"github.com/spate-dev/spate/drivers/eventbridge"
	"github.com/spate-dev/spate/drivers/kafka"
	"github.com/spate-dev/spate/drivers/memory"
	"github.com/spate-dev/spate/drivers/rabbitmq"
	"github.com/spate-dev/spate/internal/fuzzcheck"
	"github.com/spate-dev/spate/scenarios"
)

// The fuzz targets feed every YAML input spate reads through the loader
// spate itself uses (every driver's options, every chaos action), and
// require of each input: no panic, Problems as the only kind of error,
// and bounded time and memory (fuzzcheck). make fuzz (.ci/fuzz.sh) runs
// them in CI for a bounded time.

// realLoader is cmd/spate's loader: every built-in driver and action.
func realLoader() *scenarios.Loader {
	l := &scenarios.Loader{}
	for _, k := range []struct {
		name    string
		options scenarios.OptionsFunc
	}{{kafka.Kind.Name, kafka.Kind.Options}, {memory.Kind.Name, memory.Kind.Options}, {rabbitmq.Kind.Name, rabbitmq.Kind.Options}, {eventbridge.Kind.Name, eventbridge.Kind.Options}} {
		l.Driver(k.name, k.options)
	}
	chaos.Register(l)
	return l
}

// adversarialSeeds are inputs of the classes that once hung spate or ran
// it out of memory.
var adversarialSeeds = []string{
	"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
	"driver: memory\ntraffic:\n  - constant: {rate: 1.7e308/s, for: 1s}\n",
	"driver: memory\nproducers: 2000000000\ntraffic:\n  - constant: {rate: 1/s, for: 1s}\n",
	"name: \"../../x\\n\\0\"\ndriver: memory\ntraffic:\n  - constant: {rate: 1/s, for: 1s}\n",
	"driver: memory\ntraffic: &t\n  - constant: {rate: 1/s, for: 1s}\n  - *t\n",
	"driver: memory\ntraffic:\n  - step: {from: 1/s, to: 2/s, steps: 10000, each: 1ns}\nthresholds: [\"e2e.p99 < 2 * e2e.p50 + 1ms\", \"loss == loss\"]\n",
}

// checkProblems fails t unless err is nil or Problems, each with a file.
func checkProblems(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var ps scenarios.Problems
	if !errors.As(err, &ps) || len(ps) == 0 {
		t.Fatalf("error %T is not Problems: %v", err, err)
	}
	for _, p := range ps {
		if p.File == "" || strings.ContainsAny(p.Field, "\n") {
			t.Fatalf("problem %q has no file or a field of several lines", p.Error())
		}
	}
}

func FuzzParseScenario(f *testing.F) {
	examples, _ := filepath.Glob("../examples/*.yaml")
	for _, e := range examples {
		if b, err := os.ReadFile(e); err == nil {
			f.Add(b)
		}
	}
	for _, s := range adversarialSeeds {
		f.Add([]byte(s))
	}
	l := realLoader()
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzcheck.Bounded(t, func() {
			_, err := l.Parse("fuzz.yaml", data)
			checkProblems(t, err)
			_ = scenarios.IsSweepFile(data)
		})
	})
}

func FuzzParseSweep(f *testing.F) {
	base, err := os.ReadFile("../examples/capacity-base.yaml")
	if err != nil {
		f.Fatal(err)
	}
	sweep, err := os.ReadFile("../examples/capacity-sweep.yaml")
	if err != nil {
		f.Fatal(err)
	}
	sweep = []byte(strings.Replace(string(sweep), "scenario: capacity-base.yaml", "scenario: base.yaml", 1))
	f.Add(sweep, base)
	for _, s := range adversarialSeeds {
		f.Add([]byte("scenario: base.yaml\ngrid:\n  message.size: [256B]\n"+s), base)
		f.Add(sweep, []byte(s))
	}
	f.Add([]byte("scenario: base.yaml\ngrid:\n  driver.memory.streams: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n  message.size: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n  seed: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"), base)
	l := realLoader()
	f.Fuzz(func(t *testing.T, sweepData, baseData []byte) {
		// The sweep reads the file its scenario: names; keep that the base
		// given (any other path would fuzz the file system, not spate).
		var head struct {
			Scenario string `yaml:"scenario"`
		}
		if yaml.Unmarshal(sweepData, &head) != nil || head.Scenario != "base.yaml" {
			t.Skip()
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "base.yaml"), baseData, 0o644); err != nil {
			t.Fatal(err)
		}
		fuzzcheck.Bounded(t, func() {
			_, err := l.ParseSweep(filepath.Join(dir, "sweep.yaml"), sweepData)
			checkProblems(t, err)
		})
	})
}

func FuzzParseThreshold(f *testing.F) {
	for _, s := range []string{"e2e.p99 < 250ms", "loss == 0", "duplicates.ratio <= 0.1%", "achieved_rate >= 0.95 * target_rate",
		"e2e.p99 < 2 * e2e.p50 + 1ms", "loss == loss", "loss == -1", "lost.ratio <= 120%", "sent > 1000/s", "1e-3 >= failed.ratio"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		fuzzcheck.Bounded(t, func() {
			th, err := scenarios.ParseThreshold(expr)
			if err != nil {
				return
			}
			// What parses names at least one metric and an operator.
			if len(th.Metrics()) == 0 || th.Op == "" {
				t.Fatalf("%q parsed to %+v", expr, th)
			}
		})
	})
}
