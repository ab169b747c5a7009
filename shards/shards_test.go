package shards

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/memory"
	"github.com/spate-dev/spate/engine"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// sharedBroker is one memory broker that every shard of an in-process
// test opens, as shards of a real run open one external system: Close
// leaves it running (the test closes it), and only the coordinator (which
// opens it unattached) reports its figures, so they are not counted once
// per shard.
type sharedBroker struct {
	*memory.Driver
	coordinator bool
}

func (sharedBroker) Close(context.Context) error { return nil }

func (b sharedBroker) Stats() map[string]int64 {
	if !b.coordinator {
		return nil
	}
	return b.Driver.Stats()
}

const testScenario = `
name: shards-unit
driver: {memory: {streams: 6, drop: 0.01, duplicate: 0.02}}
producers: 3
consumers: 3
traffic:
  - constant: {rate: 3000/s, for: 2s}
drain: 3s
thresholds:
  - duplicates > 0
`

// runShards runs testScenario as n shards in this process against one
// memory broker and returns the coordinator's results and report dir.
func runShards(t *testing.T, n int) (*report.Results, string, *memory.Driver) {
	t.Helper()
	l := &scenarios.Loader{}
	l.Driver(memory.Kind.Name, memory.Kind.Options)
	sc, err := l.Parse("shards-unit.yaml", []byte(testScenario))
	if err != nil {
		t.Fatal(err)
	}
	broker, err := memory.New(sc.Driver.Options.(memory.Options), drivers.Env{Producers: sc.Producers, Consumers: sc.Consumers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = broker.Close(context.Background()) })
	kind := drivers.Kind{Name: "memory", Options: memory.Kind.Options, Open: func(_ context.Context, _ any, env drivers.Env) (drivers.Driver, error) {
		return sharedBroker{Driver: broker, coordinator: !env.Attach}, nil
	}}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addr := make(chan string, 1)
	var wg sync.WaitGroup
	results := make([]*report.Results, n)
	errs := make([]error, n)
	start := func(i int, coordinator string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := Config{Index: i, Count: n, Coordinator: coordinator, Scenario: []byte(testScenario), Dir: filepath.Join(dir, "shard", string(rune('0'+i))),
				JoinTimeout: 20 * time.Second, Listening: func(a string) { addr <- a }}
			if i == 0 {
				cfg.Dir = dir
			}
			results[i], errs[i] = Run(ctx, cfg, sc, engine.WithDrivers(kind))
		}()
	}
	start(0, "127.0.0.1:0")
	coordinator := <-addr
	for i := 1; i < n; i++ {
		start(i, coordinator)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
	}
	return results[0], dir, broker
}

// TestInProcessRun: three shards against one broker whose own counts are
// the ground truth: the merged sent, acked and received are the broker's
// accepted and delivered, lost is what it dropped and duplicates what it
// duplicated; every shard ran a third of the producers and consumers;
// the intervals and the shards section are filled.
func TestInProcessRun(t *testing.T) {
	res, _, broker := runShards(t, 3)
	st := broker.Stats()
	c := res.Counts
	if c.Sent != st["accepted"] || c.Acked != st["accepted"] || c.Sent == 0 {
		t.Errorf("sent %d acked %d, broker accepted %d", c.Sent, c.Acked, st["accepted"])
	}
	if c.Lost != st["dropped"] || c.Lost == 0 {
		t.Errorf("lost %d, broker dropped %d", c.Lost, st["dropped"])
	}
	if c.Duplicates != st["duplicated"] || c.Duplicates == 0 {
		t.Errorf("duplicates %d, broker duplicated %d", c.Duplicates, st["duplicated"])
	}
	if c.Received+c.Duplicates != st["delivered"] {
		t.Errorf("received %d + duplicates %d, broker delivered %d", c.Received, c.Duplicates, st["delivered"])
	}
	if res.LatencyUS.E2E.Count != c.Received {
		t.Errorf("e2e count %d, received %d", res.LatencyUS.E2E.Count, c.Received)
	}
	if res.DriverStats["accepted"] != st["accepted"] {
		t.Errorf("driver stats %v counted more than once", res.DriverStats)
	}
	sr := res.Shards
	if sr == nil || sr.Count != 3 || len(sr.Each) != 3 {
		t.Fatalf("shards %+v", sr)
	}
	var sent, recv int64
	for _, s := range sr.Each {
		if s.Producers != 1 || s.Consumers != 1 || s.Status != "complete" {
			t.Errorf("shard %+v", s)
		}
		sent += s.Sent
		recv += s.Received
	}
	if sent != c.Sent || recv != c.Received {
		t.Errorf("shards' sent %d received %d, run's %d and %d (no message went to two shards here)", sent, recv, c.Sent, c.Received)
	}
	if sr.StartSkewMS > 50 {
		t.Errorf("start skew %.1fms in one process", sr.StartSkewMS)
	}
	if len(res.Intervals) < 2 {
		t.Fatalf("%d intervals", len(res.Intervals))
	}
	var ivSent int64
	for _, iv := range res.Intervals {
		ivSent += iv.Counts.Sent
	}
	if ivSent != c.Sent {
		t.Errorf("intervals sent %d, run %d", ivSent, c.Sent)
	}
	if res.Verdict != report.Pass || res.Incomplete {
		t.Errorf("verdict %s incomplete %v: %+v", res.Verdict, res.Incomplete, res.Thresholds)
	}
}

