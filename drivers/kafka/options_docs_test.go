package kafka

import (
	"testing"

	"github.com/spate-dev/spate/drivers/drivertest"
)

// TestOptionsDocs: the options tables of README.md and the package doc are
// the options table's (go generate rewrites them).
func TestOptionsDocs(t *testing.T) {
	drivertest.MarkdownDocs(t, "README.md", "options", options.Markdown())
	drivertest.GoDocs(t, "doc.go", "options", options.Text())
}
