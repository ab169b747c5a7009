// Command bench-compare runs every driver's BenchmarkCompare, spate
// against the bare client in interleaved pairs (package benchcompare), and
// prints one table of the rates and their ratios. It is what
// `make bench-compare` runs:
//
//	go run ./internal/benchcompare/cmd/bench-compare [flags]
//
//	-drivers kafka,rabbitmq,eventbridge,memory   the drivers to compare
//	-run REGEXP      only the pairs whose name (DIRECTION/SIZE[/Np]) matches
//	-rounds N        rounds per pair, each side once a round (default 2)
//	-duration D      how long each side produces (default 3s)
//	-sizes LIST      message sizes (default 100B,1KiB,16KiB)
//
// The benchmarks' own output goes to stderr as it comes, the table to
// stdout at the end. The exit code is 1 when a benchmark failed or could
// not run, 2 for bad flags, else 0: the ratios are figures to read, not a
// verdict. Each driver's package runs alone (one `go test` at a time), as
// the machine should be quiet while it measures.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/spate-dev/spate/internal/benchcompare"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

var allDrivers = []string{"kafka", "rabbitmq", "eventbridge", "memory"}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("bench-compare", flag.ContinueOnError)
	fl.SetOutput(stderr)
	driverList := fl.String("drivers", strings.Join(allDrivers, ","), "the drivers to compare, comma-separated")
	filter := fl.String("run", "", "only the pairs whose name (DIRECTION/SIZE[/Np]) matches this regular expression")
	rounds := fl.String("rounds", "", "rounds per pair, each side once a round (default 2)")
	duration := fl.String("duration", "", "how long each side produces (default 3s)")
	sizes := fl.String("sizes", "", "message sizes, comma-separated (default 100B,1KiB,16KiB)")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	var drivers []string
	for _, d := range strings.Split(*driverList, ",") {
		d = strings.TrimSpace(d)
		if !contains(allDrivers, d) {
			fmt.Fprintf(stderr, "bench-compare: unknown driver %q; drivers: %s\n", d, strings.Join(allDrivers, ", "))
			return 2
		}
		drivers = append(drivers, d)
	}
	env := os.Environ()
	for name, v := range map[string]string{benchcompare.EnvRounds: *rounds, benchcompare.EnvDuration: *duration, benchcompare.EnvSizes: *sizes} {
		if v != "" {
			env = append(env, name+"="+v)
		}
	}
	bench := "^BenchmarkCompare$"
	if *filter != "" {
		bench += "/" + *filter
	}

	var all benchcompare.Outcome
	failed := false
	for _, d := range drivers {
		var out bytes.Buffer
		cmd := exec.Command("go", "test", "-run", "^$", "-bench", bench, "-benchtime", "1x", "-timeout", "3h", "./drivers/"+d)
		cmd.Env = env
		cmd.Stdout = io.MultiWriter(stderr, &out)
		cmd.Stderr = stderr
		err := cmd.Run()
		o, perr := benchcompare.ParseBench(&out)
		if perr != nil {
			fmt.Fprintf(stderr, "bench-compare: reading the output of %s: %v\n", d, perr)
			failed = true
		}
		if err != nil {
			fmt.Fprintf(stderr, "bench-compare: %s: %v\n", d, err)
			failed = true
			if len(o.Failed) == 0 {
				o.Failed = append(o.Failed, d+": go test: "+err.Error())
			}
		}
		all.Rows = append(all.Rows, o.Rows...)
		all.Skipped = append(all.Skipped, o.Skipped...)
		all.Failed = append(all.Failed, o.Failed...)
	}

	fmt.Fprintln(stdout)
	if err := benchcompare.WriteTable(stdout, all.Rows); err != nil {
		fmt.Fprintln(stderr, "bench-compare:", err)
		return 1
	}
	for _, s := range all.Skipped {
		fmt.Fprintln(stdout, "skipped:", s)
	}
	for _, f := range all.Failed {
		fmt.Fprintln(stdout, "FAILED:", f)
	}
	fmt.Fprintln(stdout, "ratio: spate ÷ bare msgs/s, both sides in one process, interleaved; cpu/msg: the whole process's CPU time per message, in-process brokers included")
	if failed || len(all.Failed) > 0 {
		return 1
	}
	return 0
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
