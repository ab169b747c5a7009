package chaos

import (
	"testing"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

func sliceOf(values ...int64) *hdr.Histogram {
	h := hdr.New(1, 3_600_000_000, 3)
	for _, v := range values {
		_ = h.RecordValue(v)
	}
	return h
}

// TestSlidingWindowP99 checks the sliding p99 against the second's slices
// as they come and go: -1 before any and while they are empty, the p99 of
// every value of the last slicesPerSecond slices, and the slice a new one
// replaces handed back empty.
func TestSlidingWindowP99(t *testing.T) {
	var s slidingWindow
	if p := s.p99(); p != -1 {
		t.Fatalf("p99 of no slices = %d, want -1", p)
	}
	if old := s.add(sliceOf(), 0, true); old != nil {
		t.Fatalf("the first add replaced a slice")
	}
	if p := s.p99(); p != -1 {
		t.Fatalf("p99 of an empty slice = %d, want -1", p)
	}
	// 1000 values of 1000 µs in the first slice, then one of 50,000 µs in
	// each of the next: the p99 is 1000 while the first slice is in the
	// window (at most 9 large values of 1009), then 50,000.
	first := make([]int64, 1000)
	for i := range first {
		first[i] = 1000
	}
	s = slidingWindow{}
	s.add(sliceOf(first...), 0, true)
	for i := 1; i < slicesPerSecond; i++ {
		s.add(sliceOf(50_000), 0, true)
		if p := s.p99(); p != 1000 {
			t.Fatalf("after %d slices: p99 = %d, want 1000", i+1, p)
		}
		if p := s.p99(); p != 1000 { // asked again: the same answer
			t.Fatalf("after %d slices, asked again: p99 = %d, want 1000", i+1, p)
		}
	}
	old := s.add(sliceOf(50_000), 0, true) // replaces the first slice
	if old == nil || old.TotalCount() != 0 {
		t.Fatalf("the replaced slice = %v, want the first one, reset", old)
	}
	if p := s.p99(); !hdrEquivalent(p, 50_000) {
		t.Fatalf("after the first slice left: p99 = %d, want 50000", p)
	}
}

func hdrEquivalent(a, b int64) bool { return sliceOf().ValuesAreEquivalent(a, b) }

// TestHealthyAsksP99OnlyWithBacklogHealthy checks the recovery criteria,
// and that the p99 is not worked out while the backlog alone rules
// recovery out.
func TestHealthyAsksP99OnlyWithBacklogHealthy(t *testing.T) {
	asked := 0
	p99 := func(v int64) func() int64 { return func() int64 { asked++; return v } }
	rc := recovery{baseP99: 2000, baseBacklog: 100}
	for _, c := range []struct {
		p99, backlog int64
		want, asks   bool
	}{
		{p99: 2000, backlog: 161, want: false, asks: false}, // backlog above 1.5×100+10
		{p99: 2000, backlog: 160, want: true, asks: true},
		{p99: 3000, backlog: 0, want: true, asks: true},  // within 1.5× and +1000
		{p99: 3001, backlog: 0, want: false, asks: true}, // above both
		{p99: -1, backlog: 0, want: false, asks: true},   // nothing received
	} {
		asked = 0
		if got := rc.healthy(p99(c.p99), c.backlog); got != c.want || (asked > 0) != c.asks {
			t.Errorf("healthy(p99 %d, backlog %d) = %v asking %d times, want %v asking: %v", c.p99, c.backlog, got, asked, c.want, c.asks)
		}
	}
	rc = recovery{baseP99: -1}
	if !rc.healthy(p99(5_000_000), 0) {
		t.Errorf("with no baseline p99, any p99 with the backlog healthy should do")
	}
}

// BenchmarkSlidingWindow is the slicer's cost per slice (SliceWidth) with
// a second of slices of drain-like latencies (1,000 values each from 1 ms
// to 5 s): add alone is a slice nobody asks the p99 of (no fault starting
// or being judged, or a fault's backlog not back yet), add+p99 one whose
// p99 is asked, and add,fault-due one within baselineSeconds before a
// fault, whose whole seconds are merged for its baseline.
func BenchmarkSlidingWindow(b *testing.B) {
	slice := func(i int) *hdr.Histogram {
		h := sliceOf()
		for j := range 1000 {
			_ = h.RecordValue(1000 + int64((i*1000+j)%5000)*1000)
		}
		return h
	}
	for _, c := range []struct {
		name      string
		ask, keep bool
	}{{"add", false, false}, {"add+p99", true, false}, {"add,fault-due", false, true}} {
		ask := c.ask
		b.Run(c.name, func(b *testing.B) {
			var s slidingWindow
			for i := range slicesPerSecond {
				s.add(slice(i), 0, c.keep)
			}
			spare := slice(0)
			b.ResetTimer()
			for range b.N {
				// Refill the slice the window hands back, untimed, as
				// the tracker would.
				b.StopTimer()
				for j := range 1000 {
					_ = spare.RecordValue(1000 + int64(j%5000)*1000)
				}
				b.StartTimer()
				spare = s.add(spare, 0, c.keep)
				if ask {
					_ = s.p99()
				}
			}
		})
	}
}

// TestBaselineSpansSeconds: the baseline a fault's recovery is judged
// against is the p99 and peak backlog of the last baselineSeconds, not of
// the last second alone: four seconds with 2% slow messages and a backlog
// of 500 once, then a quiet second, give a baseline p99 of the slow ones
// while the sliding second's p99 is the quiet one.
func TestBaselineSpansSeconds(t *testing.T) {
	var s slidingWindow
	for sec := 0; sec < baselineSeconds; sec++ {
		for i := 0; i < slicesPerSecond; i++ {
			v := make([]int64, 100)
			for j := range v {
				v[j] = 1000
			}
			if sec < baselineSeconds-1 && i < 2 {
				for j := 0; j < 10; j++ {
					v[j] = 50_000 // 20 of the second's 1,000
				}
			}
			backlog := int64(3)
			if sec == 1 && i == 4 {
				backlog = 500
			}
			s.add(sliceOf(v...), backlog, true)
		}
	}
	if p := s.p99(); !hdrEquivalent(p, 1000) {
		t.Errorf("sliding second's p99 = %d, want 1000", p)
	}
	if p := s.baselineP99(); !hdrEquivalent(p, 50_000) {
		t.Errorf("baseline p99 = %d, want 50000 (80 of 5,000 messages)", p)
	}
	if b := s.maxBacklog(); b != 500 {
		t.Errorf("baseline backlog = %d, want the 500 of the second second", b)
	}
	// Three more quiet seconds push the second with the backlog out.
	for i := 0; i < 3*slicesPerSecond; i++ {
		s.add(sliceOf(1000), 0, true)
	}
	if b := s.maxBacklog(); b != 3 {
		t.Errorf("baseline backlog after the busy seconds left = %d, want 3", b)
	}
}

// TestSecondsKeptOnlyBeforeFaults: seconds are merged for baselines only
// while a fault is due; a baseline never holds a second from longer ago
// than baselineSeconds, and with none kept it is the last second's.
func TestSecondsKeptOnlyBeforeFaults(t *testing.T) {
	var s slidingWindow
	second := func(v int64, keep bool) {
		for range slicesPerSecond {
			s.add(sliceOf(v, v, v), 0, keep)
		}
	}
	second(90_000, true) // kept, then overwritten by the ring's later seconds
	for range baselineSeconds {
		second(1000, false)
	}
	if p := s.baselineP99(); !hdrEquivalent(p, 1000) {
		t.Errorf("baseline p99 = %d, want the last second's 1000, not the old kept one's", p)
	}
	second(5000, true)
	if p := s.baselineP99(); !hdrEquivalent(p, 5000) {
		t.Errorf("baseline p99 = %d, want the kept second's 5000", p)
	}
}