// TestMergeReproduces: spate merge's function, on the coordinator's
// directory, gives the coordinator's results.json, byte for byte.
func TestMergeReproduces(t *testing.T) {
	res, dir, _ := runShards(t, 2)
	paths, err := FindArtifacts(dir)
	if err != nil {
		t.Fatal(err)
	}
	var arts []*Artifact
	for _, p := range paths {
		a, err := ReadArtifact(p)
		if err != nil {
			t.Fatal(err)
		}
		arts = append(arts, a)
	}
	again, err := Merge(arts)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(res)
	b, _ := json.Marshal(again)
	if string(a) != string(b) {
		t.Errorf("merge differs from the coordinator's results:\n%s\n%s", a, b)
	}
	// Not a whole run: refused.
	if _, err := Merge(arts[:1]); err == nil {
		t.Error("merged one shard of two")
	}
	if _, err := Merge([]*Artifact{arts[0], arts[0]}); err == nil {
		t.Error("merged a shard twice")
	}
	other := *arts[1]
	other.Meta.RunID = "0000000000000001"
	if _, err := Merge([]*Artifact{arts[0], &other}); err == nil {
		t.Error("merged shards of two runs")
	}
	if _, err := os.Stat(filepath.Join(dir, "shards", "1", stateFile)); err != nil {
		t.Errorf("the coordinator keeps no copy of shard 1's account: %v", err)
	}
}

// TestEstimate: the offset is that of the shortest round trip, within half
// of it, whatever the asymmetry.
func TestEstimate(t *testing.T) {
	const truth = 300_000_000 // the coordinator is 300ms ahead
	xs := []exchange{
		{t1: 0, t2: 5_000_000 + truth, t3: 5_100_000 + truth, t4: 9_000_000},       // 8.9ms round trip
		{t1: 100, t2: 300 + truth, t3: 400 + truth, t4: 900},                       // 0.7µs, asymmetric
		{t1: 1000, t2: 900 + truth, t3: 950 + truth, t4: 2000 - 2_000_000_000_000}, // a clock stepped back
	}
	o, ok := estimate(xs)
	if !ok {
		t.Fatal("no estimate")
	}
	if o.uncertainty != 350 || o.ns < truth-o.uncertainty || o.ns > truth+o.uncertainty {
		t.Errorf("offset %d ± %d, want %d within the best round trip", o.ns, o.uncertainty, truth)
	}
}

// TestRejoin: a shard that registers again before the start replaces its
// earlier self; after the start it is refused, so no process sends a
// producer's sequence numbers a second time.
func TestRejoin(t *testing.T) {
	co := newCoordinator(2, 2, 1, "digest", 7, clock{})
	req := registerRequest{Version: ProtocolVersion, Index: 1, Count: 2, Digest: "digest", Host: "a", Nonce: 1}
	if _, err := co.register(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	req.Nonce, req.Host = 2, "b"
	if _, err := co.register(context.Background(), req); err != nil {
		t.Fatalf("re-registering before the start: %v", err)
	}
	if _, err := co.sync(syncRequest{memberRequest: memberRequest{Index: 1, Nonce: 1}}, nil); err == nil {
		t.Error("the replaced process may still report")
	}
	co.t0 = 1
	req.Nonce = 3
	_, err := co.register(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "cannot rejoin a run in progress") {
		t.Errorf("re-registering after the start: %v", err)
	}
	for _, bad := range []registerRequest{
		{Version: ProtocolVersion + 1, Index: 1, Count: 2, Digest: "digest"},
		{Version: ProtocolVersion, Index: 1, Count: 3, Digest: "digest"},
		{Version: ProtocolVersion, Index: 2, Count: 2, Digest: "digest"},
		{Version: ProtocolVersion, Index: 1, Count: 2, Digest: "other"},
	} {
		if _, err := co.register(context.Background(), bad); err == nil {
			t.Errorf("registered %+v", bad)
		}
	}
}
