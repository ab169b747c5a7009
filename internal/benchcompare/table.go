package benchcompare

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
)

// Row is one line of the comparison table: a pair's figures as
// BenchmarkCompare reported them.
type Row struct {
	Driver     string // the package's last path element: kafka, rabbitmq, ...
	Direction  string
	Size       string // as named: 100B, 1KiB, 16KiB
	Partitions string // "3", or "" where it does not apply
	Spate      float64
	Bare       float64
	Ratio      float64
	// SpateCPU and BareCPU are CPU nanoseconds per message, 0 when the
	// sides do not measure it.
	SpateCPU, BareCPU float64
}

// Outcome is what ParseBench found in `go test -bench` output: the rows,
// and the benchmarks that were skipped or failed, with their messages.
type Outcome struct {
	Rows    []Row
	Skipped []string
	Failed  []string
}

// ParseBench reads `go test -bench` output (of one or more packages) and
// returns the BenchmarkCompare results in it. Lines of other benchmarks
// and of logs are ignored.
func ParseBench(r io.Reader) (Outcome, error) {
	var out Outcome
	var pkg string
	var last *[]string // where the indented lines after --- SKIP/FAIL go
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "pkg: "):
			pkg = path.Base(strings.TrimSpace(strings.TrimPrefix(line, "pkg: ")))
			last = nil
		case strings.HasPrefix(line, "--- SKIP: "), strings.HasPrefix(line, "--- FAIL: "):
			list := &out.Skipped
			if strings.HasPrefix(line, "--- FAIL: ") {
				list = &out.Failed
			}
			name := strings.Fields(strings.TrimPrefix(strings.TrimPrefix(line, "--- SKIP: "), "--- FAIL: "))[0]
			*list = append(*list, pkg+": "+name)
			last = list
		case last != nil && strings.HasPrefix(line, "    "):
			(*last)[len(*last)-1] += ": " + strings.TrimSpace(line)
			last = nil
		case strings.HasPrefix(line, "BenchmarkCompare/"):
			last = nil
			row, ok := parseRow(pkg, line)
			if ok {
				out.Rows = append(out.Rows, row)
			}
		default:
			last = nil
		}
	}
	out.Failed = withoutParents(out.Failed)
	return out, sc.Err()
}

// withoutParents drops a failed benchmark whose sub-benchmark failed too
// ("kafka: BenchmarkCompare" after "kafka: BenchmarkCompare/max/1KiB/3p:
// ..."): its failure is theirs.
func withoutParents(failed []string) []string {
	var out []string
	for _, f := range failed {
		parent := false
		for _, g := range failed {
			if g != f && strings.HasPrefix(g, f+"/") {
				parent = true
				break
			}
		}
		if !parent {
			out = append(out, f)
		}
	}
	return out
}

// parseRow reads one result line:
//
//	BenchmarkCompare/max/1KiB/3p-2  1  9.1e4 bare-msgs/s  1.02 ratio  9.7e4 spate-msgs/s
func parseRow(pkg, line string) (Row, bool) {
	f := strings.Fields(line)
	if len(f) < 4 {
		return Row{}, false // the name alone, printed before a long benchmark's result
	}
	name := f[0]
	if i := strings.LastIndex(name, "-"); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			name = name[:i] // the GOMAXPROCS suffix
		}
	}
	parts := strings.Split(strings.TrimPrefix(name, "BenchmarkCompare/"), "/")
	if len(parts) < 2 {
		return Row{}, false
	}
	row := Row{Driver: pkg, Direction: parts[0], Size: parts[1]}
	if len(parts) > 2 {
		row.Partitions = strings.TrimSuffix(parts[2], "p")
	}
	seen := 0
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			continue
		}
		switch f[i+1] {
		case UnitSpate:
			row.Spate, seen = v, seen+1
		case UnitBare:
			row.Bare, seen = v, seen+1
		case UnitRatio:
			row.Ratio = v
		case UnitSpateCPU:
			row.SpateCPU = v
		case UnitBareCPU:
			row.BareCPU = v
		}
	}
	return row, seen == 2
}

// WriteTable writes the rows as an aligned table: driver, direction, size,
// partitions, both rates, the ratio, and CPU per message where measured.
func WriteTable(w io.Writer, rows []Row) error {
	const format = "%-11s  %-9s  %5s  %10s  %12s  %12s  %5s  %13s  %12s\n"
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, format, "driver", "direction", "size", "partitions", "spate msgs/s", "bare msgs/s", "ratio", "spate cpu/msg", "bare cpu/msg")
	for _, r := range rows {
		parts := r.Partitions
		if parts == "" {
			parts = "-"
		}
		fmt.Fprintf(bw, format, r.Driver, r.Direction, r.Size, parts,
			group(r.Spate), group(r.Bare), strconv.FormatFloat(r.Ratio, 'f', 2, 64), cpu(r.SpateCPU), cpu(r.BareCPU))
	}
	return bw.Flush()
}

// group formats a rate as a whole number with thousands separators.
func group(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// cpu formats nanoseconds per message: 850ns, 3.2µs; "-" when unknown.
func cpu(ns float64) string {
	switch {
	case ns <= 0:
		return "-"
	case ns < 1000:
		return strconv.FormatFloat(ns, 'f', 0, 64) + "ns"
	case ns < 1e6:
		return strconv.FormatFloat(ns/1e3, 'f', 1, 64) + "µs"
	}
	return strconv.FormatFloat(ns/1e6, 'f', 1, 64) + "ms"
}
