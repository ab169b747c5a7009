package scenarios

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// An OptionsTable declares a driver's options block once: one Opt row per
// YAML key says where the value goes in the driver's options struct O, its
// bounds or allowed values, and one line of doc. From the rows alone
// Decode reads a scenario's block (strictly, with file:line:col and
// did-you-mean, starting from Defaults), Check finds the same range and
// value problems in an O made in Go, and Markdown and Text write the
// options tables of the driver's README and package doc. Rules that
// relate several options stay with the driver, as one check of its own.
type OptionsTable[O any] struct {
	Defaults func() O
	Opts     []Opt[O]
}

// An Opt is one option: a YAML key (under a block, "block.key"), its
// doc, and how its value is read, checked and shown. Make rows with
// IntOpt, Int64Opt, SizeOpt, DurOpt, BoolOpt, StrOpt, EnumOpt, RatioOpt,
// FractionOpt, BlockOpt and CustomOpt.
type Opt[O any] struct {
	Key string
	// Values says what the option takes and Default its default, for the
	// docs; both are derived from the row when left empty.
	Values, Default string
	Doc             string

	decode func(d *Decoder, n *yaml.Node, field string, o *O)
	check  func(o *O) string // what is wrong with o's value, or ""
	show   func(o *O) string // the value, for the docs' default
	fill   func(o, def *O)   // give o's zero value def's (FillZero)
	enable func(o *O)        // a block: make its part of o when the key is given
	active func(o *O) bool   // a block: whether its part of o is there
}

// WithDefault returns r with the default the docs show.
func (r Opt[O]) WithDefault(text string) Opt[O] {
	r.Default = text
	return r
}

// Decode reads the options block n (nil or null: none) into a copy of
// Defaults(), recording every problem on d. Unknown keys, wrong types,
// values out of range and unknown values of an enum are problems at their
// positions.
func (t OptionsTable[O]) Decode(d *Decoder, n *yaml.Node, field string) O {
	o := t.Defaults()
	if IsNull(n) {
		return o
	}
	t.decodeBlock(d, n, field, "", &o)
	return o
}

// decodeBlock decodes the mapping n, whose rows' keys start with prefix.
func (t OptionsTable[O]) decodeBlock(d *Decoder, n *yaml.Node, field, prefix string, o *O) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, field, "want a mapping, got %s", describe(n))
		return
	}
	keys := t.keys(prefix)
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], resolve(n.Content[i+1])
		path := join(field, k.Value)
		if k.Value == "<<" {
			d.Errorf(k, field, "merge keys (<<) are not supported; use an alias (*name) for a whole value or repeat the fields")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.Errorf(k, path, "given twice (first at line %d)", first.Line)
			continue
		}
		seen[k.Value] = k
		row, ok := t.row(prefix + k.Value)
		if !ok {
			d.Errorf(k, path, "unknown field%s; valid fields: %s", suggest(k.Value, keys), strings.Join(keys, ", "))
			continue
		}
		if row.enable != nil {
			if IsNull(val) {
				d.Errorf(val, path, "needs a value ({} for the defaults)")
				continue
			}
			row.enable(o)
			t.decodeBlock(d, val, path, row.Key+".", o)
			continue
		}
		if IsNull(val) {
			d.Errorf(val, path, "needs a value")
			continue
		}
		row.decode(d, val, path, o)
	}
}

// keys lists the keys of the rows directly under prefix, in table order.
func (t OptionsTable[O]) keys(prefix string) []string {
	var out []string
	for _, r := range t.Opts {
		if rest, ok := strings.CutPrefix(r.Key, prefix); ok && !strings.Contains(rest, ".") {
			out = append(out, rest)
		}
	}
	return out
}

func (t OptionsTable[O]) row(key string) (Opt[O], bool) {
	for _, r := range t.Opts {
		if r.Key == key {
			return r, true
		}
	}
	return Opt[O]{}, false
}

