package rabbitmq

import (
	"testing"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/drivertest"
)

// TestOptionsDocs: the tables of stats in the README and in Driver.Stats'
// doc are the stats struct's (go generate rewrites them).
func TestOptionsDocs(t *testing.T) {
	drivertest.MarkdownDocs(t, "README.md", "stats", drivertest.StatsMarkdown(drivers.StatDocs(stats{})))
	drivertest.GoDocs(t, "rabbitmq.go", "stats", drivertest.StatsText(drivers.StatDocs(stats{})))
}
