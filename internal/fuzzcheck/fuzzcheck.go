// Package fuzzcheck bounds the time and memory a fuzz target's single
// input may take, so that fuzzing finds inputs that hang spate or make it
// hold memory without limit (aliases that multiply, huge counts), not only
// crashes. It is for tests.
package fuzzcheck

import (
	"runtime/metrics"
	"testing"
	"time"
)

// Bounds for one input of spate's input decoders: a file of at most
// 1 MiB, which spate must read, check and render well within these.
const (
	MaxTime = 5 * time.Second
	MaxHeap = 512 << 20
)

// Bounded runs fn and fails t when it takes longer than MaxTime or when
// the heap grows by more than MaxHeap while it runs (sampled every
// millisecond: a peak, not the churn of short-lived garbage). A fuzz
// worker runs one input at a time, so the heap's growth is fn's.
func Bounded(t testing.TB, fn func()) {
	t.Helper()
	base := heap()
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		fn()
	}()
	timer := time.NewTimer(MaxTime)
	defer timer.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var peak uint64
	for {
		select {
		case <-done:
			if peak = max(peak, heap()); peak > base+MaxHeap {
				t.Fatalf("one input grew the heap by %d MiB (took %s), more than %d MiB", (peak-base)>>20, time.Since(start).Round(time.Millisecond), MaxHeap>>20)
			}
			return
		case <-timer.C:
			t.Fatalf("one input took more than %s", MaxTime)
		case <-tick.C:
			if peak = max(peak, heap()); peak > base+MaxHeap {
				t.Fatalf("one input grew the heap by more than %d MiB within %s", MaxHeap>>20, time.Since(start).Round(time.Millisecond))
			}
		}
	}
}

// heap is the bytes of heap objects now, live or not yet collected.
func heap() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
