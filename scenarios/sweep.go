package scenarios

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Sweep is a sweep file: one base scenario run over a grid of values. Each
// grid entry names a YAML path in the scenario document (`message.size`,
// `traffic[0].constant.rate`, `driver.kafka.partitions`) and the values it
// takes; every point of the grid is the base document with those values
// written in, loaded and validated like any scenario. Driver options are
// opaque to spate, so any field of any driver can vary.
//
//	scenario: capacity-base.yaml        # relative to the sweep file
//	grid:
//	  traffic[0].constant.rate: [1000/s, 5000/s, 20000/s]
//	  message.size: [256B, 4KiB]
//	along: traffic[0].constant.rate     # default: the first grid path
type Sweep struct {
	File        string
	Name        string
	Description string
	// Scenario is the base scenario's path, resolved against the sweep
	// file's directory.
	Scenario string
	Axes     []Axis
	// Along is the index in Axes of the path each curve of the sweep's
	// charts varies along; the other axes tell the curves apart.
	Along int
	// Dir is where the sweep's files go (empty: the caller's default).
	Dir    string
	Points []SweepPoint

	gridKeys []*yaml.Node // each axis's key in the sweep file, for positions
}

// Axis is one grid entry: a path and its values.
type Axis struct {
	Path   string
	Values []string // as written, for tables and names
}

// SweepPoint is one scenario of a sweep.
type SweepPoint struct {
	Index    int      // 1, 2, ...
	Values   []string // the value of each axis, as written
	Name     string   // path=value pairs, e.g. "message.size=256B traffic[0].constant.rate=1000/s"
	Slug     string   // a directory name: "01-size=256B_rate=1000-s"
	Scenario *Scenario
}

// MaxSweepPoints bounds a grid, so that a typo cannot plan a year of runs.
const MaxSweepPoints = 1000

// Line names the curve a point belongs to: the values of every axis but
// Along ("all points" when the grid has one axis).
func (s *Sweep) Line(p SweepPoint) string {
	var parts []string
	for i, a := range s.Axes {
		if i != s.Along {
			parts = append(parts, a.Path+"="+p.Values[i])
		}
	}
	if len(parts) == 0 {
		return "all points"
	}
	return strings.Join(parts, " ")
}

type sweepFile struct {
	Name        string    `yaml:"name"`
	Description string    `yaml:"description"`
	Scenario    string    `yaml:"scenario,required"`
	Grid        yaml.Node `yaml:"grid,required"`
	Along       string    `yaml:"along"`
	Dir         string    `yaml:"dir"`
}

// IsSweepFile reports whether data looks like a sweep file (a mapping with
// the keys scenario and grid) rather than a scenario.
func IsSweepFile(data []byte) bool {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return false
	}
	root := resolve(&doc)
	return Child(root, "grid") != nil && Child(root, "scenario") != nil && Child(root, "traffic") == nil
}

// LoadSweep reads a sweep file and its base scenario, and loads every point.
// Its error, if any, is Problems: those of the sweep file, those of the base
// scenario (once), and those of single points, each naming its point.
func (l *Loader) LoadSweep(file string) (*Sweep, error) {
	data, err := ReadFile(file)
	if err != nil {
		return nil, Problems{ReadProblem(file, err)}
	}
	return l.ParseSweep(file, data)
}

