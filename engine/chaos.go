package engine

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/chaos"
	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
)

// dupState is the chaos duplicate injection shared by all producers: the
// fraction of messages to re-send and how many were.
type dupState struct {
	fraction atomic.Uint64 // math.Float64bits
	injected atomic.Int64
}

// poisonState is the chaos poison injection shared by all producers.
type poisonState struct {
	fraction atomic.Uint64 // math.Float64bits
	injected atomic.Int64
}

// Poison implements chaos.Producers.
func (t *traffic) Poison(fraction float64) { t.poison.fraction.Store(math.Float64bits(fraction)) }

// Poisoned implements chaos.Producers.
func (t *traffic) Poisoned() int64 { return t.poison.injected.Load() }

// addPoison flags the messages chosen to be poison: spate's consumers fail
// to process them, as an application meets a message it cannot handle.
func (pl *producerLoop) addPoison(batch []drivers.Message) {
	f := math.Float64frombits(pl.t.poison.fraction.Load())
	if f <= 0 {
		return
	}
	var n int64
	for i := range batch {
		if pl.comp.rng.Float64() < f {
			batch[i].Stamp.Flags |= stamp.FlagPoison
			stamp.SetFlags(batch[i].Head, stamp.FlagPoison)
			n++
		}
	}
	pl.t.poison.injected.Add(n)
}

// Duplicate implements chaos.Producers.
func (t *traffic) Duplicate(fraction float64) { t.dup.fraction.Store(math.Float64bits(fraction)) }

// Duplicated implements chaos.Producers.
func (t *traffic) Duplicated() int64 { return t.dup.injected.Load() }

// addDuplicates appends to batch a copy of each message chosen for re-send:
// same stamp, same body, as a client retry would send it.
func (pl *producerLoop) addDuplicates(batch []drivers.Message) []drivers.Message {
	f := math.Float64frombits(pl.t.dup.fraction.Load())
	if f <= 0 {
		return batch
	}
	n := len(batch)
	for i := 0; i < n; i++ {
		if pl.comp.rng.Float64() < f {
			batch = append(batch, batch[i])
		}
	}
	pl.t.dup.injected.Add(int64(len(batch) - n))
	return batch
}

// slicer feeds the chaos runner a slice of e2e latencies and the backlog
// every chaos.SliceWidth, for recovery times finer than report intervals.
type slicer struct {
	quit, done chan struct{}
}

func (r *run) startSlices() *slicer {
	s := &slicer{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(chaos.SliceWidth)
		defer t.Stop()
		fresh := accounting.NewSliceHistogram()
		for {
			select {
			case <-s.quit:
				return
			case <-t.C:
				filled, backlog, peak := r.tracker.SwapSlice(fresh)
				if r.dist != nil {
					// This shard's backlog is not the run's: a message
					// acked here is often received on another shard.
					backlog = r.dist.Backlog()
					peak = backlog
				}
				fresh = r.chaos.Slice(filled, backlog, peak)
			}
		}
	}()
	return s
}

func (s *slicer) stop() {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	<-s.done
}
