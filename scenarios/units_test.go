package scenarios_test

import (
	"testing"
	"time"

	"github.com/spate-dev/spate/scenarios"
)

func TestParseRate(t *testing.T) {
	good := []struct {
		in   string
		want float64 // per second
	}{
		{"1000/s", 1000},
		{"0/s", 0},
		{"2.5k/s", 2500},
		{"1M/s", 1e6},
		{"200k/s", 200000},
		{"60000/m", 1000},
		{"7/m", 7.0 / 60},
		{"3600/h", 1},
		{"1M/h", 1e6 / 3600},
		{" 10 / s ", 10},
		{"1e3/s", 1000},
		{".5/s", 0.5},
	}
	for _, c := range good {
		got, err := scenarios.ParseRate(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	bad := []struct{ in, want string }{
		{"1000", `rate "1000" needs a unit, e.g. 1000/s (units: /s, /m, /h)`},
		{"5 per s", `rate "5 per s" needs a unit, e.g. 5/s (units: /s, /m, /h)`},
		{"5 per minute", `rate "5 per minute" needs a unit, e.g. 5/m (units: /s, /m, /h)`},
		{"2.5k rps", `rate "2.5k rps" needs a unit, e.g. 2.5k/s (units: /s, /m, /h)`},
		{"1000/sec", `rate "1000/sec" has an unknown unit "/sec" (did you mean "/s"?); units: /s, /m, /h`},
		{"5/minute", `rate "5/minute" has an unknown unit "/minute" (did you mean "/m"?); units: /s, /m, /h`},
		{"1000/d", `rate "1000/d" has an unknown unit "/d"; units: /s, /m, /h`},
		{"-5/s", `rate "-5/s" must not be negative`},
		{"fast/s", `rate "fast/s" is not a number per unit, e.g. 1000/s, 2.5k/s or 60/m`},
		{"1K/s", `rate "1K/s" is not a number per unit, e.g. 1000/s, 2.5k/s or 60/m`},
		{"NaN/s", `rate "NaN/s" is not a number per unit, e.g. 1000/s, 2.5k/s or 60/m`},
		{"Inf/s", `rate "Inf/s" is not a number per unit, e.g. 1000/s, 2.5k/s or 60/m`},
		{"/s", `rate "/s" is not a number per unit, e.g. 1000/s, 2.5k/s or 60/m`},
		{"1e308M/s", `rate "1e308M/s" is too large`},
	}
	for _, c := range bad {
		if got, err := scenarios.ParseRate(c.in); err == nil || err.Error() != c.want {
			t.Errorf("ParseRate(%q) = %v, %v; want error %s", c.in, got, err, c.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	good := []struct {
		in   string
		want time.Duration
	}{
		{"250ms", 250 * time.Millisecond},
		{"30s", 30 * time.Second},
		{"1m30s", 90 * time.Second},
		{"1.5h", 90 * time.Minute},
		{"0s", 0},
		{"500us", 500 * time.Microsecond},
		{"500µs", 500 * time.Microsecond},
		{"10ns", 10},
		{" 2s ", 2 * time.Second},
	}
	for _, c := range good {
		got, err := scenarios.ParseDuration(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	const units = "units: ns, us (or µs), ms, s, m, h"
	bad := []struct{ in, want string }{
		{"30", `duration "30" needs a unit, e.g. 30s (` + units + `)`},
		{"1.5", `duration "1.5" needs a unit, e.g. 1.5s (` + units + `)`},
		{"3d", `duration "3d" has an unknown unit "d" (days are not a unit; write hours, e.g. 72h); ` + units},
		{"5sec", `duration "5sec" has an unknown unit "sec" (did you mean "s"?); ` + units},
		{"5x", `duration "5x" has an unknown unit "x"; ` + units},
		{"1m 30s", `duration "1m 30s" must not contain spaces; write 1m30s`},
		{"3 days", `duration "3 days" has an unknown unit "days" (days are not a unit; write hours, e.g. 72h); ` + units},
		{"-1s", `duration "-1s" must not be negative`},
		{"soon", `"soon" is not a duration such as 250ms, 30s or 1m30s (` + units + `)`},
		{"", `want a duration such as 250ms, 30s or 1m30s, got nothing`},
		{"3000000h", `duration "3000000h" is too long (at most 2562047h)`},
	}
	for _, c := range bad {
		if got, err := scenarios.ParseDuration(c.in); err == nil || err.Error() != c.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want error %s", c.in, got, err, c.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	good := []struct {
		in   string
		want int64
	}{
		{"512", 512},
		{"512B", 512},
		{"4KiB", 4096},
		{"1.5KiB", 1536},
		{"1KB", 1000},
		{"2MiB", 2 << 20},
		{"1MB", 1e6},
		{"1GiB", 1 << 30},
		{"1GB", 1e9},
		{"0", 0},
		{" 64 KiB ", 64 << 10},
	}
	for _, c := range good {
		got, err := scenarios.ParseSize(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	const units = "(units: B, KB, KiB, MB, MiB, GB, GiB)"
	bad := []struct{ in, want string }{
		{"big", `size "big" is not a number of bytes with an optional unit ` + units},
		{"1kb", `size "1kb" is not a number of bytes with an optional unit (did you mean "1KB"?) ` + units},
		{"4kib", `size "4kib" is not a number of bytes with an optional unit (did you mean "4KiB"?) ` + units},
		{"2 mb", `size "2 mb" is not a number of bytes with an optional unit (did you mean "2MB"?) ` + units},
		{"16k", `size "16k" is not a number of bytes with an optional unit (did you mean "16KiB"?) ` + units},
		{"1TB", `size "1TB" is not a number of bytes with an optional unit ` + units},
		{"-1KiB", `size "-1KiB" must not be negative`},
		{"1.5B", `size "1.5B" is not a whole number of bytes`},
		{"NaN", `size "NaN" is not a number of bytes with an optional unit ` + units},
		{"1e300GB", `size "1e300GB" is too large`},
	}
	for _, c := range bad {
		if got, err := scenarios.ParseSize(c.in); err == nil || err.Error() != c.want {
			t.Errorf("ParseSize(%q) = %v, %v; want error %s", c.in, got, err, c.want)
		}
	}
}

func TestUnitStrings(t *testing.T) {
	if got := scenarios.Rate(2500).String(); got != "2500/s" {
		t.Errorf("Rate.String = %s", got)
	}
	if got := scenarios.Size(4096).String(); got != "4096B" {
		t.Errorf("Size.String = %s", got)
	}
	if got := scenarios.Duration(90 * time.Second).String(); got != "1m30s" {
		t.Errorf("Duration.String = %s", got)
	}
}
