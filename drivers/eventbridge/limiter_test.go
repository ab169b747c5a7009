package eventbridge

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestLimiter: 20 callers take 10 entries each from a 100/s bucket with a
// burst of 10; in virtual time the last one is through after exactly
// (200 − 10) / 100 = 1.9s, and none before its share of the rate.
func TestLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(100, 10)
		start := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var last time.Duration
		waits := 0
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				waited, err := l.wait(context.Background(), 10)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				defer mu.Unlock()
				last = max(last, time.Since(start))
				if waited {
					waits++
				}
			}()
		}
		wg.Wait()
		if last != 1900*time.Millisecond {
			t.Errorf("the last caller got through after %v, want 1.9s", last)
		}
		if waits != 19 {
			t.Errorf("%d callers waited, want 19 (the burst lets one through)", waits)
		}
		// Idle time refills the bucket, up to the burst only.
		time.Sleep(time.Hour)
		if waited, _ := l.wait(context.Background(), 10); waited {
			t.Error("a full bucket made a caller wait")
		}
		if waited, _ := l.wait(context.Background(), 1); !waited {
			t.Error("the bucket held more than its burst after an idle hour")
		}
	})
}

// TestLimiterCancel: a caller whose context ends stops waiting.
func TestLimiterCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(1, 1)
		_, _ = l.wait(context.Background(), 1)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := l.wait(ctx, 100); err == nil {
			t.Error("wait outlived its context")
		}
	})
}

// TestBackoff: the wait before re-sends doubles from the base up to 10s.
func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		base    time.Duration
		attempt int
		want    time.Duration
	}{
		{100 * time.Millisecond, 0, 100 * time.Millisecond},
		{100 * time.Millisecond, 3, 800 * time.Millisecond},
		{100 * time.Millisecond, 7, 10 * time.Second},
		{100 * time.Millisecond, 1000, 10 * time.Second},
		{0, 5, 0},
	} {
		if got := backoff(tc.base, tc.attempt); got != tc.want {
			t.Errorf("backoff(%v, %d) = %v, want %v", tc.base, tc.attempt, got, tc.want)
		}
	}
}
