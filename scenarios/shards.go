package scenarios

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// validateShards checks what a run split over l.Shards processes needs:
// producer p and consumer c run on shard p mod shards and c mod shards, so
// every shard needs at least one of each; the system under test must be
// one every shard reaches; and the parts of spate that judge as the run
// goes, in one place, are not split.
func (l *Loader) validateShards(d *Decoder, root *yaml.Node, s *Scenario) {
	n := l.Shards
	if n <= 1 {
		return
	}
	for _, f := range []struct {
		key   string
		count int
	}{{"producers", s.Producers}, {"consumers", s.Consumers}} {
		if f.count >= 1 && f.count < n { // consumers: 0 is a produce-only run: nothing to split
			d.Errorf(at(root, f.key), f.key, "a run split over %d shards needs at least %d %s (%s i runs on shard i mod %d, so each shard runs at least one), got %d",
				n, n, f.key, f.key[:len(f.key)-1], n, f.count)
		}
	}
	ends := []struct {
		field string
		dr    Driver
	}{{"driver", s.Driver}}
	if s.Pipeline != nil {
		d.Errorf(at(root, "pipeline"), "pipeline", "a pipeline cannot be split over shards yet: its latency pairs each message's confirmation, seen by the shard that sent it, with its delivery, seen by whichever shard received it; run it on one host (without --shard)")
		ends = nil
	}
	for _, e := range ends {
		if e.dr.Kind != "" && !hasAbility(e.dr.Options, AbilityShared) {
			d.Errorf(at(root, e.field), e.field, "the %s driver, as configured, runs its system inside each spate process (brokers: embedded, url: managed, endpoint: managed, or the memory broker), so %d shards would each test a system of their own; "+
				"a sharded run needs one system every shard reaches: name its brokers, url or endpoint (spate serve kafka or spate serve rabbitmq starts a standalone one)", e.dr.Kind, n)
		}
	}
	for i := range s.Traffic {
		if s.Traffic[i].FindMax != nil {
			tn := Child(root, "traffic")
			d.Errorf(at(resolve(tn.Content[i]), "find-max"), fmt.Sprintf("traffic[%d].find-max", i),
				"a find-max search cannot be split over shards yet: it judges each step as the run goes from every delivery; run it on one host (without --shard), or map the system with spate sweep")
		}
	}
}
