package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// ceiling is a find-max search that reaches its max on any machine: the
// broker has no capacity limit, the SLO is generous and the backlog is not
// judged (a wall-clock test on a busy machine must not flake), so the
// sustained rate is the max, 1000/s.
const ceiling = `
name: cli-capacity
driver: memory
traffic:
  - find-max: {start: 500/s, max: 1000/s, step: 2x, hold: 500ms, settle: 200ms, slo: "e2e.p99 < 5s", backlog: ignore}
drain: 1s
thresholds:
  - headroom >= 2
`

// TestRunPeakHeadroom: spate run --peak states the headroom and the
// headroom threshold decides the exit code: 1000/s over a 400/s peak is
// 2.5× (pass, 0), over 800/s is 1.25× (fail, 3); without --peak it is
// undefined (fail, saying how to define it); a bad --peak is a usage error.
func TestRunPeakHeadroom(t *testing.T) {
	file := writeScenario(t, ceiling)
	out := t.TempDir()
	r := spate(t, "run", "--progress=off", "--peak", "400/s", "--out", out, file)
	if r.code != 0 {
		t.Fatalf("--peak 400/s: exit %d, want 0\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"headroom 2.5× today's peak: sustained 1,000/s", "peak 400/s; meets headroom >= 2", "✓ headroom >= 2"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "find-max: from 500/s to 1000/s") || !strings.Contains(r.stderr, "the search ends within") {
		t.Errorf("the time bound was not printed up front:\n%s", r.stderr)
	}
	var res struct {
		FindMax struct {
			Outcome       string   `json:"outcome"`
			SustainedRate *float64 `json:"sustained_rate"`
			PeakRate      *float64 `json:"peak_rate"`
			Headroom      *float64 `json:"headroom"`
			TimeBoundS    float64  `json:"time_bound_s"`
			Steps         []struct {
				Rate float64 `json:"rate"`
				OK   bool    `json:"ok"`
			} `json:"steps"`
		} `json:"find_max"`
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	f := res.FindMax
	if f.Outcome != "ceiling" || f.SustainedRate == nil || *f.SustainedRate != 1000 || *f.PeakRate != 400 || *f.Headroom != 2.5 || len(f.Steps) != 2 {
		t.Errorf("find_max: %+v", f)
	}

	r = spate(t, "run", "--progress=off", "--peak", "800/s", "--out", t.TempDir(), file)
	if r.code != 3 || !strings.Contains(r.stdout, "headroom 1.25× today's peak") || !strings.Contains(r.stdout, "does NOT meet headroom >= 2") {
		t.Errorf("--peak 800/s: exit %d, want 3\n%s", r.code, r.stdout)
	}
	r = spate(t, "run", "--progress=off", "--out", t.TempDir(), file)
	if r.code != 3 || !strings.Contains(r.stdout, "give today's peak with spate run --peak RATE") {
		t.Errorf("no --peak: exit %d, want 3\n%s", r.code, r.stdout)
	}
	for _, bad := range []string{"12000", "-5/s", "0/s", "fast"} {
		if r := spate(t, "run", "--progress=off", "--peak", bad, file); r.code != 2 || !strings.Contains(r.stderr, "--peak") {
			t.Errorf("--peak %s: exit %d, want 2: %s", bad, r.code, r.stderr)
		}
	}
}

const sweepBase = `
name: sweep-base
driver: {memory: {latency: 1ms}}
traffic:
  - constant: {rate: 100/s, for: 300ms}
drain: 1s
report: {formats: [json, html]}
`

// TestSweepCommand: spate sweep runs every point, writes the table and
// each point's report, and exits like run; --dry-run lists the points;
// validate checks a sweep file with all its points; an invalid point stops
// the sweep before anything runs.
func TestSweepCommand(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "base.yaml"), []byte(sweepBase), 0o644); err != nil {
		t.Fatal(err)
	}
	sweepFile := filepath.Join(dir, "sweep.yaml")
	if err := os.WriteFile(sweepFile, []byte("scenario: base.yaml\ngrid:\n  traffic[0].constant.rate: [200/s, 400/s]\n  driver.memory.streams: [1, 2]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := spate(t, "validate", sweepFile); r.code != 0 || !strings.Contains(r.stdout, "a sweep of 4 points") {
		t.Errorf("validate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := spate(t, "sweep", "--dry-run", sweepFile); r.code != 0 || !strings.Contains(r.stdout, "4-rate=400-s_streams=2") {
		t.Errorf("--dry-run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := spate(t, "run", sweepFile); r.code != 2 || !strings.Contains(r.stderr, "is a sweep file; run it with spate sweep") {
		t.Errorf("run on a sweep file: exit %d\n%s", r.code, r.stderr)
	}
	out := filepath.Join(t.TempDir(), "sweep")
	r := spate(t, "sweep", "--progress=off", "--out", out, sweepFile)
	if r.code != 0 {
		t.Fatalf("sweep: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "point 4/4: driver.memory.streams=2 traffic[0].constant.rate=400/s") && !strings.Contains(r.stderr, "point 4/4: traffic[0].constant.rate=400/s driver.memory.streams=2") {
		t.Errorf("no progress per point:\n%s", r.stderr)
	}
	f, err := os.Open(filepath.Join(out, "sweep.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 5 {
		t.Fatalf("sweep.csv: %d rows, %v", len(rows), err)
	}
	for _, row := range rows[1:] {
		sent, _ := strconv.Atoi(row[len(rows[0])-12])
		if row[3] != "pass" || sent == 0 {
			t.Errorf("row %v", row)
		}
		pdir := filepath.Join(out, row[len(row)-1])
		for _, name := range []string{"results.json", "report.html"} {
			if _, err := os.Stat(filepath.Join(pdir, name)); err != nil {
				t.Errorf("point report: %v", err)
			}
		}
		if _, err := os.Stat(filepath.Join(pdir, "summary.txt")); err == nil {
			t.Errorf("%s: summary.txt written though the scenario's formats leave it out", pdir)
		}
	}
	for _, name := range []string{"sweep.json", "sweep.html"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Error(err)
		}
	}

	// A point that does not validate: nothing runs, exit 2, the point named.
	if err := os.WriteFile(sweepFile, []byte("scenario: base.yaml\ngrid:\n  traffic[0].constant.rate: [200/s, 0/s]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(t.TempDir(), "sweep")
	r = spate(t, "sweep", "--out", out2, sweepFile)
	if r.code != 2 || !strings.Contains(r.stderr, "must be more than 0/s (for silence use a pause phase) (sweep point 2: traffic[0].constant.rate=0/s)") {
		t.Errorf("invalid point: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(out2); !os.IsNotExist(err) {
		t.Errorf("an invalid sweep wrote %s", out2)
	}
}

// TestSweepKafka is the sweep of 3 rates × 2 sizes on spate's embedded
// Kafka cluster (franz-go's kfake). It runs once the kafka driver is built
// into spate (registered in cmd/spate/drivers.go) and skips until then.
func TestSweepKafka(t *testing.T) {
	probe := writeScenario(t, "driver: {kafka: {brokers: embedded}}\ntraffic:\n  - constant: {rate: 1/s, for: 1s}\n")
	if r := spate(t, "validate", probe); r.code != 0 {
		if strings.Contains(r.stderr, `unknown driver "kafka"`) {
			t.Skip("the kafka driver is not built into spate yet: register kafka.Kind in cmd/spate/drivers.go to run this test")
		}
		t.Fatalf("the kafka probe scenario is invalid:\n%s", r.stderr)
	}
	if testing.Short() {
		t.Skip("starts an embedded Kafka cluster per point; skipped with -short")
	}
	dir := t.TempDir()
	base := `
name: kafka-sweep
driver: {kafka: {brokers: embedded, partitions: 4}}
producers: 2
consumers: 2
message: {size: 256B}
traffic:
  - constant: {rate: 500/s, for: 3s}
drain: 10s
report: {formats: [json, html]}
`
	if err := os.WriteFile(filepath.Join(dir, "base.yaml"), []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	sweepFile := filepath.Join(dir, "sweep.yaml")
	if err := os.WriteFile(sweepFile, []byte("scenario: base.yaml\ngrid:\n  traffic[0].constant.rate: [500/s, 1000/s, 2000/s]\n  message.size: [256B, 4KiB]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "sweep")
	r := spate(t, "sweep", "--progress=off", "--out", out, sweepFile)
	if r.code != 0 && r.code != 3 {
		t.Fatalf("sweep: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var sw struct {
		Points []struct {
			Values       []string `json:"values"`
			Line         string   `json:"line"`
			Verdict      string   `json:"verdict"`
			AchievedRate float64  `json:"achieved_rate"`
			Counts       struct{ Sent, Received, Lost int64 }
			LatencyUS    struct {
				E2E struct{ Count, P50, P99 int64 } `json:"e2e"`
			} `json:"latency_us"`
		} `json:"points"`
	}
	b, err := os.ReadFile(filepath.Join(out, "sweep.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sw); err != nil {
		t.Fatal(err)
	}
	if len(sw.Points) != 6 {
		t.Fatalf("%d points, want 6", len(sw.Points))
	}
	for i, p := range sw.Points {
		if p.Counts.Sent == 0 || p.Counts.Received != p.Counts.Sent || p.Counts.Lost != 0 || p.LatencyUS.E2E.Count == 0 || p.LatencyUS.E2E.P99 > 5_000_000 {
			t.Errorf("point %d %v: %+v", i+1, p.Values, p)
		}
		// Along each size's line the throughput follows the rate.
		if i%3 > 0 && p.AchievedRate < 0.9*sw.Points[i-1].AchievedRate {
			t.Errorf("point %d %v: throughput %v fell below the previous point's %v", i+1, p.Values, p.AchievedRate, sw.Points[i-1].AchievedRate)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "sweep.html")); err != nil {
		t.Error(err)
	}
}
