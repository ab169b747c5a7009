package scenarios_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spate-dev/spate/scenarios"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const sweepBase = `name: base
driver: memory
message: {size: 100B}
traffic:
  - constant: {rate: 100/s, for: 1s}
  - pause: {for: 1s}
`

func TestSweepGrid(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"base.yaml": sweepBase,
		"sweep.yaml": `scenario: base.yaml
grid:
  traffic[0].constant.rate: [1000/s, 5000/s, 20000/s]
  message.size: [256B, 4KiB]
  driver.memory.streams: [8]
`,
	})
	sw, err := newLoader().LoadSweep(filepath.Join(dir, "sweep.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if sw.Name != "sweep" || sw.Scenario != filepath.Join(dir, "base.yaml") || len(sw.Axes) != 3 || sw.Along != 0 || len(sw.Points) != 6 {
		t.Fatalf("sweep %+v", sw)
	}
	// Along (the rate) varies fastest; the other axes make the lines.
	var got []string
	for _, p := range sw.Points {
		sc := p.Scenario
		got = append(got, p.Slug)
		if r := sc.Traffic[0].Constant.Rate.String() + " " + sc.Message.Size.Fixed.String(); r != p.Values[0]+" "+map[string]string{"256B": "256B", "4KiB": "4096B"}[p.Values[1]] {
			t.Errorf("point %d (%s): rate and size %s", p.Index, p.Name, r)
		}
		if o := sc.Driver.Options.(memOptions); o.Streams != 8 {
			t.Errorf("point %d: options %+v: `driver: memory` did not take driver.memory.streams", p.Index, o)
		}
		if sc.Traffic[1].Pause == nil || sc.Name != "base" {
			t.Errorf("point %d lost the rest of the scenario: %+v", p.Index, sc)
		}
	}
	want := []string{
		"1-rate=1000-s_size=256B_streams=8", "2-rate=5000-s_size=256B_streams=8", "3-rate=20000-s_size=256B_streams=8",
		"4-rate=1000-s_size=4KiB_streams=8", "5-rate=5000-s_size=4KiB_streams=8", "6-rate=20000-s_size=4KiB_streams=8",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("points\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if l := sw.Line(sw.Points[4]); l != "message.size=4KiB driver.memory.streams=8" {
		t.Errorf("line %q", l)
	}
}

func TestSweepProblems(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"base.yaml":   sweepBase,
		"broken.yaml": "driver: memory\ntraffic:\n  - constant: {rate: 0/s, for: 1s}\n",
		"bad-values.yaml": `scenario: base.yaml
grid:
  message.size: [256B, 10B, huge]
  driver.memory.drop: [0, 2]
`,
		"bad-paths.yaml": `scenario: base.yaml
grid:
  traffic[5].constant.rate: [1/s]
  message..size: [1B]
  name.first: [x]
along: messages.size
`,
		"bad-base.yaml": "scenario: broken.yaml\ngrid:\n  message.size: [256B, 512B]\n",
		"missing.yaml":  "scenario: nowhere.yaml\ngrid: {message.size: [256B]}\nextra: 1\n",
	})
	cases := map[string][]string{
		// The values are the sweep file's: problems with them point there.
		"bad-values.yaml": {
			`bad-values.yaml:4:27: driver.memory.drop: must be between 0 and 1, got 2 (sweep point 4: message.size=256B driver.memory.drop=2)`,
			`bad-values.yaml:4:27: driver.memory.drop: must be between 0 and 1, got 2 (sweep point 5: message.size=10B driver.memory.drop=2)`,
			`bad-values.yaml:4:27: driver.memory.drop: must be between 0 and 1, got 2 (sweep point 6: message.size=huge driver.memory.drop=2)`,
			`bad-values.yaml:3:24: message.size: 10B is smaller than the 48-byte stamp every message carries; use at least 48B (sweep point 2: message.size=10B driver.memory.drop=0)`,
			`bad-values.yaml:3:24: message.size: 10B is smaller than the 48-byte stamp every message carries; use at least 48B (sweep point 5: message.size=10B driver.memory.drop=2)`,
			`bad-values.yaml:3:29: message.size: size "huge" is not a number of bytes with an optional unit (units: B, KB, KiB, MB, MiB, GB, GiB) (sweep point 3: message.size=huge driver.memory.drop=0)`,
			`bad-values.yaml:3:29: message.size: size "huge" is not a number of bytes with an optional unit (units: B, KB, KiB, MB, MiB, GB, GiB) (sweep point 6: message.size=huge driver.memory.drop=2)`,
		},
		"bad-paths.yaml": {
			`bad-paths.yaml:4:3: grid.message..size: "message..size" is not a YAML path such as message.size, traffic[0].constant.rate or driver.kafka.partitions`,
			`bad-paths.yaml:6:8: along: "messages.size" is not a path of the grid; valid: traffic[5].constant.rate, name.first`,
		},
		"bad-base.yaml": {
			`broken.yaml:3:22: traffic[0].constant.rate: must be more than 0/s (for silence use a pause phase)`,
		},
		"missing.yaml": {
			`missing.yaml:3:1: extra: unknown field; valid fields: name, description, scenario, grid, along, dir`,
		},
	}
	for file, want := range cases {
		_, err := newLoader().LoadSweep(filepath.Join(dir, file))
		var ps scenarios.Problems
		if !errors.As(err, &ps) {
			t.Errorf("%s: %v", file, err)
			continue
		}
		var got []string
		for _, p := range ps {
			got = append(got, strings.TrimPrefix(p.Error(), dir+string(filepath.Separator)))
		}
		if file == "missing.yaml" {
			got = got[len(got)-1:] // after the unreadable scenario
		}
		g, w := strings.Join(sortedCopy(got), "\n"), strings.Join(sortedCopy(want), "\n")
		if g != w {
			t.Errorf("%s:\ngot:\n%s\nwant:\n%s", file, g, w)
		}
	}
	// The paths that do not fit the document are found per point.
	_, err := newLoader().ParseSweep(filepath.Join(dir, "p.yaml"), []byte("scenario: base.yaml\ngrid:\n  traffic[5].constant.rate: [1/s]\n  name.first: [x]\n"))
	for _, want := range []string{"traffic has 2 entries; there is no [5]", `name is "base", not a mapping with the key "first"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestIsSweepFile(t *testing.T) {
	if !scenarios.IsSweepFile([]byte("scenario: a.yaml\ngrid: {a: [1]}\n")) {
		t.Error("a sweep file is not recognised")
	}
	if scenarios.IsSweepFile([]byte(sweepBase)) || scenarios.IsSweepFile([]byte("{{{")) {
		t.Error("a scenario is taken for a sweep file")
	}
}
