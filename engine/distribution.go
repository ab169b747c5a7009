package engine

import (
	"context"
	"runtime"
	"time"

	"github.com/spate-dev/spate/accounting"
)

// Distribution joins a run to the other processes (shards) of one
// distributed run; package shards implements it. Shard i of n runs the
// producers and consumers whose id mod n is i, so the union of the
// shards' schedules is exactly the single-process schedule; the
// coordinator (shard 0) provisions the system under test, sets one start
// time for all, and decides when the run has drained. The engine calls
// Join, Start, Running, Ended and Drain, each once and in that order, from
// one goroutine (it may stop early, after an error); Failed and Backlog
// at any time.
type Distribution interface {
	// Shard says which shard this process is: index in [0, count).
	Shard() (index, count int)
	// Join blocks until this process may open its driver, and says
	// whether to open it attached (drivers.Env.Attach): on a shard other
	// than the coordinator, which provisions the system, and returns once
	// it has.
	Join(ctx context.Context) (attach bool, err error)
	// Start reports that this process has opened its driver and made its
	// producers and consumers, and blocks until every shard has: it
	// returns the local instant the traffic starts and the run clock's
	// reading at that instant, Unix ns on the coordinator's clock (T0), so
	// that every shard stamps intended times on one clock.
	Start(ctx context.Context) (at time.Time, runNS int64, err error)
	// Running hands over this process's tracker as its traffic starts
	// (at the instant Start returned), for live aggregation.
	Running(t *accounting.Tracker)
	// Ended says this process's traffic has ended.
	Ended()
	// Drain blocks, once this process's producers are closed (every
	// outcome reported), until the whole run has drained: every shard's
	// producers closed, no acked message still owed to a subscription,
	// and no delivery anywhere for quiet; or until ctx is done.
	Drain(ctx context.Context, quiet time.Duration)
	// Backlog is the run's backlog as last known: deliveries owed to
	// subscriptions for acked messages, over every shard.
	Backlog() int64
	// Failed tells the other shards this one failed at runtime, so the
	// run stops.
	Failed(err error)
}

// WithDistribution makes the run one shard of a distributed run (nil: a
// single process).
func WithDistribution(d Distribution) Option { return func(c *config) { c.dist = d } }

// owned returns the ids in [0, n) that shard index of count runs.
func owned(n, index, count int) []int {
	var ids []int
	for id := index; id < n; id += max(count, 1) {
		ids = append(ids, id)
	}
	return ids
}

// sleepUntil waits until the local instant at, or until ctx is done. A
// timer can fire late by a scheduler tick or more, which would show as
// skew between shards' starts; the last stretch is spent yielding instead.
func sleepUntil(ctx context.Context, at time.Time) error {
	if d := time.Until(at) - startSpin; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	for time.Now().Before(at) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		runtime.Gosched()
	}
	return ctx.Err()
}

// startSpin is how long before a distributed run's start a shard stops
// sleeping and yields until the instant.
const startSpin = 2 * time.Millisecond
