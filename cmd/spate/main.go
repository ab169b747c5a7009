// Command spate runs load-and-chaos scenarios against event systems and
// exits with the verdict. Exit codes: 0 pass, 1 runtime error or interrupted
// run, 2 invalid scenario or usage, 3 thresholds failed.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes are part of spate's interface; the README documents them.
const (
	exitPass    = 0
	exitRuntime = 1
	exitInvalid = 2
	exitFailed  = 3
)

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	os.Exit(execute(os.Args[1:]))
}

// execute runs the CLI with args and returns the exit code.
func execute(args []string) int {
	root := newRoot()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitPass
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(os.Stderr, "spate:", ee.err)
		}
		return ee.code
	}
	// Cobra's own errors: unknown command or flag, wrong argument count.
	fmt.Fprintln(os.Stderr, "spate:", err)
	return exitInvalid
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "spate",
		Short: "Load and chaos testing for event systems, with exact accounting",
		Long: `spate sends traffic to Kafka, RabbitMQ or EventBridge as a YAML scenario
describes it, injects faults while it runs, and measures end-to-end latency,
loss, duplicates and reordering exactly.

Exit codes: 0 pass, 1 runtime error or interrupted run, 2 invalid scenario
or usage, 3 thresholds failed (spate sweep: at some point; spate report
--compare: a regression beyond a tolerance).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(), newSweepCmd(), newValidateCmd(), newReportCmd(), newVersionCmd())
	root.AddCommand(newMergeCmd(), newServeCmd())
	return root
}
