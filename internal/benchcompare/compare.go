// Package benchcompare measures spate against the bare client of each
// driver, as `make bench-compare` reports it: a Pair is two Sides doing the
// same work (the same messages of the same size, through the same client
// library with the same settings, against the same kind of broker), one
// through spate's engine and tracker, one as a plain client loop. Measure
// runs a pair's sides alternately in one process (spate, bare, spate,
// bare, ...), so drift on a shared machine falls on both, and sums each
// side's messages, time and CPU over the rounds.
//
// Each driver's tests build their pairs (drivers/*/compare_test.go) and
// hand them to Bench, which makes one sub-benchmark per pair named
// DIRECTION/SIZE[/PARTITIONS] reporting spate-msgs/s, bare-msgs/s and
// ratio; ParseBench reads those lines back from `go test -bench` output and
// WriteTable prints them (cmd/bench-compare). Check runs every pair's
// sides once on short settings, as a test, so the benchmarks cannot rot.
//
// Directions:
//
//	produce  producers only (spate: consumers: 0): messages confirmed per second
//	max      producers and consumers at once, as fast as they go: messages
//	         received per second while producing
//	consume  a backlog produced beforehand, drained: messages received per
//	         second from the moment consumers start until the backlog is gone
//
// The package is for tests and benchmarks; nothing in spate imports it.
package benchcompare

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spate-dev/spate/scenarios"
)

// Directions a pair measures.
const (
	Produce = "produce"
	Max     = "max"
	Consume = "consume"
)

// Sample is one side's measurement: how many messages it counted, the
// time they took, and the CPU time the whole process used meanwhile (the
// in-process broker's included, where there is one; 0 when the side
// cannot tell), which a busy machine disturbs less than the time.
type Sample struct {
	Messages int64
	Elapsed  time.Duration
	CPU      time.Duration
}

// Rate is messages per second; 0 when no time passed.
func (s Sample) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Messages) / s.Elapsed.Seconds()
}

// CPUPerMessage is the CPU time per message in nanoseconds; 0 when unknown.
func (s Sample) CPUPerMessage() float64 {
	if s.Messages <= 0 {
		return 0
	}
	return float64(s.CPU.Nanoseconds()) / float64(s.Messages)
}

func (s Sample) add(o Sample) Sample {
	return Sample{Messages: s.Messages + o.Messages, Elapsed: s.Elapsed + o.Elapsed, CPU: s.CPU + o.CPU}
}

// CPUTime is the CPU time the process has used so far, user and system.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Side measures one side of a pair once, from its own setup (a broker, a
// queue, a topic) to its own teardown; only the work it reports is timed.
type Side func(ctx context.Context) (Sample, error)

// Pair is one comparison: spate and the bare client doing the same work.
type Pair struct {
	Direction  string // Produce, Max or Consume
	Size       int    // message size in bytes, stamp included
	Partitions int    // Kafka partitions; 0 where it does not apply
	Spate      Side
	Bare       Side
}

// Name is the pair's sub-benchmark name: DIRECTION/SIZE[/Np], e.g.
// max/1KiB/12p.
func (p Pair) Name() string {
	n := p.Direction + "/" + SizeName(p.Size)
	if p.Partitions > 0 {
		n += "/" + strconv.Itoa(p.Partitions) + "p"
	}
	return n
}

