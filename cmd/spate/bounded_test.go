package main

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bounded is the outcome of one spate process run under a time and memory
// bound.
type bounded struct {
	code           int
	stdout, stderr string
	took           time.Duration
	peakRSS        int64 // bytes, from the kernel's accounting of the child
}

// boundedCmd describes one spate process to run: its arguments, working
// directory, extra environment and bounds.
type boundedCmd struct {
	args     []string
	dir      string
	env      []string
	deadline time.Duration
	maxRSS   int64
	// signal, when set, is sent once ready reports true (polled every
	// 10ms), or after the deadline's half if it never does.
	signal syscall.Signal
	ready  func() bool
}

// runBounded runs the spate binary and fails t if it is still running at
// the deadline (it is then killed) or if its resident memory goes past
// maxRSS (watched in /proc while it runs, and checked against its peak
// after). Bounds are wall-clock on a shared machine: generous, but far
// below the minutes and gigabytes the bugs they guard against took.
func runBounded(t *testing.T, c boundedCmd) bounded {
	t.Helper()
	cmd := exec.Command(binary, c.args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), c.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(c.deadline)
	defer deadline.Stop()
	signalled := c.signal == 0
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-deadline.C:
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("spate %s: still running after %s; killed\nstdout:\n%s\nstderr:\n%s", strings.Join(c.args, " "), c.deadline, out.String(), errb.String())
		case <-tick.C:
			if rss := currentRSS(cmd.Process.Pid); rss > c.maxRSS {
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("spate %s: resident memory %d MiB, more than %d MiB; killed", strings.Join(c.args, " "), rss>>20, c.maxRSS>>20)
			}
			if !signalled && ((c.ready != nil && c.ready()) || time.Since(start) > c.deadline/2) {
				signalled = true
				_ = cmd.Process.Signal(c.signal)
			}
		}
	}
	r := bounded{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running spate: %v", err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.peakRSS = ru.Maxrss * 1024 // kilobytes on Linux
	}
	if r.peakRSS > c.maxRSS {
		t.Fatalf("spate %s: peak resident memory %d MiB, more than %d MiB", strings.Join(c.args, " "), r.peakRSS>>20, c.maxRSS>>20)
	}
	return r
}

// currentRSS reads a process's resident set size from /proc (0 when it is
// gone or unreadable).
func currentRSS(pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// writeFiles writes name → content into dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// intervalLogged reports whether dir's e2e.hlog holds an interval: the
// traffic is flowing.
func intervalLogged(dir string) func() bool {
	return func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "e2e.hlog"))
		if err != nil {
			return false
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line != "" && line[0] >= '0' && line[0] <= '9' {
				return true
			}
		}
		return false
	}
}
