package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/spate-dev/spate/shards"
)

func newFetchReportCmd() *cobra.Command {
	var (
		out  string
		done bool
		wait time.Duration
	)
	cmd := &cobra.Command{
		Use:   "fetch-report HOST:PORT",
		Short: "Download the report a lingering coordinator serves",
		Long: `fetch-report downloads the report directory that a run's coordinator
serves after the run with spate run --linger (shard 0 of a run on
Kubernetes, through kubectl port-forward):

  kubectl port-forward pod/NAME-0-xxxxx 7070:7070 &
  spate fetch-report 127.0.0.1:7070 -o results/

It waits (--wait) while the run is not over or nothing answers yet, and
checks every file's size against the coordinator's list. --done then tells
the coordinator to stop serving, so its pod ends and the Job finishes with
the run's verdict.

Exit codes: 0 fetched, 1 could not fetch, 2 invalid usage.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr := args[0]
			if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
				return &exitError{code: exitInvalid, err: fmt.Errorf("%q: want HOST:PORT, e.g. 127.0.0.1:7070", addr)}
			}
			if wait <= 0 {
				return &exitError{code: exitInvalid, err: fmt.Errorf("--wait must be more than 0")}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			dir, files, err := shards.FetchReport(ctx, addr, out, done)
			if err != nil {
				return &exitError{code: exitRuntime, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "fetched %d files into %s\n", len(files), dir)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "directory to write the report to (default: the report directory's own name, here)")
	cmd.Flags().BoolVar(&done, "done", false, "then tell the coordinator to stop serving (its process exits with the run's exit code)")
	cmd.Flags().DurationVar(&wait, "wait", 2*time.Minute, "how long to wait for the run to end and the report to come")
	return cmd
}
