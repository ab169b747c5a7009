package scenarios

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a non-negative time.Duration written the Go way: 250ms, 30s, 1m30s.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// DecodeNode parses a duration scalar; a bare number is rejected because its
// unit would be a guess.
func (d *Duration) DecodeNode(dec *Decoder, n *yaml.Node, field string) {
	v, err := ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode {
		err = fmt.Errorf("want a duration such as 30s, got %s", describe(n))
	}
	if err != nil {
		dec.Errorf(n, field, "%v", err)
		return
	}
	*d = Duration(v)
}

// durationRE matches the syntax of a valid duration; one that matches and
// still fails to parse is out of range.
var durationRE = regexp.MustCompile(`^[0-9]*(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h)([0-9]*(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))*$`)

// durationUnits lists the units ParseDuration accepts, for messages.
const durationUnits = "ns, us (or µs), ms, s, m, h"

// durationUnitHints suggests a valid spelling for units people often try.
var durationUnitHints = map[string]string{
	"d": "days are not a unit; write hours, e.g. 72h", "day": "days are not a unit; write hours, e.g. 72h",
	"days": "days are not a unit; write hours, e.g. 72h", "w": "weeks are not a unit; write hours, e.g. 168h",
	"sec": `did you mean "s"?`, "secs": `did you mean "s"?`, "second": `did you mean "s"?`, "seconds": `did you mean "s"?`,
	"min": `did you mean "m"?`, "mins": `did you mean "m"?`, "minute": `did you mean "m"?`, "minutes": `did you mean "m"?`,
	"hr": `did you mean "h"?`, "hrs": `did you mean "h"?`, "hour": `did you mean "h"?`, "hours": `did you mean "h"?`,
	"msec": `did you mean "ms"?`, "millis": `did you mean "ms"?`, "usec": `did you mean "us"?`, "nsec": `did you mean "ns"?`,
}

// ParseDuration parses s like time.ParseDuration but with messages that name
// the valid units, and rejects negative durations and bare numbers (whose
// unit would be a guess).
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	compact := strings.Join(strings.Fields(s), "")
	v, err := parseDuration(compact, s)
	if err == nil && compact != s {
		return 0, fmt.Errorf("duration %q must not contain spaces; write %s", s, compact)
	}
	return v, err
}

// parseDuration parses s, naming shown in messages.
func parseDuration(s, shown string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("want a duration such as 250ms, 30s or 1m30s, got nothing")
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return 0, fmt.Errorf("duration %q needs a unit, e.g. %ss (units: %s)", shown, s, durationUnits)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		msg := err.Error()
		if _, rest, ok := strings.Cut(msg, "unknown unit "); ok && strings.Contains(rest, " in duration") {
			unit, _ := strconv.Unquote(rest[:strings.Index(rest, " in duration")])
			hint := ""
			if h, ok := durationUnitHints[strings.ToLower(unit)]; ok {
				hint = " (" + h + ")"
			}
			return 0, fmt.Errorf("duration %q has an unknown unit %q%s; units: %s", shown, unit, hint, durationUnits)
		}
		if durationRE.MatchString(s) {
			return 0, fmt.Errorf("duration %q is too long (at most 2562047h)", shown)
		}
		return 0, fmt.Errorf("%q is not a duration such as 250ms, 30s or 1m30s (units: %s)", shown, durationUnits)
	}
	if v < 0 {
		return 0, fmt.Errorf("duration %q must not be negative", shown)
	}
	return v, nil
}

// Rate is a non-negative number of messages per second, written with its
// unit: 1000/s, 2.5k/s, 60000/m, 1M/h.
type Rate float64

// PerSecond returns the rate in messages per second.
func (r Rate) PerSecond() float64 { return float64(r) }

func (r Rate) String() string { return FormatRate(float64(r)) }

// FormatRate writes a per-second rate the way scenarios spell it.
func FormatRate(perSecond float64) string {
	if math.Abs(perSecond) >= 1e15 {
		return strconv.FormatFloat(perSecond, 'g', -1, 64) + "/s" // not hundreds of digits
	}
	return strconv.FormatFloat(perSecond, 'f', -1, 64) + "/s"
}

// DecodeNode parses a rate scalar.
func (r *Rate) DecodeNode(dec *Decoder, n *yaml.Node, field string) {
	if n.Kind != yaml.ScalarNode {
		dec.Errorf(n, field, "want a rate such as 1000/s, got %s", describe(n))
		return
	}
	v, err := ParseRate(n.Value)
	if err != nil {
		dec.Errorf(n, field, "%v", err)
		return
	}
	*r = Rate(v)
}

// rateUnits maps a rate's unit to its length in seconds. Dividing by the
// length (rather than multiplying by its reciprocal) keeps 60000/m exactly 1000/s.
var rateUnits = map[string]float64{"s": 1, "m": 60, "h": 3600}

// rateUnitHints maps spellings people try to the unit they meant.
var rateUnitHints = map[string]string{
	"sec": "s", "secs": "s", "second": "s", "seconds": "s",
	"min": "m", "mins": "m", "minute": "m", "minutes": "m",
	"hr": "h", "hrs": "h", "hour": "h", "hours": "h",
}

