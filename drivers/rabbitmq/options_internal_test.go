package rabbitmq

import (
	"testing"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/drivertest"
)

// TestOptionsDocs: the options tables of the README, of the rabbitmq
// section of scenarios/README.md and of the package doc are the options
// table's, and the tables of stats there and in Driver.Stats' doc are the
// stats struct's (go generate rewrites them).
func TestOptionsDocs(t *testing.T) {
	stats := drivers.StatDocs(stats{})
	drivertest.MarkdownDocs(t, "README.md", "options", options.Markdown())
	drivertest.MarkdownDocs(t, "../../scenarios/README.md", "rabbitmq-options", options.Markdown())
	drivertest.GoDocs(t, "rabbitmq.go", "options", options.Text())
	drivertest.MarkdownDocs(t, "README.md", "stats", drivertest.StatsMarkdown(stats))
	drivertest.MarkdownDocs(t, "../../scenarios/README.md", "rabbitmq-stats", drivertest.StatsMarkdown(stats))
	drivertest.GoDocs(t, "rabbitmq.go", "stats", drivertest.StatsText(stats))
}

// TestValidate: options made in Go are checked by the rows that check a
// scenario's (ranges, values; zero where it means the default passes) and
// by the same rules between options.
func TestValidate(t *testing.T) {
	o := DefaultOptions()
	if err := o.validate(); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	o.Stamp, o.Prefetch, o.Queue.Overflow, o.Nodes = "trailer", -1, RejectPublish, 9
	want := "rabbitmq: nodes: must be a whole number from 1 to 5, got 9\n" +
		"rabbitmq: prefetch: must be a whole number from 0 (unlimited) to 65535, got -1\n" +
		`rabbitmq: stamp: unknown stamp placement "trailer"; valid: body, header` + "\n" +
		"rabbitmq: queue.overflow: applies to a queue with a length limit; set max-length or leave overflow out"
	if err := o.validate(); err == nil || err.Error() != want {
		t.Errorf("validate:\n%v\nwant\n%s", err, want)
	}
}