// ParseSweep is LoadSweep for a sweep file given as bytes.
func (l *Loader) ParseSweep(file string, data []byte) (*Sweep, error) {
	doc, ps := parseYAML(file, data, "a sweep file")
	if ps != nil {
		return nil, ps
	}
	d := NewDecoder(file)
	root := resolve(doc)
	if root.Kind != yaml.MappingNode {
		d.Errorf(root, "", "a sweep is a mapping of fields (scenario, grid, ...), got %s", describe(root))
		return nil, d.Problems()
	}
	var sf sweepFile
	d.Decode(root, "", &sf)
	sw := &Sweep{File: file, Name: sf.Name, Description: sf.Description, Dir: sf.Dir}
	if sw.Name == "" {
		sw.Name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	var grids [][]*yaml.Node
	var paths [][]pathStep
	if gn := Child(root, "grid"); gn != nil && !IsNull(gn) {
		if gn.Kind != yaml.MappingNode || len(gn.Content) == 0 {
			d.Errorf(gn, "grid", "want a mapping of YAML paths to lists of values, e.g. message.size: [256B, 4KiB]")
		}
		points := 1
		seen := map[string]bool{}
		for i := 0; gn.Kind == yaml.MappingNode && i+1 < len(gn.Content); i += 2 {
			k, v := gn.Content[i], resolve(gn.Content[i+1])
			field := "grid." + k.Value
			steps, err := parsePath(k.Value)
			if err != nil {
				d.Errorf(k, field, "%v", err)
				continue
			}
			if seen[k.Value] {
				d.Errorf(k, field, "given twice")
				continue
			}
			seen[k.Value] = true
			if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
				d.Errorf(v, field, "want a list of at least one value, e.g. [1000/s, 5000/s], got %s", describe(v))
				continue
			}
			ax := Axis{Path: k.Value}
			sw.gridKeys = append(sw.gridKeys, k)
			var nodes []*yaml.Node
			for _, c := range v.Content {
				c = resolve(c)
				ax.Values = append(ax.Values, showNode(c))
				nodes = append(nodes, c)
			}
			sw.Axes = append(sw.Axes, ax)
			grids = append(grids, nodes)
			paths = append(paths, steps)
			points *= len(nodes)
			if points > MaxSweepPoints {
				d.Errorf(v, field, "the grid has more than %d points; sweep fewer values at once", MaxSweepPoints)
				return nil, d.Problems()
			}
		}
	}
	if sf.Along != "" {
		sw.Along = -1
		var names []string
		for i, a := range sw.Axes {
			names = append(names, a.Path)
			if a.Path == sf.Along {
				sw.Along = i
			}
		}
		if sw.Along < 0 {
			d.Errorf(Child(root, "along"), "along", "%q is not a path of the grid%s; valid: %s", sf.Along, suggest(sf.Along, names), joinList(names))
		}
	}
	base := &yaml.Node{}
	if sf.Scenario != "" {
		sw.Scenario = sf.Scenario
		if !filepath.IsAbs(sw.Scenario) {
			sw.Scenario = filepath.Join(filepath.Dir(file), sw.Scenario)
		}
		bdata, err := ReadFile(sw.Scenario)
		switch {
		case err != nil:
			d.Errorf(Child(root, "scenario"), "scenario", "%s: %s", sf.Scenario, ReadProblem(sw.Scenario, err).Message)
		case IsSweepFile(bdata):
			d.Errorf(Child(root, "scenario"), "scenario", "%s is a sweep file; name a scenario", sf.Scenario)
		default:
			var bps Problems
			if base, bps = parseYAML(sw.Scenario, bdata, "a scenario file"); bps != nil {
				return nil, append(d.Problems(), bps...)
			}
		}
	}
	if ps := d.Problems(); len(ps) > 0 {
		return nil, ps
	}
	// Every point is a copy of the base with the grid's values written in,
	// and all are kept for the run.
	perPoint, _ := Expanded(base, MaxNodes)
	for _, g := range grids {
		largest := 0
		for _, v := range g {
			n, _ := Expanded(v, MaxNodes)
			largest = max(largest, n)
		}
		perPoint += largest
	}
	if points := len(sw.Axes); points > 0 {
		total := 1
		for _, g := range grids {
			total *= len(g)
		}
		if total*perPoint > MaxSweepNodes {
			d.Errorf(Child(root, "grid"), "grid", "%d points of a scenario of up to %s YAML nodes make more than %s nodes in all, more than spate holds for one sweep; sweep fewer points at once",
				total, groupThousands(perPoint), groupThousands(MaxSweepNodes))
			return nil, d.Problems()
		}
	}
	return sw, sw.load(l, base, grids, paths)
}

