package report

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/scenarios"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestWriteTextGolden(t *testing.T) {
	r := testResults(t)
	var b bytes.Buffer
	if err := WriteText(&b, r); err != nil {
		t.Fatal(err)
	}
	golden(t, "summary.golden", b.Bytes())
	checkText(t, b.String())

	// Deterministic: the same results give the same bytes, also after a
	// round trip through results.json.
	var again, back bytes.Buffer
	_ = WriteText(&again, testResults(t))
	var js bytes.Buffer
	_ = WriteJSON(&js, r)
	read, err := DecodeResults(&js)
	if err != nil {
		t.Fatal(err)
	}
	_ = WriteText(&back, read)
	if again.String() != b.String() || back.String() != b.String() {
		t.Error("WriteText is not deterministic")
	}
}

// TestWriteTextInterrupted: a run cut short, with an error, a max phase and
// foreign and malformed deliveries.
func TestWriteTextInterrupted(t *testing.T) {
	r := testResults(t)
	r.Interrupted = true
	r.Error = "consumer 0: connection reset"
	r.Rate.TargetMean = nil
	r.Counts.Foreign, r.Counts.Malformed, r.Counts.Negative = 3, 1, 12
	r.Evaluate(parseThresholds(t, "achieved_rate >= 0.95 * target_rate", "loss.ratio < 1%"))
	r.Verdict = Fail
	r.DriverStats = nil
	rec := 1.25
	r.Chaos = []FaultResult{
		{Action: "broker-restart", Target: "1", StartS: 5, EndS: 6.5, OK: true, WindowLatencyUS: &accounting.LatencySummary{Count: 900, P99: 1_250_000},
			LostInWindow: 0, DuplicatesInWindow: 12, PeakBacklog: 4_321, RecoveryS: &rec},
		{Action: "leader-move", StartS: 8, EndS: 8, OK: true, PeakBacklog: 7},
		{Action: "exec", StartS: 9, EndS: 9.2, Error: `"false": exit status 1`},
	}
	var b bytes.Buffer
	if err := WriteText(&b, r); err != nil {
		t.Fatal(err)
	}
	golden(t, "summary-interrupted.golden", b.Bytes())
	checkText(t, b.String())
	for _, want := range []string{"interrupted", "consumer 0: connection reset", "foreign", "malformed",
		"negative_latencies", "undefined for this run", "verdict  FAIL (1 of 2 thresholds failed; interrupted; runtime error)",
		"broker-restart 1           5.0s-6.5s           1.25s      0     12     4,321  1.25s", "leader-move                at 8.0s", "did not recover",
		`FAILED: "false": ex…`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	if strings.Contains(b.String(), "clamped_latencies") {
		t.Error("summary shows clamped_latencies, which are 0")
	}
}

// checkText checks what a reader relies on in any summary.
func checkText(t *testing.T, s string) {
	t.Helper()
	for i, line := range strings.Split(s, "\n") {
		if n := utf8.RuneCountInString(line); n > 100 {
			t.Errorf("line %d is %d columns wide: %q", i+1, n, line)
		}
		if strings.HasSuffix(line, " ") {
			t.Errorf("line %d ends in a space: %q", i+1, line)
		}
	}
	for _, row := range []string{"sent", "acked", "failed", "unconfirmed", "unsent", "received", "duplicates",
		"lost", "unconfirmed_delivered", "reordered", "redelivered"} {
		if !regexp.MustCompile(`(?m)^  ` + row + ` +[0-9,]+`).MatchString(s) {
			t.Errorf("summary lacks the %s row", row)
		}
	}
	if !regexp.MustCompile(`(?m)^verdict  (PASS|FAIL)`).MatchString(s) {
		t.Error("summary lacks the verdict")
	}
}

func TestFormatMicros(t *testing.T) {
	for us, want := range map[int64]string{
		0: "0µs", 1: "1µs", 999: "999µs", 1000: "1.00ms", 1234: "1.23ms", 1235: "1.24ms", 12345: "12.3ms",
		123456: "123ms", 999_499: "999ms", 999_500: "1.00s", 1_500_000: "1.50s", 61_000_000: "61.0s",
		3_600_000_000: "3600s", -1500: "-1.50ms",
	} {
		if got := FormatMicros(us); got != want {
			t.Errorf("FormatMicros(%d) = %q, want %q", us, got, want)
		}
	}
	for us, want := range map[float64]string{12.5: "12.5µs", 999.4: "999µs", 999.6: "1.00ms", 0.25: "0.25µs"} {
		if got := formatMicros(us); got != want {
			t.Errorf("formatMicros(%v) = %q, want %q", us, got, want)
		}
	}
}

func TestFormatNumbers(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -1234567: "-1,234,567", 50_000_000: "50,000,000"} {
		if got := GroupInt(n); got != want {
			t.Errorf("GroupInt(%d) = %q, want %q", n, got, want)
		}
	}
	for r, want := range map[float64]string{0: "0%", 1: "100.00%", 0.0012: "0.12%", 0.00001: "0.0010%", 2e-8: "0.0000020%"} {
		if got := formatPercent(r); got != want {
			t.Errorf("formatPercent(%v) = %q, want %q", r, got, want)
		}
	}
	for v, want := range map[float64]string{0: "0.0", 999.96: "1,000.0", 1234567.25: "1,234,567.2", -0.04: "-0.0"} {
		if got := formatRate(v); got != want {
			t.Errorf("formatRate(%v) = %q, want %q", v, got, want)
		}
	}
	for name, want := range map[string]string{
		"e2e.p99": "1.23ms", "loss": "1,234", "duplicates.ratio": "123400.00%", "achieved_rate": "1,234.0/s",
	} {
		if got := formatMetric(name, 1234); got != want {
			t.Errorf("formatMetric(%q, 1234) = %q, want %q", name, got, want)
		}
	}
}

