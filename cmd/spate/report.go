package main

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

type reportFlags struct {
	compare       bool
	formats       []string
	out           string
	maxRegression []string
	quiet         bool
	overwrite     bool
}

// renderFormats are the formats `spate report` writes by default: all that
// results.json holds the data for, except results.json itself.
var renderFormats = []string{scenarios.FormatText, scenarios.FormatHgrm, scenarios.FormatHTML, scenarios.FormatJUnit}

func newReportCmd() *cobra.Command {
	var f reportFlags
	cmd := &cobra.Command{
		Use:   "report DIR | report --compare BASELINE_DIR RUN_DIR",
		Short: "Re-render a run's report, or compare two runs",
		Long: `report DIR reads DIR/results.json (or the results.json file given) and
writes the report files again without re-running: summary.txt, the .hgrm
percentile files, report.html and junit.xml (--formats picks; json
rewrites results.json). It prints the summary and exits 0. Interval logs
(.hlog) are written only during a run: results.json does not hold the
interval histograms.

report --compare BASELINE_DIR RUN_DIR shows each figure of the two runs
side by side with the change, and checks tolerances given with
--max-regression METRIC=LIMIT (repeatable). METRIC is a threshold metric
name (e2e.p99, publish.max, lost, duplicates.ratio, achieved_rate, ...);
LIMIT is a percentage of the baseline (10%) or an absolute amount in the
metric's unit (5ms, 0, 0.001). Latencies, losses, duplicates, reordering,
failures and their ratios get worse going up; rates and the sent, acked
and received counts get worse going down. The comparison exits 3 when a
tolerance is exceeded, 0 otherwise, so a release pipeline can gate on it.

Exit codes: 0 done (no regression), 1 the files could not be written,
2 invalid usage or unreadable results, 3 a regression beyond a tolerance.`,
		Example: `  spate report spate-results/checkout-spike
  spate report --formats html,junit spate-results/checkout-spike
  spate report --compare baseline/ spate-results/checkout-spike \
      --max-regression e2e.p99=10% --max-regression lost=0 --max-regression achieved_rate=5%`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.compare {
				return compareRuns(cmd, args, f)
			}
			return renderReport(cmd, args, f)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.compare, "compare", false, "compare two runs: BASELINE_DIR RUN_DIR")
	fl.StringSliceVar(&f.formats, "formats", nil, "formats to write: "+strings.Join(renderFormats, ",")+", json (default: "+strings.Join(renderFormats, ",")+")")
	fl.StringVarP(&f.out, "out", "o", "", "directory to write into (default: the results' own directory)")
	fl.StringArrayVar(&f.maxRegression, "max-regression", nil, "with --compare: METRIC=LIMIT, e.g. e2e.p99=10% or lost=0 (repeatable)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "do not print the summary")
	fl.BoolVar(&f.overwrite, "overwrite", false, "with --out: write into the directory even when it holds files spate did not write")
	return cmd
}

// readResults reads results.json from a report directory or a file.
func readResults(path string) (*report.Results, string, error) {
	file := path
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		file = filepath.Join(path, "results.json")
	}
	r, err := report.ReadResults(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, file, fmt.Errorf("%s: no results.json there (give a report directory written by spate run)", path)
	}
	return r, file, err
}

func renderReport(cmd *cobra.Command, args []string, f reportFlags) error {
	if len(args) != 1 {
		return &exitError{code: exitInvalid, err: fmt.Errorf("report takes one report directory (or --compare BASELINE_DIR RUN_DIR), got %d arguments", len(args))}
	}
	if len(f.maxRegression) > 0 {
		return &exitError{code: exitInvalid, err: errors.New("--max-regression needs --compare BASELINE_DIR RUN_DIR")}
	}
	formats := f.formats
	if len(formats) == 0 {
		formats = renderFormats
	}
	for _, fm := range formats {
		switch {
		case fm == scenarios.FormatHlog:
			return &exitError{code: exitInvalid, err: errors.New("--formats hlog: interval logs are written only during a run; results.json does not hold the interval histograms")}
		case !slices.Contains(scenarios.Formats, fm):
			return &exitError{code: exitInvalid, err: fmt.Errorf("--formats: unknown format %q (formats: %s, json)", fm, strings.Join(renderFormats, ", "))}
		}
	}
	r, file, err := readResults(args[0])
	if err != nil {
		return &exitError{code: exitInvalid, err: err}
	}
	// Another directory (--out) gets the care a run's does; the results'
	// own directory is a report already.
	out, err := openOutDir(cmp.Or(f.out, filepath.Dir(file)), "", time.Now(), "spate report "+args[0], f.overwrite || f.out == "")
	if err != nil {
		return dirError(err)
	}
	defer out.release()
	dir := out.path
	if !f.quiet {
		if err := report.WriteText(cmd.OutOrStdout(), r); err != nil {
			return &exitError{code: exitRuntime, err: err}
		}
	}
	paths, err := report.WriteDir(dir, r, formats)
	if err != nil {
		return &exitError{code: exitRuntime, err: fmt.Errorf("writing report: %w", err)}
	}
	for _, p := range paths {
		fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", p)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "report: %s\n", dir)
	return nil
}

func compareRuns(cmd *cobra.Command, args []string, f reportFlags) error {
	if len(args) != 2 {
		return &exitError{code: exitInvalid, err: fmt.Errorf("--compare takes two report directories, BASELINE_DIR RUN_DIR; got %d", len(args))}
	}
	if len(f.formats) > 0 || f.out != "" {
		return &exitError{code: exitInvalid, err: errors.New("--formats and --out render one run; they do not go with --compare")}
	}
	var tols []report.Tolerance
	var problems []string
	for _, s := range f.maxRegression {
		t, err := report.ParseTolerance(s)
		if err != nil {
			problems = append(problems, "--max-regression "+err.Error())
			continue
		}
		tols = append(tols, t)
	}
	if len(problems) > 0 {
		return &exitError{code: exitInvalid, err: errors.New(strings.Join(problems, "\n"))}
	}
	base, _, err := readResults(args[0])
	if err != nil {
		return &exitError{code: exitInvalid, err: fmt.Errorf("baseline: %w", err)}
	}
	run, _, err := readResults(args[1])
	if err != nil {
		return &exitError{code: exitInvalid, err: fmt.Errorf("run: %w", err)}
	}
	c, err := report.Compare(base, run, args[0], args[1], tols)
	if err != nil {
		return &exitError{code: exitInvalid, err: err}
	}
	if err := report.WriteComparison(cmd.OutOrStdout(), c); err != nil {
		return &exitError{code: exitRuntime, err: err}
	}
	if len(c.Regressions) > 0 {
		return &exitError{code: exitFailed, err: fmt.Errorf("%d regressions beyond tolerance", len(c.Regressions))}
	}
	return nil
}