// load makes and validates every point.
func (sw *Sweep) load(l *Loader, base *yaml.Node, grids [][]*yaml.Node, paths [][]pathStep) error {
	// Points: the axes other than Along in file order, the first slowest,
	// then Along fastest, so each curve's points are consecutive.
	order := []int{}
	for i := range sw.Axes {
		if i != sw.Along {
			order = append(order, i)
		}
	}
	order = append(order, sw.Along)
	total := 1
	for _, g := range grids {
		total *= len(g)
	}
	width := len(strconv.Itoa(total))
	var perPoint []Problems
	idx := make([]int, len(sw.Axes))
	for n := 0; n < total; n++ {
		rem := n
		for j := len(order) - 1; j >= 0; j-- {
			a := order[j]
			idx[a] = rem % len(grids[a])
			rem /= len(grids[a])
		}
		p := SweepPoint{Index: n + 1}
		doc := copyNode(base, nil)
		written := map[*yaml.Node]bool{}
		var names, slug []string
		var problems Problems
		for a := range sw.Axes {
			p.Values = append(p.Values, sw.Axes[a].Values[idx[a]])
			names = append(names, sw.Axes[a].Path+"="+p.Values[a])
			slug = append(slug, lastKey(paths[a])+"="+p.Values[a])
			if err := override(doc, paths[a], grids[a][idx[a]], sw.gridKeys[a], written); err != nil {
				problems = append(problems, Problem{File: sw.File, Field: "grid." + sw.Axes[a].Path, Message: err.Error()})
			}
		}
		p.Name = strings.Join(names, " ")
		p.Slug = fmt.Sprintf("%0*d-%s", width, p.Index, slugify(strings.Join(slug, "_")))
		if len(problems) == 0 {
			origin := make(map[*yaml.Node]string, len(written))
			for w := range written {
				origin[w] = sw.File
			}
			sc, err := l.parseDocumentFrom(sw.Scenario, doc, origin)
			if err != nil {
				var ps Problems
				if errors.As(err, &ps) {
					problems = ps
				} else {
					problems = Problems{{File: sw.Scenario, Message: err.Error()}}
				}
			}
			p.Scenario = sc
		}
		perPoint = append(perPoint, problems)
		sw.Points = append(sw.Points, p)
	}
	// A problem every point has is the base scenario's: report it once.
	count := map[string]int{}
	for _, ps := range perPoint {
		seen := map[string]bool{}
		for _, pr := range ps {
			if e := pr.Error(); !seen[e] {
				seen[e] = true
				count[e]++
			}
		}
	}
	var out Problems
	reported := map[string]bool{}
	for i, ps := range perPoint {
		for _, pr := range ps {
			e := pr.Error()
			if count[e] == total {
				if !reported[e] {
					reported[e] = true
					out = append(out, pr)
				}
				continue
			}
			pr.Message += fmt.Sprintf(" (sweep point %d: %s)", sw.Points[i].Index, sw.Points[i].Name)
			out = append(out, pr)
		}
	}
	if len(out) > 0 {
		return out
	}
	return nil
}

// pathStep is one step of a YAML path: a mapping key, or a list index.
type pathStep struct {
	key   string
	index int // when key is ""
}

var (
	pathKeyRE   = regexp.MustCompile(`^(?:[A-Za-z0-9_-]+|"[^"]+")`)
	pathIndexRE = regexp.MustCompile(`^\[([0-9]+)\]`)
)

// parsePath parses a.b[2].c; a key with dots or other characters is quoted:
// driver.kafka.config."linger.ms".
func parsePath(s string) ([]pathStep, error) {
	orig := s
	var out []pathStep
	bad := func() ([]pathStep, error) {
		return nil, fmt.Errorf("%q is not a YAML path such as message.size, traffic[0].constant.rate or driver.kafka.partitions", orig)
	}
	for first := true; s != "" || first; first = false {
		if !first {
			if !strings.HasPrefix(s, ".") {
				return bad()
			}
			s = s[1:]
		}
		k := pathKeyRE.FindString(s)
		if k == "" {
			return bad()
		}
		s = s[len(k):]
		out = append(out, pathStep{key: strings.Trim(k, `"`)})
		for {
			m := pathIndexRE.FindStringSubmatch(s)
			if m == nil {
				break
			}
			i, err := strconv.Atoi(m[1])
			if err != nil {
				return bad()
			}
			out = append(out, pathStep{index: i})
			s = s[len(m[0]):]
		}
	}
	return out, nil
}

func lastKey(steps []pathStep) string {
	for i := len(steps) - 1; i >= 0; i-- {
		if steps[i].key != "" {
			return steps[i].key
		}
	}
	return "value"
}

// slugify makes s a directory name: each run of characters other than
// letters, digits and . _ = - becomes one dash; at most 80 bytes.
func slugify(s string) string {
	var b strings.Builder
	dash := false
	for i := 0; i < len(s) && b.Len() < 80; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._=-", c) >= 0 {
			b.WriteByte(c)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.Trim(b.String(), "-")
}

