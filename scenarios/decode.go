package scenarios

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Decoder decodes YAML nodes into Go values strictly: unknown fields, wrong
// types and missing required fields are all recorded as Problems with the
// position of the offending node, and decoding goes on so that one pass finds
// every mistake. Drivers use it to decode their own options block.
//
// Struct fields are matched by their `yaml:"name"` tag; the tag option
// "required" makes a field mandatory. A type that implements NodeDecoder
// decodes itself. A *yaml.Node field receives the raw node.
//
// A Decoder is not safe for concurrent use.
type Decoder struct {
	file     string
	problems Problems
	// origin names the file of nodes that came from another file (a sweep
	// point's values, written into its base scenario).
	origin map[*yaml.Node]string
}

// NodeDecoder is implemented by types that parse their own YAML form, such as
// Duration and Rate. DecodeNode records problems on d rather than returning them.
type NodeDecoder interface {
	DecodeNode(d *Decoder, n *yaml.Node, field string)
}

// NewDecoder returns a Decoder whose problems name file.
func NewDecoder(file string) *Decoder { return &Decoder{file: file} }

// File is the name problems are reported against.
func (d *Decoder) File() string { return d.file }

// Problems returns every problem recorded so far, in position order.
func (d *Decoder) Problems() Problems { return d.problems.sorted() }

// Errorf records a problem at the position of n (n may be nil for the file).
func (d *Decoder) Errorf(n *yaml.Node, field, format string, args ...any) {
	p := Problem{File: d.file, Field: cut(field, maxField), Message: cut(fmt.Sprintf(format, args...), maxMessage)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
		if f, ok := d.origin[n]; ok {
			p.File = f
		}
	}
	d.problems = append(d.problems, p)
}

// Decode decodes n into v, which must be a non-nil pointer. field is n's path,
// used in messages. It reports whether n decoded without new problems.
//
// A nil n (a block the scenario left out, as handed to an OptionsFunc) leaves
// v as it is and reports true, so callers can fill v with defaults first.
func (d *Decoder) Decode(n *yaml.Node, field string, v any) bool {
	before := len(d.problems)
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		panic("scenarios: Decode needs a non-nil pointer") // a programming error, not bad input
	}
	if n = resolve(n); n == nil {
		return true
	}
	d.decode(n, field, rv.Elem())
	return len(d.problems) == before
}

// resolve follows documents and aliases to the node that holds the value.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil {
		switch {
		case n.Kind == yaml.DocumentNode && len(n.Content) == 1:
			n = n.Content[0]
		case n.Kind == yaml.AliasNode && n.Alias != nil:
			n = n.Alias
		default:
			return n
		}
	}
	return n
}

// IsNull reports whether n is absent or an explicit null (`~`, `null`, nothing).
func IsNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

var (
	nodeDecoderType = reflect.TypeFor[NodeDecoder]()
	yamlNodeType    = reflect.TypeFor[yaml.Node]()
)

func (d *Decoder) decode(n *yaml.Node, field string, v reflect.Value) {
	if v.CanAddr() && v.Addr().Type().Implements(nodeDecoderType) {
		if IsNull(n) {
			d.Errorf(n, field, "needs a value")
			return
		}
		v.Addr().Interface().(NodeDecoder).DecodeNode(d, n, field)
		return
	}
	if v.Type() == yamlNodeType {
		v.Set(reflect.ValueOf(*n))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if IsNull(n) {
			return // absent: leave nil
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, field, v.Elem())
	case reflect.Struct:
		d.decodeStruct(n, field, v)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.Errorf(n, field, "want a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(resolve(item), fmt.Sprintf("%s[%d]", field, i), s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			panic("scenarios: only string-keyed maps decode")
		}
		if n.Kind != yaml.MappingNode {
			d.Errorf(n, field, "want a mapping, got %s", describe(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		seen := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], resolve(n.Content[i+1])
			if first, dup := seen[k.Value]; dup {
				d.Errorf(k, join(field, k.Value), "given twice (first at line %d)", first.Line)
				continue
			}
			seen[k.Value] = k
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, join(field, k.Value), e)
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
		}
		v.Set(m)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
			d.Errorf(n, field, "want a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			d.Errorf(n, field, "want true or false, got %s", describe(n))
			return
		}
		v.SetBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var x int64
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&x) != nil {
			d.Errorf(n, field, "want a whole number, got %s", describe(n))
			return
		}
		if v.OverflowInt(x) {
			d.Errorf(n, field, "%d is out of range", x)
			return
		}
		v.SetInt(x)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var x uint64
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&x) != nil {
			d.Errorf(n, field, "want a whole number of 0 or more, got %s", describe(n))
			return
		}
		if v.OverflowUint(x) {
			d.Errorf(n, field, "%d is out of range", x)
			return
		}
		v.SetUint(x)
	case reflect.Float32, reflect.Float64:
		var x float64
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!float" && n.Tag != "!!int") || n.Decode(&x) != nil {
			d.Errorf(n, field, "want a number, got %s", describe(n))
			return
		}
		v.SetFloat(x)
	default:
		panic("scenarios: cannot decode into " + v.Type().String())
	}
}