// testHistogram is a deterministic histogram of latencies in µs: a
// lognormal-ish body around 2 ms and a tail to a few seconds.
func testHistogram() *hdr.Histogram {
	h := accounting.NewHistogram()
	rng := rand.New(rand.NewPCG(7, 8))
	for range 100_000 {
		v := math.Exp(rng.NormFloat64()*0.6) * 2000
		if rng.IntN(1000) == 0 {
			v *= 500
		}
		h.RecordValue(int64(v))
	}
	return h
}

func TestWriteHgrmGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHgrm(&b, testHistogram(), HgrmUnitDivisor); err != nil {
		t.Fatal(err)
	}
	golden(t, "e2e.hgrm.golden", b.Bytes())
	checkHgrm(t, b.String(), 100_000)

	b.Reset()
	if err := WriteHgrm(&b, accounting.NewHistogram(), HgrmUnitDivisor); err != nil {
		t.Fatal(err)
	}
	// As Java prints an empty histogram: no percentile lines.
	want := "       Value     Percentile TotalCount 1/(1-Percentile)\n\n" +
		"#[Mean    =        0.000, StdDeviation   =        0.000]\n" +
		"#[Max     =        0.000, Total count    =            0]\n" +
		"#[Buckets =           22, SubBuckets     =         2048]\n"
	if b.String() != want {
		t.Errorf("empty histogram:\n%s\nwant\n%s", b.String(), want)
	}
	golden(t, "empty.hgrm.golden", b.Bytes())

	if err := WriteHgrm(&b, accounting.NewHistogram(), 0); err == nil {
		t.Error("unit divisor 0: no error")
	}
}

var (
	hgrmLine = regexp.MustCompile(`^ {0,11}\d+\.\d{3} \d\.\d{12} {1,10}\d+ {1,14}\d+\.\d{2}$`)
	hgrmLast = regexp.MustCompile(`^ {0,11}\d+\.\d{3} 1\.000000000000 {1,10}\d+$`)
)

