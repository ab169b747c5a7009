package main

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/engine"
)

// TestGrafanaDashboardMetrics: every metric the example dashboard queries
// is one spate serves, and the dashboard is valid JSON.
func TestGrafanaDashboardMetrics(t *testing.T) {
	b, err := os.ReadFile("../../examples/grafana/spate-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	m := newLiveMetrics("s", "0000000000000001", "memory")
	m.update(engine.Progress{ActiveFaults: []string{"network"}})
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var served []string
	for _, f := range families {
		name := f.GetName()
		served = append(served, name)
		if f.GetType().String() == "HISTOGRAM" {
			served = append(served, name+"_bucket", name+"_sum", name+"_count")
		}
	}
	used := regexp.MustCompile(`spate_[a-z_]+`).FindAllString(string(b), -1)
	if len(used) == 0 {
		t.Fatal("the dashboard queries no spate metric")
	}
	for _, name := range used {
		if !slices.Contains(served, name) {
			t.Errorf("the dashboard queries %s, which spate does not serve (serves %s)", name, strings.Join(served, ", "))
		}
	}
}

// TestLatencyBuckets: the Prometheus histogram fed with HDR interval
// histograms counts every value, cumulatively by bucket.
func TestLatencyBuckets(t *testing.T) {
	m := newLiveMetrics("s", "1", "memory")
	h := hdrHist()
	for _, us := range []int64{50, 900, 1_500, 40_000, 2_000_000, 90_000_000} {
		_ = h.RecordValue(us)
	}
	m.observe(accounting.E2E, h)
	m.observe(accounting.E2E, h)
	c := m.lat[accounting.E2E]
	if c.count != 12 {
		t.Errorf("count %d, want 12", c.count)
	}
	want := map[float64]uint64{0.0001: 2, 0.001: 4, 0.0025: 6, 0.05: 8, 2.5: 10, 60: 10}
	for i, le := range latencyBuckets {
		if w, ok := want[le]; ok && c.buckets[i] != w {
			t.Errorf("le %v: %d, want %d", le, c.buckets[i], w)
		}
	}
	if c.sum < 2*92 || c.sum > 2*92.1 {
		t.Errorf("sum %v s, want about 184", c.sum)
	}
}

func hdrHist() *hdr.Histogram { return hdr.New(1, 3_600_000_000, 3) }
