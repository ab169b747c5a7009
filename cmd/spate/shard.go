package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spate-dev/spate/report"
)

// shardFlags are `spate run`'s options for a distributed run.
type shardFlags struct {
	shard       string // i/N
	coordinator string // HOST:PORT
	listen      string // shard 0's listening address, when not coordinator
	joinTimeout time.Duration
	lostAfter   time.Duration
	// clockOffset shifts this process's clock, to test skew handling:
	// hidden, never for real runs.
	clockOffset time.Duration
	// linger keeps the coordinator serving the report after the run.
	linger time.Duration
}

// shardPlan is which shard this process is, once flags and environment
// are read; count 0 means a run in one process.
type shardPlan struct {
	index, count int
	coordinator  string
	// listen is where shard 0 listens (its API, and --linger's report):
	// --listen, or else the coordinator's address.
	listen string
}

// Environment variables read for a distributed run. JOB_COMPLETION_INDEX
// is what Kubernetes sets in each pod of an Indexed Job.
const (
	envShard       = "SPATE_SHARD"
	envShards      = "SPATE_SHARDS"
	envCoordinator = "SPATE_COORDINATOR"
	envListen      = "SPATE_LISTEN"
	envJobIndex    = "JOB_COMPLETION_INDEX"
	// envTestHosts maps host names to addresses for the coordinator's
	// address only, as NAME=IP[,NAME=IP...]: a test runs the command line
	// of a Kubernetes pod, which names the coordinator by its DNS name
	// (<job>-0.<service>), as local processes with that name on loopback;
	// an empty NAME maps the empty host of --listen :PORT.
	// Tests only; undocumented on purpose.
	envTestHosts = "SPATE_TEST_HOSTS"
)

// planShard reads --shard i/N and --coordinator, or else the environment:
// the index from SPATE_SHARD or JOB_COMPLETION_INDEX, the count from
// SPATE_SHARDS, the coordinator from SPATE_COORDINATOR. A flag wins over
// the environment.
func planShard(f shardFlags, getenv func(string) string) (shardPlan, error) {
	var p shardPlan
	index, count := "", getenv(envShards)
	if f.shard != "" {
		i, n, ok := strings.Cut(f.shard, "/")
		if !ok {
			return p, fmt.Errorf("--shard %q: want INDEX/COUNT, e.g. --shard 0/3", f.shard)
		}
		index, count = i, n
	} else if index = getenv(envShard); index == "" {
		index = getenv(envJobIndex)
	}
	p.coordinator = f.coordinator
	if p.coordinator == "" {
		p.coordinator = getenv(envCoordinator)
	}
	p.coordinator = mapTestHost(p.coordinator, getenv(envTestHosts))
	if p.listen = f.listen; p.listen == "" {
		p.listen = getenv(envListen)
	}
	if p.listen != "" {
		if _, port, err := net.SplitHostPort(p.listen); err != nil || port == "" {
			return shardPlan{}, fmt.Errorf("--listen %q: want [HOST]:PORT, e.g. :7070 for every interface", p.listen)
		}
		p.listen = mapTestHost(p.listen, getenv(envTestHosts))
	} else {
		p.listen = p.coordinator
	}
	if count == "" {
		if f.coordinator != "" {
			return p, fmt.Errorf("--coordinator is for a distributed run: give --shard INDEX/COUNT too")
		}
		return shardPlan{}, nil
	}
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 {
		return p, fmt.Errorf("shard count %q: want a whole number of at least 1", count)
	}
	if index == "" {
		return p, fmt.Errorf("%d shards, but no shard index: give --shard INDEX/%d, or set %s (Kubernetes sets %s)", n, n, envShard, envJobIndex)
	}
	i, err := strconv.Atoi(index)
	if err != nil || i < 0 || i >= n {
		return p, fmt.Errorf("shard index %q: want 0..%d", index, n-1)
	}
	if n == 1 { // one shard is a run in one process; --linger serves on the coordinator's address
		return shardPlan{coordinator: p.coordinator, listen: p.listen}, nil
	}
	if p.coordinator == "" {
		return p, fmt.Errorf("a distributed run needs the coordinator's address: --coordinator HOST:PORT (shard 0 listens there)")
	}
	if _, port, err := net.SplitHostPort(p.coordinator); err != nil || port == "" {
		return p, fmt.Errorf("--coordinator %q: want HOST:PORT, e.g. spate-0.spate:7070", p.coordinator)
	}
	if f.joinTimeout < 0 || f.lostAfter < 0 {
		return p, fmt.Errorf("--join-timeout and --lost-after must not be negative")
	}
	p.index, p.count = i, n
	return p, nil
}

// mapTestHost replaces the host of addr by the address hosts (NAME=IP,...)
// gives it, if any.
func mapTestHost(addr, hosts string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || hosts == "" {
		return addr
	}
	for _, kv := range strings.Split(hosts, ",") { // NAME=IP
		if name, ip, ok := strings.Cut(kv, "="); ok && strings.EqualFold(name, host) {
			return net.JoinHostPort(ip, port)
		}
	}
	return addr
}

// printShardSummary is what a shard other than the coordinator prints:
// its own part, and where the run's results are.
func printShardSummary(w io.Writer, p shardPlan, res *report.Results, dir string) {
	c := res.Counts
	fmt.Fprintf(w, "shard %d of %d (%s): sent %s, acked %s; its consumers received %s, %s duplicates\n",
		p.index, p.count, hostName(), report.GroupInt(c.Sent), report.GroupInt(c.Acked), report.GroupInt(c.Received), report.GroupInt(c.Duplicates))
	fmt.Fprintf(w, "the run's results are the coordinator's (%s); this shard's account: %s\n", p.coordinator, dir)
}

func hostName() string {
	h, _ := os.Hostname()
	return h
}
