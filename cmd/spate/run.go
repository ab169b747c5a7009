package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/spate-dev/spate/drivers/stamp"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

type runFlags struct {
	out         string
	progress    string
	verbose     bool
	metricsAddr string
	peak        string
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a scenario and report the verdict",
		Long: `run executes the scenario in FILE: it sends the traffic, injects the faults,
drains, prints a summary and writes the report files (by default all of
them: summary.txt, results.json, .hgrm percentile distributions, .hlog
interval logs written as the run goes, report.html and junit.xml). Ctrl-C
stops the traffic early, drains briefly and still writes the report (marked
interrupted); a second Ctrl-C exits at once.

While it runs, a progress line shows elapsed and total time, the phase,
target and achieved rate, messages in flight and received, backlog,
failures and duplicates so far, the last interval's e2e p99 and the faults
in effect (in place on a terminal; a log line every 5 s otherwise). Loss
is known only after the drain: until then an unreceived message is backlog.
--metrics-addr serves the same figures for Prometheus at /metrics.

A scenario with a find-max phase searches for the highest rate the system
sustains within its SLO; the most the search can take is printed before it
starts. --peak RATE (today's observed peak, e.g. 12000/s) makes the report
state the headroom, sustained rate ÷ peak, which the threshold metric
headroom checks (headroom >= 2).

Exit codes: 0 pass, 1 runtime error or interrupted, 2 invalid scenario,
3 thresholds failed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runScenario(cmd, args[0], f) },
	}
	cmd.Flags().StringVarP(&f.out, "out", "o", "", "directory for report files (default: the scenario's report.dir, or spate-results/NAME-TIME)")
	cmd.Flags().StringVar(&f.progress, "progress", "auto", "live progress: auto (a line in place on a terminal, a log line every 5s otherwise), line, log, off")
	cmd.Flags().BoolVarP(&f.verbose, "verbose", "v", false, "log what the run does")
	cmd.Flags().StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics during the run, e.g. 127.0.0.1:9464 (port 0 picks a free one; the address is printed)")
	cmd.Flags().StringVar(&f.peak, "peak", "", "today's observed peak rate, e.g. 12000/s: with a find-max phase the report states the headroom (sustained ÷ peak), which the threshold metric headroom checks")
	return cmd
}

// parsePeak reads --peak; 0 when not given.
func parsePeak(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := scenarios.ParseRate(s)
	if err != nil {
		return 0, fmt.Errorf("--peak: %v", err)
	}
	if v <= 0 {
		return 0, fmt.Errorf("--peak %s: the peak must be more than 0/s", s)
	}
	return v, nil
}

// announceSearch prints a find-max phase's plan and time bound before the
// run, so nobody waits on a search without knowing for how long.
func announceSearch(w io.Writer, sc *scenarios.Scenario, peak float64) {
	prof := sc.Profile()
	seg, ok := prof.Search()
	if !ok {
		if peak > 0 {
			fmt.Fprintln(w, "spate: --peak is given but the scenario has no find-max phase: headroom will be undefined")
		}
		return
	}
	fm := sc.Traffic[seg.Phase].FindMax
	fmt.Fprintf(w, "find-max: %s; the run ends within %s (traffic %s + drain %s)\n",
		fm.Plan(), prof.Duration+sc.DrainTimeout(), prof.Duration, sc.DrainTimeout())
}

func runScenario(cmd *cobra.Command, file string, f runFlags) error {
	switch f.progress {
	case "auto", "line", "log", "off":
	default:
		return &exitError{code: exitInvalid, err: fmt.Errorf("--progress %q: valid values are auto, line, log, off", f.progress)}
	}
	if f.metricsAddr != "" {
		if _, _, err := net.SplitHostPort(f.metricsAddr); err != nil {
			return &exitError{code: exitInvalid, err: fmt.Errorf("--metrics-addr %q: want HOST:PORT, e.g. 127.0.0.1:9464: %v", f.metricsAddr, err)}
		}
	}
	peak, err := parsePeak(f.peak)
	if err != nil {
		return &exitError{code: exitInvalid, err: err}
	}
	if data, rerr := os.ReadFile(file); rerr == nil && scenarios.IsSweepFile(data) {
		return &exitError{code: exitInvalid, err: fmt.Errorf("%s is a sweep file; run it with spate sweep %s", file, file)}
	}
	sc, err := loader().Load(file)
	if err != nil {
		printProblems(cmd, err)
		return &exitError{code: exitInvalid, err: fmt.Errorf("%s is not a valid scenario", file)}
	}
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	announceSearch(stderr, sc, peak)
	formats := sc.Report.Formats
	if len(formats) == 0 {
		formats = report.Formats
	}

	// The report directory is known before the run, so that interval logs
	// can be written into it as the run goes.
	dir := f.out
	if dir == "" {
		dir = sc.Report.Dir
	}
	if dir == "" {
		dir = filepath.Join("spate-results", sc.Name+"-"+time.Now().Format("20060102-150405"))
	}
	runID := newRunID()
	opts := []engine.Option{engine.WithDrivers(kinds()...), engine.WithRunID(runID), engine.WithPeak(peak)}
	var visitors []func(kind string, start, end time.Time, h *hdr.Histogram)

	var logs *report.IntervalLogs
	if slices.Contains(formats, report.FormatHlog) {
		if logs, err = report.OpenIntervalLogs(dir); err != nil {
			return &exitError{code: exitRuntime, err: fmt.Errorf("writing report: %w", err)}
		}
		defer logs.Close()
		visitors = append(visitors, func(kind string, start, end time.Time, h *hdr.Histogram) { _ = logs.Write(kind, start, end, h) })
	}

	var metrics *liveMetrics
	if f.metricsAddr != "" {
		metrics = newLiveMetrics(sc.Name, stamp.RunIDString(runID), sc.Driver.Kind)
		srv, err := serveMetrics(f.metricsAddr, metrics)
		if err != nil {
			return &exitError{code: exitRuntime, err: fmt.Errorf("--metrics-addr: %w", err)}
		}
		defer srv.close()
		fmt.Fprintf(stderr, "metrics: http://%s/metrics\n", srv.addr)
		visitors = append(visitors, func(kind string, _, _ time.Time, h *hdr.Histogram) { metrics.observe(kind, h) })
	}
	if len(visitors) > 0 {
		opts = append(opts, engine.WithIntervalHistograms(func(kind string, start, end time.Time, h *hdr.Histogram) {
			for _, v := range visitors {
				v(kind, start, end, h)
			}
		}))
	}

	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	finished := make(chan struct{})
	defer close(finished) // before stop: the deferred stop is no interrupt
	go func() {
		select {
		case <-ctx.Done():
		case <-finished:
			return
		}
		select {
		case <-finished:
			return
		default:
		}
		stop() // the next signal gets Go's default handling: exit at once
		fmt.Fprintln(stderr, "\nspate: interrupted; draining briefly and writing the report (Ctrl-C again to exit now)")
	}()

	pr := newProgressPrinter(stderr, f.progress)
	progress := pr.print
	if metrics != nil {
		progress = func(p engine.Progress) { metrics.update(p); pr.print(p) }
	}
	opts = append(opts, engine.WithLogger(log), engine.WithProgress(progress))
	res, runErr := engine.Run(ctx, sc, opts...)
	pr.done()
	var logErr error
	if logs != nil {
		logErr = logs.Close()
	}
	if res == nil {
		return &exitError{code: exitRuntime, err: runErr}
	}

	if err := report.WriteText(stdout, res); err != nil {
		return &exitError{code: exitRuntime, err: err}
	}
	if _, err := report.WriteDir(dir, res, formats); err != nil {
		return &exitError{code: exitRuntime, err: fmt.Errorf("writing report: %w", err)}
	}
	if logErr != nil {
		return &exitError{code: exitRuntime, err: fmt.Errorf("writing interval logs: %w", logErr)}
	}
	fmt.Fprintf(stdout, "report: %s\n", dir)

	switch {
	case runErr != nil:
		return &exitError{code: exitRuntime, err: runErr}
	case res.Interrupted:
		return &exitError{code: exitRuntime, err: fmt.Errorf("the run was interrupted")}
	case res.Verdict != report.Pass:
		return &exitError{code: exitFailed, err: fmt.Errorf("thresholds failed")}
	}
	return nil
}

// progressPrinter shows the run's progress: one line rewritten in place on a
// terminal, or a log line every few seconds otherwise (CI logs).
type progressPrinter struct {
	w      io.Writer
	inline bool
	off    bool
	every  time.Duration
	last   time.Duration
	wrote  bool
	width  func() int // terminal columns; 0 when unknown
}

func newProgressPrinter(w io.Writer, mode string) *progressPrinter {
	p := &progressPrinter{w: w, every: 5 * time.Second, width: func() int { return 0 }}
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
		if tty {
			p.width = func() int {
				cols, _, err := term.GetSize(int(f.Fd()))
				if err != nil {
					return 0
				}
				return cols
			}
		}
	}
	switch mode {
	case "off":
		p.off = true
	case "line":
		p.inline = true
	case "auto":
		p.inline = tty
	}
	return p
}

func (p *progressPrinter) print(pg engine.Progress) {
	if p.off {
		return
	}
	if !p.inline && pg.Elapsed-p.last < p.every && pg.Elapsed < pg.Total {
		return
	}
	p.last = pg.Elapsed
	line := progressLine(pg)
	if p.inline {
		if w := p.width(); w > 1 {
			line = truncateRunes(line, w-1) // a wrapped line cannot be rewritten
		}
		fmt.Fprintf(p.w, "\r%s\033[K", line)
		p.wrote = true
	} else {
		fmt.Fprintln(p.w, line)
	}
}

// progressLine formats one progress report:
//
//	[  12.0s/60s] spike target 5,000/s achieved 4,980/s sent 5,000/s | in-flight 12 recv 59,000 backlog 3 failed 0 dup 0 | e2e p99 12.3ms | faults: broker-restart
//
// or, in a produce-only run, writeProduceOnlyProgress's figures.
func progressLine(pg engine.Progress) string {
	iv := pg.Interval
	secs := (iv.End - iv.Start).Seconds()
	if secs <= 0 {
		secs = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[%6.1fs/%s] ", pg.Elapsed.Seconds(), pg.Total.Round(100*time.Millisecond))
	switch {
	case pg.Draining:
		b.WriteString("draining ")
	case pg.Phase != "" && pg.TargetRate > 0:
		fmt.Fprintf(&b, "%s target %s/s ", pg.Phase, groupInt(int64(pg.TargetRate+0.5)))
	case pg.Phase != "":
		fmt.Fprintf(&b, "%s ", pg.Phase)
	}
	if pg.ProduceOnly {
		writeProduceOnlyProgress(&b, pg, secs)
		return withFaults(&b, pg)
	}
	fmt.Fprintf(&b, "achieved %s/s sent %s/s | in-flight %s recv %s backlog %s failed %s dup %s",
		groupInt(int64(float64(iv.Counts.Received)/secs/float64(max(pg.Subscriptions, 1))+0.5)), groupInt(int64(float64(iv.Counts.Sent)/secs+0.5)),
		groupInt(pg.InFlight), groupInt(pg.Live.Received), groupInt(iv.Backlog), groupInt(pg.Live.Failed), groupInt(pg.Live.Duplicates))
	if iv.Latency.E2E.Count > 0 {
		fmt.Fprintf(&b, " | e2e p99 %s", report.FormatMicros(iv.Latency.E2E.P99))
	}
	return withFaults(&b, pg)
}

// withFaults ends a progress line with the active faults and returns it.
func withFaults(b *strings.Builder, pg engine.Progress) string {
	if len(pg.ActiveFaults) > 0 {
		fmt.Fprintf(b, " | faults: %s", strings.Join(pg.ActiveFaults, ", "))
	}
	return b.String()
}

// groupInt formats n with commas between groups of three digits.
func groupInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// truncateRunes cuts s to at most n runes, marking the cut with "…".
func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n < 1 {
		return ""
	}
	return string(r[:n-1]) + "…"
}

func (p *progressPrinter) done() {
	if p.wrote {
		fmt.Fprintln(p.w)
	}
}

// newRunID returns a random run id (odd, so never 0).
func newRunID() uint64 { return rand.Uint64() | 1 }
