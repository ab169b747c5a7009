package eventbridge

import (
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/spate-dev/spate/scenarios"
)

// TestShortPollKept: `wait: 0s` (a short poll) survives New's defaults,
// which once turned it back into the 20s long poll; without wait the long
// poll is the default.
func TestShortPollKept(t *testing.T) {
	for _, c := range []struct {
		block string
		want  time.Duration
	}{
		{"{provision: true, wait: 0s}", 0},
		{"{provision: true, wait: 3s}", 3 * time.Second},
		{"{provision: true}", MaxWait},
	} {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(c.block), &doc); err != nil {
			t.Fatal(err)
		}
		d := scenarios.NewDecoder("test.yaml")
		o := decodeOptions(d, doc.Content[0], "driver.eventbridge").(Options)
		if ps := d.Problems(); len(ps) > 0 {
			t.Fatalf("%s: %v", c.block, ps)
		}
		o.fillDefaults() // what New does
		if o.Wait != c.want {
			t.Errorf("%s: wait %v after New's defaults, want %v", c.block, o.Wait, c.want)
		}
	}
}
