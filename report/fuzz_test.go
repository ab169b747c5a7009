package report

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/internal/fuzzcheck"
)

// FuzzDecodeResults feeds results.json as spate report, report --compare
// (and a merge of shards should) read it: DecodeResults, then every
// renderer and a comparison with itself. Each input must not panic and
// must stay within fuzzcheck's time and memory bounds; what decodes must
// render. make fuzz (.ci/fuzz.sh) runs it in CI for a bounded time.
func FuzzDecodeResults(f *testing.F) {
	for _, r := range []*Results{withChaos(chartResults(f)), findMaxResults(f), {SchemaVersion: SchemaVersion}} {
		var b bytes.Buffer
		if err := WriteJSON(&b, r); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Add([]byte(`{"schema_version": 1, "intervals": [{"start_s": 1e308, "end_s": -1e308, "target_rate": 1e308}], "rate": {"target_mean": 1e308, "achieved_mean": -5}}`))
	f.Add([]byte(`{"schema_version": 1, "histograms": {"e2e": "HISTFAAAACh4nJNpmSzMwMDAzAABEJqRQf4/lQEJzAAAVVICdg=="}}`))
	f.Add([]byte(`{"schema_version": 1, "counts": {"sent": -1, "acked": 9223372036854775807}, "thresholds": [{"expr": "loss == 0", "value": 1e308, "limit": -1e308}]}`))
	f.Add([]byte("not json at all"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzcheck.Bounded(t, func() {
			r, err := DecodeResults(bytes.NewReader(data))
			if err != nil {
				return
			}
			for _, kind := range accounting.Kinds {
				if h, err := r.histogramOrEmpty(kind); err == nil {
					_ = WriteHgrm(io.Discard, h, HgrmUnitDivisor)
				}
			}
			for name, write := range map[string]func(io.Writer, *Results) error{
				"text": WriteText, "json": WriteJSON, "html": WriteHTML, "junit": WriteJUnit,
			} {
				var b bytes.Buffer
				if err := write(&b, r); err != nil && name == "json" {
					t.Fatalf("%s: %v", name, err)
				}
				if name == "json" && !json.Valid(b.Bytes()) {
					t.Fatalf("results.json written back is not JSON")
				}
			}
			if c, err := Compare(r, r, "a", "b", nil); err == nil {
				_ = WriteComparison(io.Discard, c)
			}
		})
	})
}
