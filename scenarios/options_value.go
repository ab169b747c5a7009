package scenarios

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ValueOpt is an option held as the type V the scenario decoder reads
// (a driver's own string type, a list, a whole number whose problems the
// driver words itself): problem (optional) says what is wrong with a
// value ("" when nothing is), when it is decoded and in Check; values says
// what it takes, for the docs.
func ValueOpt[O, V any](key, values string, f func(*O) *V, problem func(V) string, doc string) Opt[O] {
	check := func(v V) string {
		if problem == nil {
			return ""
		}
		return problem(v)
	}
	return Opt[O]{
		Key: key, Values: values, Doc: doc,
		decode: func(d *Decoder, n *yaml.Node, field string, o *O) {
			if v, ok := value[V](d, n, field); ok {
				if m := check(v); m != "" {
					d.Errorf(n, field, "%s", m)
					return
				}
				*f(o) = v
			}
		},
		check: func(o *O) string { return check(*f(o)) },
		show:  func(o *O) string { return fmt.Sprint(*f(o)) },
		fill:  zeroFrom(f),
	}
}

// NamedEnumOpt is an EnumOpt whose problems name what its values are, as
// `unknown queue type "x"; valid: classic, quorum, stream` (without a
// did-you-mean), for drivers whose messages say so.
func NamedEnumOpt[O any, T ~string](key, noun string, f func(*O) *T, values []T, doc string) Opt[O] {
	names := make([]string, len(values))
	quoted := make([]string, len(values))
	for i, v := range values {
		names[i], quoted[i] = string(v), "`"+string(v)+"`"
	}
	return ValueOpt(key, strings.Join(quoted, ", "), f, func(v T) string {
		if contains(names, string(v)) {
			return ""
		}
		return fmt.Sprintf("unknown %s %q; valid: %s", noun, v, strings.Join(names, ", "))
	}, doc)
}

// Optional returns r whose Check passes the value unset reports (the zero
// value a Go caller leaves for the default), which a scenario, which
// leaves the key out instead, is still checked for.
func (r Opt[O]) Optional(unset func(*O) bool) Opt[O] {
	if check := r.check; check != nil {
		r.check = func(o *O) string {
			if unset(o) {
				return ""
			}
			return check(o)
		}
	}
	return r
}

// ReportAt records msg on d for the option key of the block n at field (a
// dotted path, whose parts may end in an index: urls[1]), at the key's
// value or the nearest node around it that is there; but not when that
// option, or one around it in the block, already has a problem (it did not
// decode, so it holds its default). It is for the rules between options a
// driver checks once the table has decoded the block.
func ReportAt(d *Decoder, n *yaml.Node, field, key, msg string) {
	f := join(field, key)
	for _, p := range d.Problems() {
		if p.Field == f || strings.HasPrefix(p.Field, field+".") && strings.HasPrefix(f, p.Field+".") {
			return
		}
	}
	d.Errorf(optionNode(n, key), f, "%s", msg)
}

// optionNode returns the node of a dotted option path in n (a part may end in
// an index, urls[1]), or the nearest ancestor that exists, for problem
// positions.
func optionNode(n *yaml.Node, path string) *yaml.Node {
	at := n
	for _, part := range strings.Split(path, ".") {
		key, index, indexed := strings.Cut(strings.TrimSuffix(part, "]"), "[")
		c := Child(at, key)
		if c == nil {
			return at
		}
		at = c
		if indexed {
			i, err := strconv.Atoi(index)
			if err != nil || at.Kind != yaml.SequenceNode || i < 0 || i >= len(at.Content) {
				return at
			}
			at = at.Content[i]
		}
	}
	return at
}
