package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
)

type sweepFlags struct {
	out       string
	progress  string
	verbose   bool
	dryRun    bool
	overwrite bool
}

func newSweepCmd() *cobra.Command {
	var f sweepFlags
	cmd := &cobra.Command{
		Use:   "sweep FILE",
		Short: "Run a scenario over a grid of values and tabulate the results",
		Long: `sweep runs the sweep file FILE: one base scenario over a grid of values,
one run per point. The grid maps YAML paths of the scenario document to
lists of values, so any field can vary, driver options included:

  scenario: base.yaml                 # relative to the sweep file
  grid:
    traffic[0].constant.rate: [1000/s, 5000/s, 20000/s]
    message.size: [256B, 4KiB]
    driver.kafka.partitions: [3, 12]
  along: traffic[0].constant.rate     # the path each chart curve follows (default: the first)

Every point is the base document with its values written in, validated
like any scenario before anything runs (spate validate FILE checks them
all). The points run one after another; each keeps its own report
directory under DIR/points/, and DIR gets the table: sweep.csv and
sweep.json (throughput, e2e p50/p99/p99.9, publish p99 and the counts per
point) and sweep.html (latency against throughput, one curve per line of
the grid, with a link to every point's report), rewritten after each
point. Ctrl-C stops the running point (its report is still written) and
skips the rest.

Exit codes: 0 every point ran and passed its thresholds, 1 a point failed
at runtime or the sweep was interrupted, 2 invalid sweep or scenario,
3 some point's thresholds failed.`,
		Example: `  spate sweep examples/capacity-sweep.yaml
  spate sweep --dry-run examples/capacity-sweep.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runSweep(cmd, args[0], f) },
	}
	cmd.Flags().StringVarP(&f.out, "out", "o", "", "directory for the sweep (default: the sweep's dir, or spate-results/NAME-TIME)")
	cmd.Flags().StringVar(&f.progress, "progress", "auto", "live progress of each point: auto, line, log, off")
	cmd.Flags().BoolVarP(&f.verbose, "verbose", "v", false, "log what the runs do")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "validate every point and list them, without running")
	cmd.Flags().BoolVar(&f.overwrite, "overwrite", false, "write into the sweep directory even when it holds files spate did not write")
	return cmd
}

func runSweep(cmd *cobra.Command, file string, f sweepFlags) error {
	switch f.progress {
	case "auto", "line", "log", "off":
	default:
		return &exitError{code: exitInvalid, err: fmt.Errorf("--progress %q: valid values are auto, line, log, off", f.progress)}
	}
	sw, err := loader().LoadSweep(file)
	if err != nil {
		printProblems(cmd, err)
		return &exitError{code: exitInvalid, err: fmt.Errorf("%s is not a valid sweep", file)}
	}
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if f.dryRun {
		fmt.Fprintf(stdout, "sweep %s: %d points of %s\n", sw.Name, len(sw.Points), sw.Scenario)
		for _, p := range sw.Points {
			fmt.Fprintf(stdout, "  %s  %s\n", p.Slug, p.Name)
		}
		return nil
	}
	out, err := openOutDir(cmp.Or(f.out, sw.Dir), sw.Name, time.Now(), "spate sweep "+file, f.overwrite)
	if err != nil {
		return dirError(err)
	}
	defer out.release()
	dir := out.path

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
	defer close(finished)
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
		stop()
		fmt.Fprintln(stderr, "\nspate: interrupted; finishing this point's report and skipping the rest (Ctrl-C again to exit now)")
	}()

	var pr *progressPrinter
	each := func(ev engine.SweepEvent) {
		p := ev.Point
		if !ev.Done {
			fmt.Fprintf(stderr, "point %d/%d: %s\n", p.Index, ev.Total, p.Name)
			if p.Scenario != nil {
				announceSearch(stderr, p.Scenario, 0)
			}
			pr = newProgressPrinter(stderr, f.progress)
			return
		}
		pr.done()
		switch r := ev.Results; {
		case r == nil:
			fmt.Fprintf(stderr, "point %d/%d: did not run: %v\n", p.Index, ev.Total, ev.Err)
		default:
			line := fmt.Sprintf("point %d/%d: %s", p.Index, ev.Total, verdictWord(r))
			if l := r.LatencyUS.E2E; l.Count > 0 {
				line += fmt.Sprintf(", achieved %s/s, e2e p50 %s p99 %s", report.FormatRate(r.Rate.AchievedMean), report.FormatMicros(l.P50), report.FormatMicros(l.P99))
			}
			if ev.Err != nil {
				line += fmt.Sprintf(" (%v)", ev.Err)
			}
			fmt.Fprintln(stderr, line)
		}
	}
	opts := []engine.Option{
		engine.WithDrivers(kinds()...), engine.WithLogger(log),
		engine.WithProgress(func(p engine.Progress) {
			if pr != nil {
				pr.print(p)
			}
		}),
	}
	sr, runErr := engine.Sweep(ctx, sw, dir, each, opts...)
	if sr == nil {
		return &exitError{code: exitRuntime, err: runErr}
	}
	if err := report.WriteSweepText(stdout, sr); err != nil {
		return &exitError{code: exitRuntime, err: err}
	}
	fmt.Fprintf(stdout, "sweep: %s (sweep.csv, sweep.json, sweep.html; each point under points/)\n", dir)
	failed := 0
	for _, p := range sr.Points {
		if p.Verdict != report.Pass {
			failed++
		}
	}
	switch {
	case runErr != nil:
		return &exitError{code: exitRuntime, err: runErr}
	case memoryStop(ctx) != nil:
		return &exitError{code: exitRuntime, err: memoryStop(ctx)}
	case len(sr.Points) < len(sw.Points):
		return &exitError{code: exitRuntime, err: fmt.Errorf("the sweep ran %d of %d points", len(sr.Points), len(sw.Points))}
	case failed > 0:
		return &exitError{code: exitFailed, err: fmt.Errorf("%d of %d points failed their thresholds", failed, len(sr.Points))}
	}
	return nil
}

func verdictWord(r *report.Results) string {
	switch {
	case r.Interrupted:
		return "INTERRUPTED"
	case r.Error != "":
		return "ERROR"
	}
	return map[string]string{report.Pass: "PASS", report.Fail: "FAIL"}[r.Verdict]
}
