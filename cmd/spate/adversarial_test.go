package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// laughs is a "billion laughs" YAML block: a0 is 9 scalars, each further
// anchor 9 aliases of the one before, so a9 stands for 9^10 nodes in a
// few hundred bytes.
func laughs(key string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n", key)
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "  a%d: &a%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 9), ", "))
	}
	return b.String()
}

// scenario is a valid memory scenario with the given traffic and extra
// top-level fields.
func scenario(traffic, extra string) string {
	return "name: adv\ndriver: memory\ntraffic:\n" + traffic + "drain: 1s\n" + extra
}

const oneSecond = "  - constant: {rate: 10/s, for: 1s}\n"

// MiB is a memory bound's unit.
const MiB = 1 << 20

// TestAdversarialInputs runs spate on inputs of every class that once
// hung it, exhausted memory, wrote where it should not, or passed a run
// that did not happen, and on the small mistakes it used to report badly.
// Each case asserts the exit code, the message (with file:line:col where
// there is one), and a time and memory bound on the process (runBounded).
func TestAdversarialInputs(t *testing.T) {
	long := strings.Repeat("n", 300)
	var manyPhases strings.Builder
	for i := 0; i < 1500; i++ {
		manyPhases.WriteString("  - pause: {for: 1ms}\n")
	}
	type check func(t *testing.T, dir string, r bounded)
	cases := []struct {
		name  string
		files map[string]string
		args  []string // run in the case's directory, where files are
		env   []string
		code  int
		want  []string // in stderr or stdout
		// deadline and maxRSS default to 20s and 200 MiB (a run of the
		// memory driver or a validation; the bugs took minutes and GiB).
		deadline time.Duration
		maxRSS   int64
		check    check
	}{
		// 1. Rates no host can schedule are refused at validation; a rate
		// that validates runs within its profile's bound.
		{name: "rate 1e9/s", files: map[string]string{"s.yaml": scenario("  - constant: {rate: 1e9/s, for: 1s}\n", "")},
			args: []string{"run", "s.yaml"}, code: 2,
			want: []string{"s.yaml:4:22: traffic[0].constant.rate: 1000000000/s is more than the 100,000,000 messages/s one process can schedule"}},
		{name: "rate near the largest float", files: map[string]string{"s.yaml": scenario("  - constant: {rate: 1.7976931348623157e308/s, for: 1s}\n", "")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:4:22: traffic[0].constant.rate: 1.7976931348623157e+308/s is more than"}},
		{name: "ramp to 1e12/s", files: map[string]string{"s.yaml": scenario("  - ramp: {from: 1/s, to: 1e12/s, for: 1s}\n", "")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:4:27: traffic[0].ramp.to: 1000000000000/s is more than"}},
		{name: "spike peak 5e8/s", files: map[string]string{"s.yaml": scenario("  - spike: {base: 1/s, peak: 5e8/s, for: 10s, hold: 1s}\n", "")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:4:30: traffic[0].spike.peak: 500000000/s is more than"}},
		{name: "find-max up to 1e10/s", files: map[string]string{"s.yaml": scenario("  - find-max: {start: 1000/s, max: 1e10/s, hold: 1s}\n", "")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:4:36: traffic[0].find-max.max: 10000000000/s is more than"}},
		{name: "the rate limit is per process: 2 producers share 1.5e8/s", files: map[string]string{"s.yaml": "driver: memory\nproducers: 2\ntraffic:\n  - constant: {rate: 1.5e8/s, for: 1s}\n"},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:4:22: traffic[0].constant.rate: 150000000/s is more than"}},
		{name: "90M/s for 1s ends on time", files: map[string]string{"s.yaml": scenario("  - constant: {rate: 9e7/s, for: 1s}\n", "report: {interval: 100ms}\n")},
			args: []string{"run", "--progress=off", "--out", "out", "s.yaml"}, code: 0, deadline: 20 * time.Second,
			check: func(t *testing.T, dir string, r bounded) {
				res := readResultsFile(t, filepath.Join(dir, "out"))
				if res.Counts.Unsent == 0 || res.Counts.Sent+res.Counts.Unsent != 90_000_000 {
					t.Errorf("sent %d + unsent %d, want 90,000,000 scheduled", res.Counts.Sent, res.Counts.Unsent)
				}
			}},

		// 2. Documents that expand without limit through aliases.
		{name: "billion laughs in a scenario", files: map[string]string{"s.yaml": scenario(oneSecond, laughs("x"))},
			args: []string{"run", "s.yaml"}, code: 2, want: []string{"s.yaml:", ": the alias *a", "makes the document expand to more than 100,000 YAML nodes"}},
		{name: "billion laughs in a sweep grid", files: map[string]string{"base.yaml": scenario(oneSecond, ""),
			"sw.yaml": "scenario: base.yaml\ngrid:\n  message.size: &g0 [256B, 512B, 1KiB, 2KiB, 4KiB, 8KiB, 16KiB, 32KiB, 64KiB]\n  seed: &g1 [*g0, *g0, *g0, *g0, *g0, *g0, *g0, *g0, *g0]\n  name: &g2 [*g1, *g1, *g1, *g1, *g1, *g1, *g1, *g1, *g1]\n  description: &g3 [*g2, *g2, *g2, *g2, *g2, *g2, *g2, *g2, *g2]\n  drain: &g4 [*g3, *g3, *g3, *g3, *g3, *g3, *g3, *g3, *g3]\n  report.dir: &g5 [*g4, *g4, *g4, *g4, *g4, *g4, *g4, *g4, *g4]\n  report.interval: &g6 [*g5, *g5, *g5, *g5, *g5, *g5, *g5, *g5, *g5]\n"},
			args: []string{"validate", "sw.yaml"}, code: 2, want: []string{"sw.yaml:8:25: the alias *g4 makes the document expand to more than 100,000 YAML nodes"}},
		{name: "billion laughs in a sweep file, sweep --dry-run", files: map[string]string{"base.yaml": scenario(oneSecond, ""),
			"sw.yaml": "scenario: base.yaml\ngrid:\n  seed: [1, 2]\n" + laughs("x")},
			args: []string{"sweep", "--dry-run", "sw.yaml"}, code: 2, want: []string{"sw.yaml:", "makes the document expand"}},
		{name: "billion laughs in a sweep's base scenario", files: map[string]string{"base.yaml": scenario(oneSecond, laughs("x")),
			"sw.yaml": "scenario: base.yaml\ngrid:\n  seed: [1, 2]\n"},
			args: []string{"validate", "sw.yaml"}, code: 2, want: []string{"base.yaml:", "makes the document expand"}},
		{name: "an alias of its own list", files: map[string]string{"s.yaml": scenario(oneSecond, "x: &a [*a, *a]\n")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:6:8: the alias *a makes the document expand"}},
		{name: "a scenario larger than 1 MiB", files: map[string]string{"s.yaml": scenario(oneSecond, "description: "+strings.Repeat("x", 1<<20)+"\n")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml: larger than 1024 KiB, the most spate reads"}},
		{name: "a 1 MiB document of 500,000 nodes", files: map[string]string{"s.yaml": scenario(oneSecond, "x: ["+strings.Repeat("1,", 500_000)+"1]\n")},
			args: []string{"validate", "s.yaml"}, code: 2, maxRSS: 300 * MiB, want: []string{"s.yaml:6:200003: the document has more than 100,000 YAML nodes, the most spate reads"}},
		{name: "1,500 phases", files: map[string]string{"s.yaml": scenario(manyPhases.String(), "")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:1004:5: traffic[1000]: the traffic has 1,500 phases, more than the 1000 spate runs"}},
		{name: "results.json nested 100,000 deep", files: map[string]string{"r/results.json": strings.Repeat("[", 100_000)},
			args: []string{"report", "r"}, code: 2, want: []string{"results.json: not a results.json written by spate run"}},

		// 3. Sizes that exhaust the machine.
		{name: "two billion producers", files: map[string]string{"s.yaml": "driver: memory\nproducers: 2000000000\ntraffic:\n" + oneSecond},
			args: []string{"run", "s.yaml"}, code: 2, want: []string{"s.yaml:2:12: producers: 2000000000 producers is more than the 1000 one process runs"}},
		{name: "five billion consumers", files: map[string]string{"s.yaml": "driver: memory\nconsumers: 5000000000\ntraffic:\n" + oneSecond},
			args: []string{"run", "s.yaml"}, code: 2, want: []string{"s.yaml:2:12: consumers: 5000000000 consumers is more than the 1000"}},
		{name: "20,000 producers", files: map[string]string{"s.yaml": "driver: memory\nproducers: 20000\ntraffic:\n" + oneSecond},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:2:12: producers: 20000 producers is more than"}},
		{name: "1,000 producers × 1,000 subscriptions", files: map[string]string{"s.yaml": "driver: kafka\nproducers: 1000\nconsumers: 1000\nsubscriptions: 1000\ntraffic:\n" + oneSecond},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:4:16: subscriptions: 1000 producers × 1000 subscriptions is more than 10,000 pairs per process"}},
		{name: "11 step phases of 10,000 stairs", files: map[string]string{"s.yaml": scenario(strings.Repeat("  - step: {from: 1/s, to: 2/s, steps: 10000, each: 1ms}\n", 11), "")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:14:5: traffic[10]: the traffic compiles into more than 100,000 segments"}},
		{name: "a billion keys", files: map[string]string{"s.yaml": scenario(oneSecond, "message: {keys: {strategy: random, count: 1000000000}}\n")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:6:43: message.keys.count: 1000000000 keys is more than the 1,000,000"}},
		{name: "1 GB messages", files: map[string]string{"s.yaml": scenario(oneSecond, "message: {size: 1GB}\n")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:6:17: message.size: 1000000000B is larger than the 16777216B spate sends"}},
		{name: "a billion in flight", files: map[string]string{"s.yaml": scenario("  - max: {for: 1s, in-flight: 1000000000}\n", "")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:4:31: traffic[0].max.in-flight: 1000000000 messages in flight is more than"}},
		{name: "a fault every millisecond for an hour", files: map[string]string{"s.yaml": scenario("  - constant: {rate: 1/s, for: 1h}\n", "chaos:\n  - {action: duplicate, at: 0s, for: 100us, every: 1ms, fraction: 0.1}\n")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:7:52: chaos[0]: the chaos list makes more than 10,000 faults"}},
		{name: "10ms intervals for ten days", files: map[string]string{"s.yaml": scenario("  - constant: {rate: 1/s, for: 240h}\n", "report: {interval: 10ms}\n")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:6:20: report.interval: the traffic lasts 240h0m0s: at report.interval 10ms that is 86,400,000 intervals, more than the 100,000 a run keeps (in memory, results.json and the charts); set report.interval: 9s or longer"}},

		{name: "a system that holds back more than memory allows", files: map[string]string{"s.yaml": scenario("  - constant: {rate: 500000/s, for: 60s}\n", "chaos:\n  - {action: consumer-pause, at: 0s, for: 60s}\n")},
			args: []string{"run", "--progress=off", "--out", "out", "s.yaml"}, env: []string{"SPATE_MEMORY_LIMIT=300MiB"}, code: 1, maxRSS: 600 * MiB, deadline: 40 * time.Second,
			want: []string{"spate: stopped: spate uses ", "of 300 MiB (SPATE_MEMORY_LIMIT)"},
			check: func(t *testing.T, dir string, r bounded) {
				if res := readResultsFile(t, filepath.Join(dir, "out")); !res.Interrupted {
					t.Error("the report is not marked interrupted")
				}
			}},

		// 4. Files: names, directories, locks.
		{name: "a name that climbs out of spate-results", files: map[string]string{"s.yaml": strings.Replace(scenario(oneSecond, ""), "name: adv", "name: ../../escape/x", 1)},
			args: []string{"run", "--progress=off", "s.yaml"}, code: 0,
			check: func(t *testing.T, dir string, r bounded) {
				entries, _ := os.ReadDir(dir)
				for _, e := range entries {
					if e.Name() != "s.yaml" && e.Name() != "spate-results" {
						t.Errorf("wrote %s outside spate-results", e.Name())
					}
				}
				if _, err := os.Stat(filepath.Join(dir, "..", "escape")); err == nil {
					t.Error("wrote ../escape")
				}
				matches, _ := filepath.Glob(filepath.Join(dir, "spate-results", "escape-x-*", "results.json"))
				if len(matches) != 1 {
					t.Errorf("report directories %v, want spate-results/escape-x-TIME", matches)
				}
			}},
		{name: "a name with NUL", files: map[string]string{"s.yaml": strings.Replace(scenario(oneSecond, ""), "name: adv", `name: "a\0b"`, 1)},
			args: []string{"run", "s.yaml"}, code: 2, want: []string{`s.yaml:1:7: name: contains the control character U+0000`}},
		{name: "a name with a newline", files: map[string]string{"s.yaml": strings.Replace(scenario(oneSecond, ""), "name: adv", `name: "a\nb"`, 1)},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{`s.yaml:1:7: name: contains the control character U+000A`}},
		{name: "a name of 300 characters", files: map[string]string{"s.yaml": strings.Replace(scenario(oneSecond, ""), "name: adv", "name: "+long, 1)},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:1:7: name: is 300 characters long; at most 200"}},
		{name: "a report directory holding other files", files: map[string]string{"s.yaml": scenario(oneSecond, ""), "home/notes.txt": "mine"},
			args: []string{"run", "--out", "home", "s.yaml"}, code: 2, want: []string{"report directory home holds files spate did not write (notes.txt)", "--overwrite"},
			check: func(t *testing.T, dir string, r bounded) {
				if entries, _ := os.ReadDir(filepath.Join(dir, "home")); len(entries) != 1 {
					t.Errorf("the directory now holds %d entries; spate wrote into it", len(entries))
				}
			}},
		{name: "--overwrite writes beside other files", files: map[string]string{"s.yaml": scenario(oneSecond, ""), "home/notes.txt": "mine"},
			args: []string{"run", "--progress=off", "--overwrite", "--out", "home", "s.yaml"}, code: 0,
			check: func(t *testing.T, dir string, r bounded) {
				if b, _ := os.ReadFile(filepath.Join(dir, "home", "notes.txt")); string(b) != "mine" {
					t.Error("notes.txt changed")
				}
				readResultsFile(t, filepath.Join(dir, "home"))
				if _, err := os.Stat(filepath.Join(dir, "home", lockName)); err == nil {
					t.Error("the lock file is left behind")
				}
			}},
		{name: "report --out into a directory holding other files", files: map[string]string{"s.yaml": scenario(oneSecond, ""), "r/results.json": "{\"schema_version\": 1}", "elsewhere/x": ""},
			args: []string{"report", "--out", "elsewhere", "r"}, code: 2, want: []string{"report directory elsewhere holds files spate did not write (x)"}},

		// 5. Faults that did not happen do not pass.
		{name: "an exec fault that fails", files: map[string]string{"s.yaml": scenario(oneSecond, "chaos:\n  - {action: exec, at: 100ms, command: \"echo nope >&2; exit 4\"}\n")},
			args: []string{"run", "--progress=off", "--out", "out", "s.yaml"}, code: 1,
			want: []string{`spate: chaos[0] exec at 0.1s failed: "echo nope >&2; exit 4" exited with status 4: nope`}},
		{name: "an exec fault that fails, required: false", files: map[string]string{"s.yaml": scenario(oneSecond, "chaos:\n  - {action: exec, at: 100ms, command: \"exit 4\", required: false}\n")},
			args: []string{"run", "--progress=off", "--out", "out", "s.yaml"}, code: 0},
		{name: "an exec fault that times out", files: map[string]string{"s.yaml": scenario(oneSecond, "chaos:\n  - {action: exec, at: 100ms, command: \"sleep 30\", timeout: 300ms}\n")},
			args: []string{"run", "--progress=off", "--out", "out", "s.yaml"}, code: 1, want: []string{`"sleep 30" timed out after 300ms`}},
		{name: "a broker-restart whose stop command fails", files: map[string]string{"s.yaml": scenario(oneSecond, "chaos:\n  - {action: broker-restart, at: 100ms, for: 100ms, stop: \"exit 1\", start: \"true\"}\n")},
			args: []string{"run", "--progress=off", "--out", "out", "s.yaml"}, code: 1, want: []string{`chaos[0] broker-restart at 0.1s failed: "exit 1" exited with status 1`}},

		// 6. Numbers shown right.
		{name: "10/s for 1s is 10/s over 1s", files: map[string]string{"s.yaml": scenario(oneSecond, "thresholds: [sent_rate >= 10/s, target_rate >= 10/s]\n")},
			args: []string{"run", "--progress=off", "--out", "out", "s.yaml"}, code: 0, want: []string{"(traffic 1s + drain"},
			check: func(t *testing.T, dir string, r bounded) {
				res := readResultsFile(t, filepath.Join(dir, "out"))
				if res.TrafficS != 1 || res.Rate.SentMean != 10 || res.Rate.TargetMean == nil || *res.Rate.TargetMean != 10 {
					t.Errorf("traffic %gs, sent %g/s, target %v", res.TrafficS, res.Rate.SentMean, res.Rate.TargetMean)
				}
			}},
		{name: "a failing rate shows the digits that fail", files: map[string]string{"s.yaml": scenario(oneSecond, "thresholds: [sent_rate >= 10.01/s]\n")},
			args: []string{"run", "--progress=off", "--out", "out", "s.yaml"}, code: 3, want: []string{"✗ sent_rate >= 10.01/s  10.00/s (limit 10.01/s)"}},

		// 7. Thresholds that cannot mean anything.
		{name: "pipeline latency without a pipeline", files: map[string]string{"s.yaml": scenario(oneSecond, "thresholds: [pipeline.p99 < 1s]\n")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:6:14: thresholds[0]: pipeline.p99 is the latency a pipeline adds, undefined without a pipeline"}},
		{name: "headroom without find-max", files: map[string]string{"s.yaml": scenario(oneSecond, "thresholds: [headroom >= 2]\n")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:6:14: thresholds[0]: headroom is the rate a find-max phase sustained"}},
		{name: "a sum", files: map[string]string{"s.yaml": scenario(oneSecond, "thresholds: [\"e2e.p99 < 2 * e2e.p50 + 1ms\"]\n")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:6:14: thresholds[0]: \"e2e.p99 < 2 * e2e.p50 + 1ms\": a threshold compares one metric", "sums, differences and parentheses are not supported"}},
		{name: "a tautology", files: map[string]string{"s.yaml": scenario(oneSecond, "thresholds: [loss == loss]\n")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:6:14: thresholds[0]: \"loss == loss\" compares loss with itself"}},
		{name: "an impossible count", files: map[string]string{"s.yaml": scenario(oneSecond, "thresholds: [loss == -1]\n")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:6:14: thresholds[0]: \"loss == -1\" can never hold: loss is a whole number, never below 0"}},
		{name: "a ratio above 100%", files: map[string]string{"s.yaml": scenario(oneSecond, "thresholds: [lost.ratio <= 120%]\n")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"\"lost.ratio <= 120%\" always holds, so it checks nothing: lost.ratio is between 0% and 100%"}},
		{name: "a count compared with a rate", files: map[string]string{"s.yaml": scenario(oneSecond, "thresholds: [sent > 1000/s]\n")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"\"sent > 1000/s\" compares sent, which is a count, with 1000/s, which is a rate"}},

		// 8. Smaller ones.
		{name: "a sweep's bad value points into the sweep file", files: map[string]string{"base.yaml": scenario(oneSecond, ""),
			"sw.yaml": "scenario: base.yaml\ngrid:\n  driver.memory.bogus: [1, 2]\n"},
			args: []string{"validate", "sw.yaml"}, code: 2, want: []string{"sw.yaml:3:3: driver.memory.bogus: unknown field"}},
		{name: "a sweep naming a file that is not YAML", files: map[string]string{"base.yaml": strings.Repeat("not yaml at all ", 4000),
			"sw.yaml": "scenario: base.yaml\ngrid:\n  seed: [1, 2]\n"},
			args: []string{"validate", "sw.yaml"}, code: 2, want: []string{`sw.yaml: grid.seed: the document is "not yaml at all not yaml`, `"… (63999 characters in all), not a mapping with the key "seed"`},
			check: func(t *testing.T, dir string, r bounded) {
				for _, line := range strings.Split(r.stderr, "\n") {
					if len(line) > 400 {
						t.Errorf("a line of %d characters", len(line))
					}
				}
			}},
		{name: "validate a FIFO nobody writes to", files: map[string]string{}, args: []string{"validate", "fifo"}, code: 2,
			want: []string{"fifo: the file is empty"}, deadline: 10 * time.Second},
		{name: "spate alone", args: []string{}, code: 2, want: []string{"no command given"}},
		{name: "help on a topic that does not exist", args: []string{"help", "bogus"}, code: 2, want: []string{`no help topic "bogus"`}},
		{name: "completion for a shell that does not exist", args: []string{"completion", "nosh"}, code: 2, want: []string{`unknown command "nosh" for "spate completion"`}},
		{name: "run without a file", args: []string{"run"}, code: 2, want: []string{"accepts 1 arg(s), received 0", "usage: spate run FILE [flags]"}},
		{name: "a port out of range for --metrics-addr", files: map[string]string{"s.yaml": scenario(oneSecond, "")},
			args: []string{"run", "--metrics-addr", "127.0.0.1:99999", "s.yaml"}, code: 2, want: []string{`--metrics-addr "127.0.0.1:99999": port "99999" is not a number from 0`}},
		{name: "report on a file that is not results", files: map[string]string{"notes.json": "hello"},
			args: []string{"report", "notes.json"}, code: 2, want: []string{"notes.json: not a results.json written by spate run: line 1, column 1: invalid character 'h'"}},
		{name: "size units: 1kb", files: map[string]string{"s.yaml": scenario(oneSecond, "message: {size: 1kb}\n")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{`s.yaml:6:17: message.size: size "1kb" is not a number of bytes with an optional unit (did you mean "1KB"?)`}},
		{name: "size units: 4kib", files: map[string]string{"s.yaml": scenario(oneSecond, "message: {size: 4kib}\n")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{`(did you mean "4KiB"?)`}},
		{name: "5 per s", files: map[string]string{"s.yaml": scenario("  - constant: {rate: 5 per s, for: 1s}\n", "")},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{`s.yaml:4:22: traffic[0].constant.rate: rate "5 per s" needs a unit, e.g. 5/s (units`}},
		{name: "TERM=dumb gets no escape codes", files: map[string]string{"s.yaml": scenario(oneSecond, "report: {interval: 100ms}\n")},
			args: []string{"run", "--progress=line", "--out", "out", "s.yaml"}, env: []string{"TERM=dumb"}, code: 0,
			check: func(t *testing.T, dir string, r bounded) {
				if strings.Contains(r.stderr, "\033") || !strings.Contains(r.stderr, "\r[") {
					t.Errorf("stderr %q", r.stderr)
				}
			}},
		{name: "eventbridge without options", files: map[string]string{"s.yaml": "driver: eventbridge\ntraffic:\n" + oneSecond},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:1:9: driver: needs options"}},
		{name: "a broker the cluster does not have", files: map[string]string{"s.yaml": "driver: kafka\ntraffic:\n  - constant: {rate: 10/s, for: 3s}\nchaos:\n  - {action: broker-restart, at: 1s, target: 7}\n"},
			args: []string{"validate", "s.yaml"}, code: 2, want: []string{"s.yaml:5:5: chaos[0].target: no broker 7: the kafka driver as configured manages brokers 0 to 2"}},
	}
	if len(cases) < 40 {
		t.Fatalf("%d cases; the issue asks for at least 40", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, c.files)
			if c.name == "validate a FIFO nobody writes to" {
				if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			bc := boundedCmd{args: c.args, dir: dir, env: c.env, deadline: c.deadline, maxRSS: c.maxRSS}
			if bc.deadline == 0 {
				bc.deadline = 20 * time.Second
			}
			if bc.maxRSS == 0 {
				bc.maxRSS = 200 * MiB
			}
			r := runBounded(t, bc)
			if r.code != c.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, c.code, r.stdout, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) && !strings.Contains(r.stdout, w) {
					t.Errorf("output lacks %q\nstdout:\n%s\nstderr:\n%s", w, r.stdout, r.stderr)
				}
			}
			if c.check != nil {
				c.check(t, dir, r)
			}
			t.Logf("exit %d in %s, peak RSS %d MiB", r.code, r.took.Round(time.Millisecond), r.peakRSS>>20)
		})
	}
}

// results is the part of results.json these tests read.
type results struct {
	Interrupted bool    `json:"interrupted"`
	Error       string  `json:"error"`
	Verdict     string  `json:"verdict"`
	TrafficS    float64 `json:"traffic_s"`
	Counts      struct {
		Sent, Acked, Received, Lost, Unsent int64
	} `json:"counts"`
	Rate struct {
		TargetMean *float64 `json:"target_mean"`
		SentMean   float64  `json:"sent_mean"`
	} `json:"rate"`
	Chaos []struct {
		Action string `json:"action"`
		OK     bool   `json:"ok"`
		Error  string `json:"error"`
	} `json:"chaos"`
}

func readResultsFile(t *testing.T, dir string) results {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r results
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	return r
}
