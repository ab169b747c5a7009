package main

import (
	"strings"
	"testing"
)

// TestPlanShard: the shard comes from --shard or the environment, the
// flag winning; Kubernetes' JOB_COMPLETION_INDEX gives the index; every
// mistake is refused with what to give instead.
func TestPlanShard(t *testing.T) {
	for _, c := range []struct {
		name  string
		flags shardFlags
		env   map[string]string
		want  shardPlan
		err   string
	}{
		{name: "none", want: shardPlan{}},
		{name: "flags", flags: shardFlags{shard: "2/3", coordinator: "c:7070"}, want: shardPlan{2, 3, "c:7070", "c:7070"}},
		{name: "env", env: map[string]string{envShard: "1", envShards: "4", envCoordinator: "c:1"}, want: shardPlan{1, 4, "c:1", "c:1"}},
		{name: "kubernetes", env: map[string]string{envJobIndex: "0", envShards: "2"}, flags: shardFlags{coordinator: "job-0.svc:7070"}, want: shardPlan{0, 2, "job-0.svc:7070", "job-0.svc:7070"}},
		{name: "flag wins", flags: shardFlags{shard: "0/2", coordinator: "c:1"}, env: map[string]string{envShard: "1", envShards: "5"}, want: shardPlan{0, 2, "c:1", "c:1"}},
		{name: "one shard", flags: shardFlags{shard: "0/1"}, want: shardPlan{}},
		{name: "one shard lingering", flags: shardFlags{shard: "0/1", coordinator: "job-0.job:7070"}, want: shardPlan{0, 0, "job-0.job:7070", "job-0.job:7070"}},
		{name: "test hosts", flags: shardFlags{shard: "1/2", coordinator: "job-0.job:7070"}, env: map[string]string{envTestHosts: "other=10.0.0.1,JOB-0.job=127.0.0.1"}, want: shardPlan{1, 2, "127.0.0.1:7070", "127.0.0.1:7070"}},
		{name: "listen", flags: shardFlags{shard: "0/2", coordinator: "job-0.job:7070", listen: ":7070"}, want: shardPlan{0, 2, "job-0.job:7070", ":7070"}},
		{name: "listen from env", flags: shardFlags{shard: "0/2", coordinator: "c:1"}, env: map[string]string{envListen: "127.0.0.1:1"}, want: shardPlan{0, 2, "c:1", "127.0.0.1:1"}},
		{name: "listen test host", flags: shardFlags{shard: "0/2", coordinator: "job-0.job:7070", listen: ":7070"}, env: map[string]string{envTestHosts: "job-0.job=127.0.0.1,=127.0.0.1"}, want: shardPlan{0, 2, "127.0.0.1:7070", "127.0.0.1:7070"}},
		{name: "bad listen", flags: shardFlags{shard: "0/2", coordinator: "c:1", listen: "7070"}, err: "want [HOST]:PORT"},
		{name: "no slash", flags: shardFlags{shard: "2"}, err: "want INDEX/COUNT"},
		{name: "index too big", flags: shardFlags{shard: "3/3", coordinator: "c:1"}, err: "want 0..2"},
		{name: "bad count", flags: shardFlags{shard: "0/x"}, err: `shard count "x"`},
		{name: "no index", env: map[string]string{envShards: "3"}, err: "no shard index"},
		{name: "no coordinator", flags: shardFlags{shard: "0/3"}, err: "needs the coordinator's address"},
		{name: "bad coordinator", flags: shardFlags{shard: "0/3", coordinator: "nohost"}, err: "want HOST:PORT"},
		{name: "coordinator alone", flags: shardFlags{coordinator: "c:1"}, err: "give --shard"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := planShard(c.flags, func(k string) string { return c.env[k] })
			switch {
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("error %v, want one containing %q", err, c.err)
			case c.err == "" && err != nil:
				t.Errorf("error %v", err)
			case c.err == "" && got != c.want:
				t.Errorf("plan %+v, want %+v", got, c.want)
			}
		})
	}
}
