package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is the spate binary built once for these tests: exit codes are
// part of spate's interface, so they are checked on the real executable.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "spate-cli")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "spate")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		panic("building spate: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	stopServers()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

func spate(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running spate: %v", err)
	}
	return r
}

func writeScenario(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scenario.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const passing = `
name: cli-pass
driver: {memory: {streams: 2}}
traffic:
  - constant: {rate: 500/s, for: 1s}
drain: 2s
thresholds:
  - loss == 0
  - duplicates == 0
  - e2e.p99 < 1s
`

func TestRunPasses(t *testing.T) {
	out := t.TempDir()
	r := spate(t, "run", "--progress=off", "--out", out, writeScenario(t, passing))
	if r.code != 0 {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "PASS") {
		t.Errorf("summary has no PASS verdict:\n%s", r.stdout)
	}
	var res struct {
		Scenario string `json:"scenario"`
		Verdict  string `json:"verdict"`
		Counts   struct {
			Sent, Received, Lost int64
		} `json:"counts"`
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Scenario != "cli-pass" || res.Verdict != "pass" || res.Counts.Sent != 500 || res.Counts.Received != 500 {
		t.Errorf("results.json: %+v", res)
	}
	for _, f := range []string{"summary.txt", "e2e.hgrm", "service.hgrm", "publish.hgrm"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("report file: %v", err)
		}
	}
}

func TestRunThresholdsFail(t *testing.T) {
	sc := strings.Replace(passing, "{streams: 2}", "{streams: 2, drop: 0.2}", 1)
	r := spate(t, "run", "--progress=off", "--out", t.TempDir(), writeScenario(t, sc))
	if r.code != 3 {
		t.Fatalf("exit %d, want 3 (thresholds failed)\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "FAIL") {
		t.Errorf("summary has no FAIL verdict:\n%s", r.stdout)
	}
}

func TestRunInvalidScenario(t *testing.T) {
	path := writeScenario(t, "driver: memory\ntraffic:\n  - constant: {rate: 0/s, for: 1s}\n")
	r := spate(t, "run", path)
	if r.code != 2 {
		t.Fatalf("exit %d, want 2", r.code)
	}
	want := path + ":3:22: traffic[0].constant.rate: "
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
	}
}

func TestValidate(t *testing.T) {
	good := writeScenario(t, passing)
	bad := writeScenario(t, "driver: memroy\ntraffic: []\n")
	if r := spate(t, "validate", good); r.code != 0 || !strings.Contains(r.stdout, good+": ok") {
		t.Errorf("valid file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := spate(t, "validate", good, bad)
	if r.code != 2 {
		t.Fatalf("exit %d, want 2", r.code)
	}
	for _, want := range []string{bad + ":1:9: driver: unknown driver \"memroy\"", bad + ":2:10: traffic: "} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

func TestExamplesValidate(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples found")
	}
	r := spate(t, append([]string{"validate"}, files...)...)
	if r.code != 0 {
		t.Errorf("exit %d\n%s", r.code, r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"run"}, {"run", "--nope", "x.yaml"}, {"validate"}, {"run", "--progress=loud", "x.yaml"}} {
		if r := spate(t, args...); r.code != 2 {
			t.Errorf("spate %s: exit %d, want 2", strings.Join(args, " "), r.code)
		}
	}
	if r := spate(t, "run", filepath.Join(t.TempDir(), "missing.yaml")); r.code != 2 || !strings.Contains(r.stderr, "missing.yaml") {
		t.Errorf("missing file: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestRuntimeErrorExits1(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The report directory cannot be created under a regular file.
	r := spate(t, "run", "--progress=off", "--out", filepath.Join(blocker, "out"), writeScenario(t, passing))
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
	}
}

func TestVersion(t *testing.T) {
	r := spate(t, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "spate ") {
		t.Errorf("exit %d, output %q", r.code, r.stdout)
	}
}

// TestInterrupt sends SIGINT mid-run: spate stops the traffic, drains, still
// writes its report marked interrupted, and exits 1.
func TestInterrupt(t *testing.T) {
	out := t.TempDir()
	sc := strings.Replace(passing, "for: 1s", "for: 30s", 1)
	cmd := exec.Command(binary, "run", "--progress=off", "--out", out, writeScenario(t, sc))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1\n%s", err, stderr.String())
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Errorf("took %v to stop after SIGINT", waited)
	}
	var res struct {
		Interrupted bool    `json:"interrupted"`
		Verdict     string  `json:"verdict"`
		TrafficS    float64 `json:"traffic_s"`
		Counts      struct{ Sent, Received, Lost int64 }
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Verdict != "fail" || res.TrafficS > 10 || res.Counts.Sent == 0 || res.Counts.Lost != 0 {
		t.Errorf("results after interrupt: %+v", res)
	}
}
