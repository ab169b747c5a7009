package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
)

type runFlags struct {
	out      string
	progress string
	verbose  bool
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a scenario and report the verdict",
		Long: `run executes the scenario in FILE: it sends the traffic, injects the faults,
drains, prints a summary and writes the report files. Ctrl-C stops the
traffic early, drains briefly and still writes the report (marked
interrupted); a second Ctrl-C exits at once.

Exit codes: 0 pass, 1 runtime error or interrupted, 2 invalid scenario,
3 thresholds failed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runScenario(cmd, args[0], f) },
	}
	cmd.Flags().StringVarP(&f.out, "out", "o", "", "directory for report files (default: the scenario's report.dir, or spate-results/NAME-TIME)")
	cmd.Flags().StringVar(&f.progress, "progress", "auto", "live progress: auto (a line in place on a terminal, a log line every 5s otherwise), line, log, off")
	cmd.Flags().BoolVarP(&f.verbose, "verbose", "v", false, "log what the run does")
	return cmd
}

func runScenario(cmd *cobra.Command, file string, f runFlags) error {
	switch f.progress {
	case "auto", "line", "log", "off":
	default:
		return &exitError{code: exitInvalid, err: fmt.Errorf("--progress %q: valid values are auto, line, log, off", f.progress)}
	}
	sc, err := loader().Load(file)
	if err != nil {
		printProblems(cmd, err)
		return &exitError{code: exitInvalid, err: fmt.Errorf("%s is not a valid scenario", file)}
	}
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()

	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // the next signal gets Go's default handling: exit at once
		fmt.Fprintln(stderr, "\nspate: interrupted; draining briefly and writing the report (Ctrl-C again to exit now)")
	}()

	pr := newProgressPrinter(stderr, f.progress)
	res, runErr := engine.Run(ctx, sc,
		engine.WithDrivers(kinds()...),
		engine.WithLogger(log),
		engine.WithProgress(pr.print),
	)
	pr.done()
	if res == nil {
		return &exitError{code: exitRuntime, err: runErr}
	}

	dir := f.out
	if dir == "" {
		dir = sc.Report.Dir
	}
	if dir == "" {
		dir = filepath.Join("spate-results", sc.Name+"-"+res.StartedAt.Local().Format("20060102-150405"))
	}
	if err := report.WriteText(stdout, res); err != nil {
		return &exitError{code: exitRuntime, err: err}
	}
	if _, err := report.WriteDir(dir, res, sc.Report.Formats); err != nil {
		return &exitError{code: exitRuntime, err: fmt.Errorf("writing report: %w", err)}
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
}

func newProgressPrinter(w io.Writer, mode string) *progressPrinter {
	p := &progressPrinter{w: w, every: 5 * time.Second}
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
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
	iv := pg.Interval
	secs := (iv.End - iv.Start).Seconds()
	if secs <= 0 {
		secs = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[%6.1fs/%.0fs] ", pg.Elapsed.Seconds(), pg.Total.Seconds())
	if pg.Draining {
		b.WriteString("draining ")
	} else if pg.Phase != "" {
		fmt.Fprintf(&b, "%s target %.0f/s ", pg.Phase, pg.TargetRate)
	}
	fmt.Fprintf(&b, "sent %.0f/s recv %.0f/s in-flight %d backlog %d dup %d",
		float64(iv.Counts.Sent)/secs, float64(iv.Counts.Received)/secs, pg.InFlight, iv.Backlog, pg.Live.Duplicates)
	if iv.Latency.E2E.Count > 0 {
		fmt.Fprintf(&b, " e2e p99 %s", report.FormatMicros(iv.Latency.E2E.P99))
	}
	if p.inline {
		fmt.Fprintf(p.w, "\r%s\033[K", b.String())
		p.wrote = true
	} else {
		fmt.Fprintln(p.w, b.String())
	}
}

func (p *progressPrinter) done() {
	if p.wrote {
		fmt.Fprintln(p.w)
	}
}
