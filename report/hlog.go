package report

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/spate-dev/spate/accounting"
)

// HlogFormatVersion is the HdrHistogram interval log format HlogWriter writes.
const HlogFormatVersion = "1.3"

// HlogMaxUnitRatio divides the histograms' microseconds into the
// milliseconds of an interval log's Interval_Max column. HdrHistogram's
// HistogramLogProcessor assumes nanoseconds; give it
// -outputValueUnitRatio 1000 to print milliseconds from spate's logs.
const HlogMaxUnitRatio = 1000

// HlogWriter writes interval histograms in HdrHistogram's interval log
// format, byte for byte as the Java reference's HistogramLogWriter formats
// them (hdrhistogram-go's own writer prints times with six decimals and an
// integer start time): a comment, the format version, the start time, the
// base time, the column legend, then one line per interval:
//
//	#[Logged with spate: e2e latency in microseconds, Interval_Max in milliseconds]
//	#[Histogram log format version 1.3]
//	#[StartTime: 1735689600.000 (seconds since epoch), Wed Jan 01 00:00:00 UTC 2025]
//	#[BaseTime: 1735689600.000 (seconds since epoch)]
//	"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//	0.000,1.000,289.023,HISTFAAAA...
//
// Timestamps are seconds relative to the base time, with three decimals;
// Interval_Max is the interval's largest value divided by the max unit
// ratio; the histogram is base64 of the V2 compressed encoding. The header
// is written with the first interval (its start is the log's start time) or
// by Header. An HlogWriter is not safe for concurrent use.
type HlogWriter struct {
	w       io.Writer
	comment string
	ratio   float64
	baseMS  int64
	started bool
}

// NewHlogWriter returns a writer of an interval log to w. comment, if not
// empty, is the log's first line (after "#"); maxUnitRatio divides the
// histograms' values into the unit of the Interval_Max column.
func NewHlogWriter(w io.Writer, comment string, maxUnitRatio float64) *HlogWriter {
	return &HlogWriter{w: w, comment: comment, ratio: maxUnitRatio}
}

// Header writes the header with start as the log's start and base time,
// unless it was written already.
func (lw *HlogWriter) Header(start time.Time) error {
	if lw.started {
		return nil
	}
	lw.started = true
	ms := start.UnixMilli()
	lw.baseMS = ms
	var err error
	p := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(lw.w, format, args...)
		}
	}
	if lw.comment != "" {
		p("#%s\n", lw.comment)
	}
	p("#[Histogram log format version %s]\n", HlogFormatVersion)
	p("#[StartTime: %s (seconds since epoch), %s]\n", javaFixed(float64(ms)/1000, 3), javaDate(ms))
	p("#[BaseTime: %s (seconds since epoch)]\n", javaFixed(float64(ms)/1000, 3))
	p("%s\n", `"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"`)
	return err
}

// javaDate formats Unix milliseconds as Java's Date.toString does, in UTC
// (Java uses the JVM's zone; UTC keeps logs identical wherever written).
func javaDate(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("Mon Jan 02 15:04:05 MST 2006")
}

// Write appends the interval [start, end) with its histogram h, writing the
// header first if needed. Times are logged as Java logs a histogram's own
// millisecond time stamps: truncated to the millisecond, relative to the
// base time.
func (lw *HlogWriter) Write(start, end time.Time, h *hdr.Histogram) error {
	if err := lw.Header(start); err != nil {
		return err
	}
	enc, err := h.Encode(hdr.V2CompressedEncodingCookieBase) // base64 already
	if err != nil {
		return err
	}
	startS := float64(start.UnixMilli()-lw.baseMS) / 1000
	endS := float64(end.UnixMilli()-lw.baseMS) / 1000
	maxV := float64(h.Max()) / lw.ratio
	if h.TotalCount() == 0 {
		maxV = 0
	}
	_, err = fmt.Fprintf(lw.w, "%s,%s,%s,%s\n", javaFixed(startS, 3), javaFixed(endS-startS, 3), javaFixed(maxV, 3), enc)
	return err
}

// IntervalLogs writes one interval log per latency kind (e2e.hlog,
// service.hlog, publish.hlog) into a directory as a run goes, flushing each
// interval so the files can be read while the run lasts. It is safe for
// concurrent use.
type IntervalLogs struct {
	mu      sync.Mutex
	files   map[string]*os.File
	bufs    map[string]*bufio.Writer
	writers map[string]*HlogWriter
	paths   []string
	err     error
}

// OpenIntervalLogs creates dir (and its parents) and the three .hlog files
// in it, truncating any that exist.
func OpenIntervalLogs(dir string) (*IntervalLogs, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	l := &IntervalLogs{files: map[string]*os.File{}, bufs: map[string]*bufio.Writer{}, writers: map[string]*HlogWriter{}}
	for _, kind := range accounting.Kinds {
		p := filepath.Join(dir, kind+".hlog")
		f, err := os.Create(p)
		if err != nil {
			l.Close()
			return nil, err
		}
		b := bufio.NewWriter(f)
		l.files[kind], l.bufs[kind], l.paths = f, b, append(l.paths, p)
		l.writers[kind] = NewHlogWriter(b, fmt.Sprintf("[Logged with spate: %s latency in microseconds, Interval_Max in milliseconds]", kind), HlogMaxUnitRatio)
	}
	return l, nil
}

// Paths are the files the logs are written to.
func (l *IntervalLogs) Paths() []string { return l.paths }

// Write appends one interval of kind (E2E, Service or Publish). An empty
// interval of no length (the engine's last tick may close one) is skipped.
// The first error is kept, returned, and returned again by Close.
func (l *IntervalLogs) Write(kind string, start, end time.Time, h *hdr.Histogram) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	w, ok := l.writers[kind]
	if !ok {
		return fmt.Errorf("no interval log for latency kind %q", kind)
	}
	if !end.After(start) && h.TotalCount() == 0 {
		return nil
	}
	if err := w.Write(start, end, h); err != nil {
		l.err = err
		return err
	}
	if err := l.bufs[kind].Flush(); err != nil {
		l.err = err
	}
	return l.err
}

// Close writes the header of any log that saw no interval (start is then the
// time of Close), flushes and closes the files, and returns the first error.
func (l *IntervalLogs) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	errs := []error{l.err}
	now := time.Now()
	for _, kind := range accounting.Kinds {
		if w := l.writers[kind]; w != nil && l.err == nil {
			errs = append(errs, w.Header(now))
		}
		if b := l.bufs[kind]; b != nil {
			errs = append(errs, b.Flush())
		}
		if f := l.files[kind]; f != nil {
			errs = append(errs, f.Close())
			delete(l.files, kind)
		}
	}
	if err := errors.Join(errs...); err != nil {
		l.err = err
		return err
	}
	return nil
}
