package drivers

import (
	"reflect"
	"sync/atomic"
)

// A Counter is one of a driver's own figures (driver_stats in results): an
// atomic count, safe for concurrent use. A driver declares each counter
// once, as an exported field of its stats struct whose tags give its name
// in driver_stats and one line of doc:
//
//	type stats struct {
//		Produced drivers.Counter `stat:"produced" doc:"records the brokers confirmed"`
//	}
//
// StatsOf then gives the Stats map and StatDocs the documentation table,
// from the same declaration.
type Counter struct{ atomic.Int64 }

// StatDoc is one declared counter: its name and doc.
type StatDoc struct{ Name, Doc string }

// StatsOf returns the values of the counters of s, a pointer to a stats
// struct, by name (StatsReporter.Stats).
func StatsOf(s any) map[string]int64 {
	v := reflect.ValueOf(s).Elem()
	out := map[string]int64{}
	for i, f := range counterFields(v.Type()) {
		out[f.Name] = v.Field(i).Addr().Interface().(*Counter).Load()
	}
	return out
}

// StatDocs lists the counters s (a pointer to a stats struct, or the
// struct) declares, in declaration order.
func StatDocs(s any) []StatDoc {
	t := reflect.TypeOf(s)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []StatDoc
	fields := counterFields(t)
	for i := range t.NumField() {
		if f, ok := fields[i]; ok {
			out = append(out, f)
		}
	}
	return out
}

var counterType = reflect.TypeFor[Counter]()

// counterFields maps the index of each tagged Counter field of t to its
// declaration. Other fields (padding, gauges kept otherwise) are skipped.
func counterFields(t reflect.Type) map[int]StatDoc {
	out := map[int]StatDoc{}
	for i := range t.NumField() {
		f := t.Field(i)
		if name, ok := f.Tag.Lookup("stat"); ok && f.Type == counterType && f.IsExported() {
			out[i] = StatDoc{Name: name, Doc: f.Tag.Get("doc")}
		}
	}
	return out
}