// Check returns the range and value problems of o (options made in Go),
// as "key: problem", in table order; rows of an absent block are skipped.
func (t OptionsTable[O]) Check(o *O) []string {
	var out []string
	off := map[string]bool{} // blocks that are absent
	for _, r := range t.Opts {
		if t.under(r.Key, off) {
			continue
		}
		if r.active != nil {
			if !r.active(o) {
				off[r.Key] = true
			}
			continue
		}
		if r.check != nil {
			if msg := r.check(o); msg != "" {
				out = append(out, r.Key+": "+msg)
			}
		}
	}
	return out
}

// FillZero gives each field of o whose zero value its row refuses the
// default's value, so that a Go caller's zero field means the option left
// out. A field whose zero is one of the option's values (a bool, a `0s`
// linger, a seed) keeps it, and rows of a block o does not have are
// skipped. It writes through o's pointers (a block held by pointer), so a
// driver copies what its caller may share first. Defaults that depend on
// other options stay with the driver.
func (t OptionsTable[O]) FillZero(o *O) {
	def := t.withBlocks()
	off := map[string]bool{}
	for _, r := range t.Opts {
		switch {
		case t.under(r.Key, off):
		case r.active != nil && !r.active(o):
			off[r.Key] = true
		case r.fill != nil && r.check != nil && r.check(o) != "":
			r.fill(o, &def)
		}
	}
}

// withBlocks is Defaults() with every block there, with its defaults: the
// defaults of the options inside blocks.
func (t OptionsTable[O]) withBlocks() O {
	def := t.Defaults()
	for _, r := range t.Opts {
		if r.active != nil && !r.active(&def) {
			r.enable(&def)
		}
	}
	return def
}

// zeroFrom is a row's fill: o's field f, when zero, takes def's (when
// that is not zero too: nothing is written then).
func zeroFrom[O, V any](f func(*O) *V) func(o, def *O) {
	return func(o, def *O) {
		if reflect.ValueOf(f(o)).Elem().IsZero() && !reflect.ValueOf(f(def)).Elem().IsZero() {
			*f(o) = *f(def)
		}
	}
}

// under reports whether key is inside one of the blocks.
func (t OptionsTable[O]) under(key string, blocks map[string]bool) bool {
	for b := range blocks {
		if strings.HasPrefix(key, b+".") {
			return true
		}
	}
	return false
}

// Markdown is the options table for a README: option, values, default,
// meaning.
func (t OptionsTable[O]) Markdown() string {
	var b strings.Builder
	b.WriteString("| option | values | default | meaning |\n|---|---|---|---|\n")
	def := t.withBlocks()
	for _, r := range t.Opts {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.Key, r.values(), r.defaultText(&def), r.Doc)
	}
	return b.String()
}

// Text is the options list for a package doc comment: each option with
// what it takes, its default and its meaning, indented under a "\t"
// margin the doc comment adds.
func (t OptionsTable[O]) Text() string {
	var b strings.Builder
	def := t.withBlocks()
	for _, r := range t.Opts {
		line := fmt.Sprintf("%s (%s; default %s): %s", r.Key, plain(r.values()), plain(r.defaultText(&def)), plain(r.Doc))
		b.WriteString(wrap(line, 76, "    "))
	}
	return b.String()
}

func (r Opt[O]) values() string {
	if r.Values != "" {
		return r.Values
	}
	if r.enable != nil {
		return "mapping"
	}
	return "string"
}

func (r Opt[O]) defaultText(def *O) string {
	switch {
	case r.Default != "":
		return r.Default
	case r.show != nil:
		return "`" + r.show(def) + "`"
	case r.enable != nil:
		return "none"
	}
	return "none"
}

// plain drops Markdown's code quotes, for text docs.
func plain(s string) string { return strings.ReplaceAll(s, "`", "") }

// wrap breaks s into lines of at most width, the later ones indented.
func wrap(s string, width int, indent string) string {
	var b strings.Builder
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > width {
			b.WriteString(line + "\n")
			line = indent + w
			continue
		}
		if line == "" {
			line = w
		} else {
			line += " " + w
		}
	}
	b.WriteString(line + "\n")
	return b.String()
}

