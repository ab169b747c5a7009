package main

import (
	"bufio"
	"encoding/xml"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// TestConcurrentRunsIntoOneDirectory: a second run into a directory a run
// holds fails at once with exit 2 naming the holder; the first run's
// files are whole and parse.
func TestConcurrentRunsIntoOneDirectory(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"s.yaml": scenario("  - constant: {rate: 200/s, for: 4s}\n", "report: {interval: 100ms}\n")})
	first := make(chan bounded, 1)
	go func() {
		first <- runBounded(t, boundedCmd{args: []string{"run", "--progress=off", "--out", "out", "s.yaml"}, dir: dir, deadline: 30 * time.Second, maxRSS: 200 * MiB})
	}()
	// Wait until the first run holds the directory and its traffic flows.
	lock := filepath.Join(dir, "out", lockName)
	deadline := time.Now().Add(20 * time.Second)
	for !intervalLogged(filepath.Join(dir, "out"))() {
		if time.Now().After(deadline) {
			t.Fatal("the first run never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	holder, err := os.ReadFile(lock)
	if err != nil || !strings.Contains(string(holder), "spate run s.yaml") {
		t.Fatalf("lock file: %q, %v", holder, err)
	}
	second := runBounded(t, boundedCmd{args: []string{"run", "--progress=off", "--out", "out", "s.yaml"}, dir: dir, deadline: 5 * time.Second, maxRSS: 200 * MiB})
	if second.code != 2 || !strings.Contains(second.stderr, "report directory out is in use by another spate run (pid ") || second.took > 2*time.Second {
		t.Errorf("second run: exit %d after %s\n%s", second.code, second.took, second.stderr)
	}
	r := <-first
	if r.code != 0 {
		t.Fatalf("first run: exit %d\n%s", r.code, r.stderr)
	}
	res := readResultsFile(t, filepath.Join(dir, "out"))
	if res.Counts.Sent != 800 || res.Counts.Received != 800 {
		t.Errorf("first run's results: %+v", res.Counts)
	}
	// Every interval log parses, with the run's deliveries in it.
	for _, kind := range []string{"e2e", "service", "publish"} {
		if n := hlogTotal(t, filepath.Join(dir, "out", kind+".hlog")); n != 800 {
			t.Errorf("%s.hlog holds %d values, want 800", kind, n)
		}
	}
	if _, err := os.Stat(lock); !os.IsNotExist(err) {
		t.Errorf("the lock file is left: %v", err)
	}
}

// hlogTotal decodes every interval histogram of an HdrHistogram log and
// returns the values they hold, failing t on a line that does not decode.
func hlogTotal(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var total int64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.HasPrefix(line, `"StartTimestamp"`) {
			continue
		}
		fields := strings.Split(line, ",")
		h, err := hdr.Decode([]byte(fields[len(fields)-1]))
		if err != nil {
			t.Fatalf("%s: %q: %v", path, line, err)
		}
		total += h.TotalCount()
	}
	return total
}

// TestDefaultDirectoriesAreUnique: the same scenario run twice at once
// with the default directory gets two directories.
func TestDefaultDirectoriesAreUnique(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"s.yaml": scenario(oneSecond, "")})
	done := make(chan bounded, 2)
	for range 2 {
		go func() {
			done <- runBounded(t, boundedCmd{args: []string{"run", "--progress=off", "s.yaml"}, dir: dir, deadline: 30 * time.Second, maxRSS: 200 * MiB})
		}()
	}
	for range 2 {
		if r := <-done; r.code != 0 {
			t.Errorf("exit %d\n%s", r.code, r.stderr)
		}
	}
	reports, _ := filepath.Glob(filepath.Join(dir, "spate-results", "adv-*", "results.json"))
	if len(reports) != 2 {
		t.Errorf("reports %v, want two directories", reports)
	}
}