// ParseRate parses "N/unit" with an optional k (thousand) or M (million)
// multiplier on N and returns messages per second. Units are /s, /m and /h.
func ParseRate(s string) (float64, error) {
	s = strings.TrimSpace(s)
	num, unit, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("rate %q needs a unit, e.g. %s (units: /s, /m, /h)", s, rateExample(s))
	}
	unit = strings.TrimSpace(unit)
	per, ok := rateUnits[unit]
	if !ok {
		hint := ""
		if u, ok := rateUnitHints[strings.ToLower(unit)]; ok {
			hint = fmt.Sprintf(" (did you mean %q?)", "/"+u)
		}
		return 0, fmt.Errorf("rate %q has an unknown unit %q%s; units: /s, /m, /h", s, "/"+unit, hint)
	}
	num = strings.TrimSpace(num)
	mult := 1.0
	switch {
	case strings.HasSuffix(num, "k"):
		mult, num = 1e3, strings.TrimSuffix(num, "k")
	case strings.HasSuffix(num, "M"):
		mult, num = 1e6, strings.TrimSuffix(num, "M")
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("rate %q is not a number per unit, e.g. 1000/s, 2.5k/s or 60/m", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("rate %q must not be negative", s)
	}
	r := v * mult / per
	if math.IsInf(r, 0) {
		return 0, fmt.Errorf("rate %q is too large", s)
	}
	return r, nil
}

// rateExample suggests how to write a rate given without a /unit: "5 per
// s", "5 per second" and "5 rps" become 5/s, a bare 5 becomes 5/s.
func rateExample(s string) string {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return "1000/s"
	}
	num := fields[0]
	if i := strings.IndexFunc(num, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.' || r == 'k' || r == 'M') }); i >= 0 {
		num = num[:i]
	}
	if num == "" {
		return "1000/s"
	}
	unit := "s"
	if last := strings.ToLower(fields[len(fields)-1]); len(fields) > 1 {
		if _, ok := rateUnits[last]; ok {
			unit = last
		} else if u, ok := rateUnitHints[last]; ok {
			unit = u
		}
	}
	return num + "/" + unit
}

// Size is a non-negative number of bytes: 512, 512B, 4KiB, 1MB.
type Size int64

func (s Size) String() string { return strconv.FormatInt(int64(s), 10) + "B" }

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9},
	{"B", 1},
}

// DecodeNode parses a size scalar.
func (s *Size) DecodeNode(dec *Decoder, n *yaml.Node, field string) {
	if n.Kind != yaml.ScalarNode {
		dec.Errorf(n, field, "want a size such as 512B or 4KiB, got %s", describe(n))
		return
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		dec.Errorf(n, field, "%v", err)
		return
	}
	*s = Size(v)
}

// ParseSize parses a byte count with an optional unit (B, KB, KiB, MB, MiB, GB, GiB).
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	num, mult := s, int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) {
		return 0, fmt.Errorf("size %q is not a number of bytes with an optional unit%s (units: B, KB, KiB, MB, MiB, GB, GiB)", s, sizeHint(s))
	}
	if v < 0 {
		return 0, fmt.Errorf("size %q must not be negative", s)
	}
	b := v * float64(mult)
	if b > math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	if b != math.Trunc(b) {
		return 0, fmt.Errorf("size %q is not a whole number of bytes", s)
	}
	return int64(b), nil
}

// sizeUnitHints maps unit spellings people try (lowercased) to spate's.
var sizeUnitHints = map[string]string{
	"b": "B", "byte": "B", "bytes": "B",
	"k": "KiB", "kb": "KB", "kib": "KiB", "kbyte": "KB", "kbytes": "KB",
	"m": "MiB", "mb": "MB", "mib": "MiB", "mbyte": "MB", "mbytes": "MB",
	"g": "GiB", "gb": "GB", "gib": "GiB", "gbyte": "GB", "gbytes": "GB",
}

// sizeHint suggests the size s probably meant: ` (did you mean "4KiB"?)`,
// or "" when its unit is not a known misspelling.
func sizeHint(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.' || r == ' ') })
	if i <= 0 {
		return ""
	}
	num, unit := strings.TrimSpace(s[:i]), strings.TrimSpace(s[i:])
	if _, err := strconv.ParseFloat(num, 64); err != nil {
		return ""
	}
	if u, ok := sizeUnitHints[strings.ToLower(unit)]; ok {
		return fmt.Sprintf(" (did you mean %q?)", num+u)
	}
	return ""
}

// Child returns the value node of key in mapping n, or nil when absent. It is
// how cross-field checks find the position to report.
func Child(n *yaml.Node, key string) *yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return resolve(n.Content[i+1])
		}
	}
	return nil
}

// at returns the node of key in n for positions, falling back to n itself.
func at(n *yaml.Node, key string) *yaml.Node {
	if c := Child(n, key); c != nil {
		return c
	}
	return n
}