// value decodes n into a new V with the scenario decoder (its type
// messages, and units through NodeDecoder), reporting whether it decoded.
func value[V any](d *Decoder, n *yaml.Node, field string) (V, bool) {
	var v V
	ok := d.Decode(n, field, &v)
	return v, ok
}

// IntOpt is a whole-number option in lo..hi (hi 0: no upper bound).
func IntOpt[O any](key string, f func(*O) *int, lo, hi int, doc string) Opt[O] {
	msg := func(v int) string {
		if v >= lo && (hi == 0 || v <= hi) {
			return ""
		}
		if hi == 0 {
			return fmt.Sprintf("must be at least %d, got %d", lo, v)
		}
		return fmt.Sprintf("must be a whole number from %d to %d, got %d", lo, hi, v)
	}
	values := fmt.Sprintf("%d..%d", lo, hi)
	if hi == 0 {
		values = fmt.Sprintf("≥ %d", lo)
	}
	return Opt[O]{
		Key: key, Doc: doc, Values: values,
		decode: func(d *Decoder, n *yaml.Node, field string, o *O) {
			if v, ok := value[int](d, n, field); ok {
				if m := msg(v); m != "" {
					d.Errorf(n, field, "%s", m)
					return
				}
				*f(o) = v
			}
		},
		check: func(o *O) string { return msg(*f(o)) },
		show:  func(o *O) string { return strconv.Itoa(*f(o)) },
		fill:  zeroFrom(f),
	}
}

// Int64Opt is a whole-number option without bounds (a seed).
func Int64Opt[O any](key string, f func(*O) *int64, doc string) Opt[O] {
	return Opt[O]{
		Key: key, Doc: doc, Values: "whole number",
		decode: func(d *Decoder, n *yaml.Node, field string, o *O) {
			if v, ok := value[int64](d, n, field); ok {
				*f(o) = v
			}
		},
		show: func(o *O) string { return strconv.FormatInt(*f(o), 10) },
		fill: zeroFrom(f),
	}
}

// SizeOpt is a size option (512B, 1KiB, ...) of lo..hi bytes, held in an
// int of bytes.
func SizeOpt[O any](key string, f func(*O) *int, lo, hi int64, doc string) Opt[O] {
	msg := func(v int64) string {
		if v >= lo && v <= hi {
			return ""
		}
		return fmt.Sprintf("must be from %s to %s, got %s", FormatSize(lo), FormatSize(hi), FormatSize(v))
	}
	return Opt[O]{
		Key: key, Doc: doc, Values: fmt.Sprintf("size, %s..%s", FormatSize(lo), FormatSize(hi)),
		decode: func(d *Decoder, n *yaml.Node, field string, o *O) {
			if v, ok := value[Size](d, n, field); ok {
				if m := msg(int64(v)); m != "" {
					d.Errorf(n, field, "%s", m)
					return
				}
				*f(o) = int(v)
			}
		},
		check: func(o *O) string { return msg(int64(*f(o))) },
		show:  func(o *O) string { return strconv.Itoa(*f(o)) },
		fill:  zeroFrom(f),
	}
}

// FormatSize writes a byte count as scenarios read it, in the largest
// binary unit it is a whole multiple of: 100MiB, 512B.
func FormatSize(b int64) string {
	switch {
	case b != 0 && b%(1<<30) == 0:
		return strconv.FormatInt(b>>30, 10) + "GiB"
	case b != 0 && b%(1<<20) == 0:
		return strconv.FormatInt(b>>20, 10) + "MiB"
	case b != 0 && b%(1<<10) == 0:
		return strconv.FormatInt(b>>10, 10) + "KiB"
	}
	return strconv.FormatInt(b, 10) + "B"
}

