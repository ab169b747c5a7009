package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/spate-dev/spate/scenarios"
)

func newValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check scenario files and list every problem",
		Long: `validate reads each scenario file and prints every problem it finds as
file:line:col: field: message. A sweep file (see spate sweep) is checked
with its base scenario and every point of its grid. It exits 2 when any
file has a problem.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l := loader()
			bad := 0
			for _, file := range args {
				data, err := scenarios.ReadFile(file) // once: a named pipe cannot be read twice
				if err != nil {
					bad++
					printProblems(cmd, scenarios.Problems{scenarios.ReadProblem(file, err)})
					continue
				}
				if scenarios.IsSweepFile(data) {
					sw, err := l.ParseSweep(file, data)
					if err != nil {
						bad++
						printProblems(cmd, err)
						continue
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (a sweep of %d points over %s)\n", file, len(sw.Points), sw.Scenario)
					continue
				}
				if _, err := l.Parse(file, data); err != nil {
					bad++
					printProblems(cmd, err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", file)
			}
			if bad > 0 {
				return &exitError{code: exitInvalid, err: fmt.Errorf("%d of %d files have problems", bad, len(args))}
			}
			return nil
		},
	}
}

// readInput reads a scenario or sweep file bounded (scenarios.ReadFile),
// printing the problem and returning an exit error when it cannot.
func readInput(cmd *cobra.Command, file string) ([]byte, error) {
	data, err := scenarios.ReadFile(file)
	if err != nil {
		printProblems(cmd, scenarios.Problems{scenarios.ReadProblem(file, err)})
		return nil, &exitError{code: exitInvalid, err: fmt.Errorf("%s is not a valid scenario", file)}
	}
	return data, nil
}

// printProblems writes each problem of a Load error on its own line to stderr.
func printProblems(cmd *cobra.Command, err error) {
	var ps scenarios.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			fmt.Fprintln(cmd.ErrOrStderr(), p.Error())
		}
		return
	}
	fmt.Fprintln(cmd.ErrOrStderr(), err)
}
