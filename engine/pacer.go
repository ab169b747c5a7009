package engine

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/scenarios"
)

// producerLoop paces one producer. The schedule is open: each message has an
// intended time fixed in advance, and when the producer falls behind it sends
// everything already due at once rather than slowing the schedule down, so
// the latency clock (which starts at the intended time) sees every stall.
type producerLoop struct {
	t        *traffic
	id       int
	prod     drivers.Producer
	sched    *scenarios.Schedule
	comp     *composer
	seq      uint64       // next sequence number
	inflight atomic.Int64 // sent, outcome not yet reported
	wake     chan struct{}
	timer    *time.Timer
	batch    []drivers.Message
	dues     []int64
	unsent   int64 // scheduled but never sent (interrupted or hopelessly late)
}

// newProducerLoop makes producer id's loop over its share of tr's
// timeline, composing messages as sc says for run runID.
func newProducerLoop(tr *traffic, sc *scenarios.Scenario, runID uint64, id int) *producerLoop {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &producerLoop{
		t:     tr,
		id:    id,
		sched: tr.tl.NewSchedule(id, tr.producers),
		comp:  newComposer(sc, runID, id),
		wake:  make(chan struct{}, 1),
		timer: t,
		batch: make([]drivers.Message, 0, maxBatch),
		dues:  make([]int64, 0, maxBatch),
	}
}

// ack is the producer's AckFunc.
func (pl *producerLoop) ack(results []drivers.Result) {
	pl.t.tracker.Acked(results, pl.t.now())
	pl.inflight.Add(-int64(len(results)))
	select {
	case pl.wake <- struct{}{}:
	default:
	}
}

// run sends the producer's share of the schedule until it ends or ctx is done.
func (pl *producerLoop) run(ctx context.Context) error {
	due, ok := pl.sched.Next()
	for {
		if !ok {
			seg, more := pl.sched.Segment()
			if !more {
				// The end of the profile, or of what a find-max search
				// has decided so far: wait for it to grow or close.
				wait := pl.sched.Pending()
				if wait == nil {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-wait:
				}
				due, ok = pl.sched.Next()
				continue
			}
			if seg.Max {
				if err := pl.runMax(ctx, seg); err != nil {
					return err
				}
				pl.sched.Skip()
			}
			// Else a find-max search appended a step after Next looked:
			// its messages are this producer's to send, not to skip.
			due, ok = pl.sched.Next()
			continue
		}
		if pl.sleepUntil(ctx, due) != nil {
			pl.countUnsent(due, math.MaxInt64) // the rest of the schedule is cut off
			return nil
		}
		now := pl.t.elapsed()
		if end := pl.t.tl.Duration(); now > end+lateGrace {
			pl.countUnsent(due, end+lateGrace)
			return nil
		}
		pl.dues = pl.dues[:0]
		for ok && due <= now && len(pl.dues) < maxBatch {
			pl.dues = append(pl.dues, pl.t.baseNS+int64(due))
			due, ok = pl.sched.Next()
		}
		if err := pl.send(ctx); err != nil {
			return err
		}
	}
}

// send composes and sends the messages whose intended times are in pl.dues.
func (pl *producerLoop) send(ctx context.Context) error {
	pl.batch = pl.comp.compose(pl.batch[:0], pl.seq, pl.dues)
	pl.seq += uint64(len(pl.batch))
	pl.t.tracker.Sent(uint32(pl.id), pl.seq)
	pl.addPoison(pl.batch)
	setSent(pl.batch, pl.t.now())
	pl.batch = pl.addDuplicates(pl.batch)
	pl.inflight.Add(int64(len(pl.batch)))
	if err := pl.prod.Send(ctx, pl.batch); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// sleepUntil waits until the run clock reaches due, or ctx is done.
func (pl *producerLoop) sleepUntil(ctx context.Context, due time.Duration) error {
	d := due - pl.t.elapsed()
	if d <= 0 {
		return ctx.Err()
	}
	pl.timer.Reset(d)
	select {
	case <-ctx.Done():
		pl.timer.Stop()
		return ctx.Err()
	case <-pl.timer.C:
		return nil
	}
}

// countUnsent counts the scheduled messages due before limit that will not
// be sent, starting with due, arithmetically: however many there are.
func (pl *producerLoop) countUnsent(due, limit time.Duration) {
	if due < limit {
		pl.unsent++
	}
	pl.unsent += pl.sched.SkipBefore(limit)
}

// runMax sends as fast as outcomes come back, keeping this producer's share
// of the phase's in-flight window full, until the phase ends.
func (pl *producerLoop) runMax(ctx context.Context, seg scenarios.Segment) error {
	n := pl.t.producers
	window := int64(seg.InFlight / n)
	if pl.id < seg.InFlight%n {
		window++
	}
	window = max(window, 1)
	end := seg.Start + seg.Dur
	for {
		el := pl.t.elapsed()
		if ctx.Err() != nil || el >= end {
			return nil
		}
		room := window - pl.inflight.Load()
		if room <= 0 {
			pl.timer.Reset(end - el)
			select {
			case <-ctx.Done():
			case <-pl.wake:
			case <-pl.timer.C:
			}
			pl.timer.Stop()
			continue
		}
		now := pl.t.now()
		pl.dues = pl.dues[:0]
		for i := int64(0); i < min(room, maxBatch); i++ {
			pl.dues = append(pl.dues, now)
		}
		if err := pl.send(ctx); err != nil {
			return err
		}
	}
}