// DurOpt is a duration option of lo..hi (hi 0: no upper bound).
func DurOpt[O any](key string, f func(*O) *time.Duration, lo, hi time.Duration, doc string) Opt[O] {
	msg := func(v time.Duration) string {
		switch {
		case v >= lo && (hi == 0 || v <= hi):
			return ""
		case hi == 0:
			return fmt.Sprintf("must be at least %s, got %v", FormatDuration(lo), v)
		case lo == 0:
			return fmt.Sprintf("must be at most %s, got %v", FormatDuration(hi), v)
		}
		return fmt.Sprintf("must be from %s to %s, got %v", FormatDuration(lo), FormatDuration(hi), v)
	}
	values := "duration"
	switch {
	case lo > 0 && hi > 0:
		values += fmt.Sprintf(", %s..%s", FormatDuration(lo), FormatDuration(hi))
	case hi > 0:
		values += ", ≤ " + FormatDuration(hi)
	case lo > 0:
		values += ", ≥ " + FormatDuration(lo)
	}
	return Opt[O]{
		Key: key, Doc: doc, Values: values,
		decode: func(d *Decoder, n *yaml.Node, field string, o *O) {
			if v, ok := value[Duration](d, n, field); ok {
				if m := msg(v.D()); m != "" {
					d.Errorf(n, field, "%s", m)
					return
				}
				*f(o) = v.D()
			}
		},
		check: func(o *O) string { return msg(*f(o)) },
		show:  func(o *O) string { return FormatDuration(*f(o)) },
		fill:  zeroFrom(f),
	}
}

