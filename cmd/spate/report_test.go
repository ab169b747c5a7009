package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// runOnce runs the passing scenario once and returns its report directory.
func runOnce(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	r := spate(t, "run", "--progress=off", "--out", out, writeScenario(t, passing))
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	return out
}

// TestRunWritesEveryFormat: a run writes every report file by default,
// the .hlog files read back with HdrHistogram's log reader and add up to
// the run's totals.
func TestRunWritesEveryFormat(t *testing.T) {
	out := runOnce(t)
	for _, f := range []string{"summary.txt", "results.json", "e2e.hgrm", "service.hgrm", "publish.hgrm",
		"e2e.hlog", "service.hlog", "publish.hlog", "report.html", "junit.xml"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("report file %s: %v", f, err)
		}
	}
	var res struct {
		LatencyUS map[string]struct{ Count int64 } `json:"latency_us"`
	}
	b, _ := os.ReadFile(filepath.Join(out, "results.json"))
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"e2e", "service", "publish"} {
		f, err := os.Open(filepath.Join(out, kind+".hlog"))
		if err != nil {
			t.Fatal(err)
		}
		rd := hdr.NewHistogramLogReader(f)
		var total int64
		intervals := 0
		for {
			h, err := rd.NextIntervalHistogram()
			if err != nil {
				t.Fatal(err)
			}
			if h == nil {
				break
			}
			total += h.TotalCount()
			intervals++
		}
		f.Close()
		if intervals == 0 || total != res.LatencyUS[kind].Count {
			t.Errorf("%s.hlog: %d values in %d intervals, results.json counts %d", kind, total, intervals, res.LatencyUS[kind].Count)
		}
	}
}