// TestFailingExecFault: a fault whose command fails fails the run (exit 1)
// and every report format says why.
func TestFailingExecFault(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"s.yaml": scenario(oneSecond,
		"chaos:\n  - {action: exec, at: 200ms, command: \"echo cannot reach the switch >&2; exit 7\"}\nthresholds: [loss == 0]\n")})
	r := runBounded(t, boundedCmd{args: []string{"run", "--progress=off", "--out", "out", "s.yaml"}, dir: dir, deadline: 30 * time.Second, maxRSS: 200 * MiB})
	reason := `chaos[0] exec at 0.2s failed: "echo cannot reach the switch >&2; exit 7" exited with status 7: cannot reach the switch`
	if r.code != 1 || !strings.Contains(r.stderr, "spate: "+reason) {
		t.Fatalf("exit %d, want 1 with the reason on stderr\n%s", r.code, r.stderr)
	}
	out := filepath.Join(dir, "out")
	res := readResultsFile(t, out)
	if res.Verdict != "fail" || !strings.Contains(res.Error, reason) || len(res.Chaos) != 1 || res.Chaos[0].OK {
		t.Errorf("results.json: verdict %s, error %q, chaos %+v", res.Verdict, res.Error, res.Chaos)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if s := read("summary.txt"); !strings.Contains(s, "error        "+reason) || !strings.Contains(s, "verdict  FAIL (runtime error)") {
		t.Errorf("summary.txt lacks the reason:\n%s", s)
	}
	if s := read("report.html"); !strings.Contains(s, "Runtime error: chaos[0] exec at 0.2s failed: &#34;echo cannot reach the switch &gt;&amp;2; exit 7&#34; exited with status 7") {
		t.Errorf("report.html lacks the reason")
	}
	junit := read("junit.xml")
	var doc struct {
		Suites []struct {
			Cases []struct {
				Name  string `xml:"name,attr"`
				Error *struct {
					Message string `xml:"message,attr"`
				} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal([]byte(junit), &doc); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			found = found || (c.Error != nil && strings.Contains(c.Error.Message, reason))
		}
	}
	if !found {
		t.Errorf("junit.xml has no error with the reason:\n%s", junit)
	}
}

// TestSIGTERMStopsExecFault: SIGTERM (as CI's timeout sends it) while an
// exec fault's command sleeps 60 s: spate stops the command and everything
// it started, and exits within 5 s.
func TestSIGTERMStopsExecFault(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	writeFiles(t, dir, map[string]string{"s.yaml": scenario("  - constant: {rate: 100/s, for: 2m}\n",
		"chaos:\n  - {action: exec, at: 100ms, command: \"sleep 60 & echo $! > "+pidFile+"; wait\", timeout: 5m}\n")})
	ready := func() bool { b, err := os.ReadFile(pidFile); return err == nil && strings.HasSuffix(string(b), "\n") }
	var signalledAt time.Time
	r := runBounded(t, boundedCmd{args: []string{"run", "--progress=off", "--out", "out", "s.yaml"}, dir: dir, deadline: 60 * time.Second, maxRSS: 200 * MiB,
		signal: syscall.SIGTERM, ready: func() bool {
			if ready() {
				signalledAt = time.Now()
				return true
			}
			return false
		}})
	if signalledAt.IsZero() {
		t.Fatal("the command never started")
	}
	if stopped := time.Since(signalledAt); stopped > 5*time.Second {
		t.Errorf("spate took %s to exit after SIGTERM", stopped)
	}
	if r.code != 1 {
		t.Errorf("exit %d, want 1 (interrupted)\n%s", r.code, r.stderr)
	}
	b, _ := os.ReadFile(pidFile)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Errorf("the command's sleep (pid %d) is still running", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if res := readResultsFile(t, filepath.Join(dir, "out")); !res.Interrupted || res.Counts.Unsent < 10_000 {
		t.Errorf("results: interrupted %v, unsent %d (the rest of the 2-minute schedule)", res.Interrupted, res.Counts.Unsent)
	}
}

// alive reports whether pid is a running process (not gone, not a zombie
// waiting for a parent that is not ours).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// TestInterruptAtAnyRate: the first SIGINT ends a run within the short
// drain's bound whatever its rate and length, and counts the messages the
// interrupt cut off as unsent.
func TestInterruptAtAnyRate(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"s.yaml": scenario("  - constant: {rate: 9e7/s, for: 1h}\n", "report: {interval: 100ms}\n")})
	var at time.Time
	ready := intervalLogged(filepath.Join(dir, "out"))
	r := runBounded(t, boundedCmd{args: []string{"run", "--progress=off", "--out", "out", "s.yaml"}, dir: dir, deadline: 60 * time.Second, maxRSS: 500 * MiB,
		signal: syscall.SIGINT, ready: func() bool {
			if ready() {
				at = time.Now()
				return true
			}
			return false
		}})
	// The drain after an interrupt is at most 3s (engine.InterruptDrain).
	if took := time.Since(at); at.IsZero() || took > 8*time.Second {
		t.Errorf("exited %s after SIGINT", took)
	}
	res := readResultsFile(t, filepath.Join(dir, "out"))
	if r.code != 1 || !res.Interrupted {
		t.Errorf("exit %d, interrupted %v", r.code, res.Interrupted)
	}
	if scheduled := res.Counts.Sent + res.Counts.Unsent; scheduled != 9e7*3600 {
		t.Errorf("sent %d + unsent %d = %d, want the whole hour's %d", res.Counts.Sent, res.Counts.Unsent, scheduled, int64(9e7*3600))
	}
}
