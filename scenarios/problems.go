package scenarios

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one mistake found in a scenario file, with the position of the
// YAML node that caused it. Its Error form is "file:line:col: field: message",
// the format editors and CI logs turn into links.
type Problem struct {
	File    string
	Line    int
	Column  int
	Field   string // dotted path such as traffic[1].spike.peak; empty for the document
	Message string
}

func (p Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is every mistake found in one or more files, in file order. It is
// the error returned by Load and Parse, so callers can print each on its own line.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// sorted returns the problems ordered by file, line and column; problems
// found by cross-field checks are reported next to the field they name.
func (ps Problems) sorted() Problems {
	out := append(Problems(nil), ps...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return out
}
