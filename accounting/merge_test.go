package accounting

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/spate-dev/spate/drivers"
)

// shardedRun feeds one run to a single tracker (one) and to the trackers
// of its shards, as a distributed run would: each producer's sends and
// outcomes go to the shard that runs it (p mod shards), each delivery to
// the shard whose consumer got it. The known answers: 4 producers send
// 0..n-1; every 10th message fails, every 13th is never confirmed; of
// the confirmed, every 17th is lost in subscription 0; every 7th message
// is delivered a second time to another shard (a rebalance: a duplicate,
// and a second first-delivery latency recorded by that shard), every 11th
// a second time to the same shard; and shard 2 receives seq n+5 of
// producer 0, never sent (malformed).
func shardedRun(t *testing.T, n uint64) (one *Tracker, shards []*Tracker, crossDups int64) {
	t.Helper()
	const producers, subs, nshards = 4, 2, 3
	one = NewTracker(testRunID, producers, 0)
	one.SetSubscriptions(subs)
	for i := range nshards {
		tr := NewTracker(testRunID, producers, 0)
		tr.SetSubscriptions(subs)
		tr.SetShard(i, nshards)
		shards = append(shards, tr)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const now = int64(time.Hour) // after every message's intended time
	for p := uint32(0); p < producers; p++ {
		owner := shards[int(p)%nshards]
		one.Sent(p, n)
		owner.Sent(p, n)
		var outcomes []drivers.Result
		for s := uint64(0); s < n; s++ {
			switch {
			case s%10 == 0:
				outcomes = append(outcomes, outcome(p, s, errors.New("refused")))
			case s%13 == 0:
			default:
				outcomes = append(outcomes, ack(p, s))
			}
		}
		one.Acked(outcomes, now)
		owner.Acked(outcomes, now)
		for sub := range subs {
			for s := uint64(0); s < n; s++ {
				if s%10 == 0 || (sub == 0 && s%17 == 0 && s%13 != 0) {
					continue // failed, or lost
				}
				d := []drivers.Delivery{delivery(p, s, int32(s%5))}
				first := rng.IntN(nshards)
				one.Received(sub, d, now)
				shards[first].Received(sub, d, now)
				if s%7 == 0 {
					one.Received(sub, d, now)
					shards[(first+1)%nshards].Received(sub, d, now)
					crossDups++
				}
				if s%11 == 0 {
					one.Received(sub, d, now)
					shards[first].Received(sub, d, now)
				}
			}
		}
	}
	bogus := []drivers.Delivery{delivery(0, n+5, 0)}
	one.Received(0, bogus, now)
	shards[2].Received(0, bogus, now)
	return one, shards, crossDups
}

// TestMergeEqualsOneProcess: the shards' states merged give what one
// process counted, figure by figure (reordering aside: every stream here
// is in order), and the e2e histogram holds one value per first delivery
// on each shard: the run's received, plus the cross-shard duplicates,
// plus the delivery of a message never sent that a shard not running its
// producer could not refuse (the merge counts it malformed).
func TestMergeEqualsOneProcess(t *testing.T) {
	const n = 150_000 // more than two pages per producer
	one, shards, crossDups := shardedRun(t, n)
	var states []*State
	for _, tr := range shards {
		s, err := tr.State()
		if err != nil {
			t.Fatal(err)
		}
		// Through the file format, as spate merge reads it.
		var b bytes.Buffer
		if _, err := s.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		back, err := ReadState(&b, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, back)
	}
	merged, err := Merge(states...)
	if err != nil {
		t.Fatal(err)
	}
	want, got := one.Summary(), merged.Summary()
	if want.Counts.Malformed != 1 || want.Counts.Lost == 0 || want.Counts.Duplicates == 0 || want.Counts.Failed == 0 || want.Counts.Unconfirmed == 0 {
		t.Fatalf("the run lacks the cases it should have: %+v", want.Counts)
	}
	wantCounts(t, "merged counts", got.Counts, want.Counts)
	if e2e := got.Histograms[E2E].TotalCount(); e2e != want.Counts.Received+crossDups+1 {
		t.Errorf("merged e2e count %d, want received %d + cross-shard duplicates %d + 1", e2e, want.Counts.Received, crossDups)
	}
	if pub := got.Histograms[Publish].TotalCount(); pub != want.Counts.Acked {
		t.Errorf("merged publish count %d, want acked %d", pub, want.Counts.Acked)
	}
	if got.Examples[0].Kind != want.Examples[0].Kind || len(got.Examples) != len(want.Examples) {
		t.Errorf("examples: %d starting %+v, want %d starting %+v", len(got.Examples), got.Examples[0], len(want.Examples), want.Examples[0])
	}
	// A merge of one state gives the tracker's own account back.
	s, err := one.State()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Merge(s)
	if err != nil {
		t.Fatal(err)
	}
	wantCounts(t, "one state merged", back.Summary().Counts, want.Counts)
}

// TestDeltaUnionBacklog: a union fed only the shards' deltas, taken at
// several moments of the run, knows the run's backlog and received
// exactly, as the coordinator needs to end the drain.
func TestDeltaUnionBacklog(t *testing.T) {
	const n = 70_000
	one, shards, _ := shardedRun(t, n)
	union := NewTracker(testRunID, 4, 0)
	union.SetSubscriptions(2)
	for round := 0; round < 2; round++ { // a second round of deltas is empty
		for _, tr := range shards {
			if err := union.MergeSets(tr.Delta()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, want := union.Backlog(), one.Backlog(); got != want || want == 0 {
		t.Errorf("union backlog %d, want %d (not 0)", got, want)
	}
	// The malformed delivery is in the union until the final merge.
	if got, want := union.Live().Received, one.Live().Received+1; got != want {
		t.Errorf("union received %d, want %d", got, want)
	}
	if got, want := union.Live().Acked, one.Live().Acked; got != want {
		t.Errorf("union acked %d, want %d", got, want)
	}
	for _, tr := range shards {
		if d := tr.Delta(); len(d.Producers[0].Acked)+len(d.Producers[0].Received[0]) != 0 {
			t.Errorf("a delta after a delta holds pages: %d acked, %d received", len(d.Producers[0].Acked), len(d.Producers[0].Received[0]))
		}
	}
}

// TestMergeRefuses: states of another run or shape do not merge, nor
// malformed pages, nor an oversized or foreign file.
func TestMergeRefuses(t *testing.T) {
	tr := NewTracker(testRunID, 2, 0)
	tr.Sent(0, 10)
	good, err := tr.State()
	if err != nil {
		t.Fatal(err)
	}
	other := *good
	other.RunID++
	shape := *good
	shape.Producers = shape.Producers[:1]
	bad := *good
	bad.Producers = []ProducerState{{Acked: []Page{{Index: 0, Offset: pageWords - 2, Bits: make([]uint64, 3)}}}, {}}
	for name, s := range map[string]*State{"run": &other, "shape": &shape, "page": &bad} {
		if _, err := Merge(good, s); err == nil {
			t.Errorf("%s: merged", name)
		}
	}
	var b bytes.Buffer
	if _, err := good.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadState(bytes.NewReader(b.Bytes()), 64); err == nil {
		t.Error("read a state over the size limit")
	}
	if _, err := ReadState(bytes.NewReader([]byte("{}")), 1<<20); err == nil {
		t.Error("read a state from JSON")
	}
}

// TestForeignProducers: a shard's tracker accepts deliveries of producers
// other shards run, which one process would check against what was sent,
// up to a bound; its own producers' unsent messages stay malformed.
func TestForeignProducers(t *testing.T) {
	tr := NewTracker(testRunID, 3, 0)
	tr.SetShard(1, 3) // runs producer 1
	tr.Sent(1, 5)
	tr.Received(0, []drivers.Delivery{delivery(0, 100, 0), delivery(2, 7, 0), delivery(1, 4, 0), delivery(1, 5, 0), delivery(0, maxForeignSeq, 0)}, now)
	c := tr.Live()
	if c.Received != 3 || c.Malformed != 2 {
		t.Errorf("received %d malformed %d, want 3 and 2", c.Received, c.Malformed)
	}
}

// TestClearFrom: clearing from a sequence number removes exactly the
// members at or above it.
func TestClearFrom(t *testing.T) {
	for _, from := range []uint64{0, 1, 63, 64, 65, 1 << 16, 1<<16 + 3, 200_000} {
		var s seqset
		for _, seq := range []uint64{0, 1, 62, 63, 64, 65, 127, 1<<16 - 1, 1 << 16, 1<<16 + 3, 150_000, 199_999, 200_000, 250_000} {
			s.add(seq)
		}
		before := s.len()
		var kept int64
		for seq := uint64(0); seq < 260_000; seq++ {
			if s.has(seq) && seq < from {
				kept++
			}
		}
		if n := s.clearFrom(from); n != before-kept || s.len() != kept {
			t.Errorf("clearFrom(%d) = %d, left %d; want %d and %d", from, n, s.len(), before-kept, kept)
		}
		for seq := from; seq < 260_000; seq++ {
			if s.has(seq) {
				t.Fatalf("clearFrom(%d) left %d", from, seq)
			}
		}
	}
}
