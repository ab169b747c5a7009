package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/spate-dev/spate/scenarios"
)

// A run that runs out of memory must end as a runtime error (exit 1) with
// a message and its report, never as the Go runtime's fatal error (exit 2,
// the code of an invalid scenario) or the kernel's OOM killer. Validation
// bounds what a scenario asks for (scenarios/limits.go); the memory guard
// covers what the system under test makes of it, such as a client
// buffering whatever a slow broker has not confirmed.

// memoryShare is the part of the machine's (or cgroup's) memory a run may
// use: the Go runtime collects harder as the heap nears it, and the guard
// stops the run past it.
const memoryShare = 0.9

// MemoryLimitEnv names the environment variable that sets the memory a
// run may use (a size such as 2GiB), below the machine's.
const MemoryLimitEnv = "SPATE_MEMORY_LIMIT"

// memoryLimit is the memory this process may use: the smallest of
// $SPATE_MEMORY_LIMIT, the cgroup's (v2 or v1) and the machine's; 0 when
// unknown. from names where it comes from, for messages.
func memoryLimit() (limit int64, from string) {
	consider := func(v int64, source string) {
		if v > 0 && (limit == 0 || v < limit) {
			limit, from = v, source
		}
	}
	if v, err := scenarios.ParseSize(os.Getenv(MemoryLimitEnv)); err == nil {
		consider(v, MemoryLimitEnv)
	}
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := os.ReadFile(path); err == nil {
			if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && v < 1<<60 {
				consider(v, "the cgroup's limit") // "max" and v1's huge "unlimited" are no limit
			}
		}
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				consider(kb*1024, "the machine's memory")
			}
		}
	}
	return limit, from
}

// guardMemory returns a context that is cancelled, with a cause that says
// why, when the Go runtime's memory passes memoryShare of memoryLimit; the
// run then stops as if interrupted (a short drain, the report written,
// exit 1). It also sets the runtime's soft memory limit there. stop ends
// the guard.
func guardMemory(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	limit, from := memoryLimit()
	if limit <= 0 {
		return ctx, func() { cancel(nil) }
	}
	allowed := int64(float64(limit) * memoryShare)
	debug.SetMemoryLimit(allowed)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		// What the runtime holds from the OS, less what it gave back.
		sample := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			metrics.Read(sample)
			if used := int64(sample[0].Value.Uint64() - sample[1].Value.Uint64()); used > allowed {
				cancel(&memoryError{fmt.Sprintf("stopped: spate uses %s of memory, more than %.0f%% of %s (%s); the system under test holds back more messages than fit (lower the rate, the in-flight window or the message size)",
					bytesText(used), memoryShare*100, bytesText(limit), from)})
				return
			}
		}
	}()
	return ctx, func() { close(done); cancel(nil) }
}

// memoryError is the cause of a run the memory guard stopped.
type memoryError struct{ msg string }

func (e *memoryError) Error() string { return e.msg }

// memoryStop returns why the memory guard stopped the run of ctx, or nil.
func memoryStop(ctx context.Context) error {
	var me *memoryError
	if errors.As(context.Cause(ctx), &me) {
		return me
	}
	return nil
}

// bytesText writes a byte count in GiB or MiB.
func bytesText(b int64) string {
	if b >= 1<<30 {
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	}
	return fmt.Sprintf("%d MiB", b>>20)
}
