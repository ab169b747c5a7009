package eventbridge

import (
	"slices"
	"testing"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/drivertest"
)

// TestOptionsDocs: the options tables of scenarios/README.md and the
// package doc are the options table's, and the lists of stats there and
// in Driver.Stats' doc are the stats struct's (go generate rewrites them).
func TestOptionsDocs(t *testing.T) {
	drivertest.MarkdownDocs(t, "../../scenarios/README.md", "eventbridge-options", options.Markdown())
	drivertest.MarkdownDocs(t, "../../scenarios/README.md", "eventbridge-stats", drivertest.StatsMarkdown(drivers.StatDocs(stats{})))
	drivertest.GoDocs(t, "eventbridge.go", "options", options.Text())
	drivertest.GoDocs(t, "eventbridge.go", "stats", drivertest.StatsText(drivers.StatDocs(stats{})))
}

// TestStatNames: driver_stats keeps the names results and dashboards
// already use.
func TestStatNames(t *testing.T) {
	var names []string
	for _, s := range drivers.StatDocs(stats{}) {
		names = append(names, s.Name)
	}
	want := []string{"put_requests", "put_errors", "sdk_retries", "entries_ok", "entries_failed", "entries_retried",
		"throttled", "too_large", "rate_limit_waits", "receives", "receive_errors", "received", "redelivered",
		"unparsable", "probes", "delete_requests", "deleted", "delete_failed", "abandoned", "crashes"}
	if !slices.Equal(names, want) {
		t.Errorf("stats %v\nwant %v", names, want)
	}
	var d Driver
	d.stats.Deleted.Add(3)
	if got := d.Stats(); len(got) != len(want) || got["deleted"] != 3 {
		t.Errorf("Stats() = %v", got)
	}
}