// TestReportRerenders: spate report writes the files again from
// results.json alone, identical to the run's.
func TestReportRerenders(t *testing.T) {
	out := runOnce(t)
	again := t.TempDir()
	r := spate(t, "report", "--out", again, out)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "verdict  PASS") {
		t.Errorf("no summary printed:\n%s", r.stdout)
	}
	for _, f := range []string{"summary.txt", "report.html", "junit.xml", "e2e.hgrm"} {
		a, _ := os.ReadFile(filepath.Join(out, f))
		b, err := os.ReadFile(filepath.Join(again, f))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s re-rendered differs from the run's (%v)", f, err)
		}
	}
	// In place, one format, from the results.json file itself.
	if r := spate(t, "report", "-q", "--formats", "junit", filepath.Join(out, "results.json")); r.code != 0 || r.stdout != "report: "+out+"\n" {
		t.Errorf("in place: exit %d\n%q\n%s", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{
		{"report"}, {"report", out, out}, {"report", "--formats", "hlog", out}, {"report", "--formats", "pdf", out},
		{"report", "--max-regression", "e2e.p99=10%", out}, {"report", filepath.Join(t.TempDir(), "nothing")},
	} {
		if r := spate(t, args...); r.code != 2 {
			t.Errorf("spate %s: exit %d, want 2\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}

// TestReportCompare: equal runs pass; a synthetic regression (the run's
// latencies doubled, one message lost) exits 3 naming the metrics; bad
// flags exit 2.
func TestReportCompare(t *testing.T) {
	base := runOnce(t)
	tols := []string{"--max-regression", "e2e.p99=10%", "--max-regression", "lost=0", "--max-regression", "achieved_rate=5%"}

	r := spate(t, append([]string{"report", "--compare", base, base}, tols...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "result  PASS: 3 of 3 tolerances held") {
		t.Fatalf("equal runs: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// The regressed run: results.json edited as another run would differ.
	worse := t.TempDir()
	b, err := os.ReadFile(filepath.Join(base, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	hists := res["histograms"].(map[string]any)
	h, err := hdr.Decode([]byte(hists["e2e"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	doubled := hdr.New(1, 3_600_000_000, 3)
	for _, bar := range h.Distribution() {
		if bar.Count > 0 {
			_ = doubled.RecordValues(bar.To*2+1000, bar.Count)
		}
	}
	enc, err := doubled.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		t.Fatal(err)
	}
	hists["e2e"] = string(enc)
	counts := res["counts"].(map[string]any)
	counts["lost"] = counts["lost"].(float64) + 1
	b, _ = json.Marshal(res)
	if err := os.WriteFile(filepath.Join(worse, "results.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}

	r = spate(t, append([]string{"report", "--compare", base, worse}, tols...)...)
	if r.code != 3 {
		t.Fatalf("regression: exit %d, want 3\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "result  REGRESSION: e2e.p99, lost") {
		t.Errorf("regression output:\n%s", r.stdout)
	}
	// The other way round it is an improvement.
	if r := spate(t, append([]string{"report", "--compare", worse, base}, tols...)...); r.code != 0 {
		t.Errorf("improvement: exit %d\n%s", r.code, r.stdout)
	}
	// Without tolerances nothing is checked: exit 0.
	if r := spate(t, "report", "--compare", base, worse); r.code != 0 || !strings.Contains(r.stdout, "nothing checked") {
		t.Errorf("no tolerances: exit %d\n%s", r.code, r.stdout)
	}

	for _, args := range [][]string{
		{"report", "--compare", base},
		{"report", "--compare", base, worse, worse},
		{"report", "--compare", base, worse, "--max-regression", "e2e.p99"},
		{"report", "--compare", base, worse, "--max-regression", "latency=10%"},
		{"report", "--compare", base, worse, "--max-regression", "e2e.p99=5"},
		{"report", "--compare", base, worse, "--max-regression", "lost=0", "--max-regression", "lost=1"},
		{"report", "--compare", base, worse, "--nope"},
		{"report", "--compare", base, filepath.Join(t.TempDir(), "missing")},
		{"report", "--compare", "--formats", "html", base, worse},
	} {
		if r := spate(t, args...); r.code != 2 {
			t.Errorf("spate %s: exit %d, want 2\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}

var metricsLine = regexp.MustCompile(`metrics: (http://127\.0\.0\.1:\d+/metrics)`)

// TestMetricsEndpoint scrapes --metrics-addr during a memory-driver run:
// counters, gauges and the latency histogram are there and move; then the
// run is interrupted. Nothing depends on how fast the machine is: the
// scrape repeats until the figures show traffic.
func TestMetricsEndpoint(t *testing.T) {
	sc := strings.Replace(passing, "for: 1s", "for: 60s", 1) + "report:\n  interval: 200ms\n"
	out := t.TempDir()
	cmd := exec.Command(binary, "run", "--progress=off", "--metrics-addr", "127.0.0.1:0", "--out", out, writeScenario(t, sc))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	lines := bufio.NewScanner(stderr)
	url := ""
	for url == "" && lines.Scan() {
		if m := metricsLine.FindStringSubmatch(lines.Text()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		t.Fatal("spate printed no metrics address")
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()

	var body string
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			if resp.StatusCode == 200 && metricValue(body, "spate_received_total") > 0 && metricValue(body, `spate_latency_seconds_count{kind="e2e",scenario="cli-pass"}`) > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no traffic in the metrics after 60s:\n%s", body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, want := range []string{
		"# TYPE spate_sent_total counter", "# TYPE spate_acked_total counter", "# TYPE spate_received_total counter",
		"# TYPE spate_duplicates_total counter", "# TYPE spate_failed_total counter",
		"# TYPE spate_backlog_messages gauge", "# TYPE spate_target_rate_messages_per_second gauge",
		"# TYPE spate_active_faults gauge", "# TYPE spate_latency_seconds histogram",
		`spate_latency_seconds_bucket{kind="publish",scenario="cli-pass",le="+Inf"}`,
		`spate_target_rate_messages_per_second{scenario="cli-pass"} 500`,
		`spate_run_info{driver="memory",run_id="`, `spate_active_faults{scenario="cli-pass"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("after SIGINT: %v, want exit 1", err)
	}
	if r := spate(t, "run", "--metrics-addr", "no-port", writeScenario(t, passing)); r.code != 2 {
		t.Errorf("--metrics-addr without a port: exit %d, want 2", r.code)
	}
}

// metricValue returns the value of the first sample whose line starts with
// name (a metric name, or a name with labels), or -1.
func metricValue(body, name string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := strings.TrimPrefix(line, name)
		if strings.HasPrefix(rest, "{") {
			rest = rest[strings.Index(rest, "}")+1:]
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err == nil {
			return v
		}
	}
	return -1
}