// checkHgrm checks the shape of a .hgrm file with total values.
func checkHgrm(t *testing.T, s string, total int64) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if lines[0] != "       Value     Percentile TotalCount 1/(1-Percentile)" || lines[1] != "" {
		t.Fatalf("header %q %q", lines[0], lines[1])
	}
	body := lines[2 : len(lines)-3]
	for i, l := range body[:len(body)-1] {
		if !hgrmLine.MatchString(l) {
			t.Errorf("line %d: %q", i+3, l)
		}
	}
	last := body[len(body)-1]
	if !hgrmLast.MatchString(last) || !strings.HasSuffix(last, " "+strconv.FormatInt(total, 10)) {
		t.Errorf("last line %q", last)
	}
	if !strings.HasPrefix(lines[len(lines)-3], "#[Mean    = ") || !strings.HasPrefix(lines[len(lines)-1], "#[Buckets = ") {
		t.Errorf("footer %q", lines[len(lines)-3:])
	}
}

// javaLine is one line of Java's percentile distribution.
type javaLine struct {
	value   int64
	percent float64
	count   int64
}

// javaPercentiles replays Java's PercentileIterator (AbstractHistogramIterator
// and PercentileIterator in HdrHistogram 2.x) over h's counts, index by
// index, with Java's arithmetic.
func javaPercentiles(h *hdr.Histogram, ticksPerHalfDistance int64) []javaLine {
	bars := h.Distribution() // every index in order, up to the last value
	total := h.TotalCount()
	var out []javaLine
	var level float64
	var cum int64
	idx, fresh, reachedLast := 0, true, false
	hasNext := func() bool {
		if cum < total {
			return true
		}
		if !reachedLast && total > 0 {
			level, reachedLast = 100, true
			return true
		}
		return false
	}
	for hasNext() {
		for ; idx < len(bars); idx, fresh = idx+1, true {
			b := bars[idx]
			if fresh {
				cum += b.Count
				fresh = false
			}
			if b.Count != 0 && 100*float64(cum)/float64(total) >= level {
				out = append(out, javaLine{value: b.To, percent: level, count: cum})
				if level < 100 {
					exp := int64(math.Log(100/(100-level))/math.Log(2)) + 1
					ticks := ticksPerHalfDistance * int64(math.Pow(2, float64(exp)))
					level += 100 / float64(ticks)
				}
				break
			}
		}
	}
	return out
}

// TestWriteHgrmMatchesJavaIteration: the library's percentile brackets are
// those of Java's iterator for many shapes of histogram.
func TestWriteHgrmMatchesJavaIteration(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	shapes := map[string]func() int64{
		"one value":   func() int64 { return 1234 },
		"zero":        func() int64 { return 0 },
		"uniform":     func() int64 { return rng.Int64N(1_000_000) },
		"small":       func() int64 { return rng.Int64N(20) },
		"lognormal":   func() int64 { return int64(math.Exp(rng.NormFloat64()*1.5) * 1000) },
		"two modes":   func() int64 { return []int64{100, 3_000_000}[rng.IntN(2)] },
		"heavy tail":  func() int64 { return int64(1000 / (rng.Float64() + 1e-6)) },
		"at the edge": func() int64 { return accounting.HistogramMaxUS - rng.Int64N(3) },
	}
	for name, next := range shapes {
		for _, n := range []int{1, 2, 3, 10, 999, 100_000} {
			h := accounting.NewHistogram()
			for range n {
				h.RecordValue(next())
			}
			if name == "heavy tail" && n == 100_000 {
				h.RecordValues(5000, 1<<40) // large counts
			}
			got := h.CumulativeDistributionWithTicks(5)
			want := javaPercentiles(h, 5)
			if len(got) != len(want) {
				t.Errorf("%s × %d: %d lines, Java %d", name, n, len(got), len(want))
				continue
			}
			for i := range got {
				if got[i].ValueAt != want[i].value || got[i].Quantile != want[i].percent || got[i].Count != want[i].count {
					t.Errorf("%s × %d line %d: %+v, Java %+v", name, n, i, got[i], want[i])
					break
				}
			}
		}
	}
}