type structField struct {
	name     string
	index    int
	required bool
}

func fieldsOf(t reflect.Type) []structField {
	var out []structField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("yaml")
		if !ok || tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		out = append(out, structField{name: name, index: i, required: opts == "required"})
	}
	return out
}

func (d *Decoder) decodeStruct(n *yaml.Node, field string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, field, "want a mapping, got %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	seen := map[string]*yaml.Node{}
	misspelt := map[string]bool{} // fields an unknown key was probably meant to be
	merged := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], resolve(n.Content[i+1])
		if k.Value == "<<" {
			d.Errorf(k, field, "merge keys (<<) are not supported; use an alias (*name) for a whole value or repeat the fields")
			merged = true
			continue
		}
		path := join(field, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.Errorf(k, path, "given twice (first at line %d)", first.Line)
			continue
		}
		seen[k.Value] = k
		f, ok := findField(fields, k.Value)
		if !ok {
			if s, ok := closest(k.Value, names(fields)); ok {
				misspelt[s] = true
			}
			d.Errorf(k, path, "unknown field%s; valid fields: %s", suggest(k.Value, names(fields)), strings.Join(names(fields), ", "))
			continue
		}
		if f.required && IsNull(val) {
			d.Errorf(val, path, "needs a value")
			continue
		}
		d.decode(val, path, v.Field(f.index))
	}
	for _, f := range fields {
		// A missing field that an unknown key resembles is already reported
		// as that key's "did you mean", and one a merge key was meant to
		// supply as the merge key.
		if _, ok := seen[f.name]; f.required && !ok && !misspelt[f.name] && !merged {
			d.Errorf(n, join(field, f.name), "required field is missing")
		}
	}
}

func findField(fields []structField, name string) (structField, bool) {
	for _, f := range fields {
		if f.name == name {
			return f, true
		}
	}
	return structField{}, false
}

func names(fields []structField) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.name
	}
	return out
}

func join(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// describe names what a node holds, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing (null)"
		}
		return quoteShort(n.Value)
	}
	return "an unexpected node"
}

// maxField and maxMessage bound a problem's field path and message (both
// can quote what the file holds).
const (
	maxField   = 200
	maxMessage = 2000
)

// cut shortens s to at most n characters, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// maxQuoted bounds the characters of a value quoted in a message, so that
// a file that is not YAML (a whole document read as one string) gives a
// one-line problem.
const maxQuoted = 60

// quoteShort quotes s, cut to maxQuoted characters with its length said.
func quoteShort(s string) string {
	r := []rune(s)
	if len(r) <= maxQuoted {
		return strconv.Quote(s)
	}
	return strconv.Quote(string(r[:maxQuoted])) + fmt.Sprintf("… (%d characters in all)", len(r))
}

// suggest returns ` (did you mean "x"?)` when one valid name is close to got.
func suggest(got string, valid []string) string {
	if best, ok := closest(got, valid); ok {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

// closest returns the valid name nearest to got, if it is near enough to be
// a slip: at most one edit for short names, one per three letters otherwise.
func closest(got string, valid []string) (string, bool) {
	best, bestDist := "", 1<<30
	for _, v := range valid {
		if dist := editDistance(strings.ToLower(got), strings.ToLower(v)); dist < bestDist {
			best, bestDist = v, dist
		}
	}
	return best, best != "" && bestDist <= max(1, len(got)/3)
}

// OneOf records a problem unless got is one of valid, naming the valid
// choices and the closest one. It reports whether got was valid.
func (d *Decoder) OneOf(n *yaml.Node, field, got string, valid ...string) bool {
	for _, v := range valid {
		if got == v {
			return true
		}
	}
	d.Errorf(n, field, "unknown value %q%s; valid: %s", got, suggest(got, valid), strings.Join(valid, ", "))
	return false
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of neighbours each cost 1,
// so "dorp" is one slip away from "drop".
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 20 // far too long to be a slip; keeps hostile input cheap
	}
	rows := make([][]int, len(a)+1)
	for i := range rows {
		rows[i] = make([]int, len(b)+1)
		rows[i][0] = i
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			rows[i][j] = min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				rows[i][j] = min(rows[i][j], rows[i-2][j-2]+1)
			}
		}
	}
	return rows[len(a)][len(b)]
}
