package report

import (
	"fmt"
	"io"
	"strings"
)

// incompleteText says what an incomplete run's figures are worth.
func (r *Results) incompleteText() string {
	sr := r.Shards
	if sr == nil {
		return "a shard's final account is missing"
	}
	var missing []string
	for _, s := range sr.Each {
		if strings.HasPrefix(s.Status, "missing") {
			missing = append(missing, fmt.Sprintf("shard %d (%s: %s)", s.Index, s.Host, strings.TrimPrefix(s.Status, "missing: ")))
		}
	}
	return fmt.Sprintf("the final account of %s never came; what it did after its last report is unknown, so %s are lower bounds and loss is not claimed",
		strings.Join(missing, ", "), strings.Join(sr.LowerBounds, ", "))
}

// formatMillis formats a duration in milliseconds the way latencies are.
func formatMillis(ms float64) string { return formatMicros(ms * 1000) }

// writeShardsText writes the shards table of a distributed run.
func writeShardsText(w io.Writer, sr *ShardsResult) {
	fmt.Fprintf(w, "\nshards (each its own: received counts its first deliveries)\n")
	fmt.Fprintf(w, "  %-5s %-14s %9s %12s %12s %10s %20s %9s  %s\n", "shard", "host", "prod/cons", "sent", "received", "dup", "clock offset", "start", "status")
	for _, s := range sr.Each {
		offset := "coordinator"
		if s.Index != 0 {
			offset = formatSignedMillis(s.ClockOffsetMS) + " ± " + formatMillis(s.ClockUncertaintyMS)
		}
		fmt.Fprintf(w, "  %-5d %-14s %9s %12s %12s %10s %20s %9s  %s\n", s.Index, Truncate(s.Host, 14), fmt.Sprintf("%d/%d", s.Producers, s.Consumers),
			GroupInt(s.Sent), GroupInt(s.Received), GroupInt(s.Duplicates), offset, "+"+formatMillis(s.StartMS), s.Status)
	}
}

func formatSignedMillis(ms float64) string {
	if ms < 0 {
		return "-" + formatMillis(-ms)
	}
	return "+" + formatMillis(ms)
}

// writeShardsHTML writes the shards table of a distributed run.
func writeShardsHTML(p func(format string, args ...any), sr *ShardsResult) {
	p("<section><h2>Shards</h2>\n<p>%d processes; traffic started within %s of each other; every e2e latency is exact to ±%s (each consumer host's clock offset from the coordinator's, measured).</p>\n",
		sr.Count, esc(formatMillis(sr.StartSkewMS)), esc(formatMillis(sr.E2EBoundMS)))
	p("<table><tr><th>shard</th><th>host</th><th>producers</th><th>consumers</th><th>sent</th><th>acked</th><th>received</th><th>duplicates</th><th>clock offset</th><th>start</th><th>status</th></tr>\n")
	for _, s := range sr.Each {
		offset := "coordinator"
		if s.Index != 0 {
			offset = formatSignedMillis(s.ClockOffsetMS) + " ± " + formatMillis(s.ClockUncertaintyMS)
		}
		p("<tr><td>%d</td><td>%s</td><td>%d</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>+%s</td><td>%s</td></tr>\n",
			s.Index, esc(s.Host), s.Producers, s.Consumers, GroupInt(s.Sent), GroupInt(s.Acked), GroupInt(s.Received), GroupInt(s.Duplicates),
			esc(offset), esc(formatMillis(s.StartMS)), esc(s.Status))
	}
	p("</table></section>\n")
}
