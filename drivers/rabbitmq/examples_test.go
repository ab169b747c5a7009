package rabbitmq_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/spate-dev/spate/chaos"
	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/rabbitmq"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// coveredExamples are the examples that tests of their own run, with more
// checks than their thresholds; TestExamples only validates them.
var coveredExamples = map[string]string{
	"rabbitmq-quorum-kill.yaml": "TestClusterQuorumKillLeader",
	"rabbitmq-stream.yaml":      "TestClusterStreamTwoConsumers",
}

// TestExamples validates every examples/rabbitmq-*.yaml and runs it, on the
// shared node instead of a node of its own, or on the shared cluster when
// it asks for one (nodes: 2 or more; chaos included: broker-restart
// restarts the shared node or a node of the shared cluster), and requires
// its thresholds to pass.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/rabbitmq-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples/rabbitmq-*.yaml (%v)", err)
	}
	l := &scenarios.Loader{}
	l.Driver(rabbitmq.Kind.Name, rabbitmq.Kind.Options)
	chaos.Register(l)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			sc, err := l.Load(file)
			if err != nil {
				t.Fatalf("invalid example:\n%v", err)
			}
			if test, ok := coveredExamples[filepath.Base(file)]; ok {
				t.Skipf("valid; %s runs it", test)
			}
			var n *rabbitmq.Node
			var c *rabbitmq.Cluster
			if sc.Driver.Options.(rabbitmq.Options).Nodes > 1 {
				c = cluster(t)
			} else {
				n = node(t)
			}
			kind := drivers.Kind{
				Name:    rabbitmq.Kind.Name,
				Options: rabbitmq.Kind.Options,
				Open: func(ctx context.Context, options any, env drivers.Env) (drivers.Driver, error) {
					o := options.(rabbitmq.Options)
					o.Node, o.Cluster = n, c
					return rabbitmq.Kind.Open(ctx, o, env)
				},
			}
			res, err := engine.Run(context.Background(), sc, engine.WithDrivers(kind), engine.WithLogger(testLogger(t)))
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			t.Logf("counts %+v\nstats %v", res.Counts, res.DriverStats)
			for _, f := range res.Chaos {
				t.Logf("fault %+v", f)
			}
			if res.Verdict != report.Pass {
				t.Errorf("verdict %s, want pass; thresholds: %+v", res.Verdict, res.Thresholds)
			}
		})
	}
}
