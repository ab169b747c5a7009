package report_test

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/spate-dev/spate/chaos"
	"github.com/spate-dev/spate/drivers/memory"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// TestSweepMemory runs a sweep of 3 rates × 2 message sizes against a
// memory broker that delivers at most 8,000/s, on virtual time: sweep.csv
// and sweep.json hold 6 rows, every point keeps its own report directory,
// along each size's line throughput grows with the rate until it
// saturates at the capacity while e2e latency does not fall and then
// climbs steeply (the hockey stick), and sweep.html passes the same
// headless-browser check as the run report.
func TestSweepMemory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("base.yaml", `
name: sweep-base
driver: {memory: {capacity: 8000/s, latency: 2ms, jitter: 1ms, streams: 4}}
producers: 2
consumers: 2
message: {size: 256B}
traffic:
  - constant: {rate: 1000/s, for: 2s}
drain: 3s
thresholds:
  - e2e.p99 < 100ms
report: {formats: [text, json, hgrm, hlog, html]}
`)
	file := write("rates.yaml", `
name: rates-by-size
scenario: base.yaml
grid:
  traffic[0].constant.rate: [2000/s, 6000/s, 12000/s]
  message.size: [256B, 4KiB]
`)
	sweepDir := filepath.Join(dir, "out")
	sw := loadSweep(t, file)
	var sr *report.SweepResults
	var events []string
	synctest.Test(t, func(t *testing.T) {
		var err error
		sr, err = engine.Sweep(context.Background(), sw, sweepDir, func(ev engine.SweepEvent) {
			if ev.Done {
				events = append(events, ev.Point.Slug)
			}
		}, engine.WithDrivers(memory.Kind))
		if err != nil {
			t.Fatal(err)
		}
	})
	if len(sr.Points) != 6 || len(events) != 6 || sr.Planned != 6 || sr.Along != "traffic[0].constant.rate" {
		t.Fatalf("%d rows, %d events, planned %d, along %q", len(sr.Points), len(events), sr.Planned, sr.Along)
	}

	// The table files.
	f, err := os.Open(filepath.Join(sweepDir, "sweep.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 7 || rows[0][1] != "traffic[0].constant.rate" || rows[0][2] != "message.size" || rows[0][3] != "verdict" {
		t.Fatalf("sweep.csv: %d rows, header %v", len(rows), rows[0])
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, r := range rows[1:] {
		for _, c := range []string{"achieved_rate", "e2e_p50_us", "e2e_p99_us", "e2e_p999_us", "publish_p99_us", "sent", "received", "lost", "duplicates"} {
			if _, err := strconv.ParseFloat(r[col[c]], 64); err != nil {
				t.Errorf("sweep.csv point %s: %s = %q", r[0], c, r[col[c]])
			}
		}
	}
	back, err := report.ReadSweep(filepath.Join(sweepDir, "sweep.json"))
	if err != nil || len(back.Points) != 6 {
		t.Fatalf("sweep.json: %v", err)
	}
	for _, p := range sr.Points {
		for _, name := range []string{"results.json", "report.html", "summary.txt", "e2e.hgrm", "e2e.hlog"} {
			if _, err := os.Stat(filepath.Join(sweepDir, p.Dir, name)); err != nil {
				t.Errorf("point %d: %v", p.Point, err)
			}
		}
		res, err := report.ReadResults(filepath.Join(sweepDir, p.Dir, "results.json"))
		if err != nil || res.Counts.Sent != p.Counts.Sent {
			t.Errorf("point %d: results.json %v", p.Point, err)
		}
		if p.Counts.Lost != 0 || p.Counts.Duplicates != 0 || p.Counts.Received != p.Counts.Sent {
			t.Errorf("point %d: counts %+v", p.Point, p.Counts)
		}
	}

	// Two lines of three points, in rate order, with the trends of a
	// system that saturates at 8,000/s.
	lines := sr.Lines()
	if len(lines) != 2 || lines[0] != "message.size=256B" || lines[1] != "message.size=4KiB" {
		t.Fatalf("lines %q", lines)
	}
	for _, line := range lines {
		pts := sr.SweepLine(line)
		if len(pts) != 3 {
			t.Fatalf("line %s: %d points", line, len(pts))
		}
		for i, want := range []string{"2000/s", "6000/s", "12000/s"} {
			if pts[i].Values[0] != want {
				t.Errorf("line %s point %d at %s, want %s", line, i, pts[i].Values[0], want)
			}
		}
		for i := 1; i < 3; i++ {
			a, b := pts[i-1], pts[i]
			if b.AchievedRate < a.AchievedRate {
				t.Errorf("line %s: throughput fell from %v to %v as the rate rose", line, a.AchievedRate, b.AchievedRate)
			}
			if a.LatencyUS.E2E.P99 > b.LatencyUS.E2E.P99*21/20 {
				t.Errorf("line %s: e2e p99 fell from %dµs to %dµs as the rate rose", line, a.LatencyUS.E2E.P99, b.LatencyUS.E2E.P99)
			}
		}
		if r := pts[1].AchievedRate; r < 5700 || r > 6300 {
			t.Errorf("line %s: 6000/s achieved %v/s below capacity", line, r)
		}
		if r := pts[2].AchievedRate; r < 7000 || r > 8600 {
			t.Errorf("line %s: 12000/s achieved %v/s, want about the 8000/s capacity", line, r)
		}
		if pts[2].LatencyUS.E2E.P99 < 10*pts[1].LatencyUS.E2E.P99 || pts[2].Verdict != report.Fail || pts[1].Verdict != report.Pass {
			t.Errorf("line %s: past capacity p99 %dµs vs %dµs below; verdicts %s, %s", line,
				pts[2].LatencyUS.E2E.P99, pts[1].LatencyUS.E2E.P99, pts[1].Verdict, pts[2].Verdict)
		}
	}

	// The page: self-contained, both charts, a link to every point's report.
	page, err := os.ReadFile(filepath.Join(sweepDir, "sweep.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range append([]string{"rates-by-size", "message.size=256B", "message.size=4KiB", "hockey stick"}, report.SweepCharts...) {
		if !strings.Contains(string(page), want) {
			t.Errorf("sweep.html lacks %q", want)
		}
	}
	for _, p := range sr.Points {
		if !strings.Contains(string(page), `href="`+filepath.ToSlash(p.HTML)+`"`) {
			t.Errorf("sweep.html has no link to %s", p.HTML)
		}
	}
	for _, bad := range []string{"<script", "<link", "<img", "http://", "https://www."} {
		if strings.Contains(strings.ReplaceAll(string(page), `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
			t.Errorf("sweep.html contains %q", bad)
		}
	}
	art := report.ArtifactDir(t)
	if err := os.WriteFile(filepath.Join(art, "sweep.html"), page, 0o644); err != nil {
		t.Fatal(err)
	}
	report.CheckInBrowser(t, filepath.Join(sweepDir, "sweep.html"), report.SweepCharts, filepath.Join(art, "sweep.png"))
}

func loadSweep(t *testing.T, file string) *scenarios.Sweep {
	t.Helper()
	l := &scenarios.Loader{}
	l.Driver(memory.Kind.Name, memory.Kind.Options)
	chaos.Register(l)
	sw, err := l.LoadSweep(file)
	if err != nil {
		t.Fatal(err)
	}
	return sw
}
