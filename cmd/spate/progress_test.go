package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
)

func TestProgressLine(t *testing.T) {
	pg := engine.Progress{
		Elapsed: 12 * time.Second, Total: time.Minute, Phase: "spike", TargetRate: 5000,
		Interval: accounting.Interval{Start: 11 * time.Second, End: 12 * time.Second, Backlog: 3,
			Counts:  accounting.Counts{Sent: 5001, Received: 4980},
			Latency: accounting.LatencySet{E2E: accounting.LatencySummary{Count: 10, P99: 12_300}}},
		Live:         accounting.Counts{Received: 59_000, Failed: 2, Duplicates: 7},
		InFlight:     12,
		ActiveFaults: []string{"broker-restart broker-0", "network"},
	}
	got := progressLine(pg)
	want := "[  12.0s/1m0s] spike target 5,000/s achieved 4,980/s sent 5,001/s | in-flight 12 recv 59,000 backlog 3 failed 2 dup 7 | e2e p99 12.3ms | faults: broker-restart broker-0, network"
	if got != want {
		t.Errorf("progress line\n got %q\nwant %q", got, want)
	}
	pg.Draining, pg.ActiveFaults, pg.Interval.Latency = true, nil, accounting.LatencySet{}
	if got := progressLine(pg); !strings.Contains(got, "] draining +0.0s achieved") || strings.Contains(got, "faults") || strings.Contains(got, "p99") {
		t.Errorf("draining line %q", got)
	}
	// While draining, the elapsed time stops at the total; the drain counts on.
	drain := pg
	drain.Elapsed = time.Minute + 2500*time.Millisecond
	if got := progressLine(drain); !strings.HasPrefix(got, "[  60.0s/1m0s] draining +2.5s achieved") {
		t.Errorf("draining line %q", got)
	}

	// Not a terminal: a line every 5 s and at the end of the traffic.
	var b bytes.Buffer
	p := newProgressPrinter(&b, "auto")
	for s := 1; s <= 12; s++ {
		pg.Elapsed, pg.Total = time.Duration(s)*time.Second, 12*time.Second
		p.print(pg)
	}
	p.done()
	if n := strings.Count(b.String(), "\n"); n != 3 { // 5s, 10s, 12s
		t.Errorf("%d log lines:\n%s", n, b.String())
	}
	// TERM=dumb: no escape codes, even in line mode.
	t.Setenv("TERM", "dumb")
	var dumb bytes.Buffer
	dp := newProgressPrinter(&dumb, "line")
	dp.print(pg)
	pg.Phase = ""
	dp.print(pg)
	dp.done()
	if strings.Contains(dumb.String(), "\033") || strings.Count(dumb.String(), "\r") != 2 {
		t.Errorf("TERM=dumb output %q", dumb.String())
	}
	if report.Truncate("abcdef", 4) != "abc…" || report.Truncate("abc", 4) != "abc" {
		t.Error("truncateRunes")
	}
}

// TestProgressLineProduceOnly: without consumers the line shows what the
// producers see, never a received count, backlog or e2e latency.
func TestProgressLineProduceOnly(t *testing.T) {
	pg := engine.Progress{
		Elapsed: 12 * time.Second, Total: time.Minute, Phase: "max", ProduceOnly: true,
		Interval: accounting.Interval{Start: 11 * time.Second, End: 12 * time.Second,
			Counts:  accounting.Counts{Sent: 50_000, Acked: 48_000},
			Latency: accounting.LatencySet{Publish: accounting.LatencySummary{Count: 10, P99: 8_100}}},
		Live:         accounting.Counts{Acked: 480_000},
		InFlight:     2000,
		ActiveFaults: []string{"broker-restart all"},
	}
	want := "[  12.0s/1m0s] max acked 48,000/s sent 50,000/s | in-flight 2,000 acked 480,000 failed 0 | publish p99 8.10ms | faults: broker-restart all"
	if got := progressLine(pg); got != want {
		t.Errorf("progress line\n got %q\nwant %q", got, want)
	}
}