// SizeName writes a size as the table shows it: 100B, 1KiB, 16KiB.
func SizeName(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return strconv.Itoa(n/1024) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

// Result is a pair measured: each side's samples summed over the rounds.
type Result struct {
	Pair
	Spate, Bare Sample
	Rounds      int
}

// Ratio is spate's rate over the bare client's; 0 when the bare side
// measured nothing.
func (r Result) Ratio() float64 {
	if b := r.Bare.Rate(); b > 0 {
		return r.Spate.Rate() / b
	}
	return 0
}

// Measure runs the sides of p alternately, spate then bare, rounds times,
// and sums each side's samples. Spate goes first in every round so that a
// consume pair's bare side can drain as large a backlog as spate's side
// just did (Backlog). A side that fails, or counts no messages, is an
// error.
func Measure(ctx context.Context, p Pair, rounds int) (Result, error) {
	res := Result{Pair: p, Rounds: max(rounds, 1)}
	for i := range res.Rounds {
		order := []struct {
			name string
			side Side
			sum  *Sample
		}{{"spate", p.Spate, &res.Spate}, {"bare", p.Bare, &res.Bare}}
		for _, o := range order {
			s, err := o.side(ctx)
			if err == nil && (s.Messages <= 0 || s.Elapsed <= 0) {
				err = fmt.Errorf("measured %d messages in %v", s.Messages, s.Elapsed)
			}
			if err != nil {
				return res, fmt.Errorf("%s: %s side, round %d: %w", p.Name(), o.name, i+1, err)
			}
			*o.sum = o.sum.add(s)
		}
	}
	return res, nil
}

// Backlog hands the size of the backlog a consume pair's spate side built
// and drained to its bare side, which runs next (Measure) and builds one
// as large: draining costs more per message in a longer queue on some
// systems, so both sides must drain as many messages. It is safe for
// concurrent use; the zero value is ready.
type Backlog struct{ n atomic.Int64 }

// Set records the size of the backlog spate drained.
func (b *Backlog) Set(n int64) { b.n.Store(n) }

// Size is the last size Set, or 0 when spate's side has not run: then the
// bare side builds its backlog for the pair's duration.
func (b *Backlog) Size() int64 { return b.n.Load() }

// Metric units of the sub-benchmarks' results, as ParseBench reads them.
const (
	UnitSpate = "spate-msgs/s"
	UnitBare  = "bare-msgs/s"
	UnitRatio = "ratio"
	// CPU per message, where the sides measure it.
	UnitSpateCPU = "spate-cpu-ns/msg"
	UnitBareCPU  = "bare-cpu-ns/msg"
)

// Bench runs each pair as a sub-benchmark of b (one iteration: use
// -benchtime 1x) measured over Settings().Rounds rounds, and reports
// spate-msgs/s, bare-msgs/s and ratio.
func Bench(b *testing.B, pairs []Pair) {
	rounds := Settings().Rounds
	for _, p := range pairs {
		b.Run(p.Name(), func(b *testing.B) {
			var res Result
			for range b.N {
				var err error
				if res, err = Measure(context.Background(), p, rounds); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(res.Spate.Rate(), UnitSpate)
			b.ReportMetric(res.Bare.Rate(), UnitBare)
			b.ReportMetric(res.Ratio(), UnitRatio)
			if res.Spate.CPU > 0 && res.Bare.CPU > 0 {
				b.ReportMetric(res.Spate.CPUPerMessage(), UnitSpateCPU)
				b.ReportMetric(res.Bare.CPUPerMessage(), UnitBareCPU)
			}
		})
	}
}

// Check runs every pair's sides once, as a subtest each, and fails when a
// side fails or counts nothing: the benchmarks' code path, kept from
// rotting by an ordinary test on short settings.
func Check(t *testing.T, pairs []Pair) {
	for _, p := range pairs {
		t.Run(p.Name(), func(t *testing.T) {
			res, err := Measure(context.Background(), p, 1)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("spate %d messages in %v, bare %d in %v (shape only: not a measurement)",
				res.Spate.Messages, res.Spate.Elapsed, res.Bare.Messages, res.Bare.Elapsed)
		})
	}
}

// Config is what the benchmarks measure, from the environment (defaults in
// brackets):
//
//	SPATE_BENCH_ROUNDS    rounds per pair, each side once a round [2]
//	SPATE_BENCH_DURATION  how long each side produces [3s]
//	SPATE_BENCH_SIZES     message sizes, comma-separated [100B,1KiB,16KiB]
type Config struct {
	Rounds   int
	Duration time.Duration
	Sizes    []int
}

// Environment variables Settings reads.
const (
	EnvRounds   = "SPATE_BENCH_ROUNDS"
	EnvDuration = "SPATE_BENCH_DURATION"
	EnvSizes    = "SPATE_BENCH_SIZES"
)

// DefaultSizes are the message sizes every driver is compared at.
var DefaultSizes = []int{100, 1024, 16 << 10}

// Settings returns the Config the environment asks for; a value that does
// not parse panics with the reason, as a benchmark cannot go on without it.
func Settings() Config {
	c, err := parseConfig(os.Getenv)
	if err != nil {
		panic(err)
	}
	return c
}

func parseConfig(getenv func(string) string) (Config, error) {
	c := Config{Rounds: 2, Duration: 3 * time.Second, Sizes: DefaultSizes}
	var errs []error
	if v := getenv(EnvRounds); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			errs = append(errs, fmt.Errorf("%s=%q: want a whole number from 1 to 100", EnvRounds, v))
		}
		c.Rounds = n
	}
	if v := getenv(EnvDuration); v != "" {
		d, err := scenarios.ParseDuration(v)
		if err != nil || d < 100*time.Millisecond || d > 10*time.Minute {
			errs = append(errs, fmt.Errorf("%s=%q: want a duration from 100ms to 10m", EnvDuration, v))
		}
		c.Duration = d
	}
	if v := getenv(EnvSizes); v != "" {
		c.Sizes = nil
		for _, f := range strings.Split(v, ",") {
			s, err := scenarios.ParseSize(strings.TrimSpace(f))
			if err != nil || s < 48 || s > 1<<20 {
				errs = append(errs, fmt.Errorf("%s: %q: want a size from 48B to 1MiB", EnvSizes, f))
				continue
			}
			c.Sizes = append(c.Sizes, int(s))
		}
	}
	return c, errors.Join(errs...)
}