func TestJavaMeanStdDev(t *testing.T) {
	h := testHistogram()
	mean, sd := javaMeanStdDev(h)
	if math.Abs(mean-h.Mean()) > 1e-9*mean || math.Abs(sd-h.StdDev()) > 1e-6*sd {
		t.Errorf("mean %v sd %v, library %v %v", mean, sd, h.Mean(), h.StdDev())
	}
	one := accounting.NewHistogram()
	one.RecordValues(1000, 3)
	if mean, sd := javaMeanStdDev(one); mean != 1000 || sd != 0 {
		// 1000 is exact at this precision: its median equivalent is itself.
		t.Errorf("three 1000s: mean %v sd %v", mean, sd)
	}
}

// TestJavaGeometry checks the bucket counts in the footer against the
// library's own (printed by its PercentilesPrint).
func TestJavaGeometry(t *testing.T) {
	footer := regexp.MustCompile(`#\[Buckets = +(\d+), SubBuckets += +(\d+)\]`)
	for _, g := range []struct{ lo, hi int64 }{{1, accounting.HistogramMaxUS}, {1, 2}, {1, 1000}, {1000, 1e12}, {1, math.MaxInt64 / 2}, {3, 1 << 40}} {
		for digits := 1; digits <= 5; digits++ {
			h := hdr.New(g.lo, g.hi, digits)
			var b bytes.Buffer
			if _, err := h.PercentilesPrint(&b, 5, 1); err != nil {
				t.Fatal(err)
			}
			m := footer.FindStringSubmatch(b.String())
			buckets, subBuckets := javaGeometry(h)
			if m == nil || m[1] != strconv.FormatInt(buckets, 10) || m[2] != strconv.FormatInt(subBuckets, 10) {
				t.Errorf("New(%d, %d, %d): %d buckets of %d; library says %v", g.lo, g.hi, digits, buckets, subBuckets, m)
			}
		}
	}
}

func TestJavaFloat(t *testing.T) {
	for _, c := range []struct {
		v           float64
		width, prec int
		want        string
	}{
		{0.125, 0, 2, "0.13"}, // Java rounds half up; Go's fmt gives 0.12
		{1.0005, 0, 3, "1.001"},
		{2.5, 0, 0, "3"},
		{0.5, 0, 0, "1"},
		{0.0005, 0, 3, "0.001"},
		{0.00049, 0, 3, "0.000"},
		{0.0009, 0, 3, "0.001"},
		{0.00001, 0, 3, "0.000"},
		{9.9995, 0, 3, "10.000"},
		{999.9999, 0, 3, "1000.000"},
		{0, 12, 3, "       0.000"},
		{1.5, 14, 2, "          1.50"},
		{0.9, 2, 12, "0.900000000000"},
		{1, 2, 12, "1.000000000000"},
		{123456.789, 12, 3, "  123456.789"},
		{1e20, 0, 2, "100000000000000000000.00"},
		{1.234e-7, 0, 12, "0.000000123400"},
		{0.1, 0, 20, "0.10000000000000000000"}, // Go: 0.10000000000000000555
		{-1.25, 0, 1, "-1.3"},
		{math.Inf(1), 14, 2, "      Infinity"},
		{math.NaN(), 0, 3, "NaN"},
	} {
		if got := javaFloat(c.v, c.width, c.prec); got != c.want {
			t.Errorf("javaFloat(%v, %d, %d) = %q, want %q", c.v, c.width, c.prec, got, c.want)
		}
	}
	// Where rounding falls within the shortest digits, away from ties, Java
	// and Go agree.
	rng := rand.New(rand.NewPCG(11, 12))
	for range 20_000 {
		v := math.Exp(rng.NormFloat64()*10) * float64(1-2*rng.IntN(2))
		prec := rng.IntN(13)
		digits := strconv.FormatFloat(math.Abs(v), 'e', -1, 64)
		mant, exp, _ := strings.Cut(digits, "e")
		mant = strings.Replace(mant, ".", "", 1)
		x, _ := strconv.Atoi(exp)
		keep := x + 1 + prec
		switch {
		case keep >= len(mant):
			continue // Java pads the shortest digits with zeros, Go prints exact ones
		case keep >= 0 && keep == len(mant)-1 && mant[keep] == '5':
			continue // a tie in the shortest digits: Java rounds up
		}
		if got, want := javaFloat(v, 0, prec), fmt.Sprintf("%.*f", prec, v); got != want {
			t.Fatalf("javaFloat(%v, %d) = %q, fmt %q", v, prec, got, want)
		}
	}
}

