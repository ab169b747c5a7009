package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/spate-dev/spate/drivers/stamp"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
	"github.com/spate-dev/spate/shards"
)

type runFlags struct {
	out         string
	progress    string
	verbose     bool
	metricsAddr string
	peak        string
	overwrite   bool
	shardFlags
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

Distributed: --shard INDEX/COUNT runs this process as one of COUNT shards
of the scenario (the same file on every host), each running the producers
and consumers whose id mod COUNT is INDEX against one external system.
Shard 0 is the coordinator: it listens on --coordinator HOST:PORT (or
--listen ADDR), where the others reach it, provisions the system, starts everyone at one time,
prints the run's progress, ends the drain for everyone, merges every
shard's account exactly and writes the run's report; its exit code is the
run's. The other shards print their own part and hand it to the
coordinator (a copy stays in DIR/shards/INDEX; spate merge can redo the
merge). SPATE_SHARD, SPATE_SHARDS and SPATE_COORDINATOR may stand for the
flags, and Kubernetes' JOB_COMPLETION_INDEX for the index.

Exit codes: 0 pass, 1 runtime error, interrupted or incomplete run,
2 invalid scenario, 3 thresholds failed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runScenario(cmd, args[0], f) },
	}
	cmd.Flags().StringVarP(&f.out, "out", "o", "", "directory for report files (default: the scenario's report.dir, or a new spate-results/NAME-TIME); held for the run, and refused when it holds files spate did not write")
	cmd.Flags().BoolVar(&f.overwrite, "overwrite", false, "write into the report directory even when it holds files spate did not write")
	cmd.Flags().StringVar(&f.progress, "progress", "auto", "live progress: auto (a line in place on a terminal, a log line every 5s otherwise), line, log, off")
	cmd.Flags().BoolVarP(&f.verbose, "verbose", "v", false, "log what the run does")
	cmd.Flags().StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics during the run, e.g. 127.0.0.1:9464 (port 0 picks a free one; the address is printed)")
	cmd.Flags().StringVar(&f.peak, "peak", "", "today's observed peak rate, e.g. 12000/s: with a find-max phase the report states the headroom (sustained ÷ peak), which the threshold metric headroom checks")
	cmd.Flags().StringVar(&f.shard, "shard", "", "run as shard INDEX/COUNT of a distributed run, e.g. 0/3 (default: $SPATE_SHARD/$SPATE_SHARDS, or $JOB_COMPLETION_INDEX/$SPATE_SHARDS)")
	cmd.Flags().StringVar(&f.coordinator, "coordinator", "", "HOST:PORT of shard 0, which listens there (default: $SPATE_COORDINATOR)")
	cmd.Flags().StringVar(&f.listen, "listen", "", "the address shard 0 listens on, e.g. :7070 for every interface (default: --coordinator's; $SPATE_LISTEN)")
	cmd.Flags().DurationVar(&f.joinTimeout, "join-timeout", shards.DefaultJoinTimeout, "how long the shards wait for each other at the start: a shard missing after it fails the run")
	cmd.Flags().DurationVar(&f.lostAfter, "lost-after", shards.DefaultLostAfter, "how long without a report before the coordinator gives up on a shard (the run is then incomplete), or a shard on the coordinator")
	cmd.Flags().DurationVar(&f.clockOffset, "test-clock-offset", 0, "shift this process's clock (tests of clock skew only)")
	_ = cmd.Flags().MarkHidden("test-clock-offset")
	cmd.Flags().DurationVar(&f.linger, "linger", 0, "after the run, keep serving the report files on the coordinator's port for this long (spate fetch-report HOST:PORT gets them), e.g. 10m; Ctrl-C, SIGTERM or fetch-report --done end it early")
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
		if err := checkListenAddr(f.metricsAddr); err != nil {
			return &exitError{code: exitInvalid, err: fmt.Errorf("--metrics-addr %q: %v", f.metricsAddr, err)}
		}
	}
	peak, err := parsePeak(f.peak)
	if err != nil {
		return &exitError{code: exitInvalid, err: err}
	}
	plan, err := planShard(f.shardFlags, os.Getenv)
	if err != nil {
		return &exitError{code: exitInvalid, err: err}
	}
	data, err := readInput(cmd, file) // once: a named pipe cannot be read twice
	if err != nil {
		return err
	}
	if scenarios.IsSweepFile(data) {
		return &exitError{code: exitInvalid, err: fmt.Errorf("%s is a sweep file; run it with spate sweep %s", file, file)}
	}
	l := loader()
	l.Shards = plan.count
	sc, err := l.Parse(file, data)
	if err != nil {
		printProblems(cmd, err)
		return &exitError{code: exitInvalid, err: fmt.Errorf("%s is not a valid scenario", file)}
	}
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	announceSearch(stderr, sc, peak)
	formats := sc.Report.Formats
	if len(formats) == 0 {
		formats = scenarios.Formats
	}

	// The report directory is known (and held) before the run, so that
	// interval logs can be written into it as the run goes.
	out, err := openOutDir(cmp.Or(f.out, sc.Report.Dir), sc.Name, time.Now(), "spate run "+file, f.overwrite)
	if err != nil {
		return dirError(err)
	}
	defer out.release()
	dir := out.path
	runID := newRunID()
	opts := []engine.Option{engine.WithDrivers(kinds()...), engine.WithRunID(runID), engine.WithPeak(peak)}
	var visitors []func(kind string, start, end time.Time, h *hdr.Histogram)

	var logs *report.IntervalLogs
	if slices.Contains(formats, scenarios.FormatHlog) && plan.index == 0 { // the coordinator logs the run's
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
		if err != nil { // the address asked for cannot be served: a usage error, before anything ran
			return &exitError{code: exitInvalid, err: fmt.Errorf("--metrics-addr: %w", err)}
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
	ctx, stopGuard := guardMemory(ctx)
	defer stopGuard()
	finished := make(chan struct{})
	finish := sync.OnceFunc(func() { close(finished) })
	defer finish() // before stop: the deferred stop is no interrupt
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
		if err := memoryStop(ctx); err != nil {
			fmt.Fprintf(stderr, "\nspate: %v; draining briefly and writing the report\n", err)
			return
		}
		fmt.Fprintln(stderr, "\nspate: interrupted; draining briefly and writing the report (Ctrl-C again to exit now)")
	}()

	pr := newProgressPrinter(stderr, f.progress)
	if plan.count > 1 && plan.index != 0 {
		pr.prefix = fmt.Sprintf("shard %d/%d's own: ", plan.index, plan.count) // the coordinator shows the run's
	}
	progress := pr.print
	if metrics != nil {
		progress = func(p engine.Progress) { metrics.update(p); pr.print(p) }
	}
	opts = append(opts, engine.WithLogger(log))
	lg := newLingering(plan, f.linger)
	defer lg.close()
	var res *report.Results
	var runErr error
	if plan.count > 1 {
		var hists func(kind string, start, end time.Time, h *hdr.Histogram)
		if len(visitors) > 0 {
			hists = func(kind string, start, end time.Time, h *hdr.Histogram) {
				for _, v := range visitors {
					v(kind, start, end, h)
				}
			}
		}
		cfg := shards.Config{
			Index: plan.index, Count: plan.count, Coordinator: plan.coordinator, Listen: plan.listen, Scenario: data, Dir: dir,
			JoinTimeout: f.joinTimeout, LostAfter: f.lostAfter, RunID: runID, ClockSkew: f.clockOffset, Log: log,
			Progress: progress, IntervalHistograms: hists,
			Listening: func(addr string) {
				fmt.Fprintf(stderr, "coordinator: listening on %s for %d shards\n", addr, plan.count-1)
			},
		}
		cfg.Files, cfg.KeepServing = lg.handler()
		res, runErr = shards.Run(ctx, cfg, sc, opts...)
	} else {
		res, runErr = engine.Run(ctx, sc, append(opts, engine.WithProgress(progress))...)
	}
	pr.done()
	var logErr error
	if logs != nil {
		logErr = logs.Close()
	}
	if res == nil {
		return &exitError{code: exitRuntime, err: runErr}
	}
	if plan.count > 1 && plan.index != 0 {
		printShardSummary(stdout, plan, res, shards.ShardDir(dir, plan.index))
		if runErr != nil {
			return &exitError{code: exitRuntime, err: runErr}
		}
		return nil
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
	finish() // a signal from now on ends the lingering, not the run
	lg.serve(ctx, stderr, dir)

	if runErr != nil {
		return &exitError{code: exitRuntime, err: runErr}
	}
	if res.Interrupted && memoryStop(ctx) != nil {
		return &exitError{code: exitRuntime, err: memoryStop(ctx)}
	}
	return verdictExit(res)
}

// verdictExit is the exit of a finished run's results: 1 when it was
// interrupted, failed at runtime or is incomplete, 3 when a threshold
// failed, 0 when it passed.
func verdictExit(res *report.Results) error {
	switch {
	case res.Error != "":
		return &exitError{code: exitRuntime, err: errors.New(res.Error)}
	case res.Incomplete: // first: it stopped the others' traffic early
		return &exitError{code: exitRuntime, err: fmt.Errorf("the run is incomplete: the final account of shard %s never came", joinInts(res.Shards.Missing))}
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
	// dumb is TERM=dumb: a terminal without escape codes (auto mode logs
	// lines there; line mode rewrites with spaces).
	dumb    bool
	lastLen int
	// prefix says whose figures the line shows when they are not the
	// run's (a shard's own, in a distributed run).
	prefix string
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
		p.inline = tty && os.Getenv("TERM") != "dumb"
	}
	p.dumb = os.Getenv("TERM") == "dumb"
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
	line := p.prefix + progressLine(pg)
	if p.inline {
		if w := p.width(); w > 1 {
			line = report.Truncate(line, w-1) // a wrapped line cannot be rewritten
		}
		if p.dumb { // no escape codes: blank out the rest of the last line with spaces
			n := utf8.RuneCountInString(line)
			fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", max(p.lastLen-n, 0)))
			p.lastLen = n
		} else {
			fmt.Fprintf(p.w, "\r%s\033[K", line)
		}
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
	elapsed := pg.Elapsed
	if pg.Draining && pg.Total > 0 {
		elapsed = min(elapsed, pg.Total) // the traffic's clock stops at its end; the drain counts on its own
	}
	fmt.Fprintf(&b, "[%6.1fs/%s] ", elapsed.Seconds(), pg.Total.Round(100*time.Millisecond))
	switch {
	case pg.Draining:
		fmt.Fprintf(&b, "draining +%.1fs ", max(pg.Elapsed-pg.Total, 0).Seconds())
	case pg.Phase != "" && pg.TargetRate > 0:
		fmt.Fprintf(&b, "%s target %s/s ", pg.Phase, report.GroupInt(int64(pg.TargetRate+0.5)))
	case pg.Phase != "":
		fmt.Fprintf(&b, "%s ", pg.Phase)
	}
	if pg.ProduceOnly {
		writeProduceOnlyProgress(&b, pg, secs)
		return withFaults(&b, pg)
	}
	fmt.Fprintf(&b, "achieved %s/s sent %s/s | in-flight %s recv %s backlog %s failed %s dup %s",
		report.GroupInt(int64(float64(iv.Counts.Received)/secs/float64(max(pg.Subscriptions, 1))+0.5)), report.GroupInt(int64(float64(iv.Counts.Sent)/secs+0.5)),
		report.GroupInt(pg.InFlight), report.GroupInt(pg.Live.Received), report.GroupInt(iv.Backlog), report.GroupInt(pg.Live.Failed), report.GroupInt(pg.Live.Duplicates))
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

func (p *progressPrinter) done() {
	if p.wrote {
		fmt.Fprintln(p.w)
	}
}

// joinInts lists ids as "1, 2".
func joinInts(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return strings.Join(s, ", ")
}

// newRunID returns a random run id (odd, so never 0).
func newRunID() uint64 { return rand.Uint64() | 1 }
