// Package fuzzcheck bounds the time and memory a fuzz target's single
// input may take, so that fuzzing finds inputs that hang spate or make it
// allocate without limit (aliases that multiply, huge counts), not only
// crashes. It is for tests.
package fuzzcheck

import (
	"runtime/metrics"
	"testing"
	"time"
)

// Bounds for one input of spate's input decoders: a file at most 1 MiB,
// which spate must read, check and render well within these.
const (
	MaxTime  = 5 * time.Second
	MaxAlloc = 512 << 20
)

// Bounded runs fn and fails t when it takes longer than MaxTime or
// allocates more than MaxAlloc bytes. A fuzz worker runs one input at a
// time, so the process's allocations while fn runs are fn's.
func Bounded(t testing.TB, fn func()) {
	t.Helper()
	before := allocated()
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		fn()
	}()
	timer := time.NewTimer(MaxTime)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		t.Fatalf("one input took more than %s", MaxTime)
	}
	if a := allocated() - before; a > MaxAlloc {
		t.Fatalf("one input allocated %d MiB (took %s), more than %d MiB", a>>20, time.Since(start).Round(time.Millisecond), MaxAlloc>>20)
	}
}

// allocated is the bytes allocated on the heap since the process started.
func allocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