// FormatDuration writes a duration the short way scenarios do: 1m, not
// 1m0s.
func FormatDuration(v time.Duration) string {
	s := v.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// BoolOpt is a true-or-false option.
func BoolOpt[O any](key string, f func(*O) *bool, doc string) Opt[O] {
	return Opt[O]{
		Key: key, Doc: doc, Values: "bool",
		decode: func(d *Decoder, n *yaml.Node, field string, o *O) {
			if v, ok := value[bool](d, n, field); ok {
				*f(o) = v
			}
		},
		show: func(o *O) string { return strconv.FormatBool(*f(o)) },
		fill: zeroFrom(f),
	}
}

// StrOpt is a string option; problem, when set, says what is wrong with a
// value ("" when nothing is).
func StrOpt[O any](key string, f func(*O) *string, problem func(string) string, doc string) Opt[O] {
	check := func(v string) string {
		if problem == nil {
			return ""
		}
		return problem(v)
	}
	return Opt[O]{
		Key: key, Doc: doc,
		decode: func(d *Decoder, n *yaml.Node, field string, o *O) {
			if v, ok := value[string](d, n, field); ok {
				if m := check(v); m != "" {
					d.Errorf(n, field, "%s", m)
					return
				}
				*f(o) = v
			}
		},
		check: func(o *O) string { return check(*f(o)) },
		show:  func(o *O) string { return *f(o) },
		fill:  zeroFrom(f),
	}
}

// NotEmpty is a StrOpt problem: an empty (or blank) value, which is better
// left out for default.
func NotEmpty(instead string) func(string) string {
	return func(v string) string {
		if strings.TrimSpace(v) == "" {
			return "must not be empty; " + instead
		}
		return ""
	}
}

// EnumOpt is an option that takes one of values, a string type of the
// driver's own.
func EnumOpt[O any, T ~string](key string, f func(*O) *T, values []T, doc string) Opt[O] {
	names := make([]string, len(values))
	quoted := make([]string, len(values))
	for i, v := range values {
		names[i], quoted[i] = string(v), "`"+string(v)+"`"
	}
	return Opt[O]{
		Key: key, Doc: doc, Values: strings.Join(quoted, ", "),
		decode: func(d *Decoder, n *yaml.Node, field string, o *O) {
			if v, ok := value[string](d, n, field); ok && d.OneOf(n, field, v, names...) {
				*f(o) = T(v)
			}
		},
		check: func(o *O) string {
			if v := string(*f(o)); !contains(names, v) {
				return fmt.Sprintf("%q is not one of %s", v, strings.Join(names, ", "))
			}
			return ""
		},
		show: func(o *O) string { return string(*f(o)) },
		fill: zeroFrom(f),
	}
}

// FractionOpt is a fraction option, 0..1, written 0.05 or 5%.
func FractionOpt[O any](key string, f func(*O) *float64, doc string) Opt[O] {
	msg := func(v float64) string {
		if v >= 0 && v <= 1 {
			return ""
		}
		return fmt.Sprintf("must be a fraction from 0 to 1 (or 0%% to 100%%), got %g", v)
	}
	return Opt[O]{
		Key: key, Doc: doc, Values: "fraction, 0..1 or 0%..100%",
		decode: func(d *Decoder, n *yaml.Node, field string, o *O) {
			if v, ok := value[Fraction](d, n, field); ok {
				if m := msg(float64(v)); m != "" {
					d.Errorf(n, field, "%s", m)
					return
				}
				*f(o) = float64(v)
			}
		},
		check: func(o *O) string { return msg(*f(o)) },
		show:  func(o *O) string { return strconv.FormatFloat(*f(o), 'g', -1, 64) },
		fill:  zeroFrom(f),
	}
}

// RatioOpt is a ratio option, a plain number from 0 to 1 (0.05).
func RatioOpt[O any](key string, f func(*O) *float64, doc string) Opt[O] {
	msg := func(v float64) string {
		if v >= 0 && v <= 1 { // false for NaN
			return ""
		}
		return fmt.Sprintf("must be a fraction from 0 to 1, such as 0.05; got %v", v)
	}
	return Opt[O]{
		Key: key, Doc: doc, Values: "ratio, 0..1",
		decode: func(d *Decoder, n *yaml.Node, field string, o *O) {
			if v, ok := value[float64](d, n, field); ok {
				if m := msg(v); m != "" {
					d.Errorf(n, field, "%s", m)
					return
				}
				*f(o) = v
			}
		},
		check: func(o *O) string { return msg(*f(o)) },
		show:  func(o *O) string { return strconv.FormatFloat(*f(o), 'g', -1, 64) },
		fill:  zeroFrom(f),
	}
}

// BlockOpt is an optional mapping of options ("key.sub" rows follow it):
// giving the key (even as {}) calls enable, which makes that part of O
// with its defaults; active says whether it is there, for Check.
func BlockOpt[O any](key string, enable func(*O), active func(*O) bool, doc string) Opt[O] {
	return Opt[O]{Key: key, Doc: doc, enable: enable, active: active}
}

// CustomOpt is an option with a decoder of its own: decode reads n into o,
// recording problems on d; check (optional) finds a problem in a value
// made in Go; show (optional) gives the default for the docs.
func CustomOpt[O any](key, values, doc string, decode func(d *Decoder, n *yaml.Node, field string, o *O), check, show func(*O) string) Opt[O] {
	return Opt[O]{Key: key, Values: values, Doc: doc, decode: decode, check: check, show: show}
}

// WithValues returns r with the values the docs show ("Kafka topic name").
func (r Opt[O]) WithValues(text string) Opt[O] {
	r.Values = text
	return r
}

// Refusing returns r that first refuses a scalar value for which problem,
// given the value as written, says what is wrong ("" when nothing is): a
// spelling the option does not take but users may try, such as acks: 1
// for an option that takes names.
func (r Opt[O]) Refusing(problem func(text string) string) Opt[O] {
	decode := r.decode
	r.decode = func(d *Decoder, n *yaml.Node, field string, o *O) {
		if n.Kind == yaml.ScalarNode {
			if m := problem(n.Value); m != "" {
				d.Errorf(n, field, "%s", m)
				return
			}
		}
		decode(d, n, field, o)
	}
	return r
}

// OptionalStrOpt is a string option that may be left out: a scenario must
// not give it empty (instead says what to do), while in options made in Go
// "" is the option left out, which Check accepts (Optional).
func OptionalStrOpt[O any](key string, f func(*O) *string, instead, doc string) Opt[O] {
	return StrOpt(key, f, NotEmpty(instead), doc).Optional(func(o *O) bool { return *f(o) == "" })
}
