package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
	"github.com/spate-dev/spate/shards"
)

func newMergeCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "merge DIR...",
		Short: "Merge the shards' accounts of a distributed run into its report",
		Long: `merge does offline what the coordinator of a distributed run does at its end:
it reads every shard's account (DIR/shards/INDEX/shard.json and
accounting.state, as each shard leaves them; DIR may be a report directory
holding shards/, or one shard's own directory), merges them exactly, judges
the thresholds and writes the run's report. Use it when the coordinator
could not collect every shard's account: copy the shards' directories
together and merge them.

It refuses, with exit code 2, a set that is not one whole run: a shard
missing or given twice, or shards of different runs or scenario files.
Interval logs (.hlog) are not written.

Exit codes: 0 pass, 1 the run failed (a shard's runtime error, an
interrupted or incomplete run) or the report could not be written,
2 invalid usage or shard accounts, 3 thresholds failed.`,
		Example: `  spate merge spate-results/checkout-spike
  spate merge -o merged/ host-a/spate-results/run host-b/spate-results/run host-c/spate-results/run`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dirs, err := shards.FindArtifacts(args...)
			if err != nil {
				return &exitError{code: exitInvalid, err: err}
			}
			var arts []*shards.Artifact
			for _, d := range dirs {
				a, err := shards.ReadArtifact(d)
				if err != nil {
					return &exitError{code: exitInvalid, err: err}
				}
				arts = append(arts, a)
			}
			res, err := shards.Merge(arts)
			if errors.Is(err, shards.ErrIncompatible) {
				return &exitError{code: exitInvalid, err: err}
			}
			if err != nil {
				return &exitError{code: exitInvalid, err: fmt.Errorf("merging: %w", err)}
			}
			if out == "" {
				out = filepath.Join("spate-results", res.Scenario+"-merged-"+time.Now().Format("20060102-150405"))
			}
			stdout := cmd.OutOrStdout()
			if err := report.WriteText(stdout, res); err != nil {
				return &exitError{code: exitRuntime, err: err}
			}
			formats := []string{scenarios.FormatText, scenarios.FormatJSON, scenarios.FormatHgrm, scenarios.FormatHTML, scenarios.FormatJUnit}
			if _, err := report.WriteDir(out, res, formats); err != nil {
				return &exitError{code: exitRuntime, err: fmt.Errorf("writing report: %w", err)}
			}
			fmt.Fprintf(stdout, "report: %s\n", out)
			return verdictExit(res)
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "directory for the merged report (default: spate-results/NAME-merged-TIME)")
	return cmd
}
