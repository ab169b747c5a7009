package scenarios

import (
	"fmt"
	"math"
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

// ParseDuration parses s like time.ParseDuration but with messages that name
// the valid units, and rejects negative durations.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return 0, fmt.Errorf("duration %q needs a unit, e.g. %ss (units: ns, us, ms, s, m, h)", s, s)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		if strings.Contains(err.Error(), "unknown unit") {
			return 0, fmt.Errorf("duration %q has an unknown unit (units: ns, us, ms, s, m, h)", s)
		}
		return 0, fmt.Errorf("%q is not a duration such as 250ms, 30s or 1m30s", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("duration %q must not be negative", s)
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

var rateUnits = map[string]float64{"s": 1, "m": 1.0 / 60, "h": 1.0 / 3600}

// ParseRate parses "N/unit" with an optional k or M multiplier on N and
// returns messages per second.
func ParseRate(s string) (float64, error) {
	s = strings.TrimSpace(s)
	num, unit, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("rate %q needs a unit, e.g. %s/s (units: /s, /m, /h)", s, s)
	}
	per, ok := rateUnits[strings.TrimSpace(unit)]
	if !ok {
		return 0, fmt.Errorf("rate %q has an unknown unit %q (units: /s, /m, /h)", s, "/"+unit)
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
		return 0, fmt.Errorf("rate %q is not a number per unit, e.g. 1000/s or 2.5k/s", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("rate %q must not be negative", s)
	}
	return v * mult * per, nil
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
	if err != nil {
		return 0, fmt.Errorf("size %q is not a number of bytes with an optional unit (units: B, KB, KiB, MB, MiB, GB, GiB)", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("size %q must not be negative", s)
	}
	b := v * float64(mult)
	if b != math.Trunc(b) || b > math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q is not a whole number of bytes", s)
	}
	return int64(b), nil
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
