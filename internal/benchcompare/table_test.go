package benchcompare

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseBenchAndTable(t *testing.T) {
	f, err := os.Open("testdata/bench.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, err := ParseBench(f)
	if err != nil {
		t.Fatal(err)
	}
	want := []Row{
		{Driver: "kafka", Direction: "produce", Size: "1KiB", Partitions: "3", Spate: 219946, Bare: 212010, Ratio: 1.037, SpateCPU: 3045, BareCPU: 3173},
		{Driver: "kafka", Direction: "max", Size: "16KiB", Partitions: "12", Spate: 79410, Bare: 75581, Ratio: 1.051},
		{Driver: "eventbridge", Direction: "consume", Size: "100B", Spate: 1080, Bare: 1200, Ratio: 0.9},
	}
	if len(out.Rows) != len(want) {
		t.Fatalf("rows %+v", out.Rows)
	}
	for i := range want {
		if out.Rows[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, out.Rows[i], want[i])
		}
	}
	if len(out.Skipped) != 1 || out.Skipped[0] != "rabbitmq: BenchmarkCompare: main_test.go:56: SPATE_SKIP_RABBITMQ=1: skipping a test that needs rabbitmq-server" {
		t.Errorf("skipped %q", out.Skipped)
	}
	if len(out.Failed) != 1 || !strings.HasPrefix(out.Failed[0], "eventbridge: BenchmarkCompare/publish/1KiB: compare.go:160: publish/1KiB: spate side") {
		t.Errorf("failed %q", out.Failed)
	}

	var b bytes.Buffer
	if err := WriteTable(&b, out.Rows); err != nil {
		t.Fatal(err)
	}
	wantTable := `driver       direction   size  partitions  spate msgs/s   bare msgs/s  ratio  spate cpu/msg  bare cpu/msg
kafka        produce     1KiB           3       219,946       212,010   1.04          3.0µs         3.2µs
kafka        max        16KiB          12        79,410        75,581   1.05              -             -
eventbridge  consume     100B           -         1,080         1,200   0.90              -             -
`
	if got := b.String(); got != wantTable {
		t.Errorf("table\n%s\nwant\n%s", got, wantTable)
	}
}

func TestMeasureAlternates(t *testing.T) {
	var order []string
	side := func(name string, n int64) Side {
		return func(context.Context) (Sample, error) {
			order = append(order, name)
			return Sample{Messages: n, Elapsed: time.Second, CPU: time.Duration(n) * time.Microsecond}, nil
		}
	}
	p := Pair{Direction: Max, Size: 1024, Partitions: 3, Spate: side("spate", 900), Bare: side("bare", 1000)}
	res, err := Measure(context.Background(), p, 4)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, " "); got != "spate bare spate bare spate bare spate bare" {
		t.Errorf("order %s", got)
	}
	if res.Spate.Messages != 3600 || res.Bare.Elapsed != 4*time.Second || res.Ratio() != 0.9 || res.Spate.CPUPerMessage() != 1000 {
		t.Errorf("result %+v, ratio %v", res, res.Ratio())
	}
	if p.Name() != "max/1KiB/3p" || (Pair{Direction: Produce, Size: 100}).Name() != "produce/100B" {
		t.Errorf("names %q", p.Name())
	}

	p.Bare = func(context.Context) (Sample, error) { return Sample{}, errors.New("no broker") }
	if _, err := Measure(context.Background(), p, 1); err == nil || !strings.Contains(err.Error(), "max/1KiB/3p: bare side, round 1: no broker") {
		t.Errorf("error %v", err)
	}
	p.Bare = side("bare", 0)
	if _, err := Measure(context.Background(), p, 1); err == nil || !strings.Contains(err.Error(), "measured 0 messages") {
		t.Errorf("error %v", err)
	}
}

func TestParseConfig(t *testing.T) {
	env := map[string]string{}
	get := func(k string) string { return env[k] }
	c, err := parseConfig(get)
	if err != nil || c.Rounds != 2 || c.Duration != 3*time.Second || len(c.Sizes) != 3 {
		t.Errorf("defaults %+v %v", c, err)
	}
	env[EnvRounds], env[EnvDuration], env[EnvSizes] = "4", "500ms", "64B, 4KiB"
	if c, err = parseConfig(get); err != nil || c.Rounds != 4 || c.Duration != 500*time.Millisecond || len(c.Sizes) != 2 || c.Sizes[1] != 4096 {
		t.Errorf("config %+v %v", c, err)
	}
	env[EnvRounds], env[EnvDuration], env[EnvSizes] = "0", "1", "10B"
	_, err = parseConfig(get)
	for _, want := range []string{EnvRounds, EnvDuration, EnvSizes} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}
