// Command spate runs load-and-chaos scenarios against event systems and
// exits with the verdict. Exit codes: 0 pass, 1 runtime error or interrupted
// run, 2 invalid scenario or usage, 3 thresholds failed.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

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
	cmd, err := root.ExecuteC()
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
	// They are usage errors: say how the command is used.
	fmt.Fprintln(os.Stderr, "spate:", err)
	if cmd != nil {
		use := cmd.UseLine()
		if !cmd.HasParent() {
			use = cmd.Name() + " COMMAND [flags]"
		}
		fmt.Fprintf(os.Stderr, "usage: %s\nrun '%s --help' for more\n", use, cmd.CommandPath())
	}
	return exitInvalid
}

// usageError shows cmd's help on stderr and exits 2: a command was needed
// (spate alone, spate completion alone) or the one named does not exist.
func usageError(cmd *cobra.Command, err error) error {
	cmd.SetOut(cmd.ErrOrStderr())
	_ = cmd.Help()
	return &exitError{code: exitInvalid, err: err}
}

// helpCommand is spate help [COMMAND]: help on a command that does not
// exist is a usage error (exit 2), not a page of help and exit 0.
func helpCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(c *cobra.Command, args []string) error {
			target, rest, err := c.Root().Find(args)
			if err != nil || target == nil || len(rest) > 0 {
				return usageError(c.Root(), fmt.Errorf("no help topic %q; the commands are listed above", strings.Join(args, " ")))
			}
			return target.Help()
		},
	}
}

// strictCompletion makes cobra's completion command refuse a shell it
// does not know (exit 2) and, without one, show its help and exit 2.
func strictCompletion(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Args = cobra.NoArgs
			c.RunE = func(c *cobra.Command, _ []string) error {
				return usageError(c, errors.New("completion needs a shell: bash, zsh, fish or powershell"))
			}
		}
	}
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
	root.AddCommand(newMergeCmd(), newServeCmd(), newFetchReportCmd(), newKubernetesCmd())
	root.RunE = func(c *cobra.Command, _ []string) error {
		return usageError(c, errors.New("no command given; the commands are listed above"))
	}
	root.SetHelpCommand(helpCommand())
	strictCompletion(root)
	return root
}
