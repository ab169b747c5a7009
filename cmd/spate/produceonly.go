package main

import (
	"fmt"
	"strings"

	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
)

// writeProduceOnlyProgress writes what the producers of a run without
// consumers see, over an interval of secs seconds; nothing is received, so
// there is no achieved rate, backlog or e2e latency to show:
//
//	acked 48,000/s sent 50,000/s | in-flight 2,000 acked 480,000 failed 0 | publish p99 8.1ms
func writeProduceOnlyProgress(b *strings.Builder, pg engine.Progress, secs float64) {
	iv := pg.Interval
	fmt.Fprintf(b, "acked %s/s sent %s/s | in-flight %s acked %s failed %s",
		report.GroupInt(int64(float64(iv.Counts.Acked)/secs+0.5)), report.GroupInt(int64(float64(iv.Counts.Sent)/secs+0.5)),
		report.GroupInt(pg.InFlight), report.GroupInt(pg.Live.Acked), report.GroupInt(pg.Live.Failed))
	if iv.Latency.Publish.Count > 0 {
		fmt.Fprintf(b, " | publish p99 %s", report.FormatMicros(iv.Latency.Publish.P99))
	}
}
