package accounting

import (
	"math"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// LatencySummary condenses one latency histogram, in microseconds.
type LatencySummary struct {
	Count int64   `json:"count"`
	Min   int64   `json:"min"`
	Mean  float64 `json:"mean"`
	P50   int64   `json:"p50"`
	P90   int64   `json:"p90"`
	P99   int64   `json:"p99"`
	P999  int64   `json:"p999"`
	Max   int64   `json:"max"`
}

// LatencySet holds the three latency kinds.
type LatencySet struct {
	E2E     LatencySummary `json:"e2e"`
	Service LatencySummary `json:"service"`
	Publish LatencySummary `json:"publish"`
}

// Get returns the summary of kind (E2E, Service or Publish).
func (l LatencySet) Get(kind string) LatencySummary {
	switch kind {
	case E2E:
		return l.E2E
	case Service:
		return l.Service
	}
	return l.Publish
}

// Summarize condenses h, in the units it was recorded in.
func Summarize(h *hdr.Histogram) LatencySummary {
	if h.TotalCount() == 0 {
		return LatencySummary{}
	}
	return LatencySummary{
		Count: h.TotalCount(),
		Min:   h.Min(),
		Mean:  math.Round(h.Mean()*10) / 10,
		P50:   h.ValueAtQuantile(50),
		P90:   h.ValueAtQuantile(90),
		P99:   h.ValueAtQuantile(99),
		P999:  h.ValueAtQuantile(99.9),
		Max:   h.ValueAtQuantile(100), // one block scan; Max() walks every bucket
	}
}