// override writes value at path in doc. Missing mapping keys are added
// (with mappings for the steps after them); a null becomes a mapping; a
// scalar name followed by itself as the next key stands for a mapping of
// that name to nothing (`driver: memory` for driver.memory.capacity). An
// alias on the way is replaced by a copy of what it points to, so the
// override changes this place only. The nodes written keep the positions
// they have in the sweep file (added keys take the grid key's, key), and
// are recorded in written, so that problems with them point into the
// sweep file rather than the scenario.
func override(doc *yaml.Node, steps []pathStep, value, key *yaml.Node, written map[*yaml.Node]bool) error {
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	line, col := 0, 0
	if key != nil {
		line, col = key.Line, key.Column
	}
	var walked string
	for i, st := range steps {
		last := i == len(steps)-1
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			line, col := n.Line, n.Column
			*n = *copyNode(n.Alias, nil)
			setPos(n, line, col)
		}
		if st.key == "" {
			if n.Kind != yaml.SequenceNode {
				return fmt.Errorf("%s is %s, not a list", orRoot(walked), describe(n))
			}
			if st.index >= len(n.Content) {
				return fmt.Errorf("%s has %d entries; there is no [%d]", orRoot(walked), len(n.Content), st.index)
			}
			walked += fmt.Sprintf("[%d]", st.index)
			n = n.Content[st.index]
			if last {
				replace(n, value, written)
			}
			continue
		}
		if n.Kind == yaml.ScalarNode && n.Tag != "!!null" && n.Value == st.key && !last {
			// `driver: memory` read as `driver: {memory: }`.
			*n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column, Content: []*yaml.Node{
				{Kind: yaml.ScalarNode, Tag: "!!str", Value: st.key, Line: n.Line, Column: n.Column},
				{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column},
			}}
		}
		if IsNull(n) && n.Kind == yaml.ScalarNode {
			*n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
		}
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%s is %s, not a mapping with the key %q", orRoot(walked), describe(n), st.key)
		}
		walked = join(walked, st.key)
		var child *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == st.key {
				child = n.Content[j+1]
			}
		}
		if child == nil {
			k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: st.key, Line: line, Column: col}
			child = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: line, Column: col}
			written[k], written[child] = true, true
			n.Content = append(n.Content, k, child)
		}
		n = child
		if last {
			replace(n, value, written)
		}
	}
	return nil
}

func orRoot(path string) string {
	if path == "" {
		return "the document"
	}
	return path
}

// replace makes n a copy of value, at value's positions, and records the
// nodes written.
func replace(n, value *yaml.Node, written map[*yaml.Node]bool) {
	*n = *copyNode(value, nil)
	mark(n, written)
}

func mark(n *yaml.Node, written map[*yaml.Node]bool) {
	written[n] = true
	for _, c := range n.Content {
		mark(c, written)
	}
}

// copyNode deep-copies n, following aliases (so the copy shares nothing).
func copyNode(n *yaml.Node, seen map[*yaml.Node]bool) *yaml.Node {
	if n == nil {
		return nil
	}
	if seen == nil {
		seen = map[*yaml.Node]bool{}
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil && !seen[n.Alias] {
		seen[n.Alias] = true
		c := copyNode(n.Alias, seen)
		delete(seen, n.Alias)
		c.Anchor = ""
		return c
	}
	c := *n
	c.Alias = nil
	if n.Kind == yaml.AliasNode {
		c.Kind, c.Tag, c.Value = yaml.ScalarNode, "!!null", "" // a cycle: cut it
	}
	c.Content = nil
	for _, ch := range n.Content {
		c.Content = append(c.Content, copyNode(ch, seen))
	}
	return &c
}

func setPos(n *yaml.Node, line, col int) {
	n.Line, n.Column = line, col
	for _, c := range n.Content {
		setPos(c, line, col)
	}
}

// showNode writes a value as it would appear in a flow-style YAML
// document: scalars as written, lists and mappings in brackets.
func showNode(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return n.Value
	}
	c := copyNode(n, nil)
	var flow func(*yaml.Node)
	flow = func(x *yaml.Node) {
		x.Style |= yaml.FlowStyle
		x.HeadComment, x.LineComment, x.FootComment = "", "", ""
		for _, ch := range x.Content {
			flow(ch)
		}
	}
	flow(c)
	b, err := yaml.Marshal(c)
	if err != nil {
		return describe(n)
	}
	return strings.TrimSpace(string(b))
}
