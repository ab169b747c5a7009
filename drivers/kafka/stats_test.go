package kafka

import (
	"slices"
	"testing"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/drivertest"
)

// TestStatsDocs: the tables of figures in the package doc and README.md
// are the stats declarations' (go generate rewrites them).
func TestStatsDocs(t *testing.T) {
	docs := statDocs()
	drivertest.GoDocs(t, "doc.go", "stats", drivertest.StatsText(docs))
	drivertest.MarkdownDocs(t, "README.md", "stats", drivertest.StatsMarkdown(docs))
}

// TestStatsNames: the figures Stats returns with every group in use are
// the declared ones, each declared once.
func TestStatsNames(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range statDocs() {
		if seen[s.Name] {
			t.Errorf("stat %q declared twice", s.Name)
		}
		seen[s.Name] = true
	}
	d := &Driver{embed: &cluster{}, opts: Options{Transactions: &TransactionOptions{}}}
	d.stats.proc.Processed.Add(1)
	got := d.Stats()
	for name := range got {
		if !seen[name] {
			t.Errorf("Stats returns %q, which no declaration lists", name)
		}
	}
	for name := range seen {
		if _, ok := got[name]; !ok {
			t.Errorf("Stats does not return the declared %q", name)
		}
	}
}

// statDocs lists every figure Stats can return, in the order of the doc
// tables, each group saying when it is there (as Stats decides).
func statDocs() []drivers.StatDoc {
	return slices.Concat(
		drivers.StatDocs(stats{}),
		when("on the embedded cluster", append(drivers.StatDocs(clusterStats{}), faultHitsStat)),
		when("with transactions", drivers.StatDocs(txnStats{})),
		when("with the built-in processor", drivers.StatDocs(procStats{})),
	)
}

// when adds the condition under which a group of figures is in Stats to
// each one's doc.
func when(cond string, docs []drivers.StatDoc) []drivers.StatDoc {
	for i := range docs {
		docs[i].Doc += " (only " + cond + ")"
	}
	return docs
}
