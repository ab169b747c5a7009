package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/scenarios"
)

// EmbeddedDriver is the driver on the embedded cluster. Beyond Driver it
// can restart brokers, move partition leaders and make brokers answer with
// protocol errors, since spate runs the cluster itself. Its methods are safe
// for concurrent use.
type EmbeddedDriver struct {
	*Driver
}

var (
	_ drivers.BrokerRestarter = (*EmbeddedDriver)(nil)
	_ drivers.LeaderMover     = (*EmbeddedDriver)(nil)
	_ drivers.ProtocolFaulter = (*EmbeddedDriver)(nil)
)

// Brokers lists the embedded brokers' ids: 0 to embedded.brokers-1.
func (e *EmbeddedDriver) Brokers() []int { return e.embed.nodes() }

// BrokerAddrs are the embedded brokers' addresses, by id.
func (e *EmbeddedDriver) BrokerAddrs() []string {
	e.embed.mu.Lock()
	defer e.embed.mu.Unlock()
	return e.embed.addrs()
}

// RestartBroker stops broker id, or every broker with drivers.AllBrokers,
// waits down, starts it again on the same port and returns once it accepts
// connections. Data is kept. If ctx ends during the down time, the brokers
// come back at once and ctx's error is returned.
//
// One broker (of several): drivers.Kill resets its connections first, so
// requests in flight on it are never answered, then takes it out of the
// cluster; drivers.Graceful takes it out first (its partitions get other
// leaders, as in a controlled shutdown) and closes its connections after.
// Either way its partitions get new leaders among the other brokers, and
// again when it returns. The data stays: kfake's brokers share one log.
//
// Every broker (or the only one): drivers.Graceful stops the cluster
// cleanly, writing its state; drivers.Kill resets every connection and
// restarts from a copy of the data directory taken at that moment, before
// the cluster's shutdown writes anything: what kill -9 leaves, with the
// records the operating system already holds (as on a real broker, unless
// embedded.sync-writes is set, appended records are not fsynced).
// Protocol faults still in force are installed again after the restart.
func (e *EmbeddedDriver) RestartBroker(ctx context.Context, id int, mode drivers.RestartMode, down time.Duration) error {
	return e.embed.restart(ctx, id, mode, down)
}

// MoveLeaders gives every partition of the topic the next broker as its
// leader (broker ids in a ring), so every partition changes leader when
// there are two brokers or more; with one it does nothing. It returns once
// the brokers answer with the new leaders: clients find them on their next
// produce or fetch (NOT_LEADER_FOR_PARTITION) within metadata-min-age.
func (e *EmbeddedDriver) MoveLeaders(context.Context) error {
	c := e.embed
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	n := int32(len(c.ports))
	if n < 2 {
		return nil
	}
	info := c.c.PartitionInfos(e.opts.Topic)
	for _, pi := range info {
		if pi == nil {
			continue
		}
		lead := c.c.LeaderFor(e.opts.Topic, pi.Partition)
		next := (lead + 1) % n
		if lead < 0 {
			next = pi.Partition % n
		}
		if err := c.c.MoveTopicPartition(e.opts.Topic, pi.Partition, next); err != nil {
			return fmt.Errorf("kafka: moving the leader of partition %d: %w", pi.Partition, err)
		}
		e.stats.LeaderMoves.Add(1)
	}
	return nil
}

// InjectFault makes the brokers answer matching requests with a protocol
// error, until remove is called or Count requests were answered (Count 0:
// until remove). Request names a request kind in kebab case, as Kafka's
// protocol guide names them without spaces: produce, fetch, list-offsets,
// metadata, offset-commit (or commit), offset-fetch, find-coordinator,
// join-group, heartbeat, leave-group, sync-group, init-producer-id,
// add-partitions-to-txn, end-txn, txn-offset-commit, ...; "all" fails
// every request. Error is a protocol error name such as REQUEST_TIMED_OUT,
// NOT_LEADER_FOR_PARTITION (also NOT_LEADER_OR_FOLLOWER),
// UNKNOWN_TOPIC_OR_PARTITION, COORDINATOR_NOT_AVAILABLE.
//
// A fault is answered before the broker acts, except REQUEST_TIMED_OUT (and
// NOT_ENOUGH_REPLICAS_AFTER_APPEND on produce) on requests a real broker
// can time out after doing the work: produce, offset-commit, create-topics
// and the like. A timed-out produce is appended and the client retries it,
// so producers without idempotence write real duplicates, and idempotent
// ones are deduplicated by the broker.
func (e *EmbeddedDriver) InjectFault(_ context.Context, f drivers.ProtocolFault) (func(), error) {
	keys, err := requestKeys(f.Request)
	if err != nil {
		return nil, err
	}
	kerrErr, err := protocolError(f.Error)
	if err != nil {
		return nil, err
	}
	if f.Count < 0 {
		return nil, fmt.Errorf("kafka: fault count %d is negative; 0 means until removed", f.Count)
	}
	spec := kfake.Fault{Keys: keys, Err: kerrErr, Count: f.Count}
	if f.Count == 0 {
		spec.Count = -1
	}
	c := e.embed
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	ft := &fault{spec: spec, h: c.c.Fault(spec)}
	c.faults = append(c.faults, ft)
	e.stats.FaultsInjected.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			ft.removed = true
			if !c.closed {
				ft.h.Remove()
			}
		})
	}, nil
}

// requestNames maps normalized request names to their keys.
var requestNames = func() map[string]kmsg.Key {
	m := map[string]kmsg.Key{}
	for k := int16(0); k <= kmsg.MaxKey; k++ {
		name := kmsg.NameForKey(k)
		if name == "" || name == "Unknown" {
			continue
		}
		m[normalize(kebab(name))] = kmsg.Key(k)
	}
	m["commit"] = kmsg.OffsetCommit
	return m
}()

