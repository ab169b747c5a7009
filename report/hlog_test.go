package report

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/spate-dev/spate/accounting"
)

// hlogRow is the shape of Java's "%.3f,%.3f,%.3f,%s" interval line.
var hlogRow = regexp.MustCompile(`^\d+\.\d{3},\d+\.\d{3},\d+\.\d{3},HISTF[A-Za-z0-9+/=]+$`)

func TestHlogWriterFormat(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 250_000_000, time.UTC)
	var b bytes.Buffer
	lw := NewHlogWriter(&b, "[Logged with spate: e2e latency in microseconds, Interval_Max in milliseconds]", HlogMaxUnitRatio)
	h := accounting.NewHistogram()
	h.RecordValue(1500)
	h.RecordValue(289_000)
	if err := lw.Write(start, start.Add(time.Second), h); err != nil {
		t.Fatal(err)
	}
	h.Reset()
	if err := lw.Write(start.Add(time.Second), start.Add(2*time.Second+1500*time.Microsecond), h); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	want := []string{
		"#[Logged with spate: e2e latency in microseconds, Interval_Max in milliseconds]",
		"#[Histogram log format version 1.3]",
		"#[StartTime: 1735689600.250 (seconds since epoch), Wed Jan 01 00:00:00 UTC 2025]",
		"#[BaseTime: 1735689600.250 (seconds since epoch)]",
		`"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"`,
	}
	if len(lines) != 7 {
		t.Fatalf("%d lines:\n%s", len(lines), b.String())
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d: %q, want %q", i+1, lines[i], w)
		}
	}
	// Max 289,000 µs is recorded as its bucket's highest equivalent value,
	// which Java reports (getMaxValueAsDouble) divided by the unit ratio.
	if !strings.HasPrefix(lines[5], "0.000,1.000,289.023,HISTF") || !hlogRow.MatchString(lines[5]) {
		t.Errorf("first interval %q", lines[5])
	}
	// Times truncate to the millisecond as Java's histogram time stamps do.
	if !strings.HasPrefix(lines[6], "1.000,1.001,0.000,HISTF") || !hlogRow.MatchString(lines[6]) {
		t.Errorf("second interval %q", lines[6])
	}
}

// TestHlogRoundTrip writes a log of many intervals and reads it back with
// hdrhistogram-go's HistogramLogReader: the same intervals, times and counts.
func TestHlogRoundTrip(t *testing.T) {
	dir := t.TempDir()
	logs, err := OpenIntervalLogs(dir)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1_735_689_600, 123_456_789)
	rng := rand.New(rand.NewPCG(1, 2))
	var written []*hdr.Histogram
	for i := range 20 {
		h := accounting.NewHistogram()
		for range rng.IntN(5000) {
			h.RecordValue(rng.Int64N(3_000_000))
		}
		from, to := start.Add(time.Duration(i)*time.Second), start.Add(time.Duration(i+1)*time.Second)
		for _, kind := range accounting.Kinds {
			if err := logs.Write(kind, from, to, h); err != nil {
				t.Fatal(err)
			}
		}
		written = append(written, h.Clone())
	}
	// A last interval of no length and nothing in it is skipped.
	end := start.Add(20 * time.Second)
	if err := logs.Write(accounting.E2E, end, end, accounting.NewHistogram()); err != nil {
		t.Fatal(err)
	}
	if err := logs.Write("bogus", start, end, accounting.NewHistogram()); err == nil {
		t.Error("unknown kind: no error")
	}
	if err := logs.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(logs.Paths()); got != 3 {
		t.Fatalf("%d paths", got)
	}
	for _, kind := range accounting.Kinds {
		f, err := os.Open(filepath.Join(dir, kind+".hlog"))
		if err != nil {
			t.Fatal(err)
		}
		rd := hdr.NewHistogramLogReader(f)
		for i := 0; ; i++ {
			h, err := rd.NextIntervalHistogram()
			if err != nil {
				t.Fatalf("%s interval %d: %v", kind, i, err)
			}
			if h == nil {
				if i != len(written) {
					t.Errorf("%s: read %d intervals, wrote %d", kind, i, len(written))
				}
				break
			}
			w := written[i]
			if h.TotalCount() != w.TotalCount() || !h.Equals(w) {
				t.Errorf("%s interval %d: %d values, wrote %d", kind, i, h.TotalCount(), w.TotalCount())
			}
			wantStart := start.Add(time.Duration(i) * time.Second).UnixMilli()
			if h.StartTimeMs() != wantStart || h.EndTimeMs() != wantStart+1000 {
				t.Errorf("%s interval %d: %d..%d ms, want %d..%d", kind, i, h.StartTimeMs(), h.EndTimeMs(), wantStart, wantStart+1000)
			}
		}
		f.Close()
	}
}

// TestHlogEmpty: a log that saw no interval still has its header, so tools
// read it as an empty log.
func TestHlogEmpty(t *testing.T) {
	dir := t.TempDir()
	logs, err := OpenIntervalLogs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := logs.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "publish.hlog"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "#[Histogram log format version 1.3]\n") || !strings.HasSuffix(string(b), "\"Interval_Compressed_Histogram\"\n") {
		t.Errorf("empty log:\n%s", b)
	}
	h, err := hdr.NewHistogramLogReader(bytes.NewReader(b)).NextIntervalHistogram()
	if h != nil || err != nil {
		t.Errorf("empty log read: %v, %v", h, err)
	}
}

// TestResultsHistogramLegacyEncoding: results.json written before the
// histograms were stored as HdrHistogram's own base64 form (they were
// base64-encoded twice) still decode.
func TestResultsHistogramLegacyEncoding(t *testing.T) {
	h := testHistogram()
	enc, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		t.Fatal(err)
	}
	for name, stored := range map[string]string{
		"current": string(enc),
		"legacy":  base64.StdEncoding.EncodeToString(enc),
	} {
		r := &Results{Histograms: map[string]string{accounting.E2E: stored}}
		got, err := r.Histogram(accounting.E2E)
		if err != nil || !got.Equals(h) {
			t.Errorf("%s encoding: %v", name, err)
		}
	}
	r := testResults(t)
	if !strings.HasPrefix(r.Histograms[accounting.E2E], "HISTF") {
		t.Errorf("results hold %.20q..., want HdrHistogram's base64 form (HISTF...)", r.Histograms[accounting.E2E])
	}
}
