package accounting

import (
	"math/rand/v2"
	"testing"
)

// TestSummarizeMax: Summarize takes the maximum as the 100th percentile,
// one scan of the counts where Histogram.Max walks every bucket; they are
// the same value, the highest equivalent of the largest value recorded.
func TestSummarizeMax(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		h := NewHistogram()
		hi := HistogramMaxUS
		if i%3 == 0 {
			hi = 5000
		}
		for range 1 + rng.IntN(50) {
			_ = h.RecordValue(1 + rng.Int64N(hi))
		}
		if got, want := Summarize(h).Max, h.Max(); got != want {
			t.Fatalf("histogram %d: Summarize max %d, Histogram.Max %d", i, got, want)
		}
	}
	if s := Summarize(NewHistogram()); s != (LatencySummary{}) {
		t.Errorf("empty: %+v", s)
	}
}