// requestKeys parses a fault's request name; "all" or "" is every request.
func requestKeys(name string) ([]kmsg.Key, error) {
	n := normalize(name)
	if n == "" || n == "all" || n == "any" {
		return nil, nil
	}
	if k, ok := requestNames[n]; ok {
		return []kmsg.Key{k}, nil
	}
	return nil, fmt.Errorf("kafka: unknown request %q for a protocol fault; valid: all, %s", name, strings.Join(RequestNames(), ", "))
}

// RequestNames lists the request names InjectFault accepts, besides "all"
// and the alias "commit".
func RequestNames() []string {
	var out []string
	for k := int16(0); k <= kmsg.MaxKey; k++ {
		if name := kmsg.NameForKey(k); name != "" && name != "Unknown" {
			out = append(out, kebab(name))
		}
	}
	return out
}

// protocolError parses a protocol error name.
func protocolError(name string) (*kerr.Error, error) {
	want := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(name), "-", "_"))
	if want == "NOT_LEADER_OR_FOLLOWER" {
		return kerr.NotLeaderForPartition, nil
	}
	if want == "" {
		return nil, errors.New("kafka: a protocol fault needs an error name such as REQUEST_TIMED_OUT")
	}
	for code := int16(-1); code < 1000; code++ {
		e := kerr.TypedErrorForCode(code)
		if e != nil && e.Message == want && (e != kerr.UnknownServerError || code == -1) {
			return e, nil
		}
	}
	return nil, fmt.Errorf("kafka: unknown protocol error %q; use a name from the protocol guide such as REQUEST_TIMED_OUT or NOT_LEADER_FOR_PARTITION", name)
}

// kebab turns a protocol name (OffsetCommit, SASLHandshake, DescribeACLs)
// into kebab case (offset-commit, sasl-handshake, describe-acls).
func kebab(name string) string {
	r := []rune(name)
	var b strings.Builder
	for i, c := range r {
		if i > 0 && unicode.IsUpper(c) {
			prev := r[i-1]
			nextLower := i+1 < len(r) && unicode.IsLower(r[i+1])
			plural := i+1 < len(r) && r[i+1] == 's' && (i+2 == len(r) || unicode.IsUpper(r[i+2]))
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower && !plural) {
				b.WriteByte('-')
			}
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}

// normalize folds case and drops separators, so offset-commit,
// offset_commit and OffsetCommit are one name.
func normalize(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.NewReplacer("-", "", "_", "", " ", "").Replace(s)
}

// Abilities lists what a driver opened with o can do, for scenario
// validation (drivers.AbilityLister): on the embedded cluster restart
// brokers, move leaders and fail requests at the broker; everywhere crash
// consumers and dial through Env.Dial.
//
// Consumers with isolation read_committed have AbilityReadCommitted (a
// delivered record of an aborted transaction is an aborted read), and any
// cluster can run the built-in pipeline processor (AbilityProcessor) and
// serve several subscriptions, a consumer group each (AbilityFanOut). An
// external cluster can be shared by the shards of a distributed run
// (AbilityShared).
func (o Options) Abilities() []string {
	a := []string{scenarios.AbilityConsumerCrash, scenarios.AbilityDial, scenarios.AbilityProcessor, scenarios.AbilityFanOut}
	if o.IsEmbedded() {
		a = append(a, scenarios.AbilityBrokerRestart, scenarios.AbilityLeaderMove, scenarios.AbilityProtocolError)
	} else {
		a = append(a, scenarios.AbilityShared)
	}
	if o.Isolation == ReadCommitted {
		a = append(a, scenarios.AbilityReadCommitted)
	}
	return a
}

// CheckPipelineOutput checks a pipeline from o (its input) to output, both
// Kafka (scenarios.PipelineChecker): on one cluster the output needs a
// topic of its own, and transactions belong to the input, where spate's
// producers write.
func (o Options) CheckPipelineOutput(output any) error {
	out, ok := asOptions(output)
	if !ok {
		return nil
	}
	var problems []string
	sameCluster := out.IsEmbedded() || slices.Equal(out.Brokers, o.Brokers)
	if sameCluster && out.Topic == o.Topic {
		problems = append(problems, fmt.Sprintf("the output's topic is the input's (%q): the processor would read its own output; give the output a topic of its own, e.g. topic: %s-out", o.Topic, o.Topic))
	}
	if out.Transactions != nil {
		problems = append(problems, "transactions apply to spate's producers, which write to the input; move the transactions block to the input")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// asOptions returns options (a Kind.Options result) as Options.
func asOptions(options any) (Options, bool) {
	switch v := options.(type) {
	case Options:
		return v, true
	case *Options:
		if v != nil {
			return *v, true
		}
	case nil:
		return DefaultOptions(), true
	}
	return Options{}, false
}

var (
	_ drivers.AbilityLister     = Options{}
	_ scenarios.PipelineChecker = Options{}
)

// IsEmbedded reports whether o starts the in-process cluster.
func (o Options) IsEmbedded() bool { return len(o.Brokers) == 0 }

// BrokerIDs lists the embedded cluster's brokers, 0 to embedded.brokers-1,
// and none on an external cluster (drivers.BrokerLister).
func (o Options) BrokerIDs() []int {
	if !o.IsEmbedded() {
		return nil
	}
	ids := make([]int, o.Embedded.Brokers)
	for i := range ids {
		ids[i] = i
	}
	return ids
}