func TestWriteDir(t *testing.T) {
	r := testResults(t)
	dir := filepath.Join(t.TempDir(), "a", "b")
	paths, err := WriteDir(dir, r, []string{"json", "hgrm", "text", "json"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"results.json", "e2e.hgrm", "service.hgrm", "publish.hgrm", "summary.txt"}
	var names []string
	for _, p := range paths {
		if filepath.Dir(p) != dir {
			t.Errorf("%s is not in %s", p, dir)
		}
		names = append(names, filepath.Base(p))
	}
	if !slices.Equal(names, want) {
		t.Errorf("wrote %v, want %v", names, want)
	}
	for _, kind := range accounting.Kinds {
		b, err := os.ReadFile(filepath.Join(dir, kind+".hgrm"))
		if err != nil {
			t.Fatal(err)
		}
		var w bytes.Buffer
		_ = WriteHgrm(&w, mustHist(t, r, kind), 1000)
		if !bytes.Equal(b, w.Bytes()) {
			t.Errorf("%s.hgrm differs from WriteHgrm's output", kind)
		}
		checkHgrm(t, string(b), r.LatencyUS.Get(kind).Count)
	}
	if back, err := ReadResults(filepath.Join(dir, "results.json")); err != nil || back.Verdict != r.Verdict {
		t.Errorf("results.json read back: %v", err)
	}

	all, err := WriteDir(filepath.Join(t.TempDir(), "all"), r, nil)
	if err != nil || len(all) != 7 { // hlog is written during the run, not here
		t.Errorf("every format: %v, %v", all, err)
	}

	bad := filepath.Join(t.TempDir(), "bad")
	if _, err := WriteDir(bad, r, []string{"text", "pdf"}); err == nil || !strings.Contains(err.Error(), `"pdf"`) {
		t.Errorf("unknown format: %v", err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Error("an unknown format still created the directory")
	}

	// Results that never got a summary still give valid, empty .hgrm files.
	empty := &Results{SchemaVersion: SchemaVersion, Verdict: Fail}
	paths, err = WriteDir(filepath.Join(t.TempDir(), "empty"), empty, []string{"hgrm"})
	if err != nil || len(paths) != 3 {
		t.Fatalf("empty results: %v, %v", paths, err)
	}
	b, _ := os.ReadFile(paths[0])
	if !strings.Contains(string(b), "Total count    =            0") {
		t.Errorf("empty .hgrm:\n%s", b)
	}
}

// TestFormatsMatchScenarios: every format a scenario may name is one
// WriteDir writes, and the other way round.
func TestFormatsMatchScenarios(t *testing.T) {
	a, b := slices.Clone(scenarios.Formats), slices.Clone(scenarios.Formats)
	slices.Sort(a)
	slices.Sort(b)
	if !slices.Equal(a, b) {
		t.Errorf("report writes %v, scenarios accept %v", scenarios.Formats, scenarios.Formats)
	}
}
