package scenarios_test

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/spate-dev/spate/scenarios"
)

// sharedOptions is a fake driver's options that say whether the system is
// shared (an external one) through its abilities.
type sharedOptions struct {
	External bool `yaml:"external"`
}

func (o sharedOptions) Abilities() []string {
	if o.External {
		return []string{scenarios.AbilityShared}
	}
	return nil
}

// TestShardedValidation: a scenario split over shards needs a producer and
// a consumer per shard and a system every shard reaches, and cannot yet
// split a find-max search or a pipeline; each problem names the line.
func TestShardedValidation(t *testing.T) {
	l := &scenarios.Loader{Shards: 3}
	l.Driver("fake", func(d *scenarios.Decoder, n *yaml.Node, field string) any {
		var o sharedOptions
		d.Decode(n, field, &o)
		return o
	})
	ok := `
driver: {fake: {external: true}}
producers: 3
consumers: 6
traffic: [{constant: {rate: 100/s, for: 1s}}]
`
	if _, err := l.Parse("ok.yaml", []byte(ok)); err != nil {
		t.Fatalf("a valid sharded scenario: %v", err)
	}
	produceOnly := strings.Replace(ok, "consumers: 6", "consumers: 0", 1)
	if _, err := l.Parse("produce-only.yaml", []byte(produceOnly)); err != nil {
		t.Fatalf("a sharded produce-only scenario: %v", err)
	}
	for name, c := range map[string]struct{ src, want string }{
		"few producers": {`
driver: {fake: {external: true}}
producers: 2
consumers: 3
traffic: [{constant: {rate: 100/s, for: 1s}}]
`, "s.yaml:3:12: producers: a run split over 3 shards needs at least 3 producers"},
		"default consumers": {`
driver: {fake: {external: true}}
producers: 3
traffic: [{constant: {rate: 100/s, for: 1s}}]
`, "consumers: a run split over 3 shards needs at least 3 consumers (consumer i runs on shard i mod 3, so each shard runs at least one), got 1"},
		"in-process system": {`
driver: {fake: {external: false}}
producers: 3
consumers: 3
traffic: [{constant: {rate: 100/s, for: 1s}}]
`, "s.yaml:2:9: driver: the fake driver, as configured, runs its system inside each spate process"},
		"find-max": {`
driver: {fake: {external: true}}
producers: 3
consumers: 3
traffic: [{find-max: {start: 100/s, max: 1000/s, hold: 1s, slo: "e2e.p99 < 1s"}}]
`, "traffic[0].find-max: a find-max search cannot be split over shards yet"},
	} {
		t.Run(name, func(t *testing.T) {
			ps := strings.Join(problems(t, l, c.src), "\n")
			if !strings.Contains(ps, c.want) {
				t.Errorf("problems:\n%s\nwant one containing %q", ps, c.want)
			}
		})
	}
}
