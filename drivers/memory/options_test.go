package memory

import (
	"testing"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/drivertest"
)

// TestOptionsDocs: the options tables of scenarios/README.md and the
// package doc are the options table's, and the package doc's list of
// stats is the stats struct's (go generate rewrites them).
func TestOptionsDocs(t *testing.T) {
	drivertest.MarkdownDocs(t, "../../scenarios/README.md", "options", options.Markdown())
	drivertest.GoDocs(t, "memory.go", "options", options.Text())
	drivertest.GoDocs(t, "memory.go", "stats", drivertest.StatsText(drivers.StatDocs(stats{})))
}
