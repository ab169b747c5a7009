package accounting

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/spate-dev/spate/accounting/accountingtest"
	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
)

// The test run's fixtures (accountingtest).
const testRunID = accountingtest.RunID

var (
	msg       = accountingtest.Msg
	encode    = accountingtest.Encode
	delivery  = accountingtest.Delivery
	ack       = accountingtest.Ack
	outcome   = accountingtest.Outcome
	recordOne = accountingtest.RecordOne
)

// seqs returns [from, to).
func seqs(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s < to; s++ {
		out = append(out, s)
	}
	return out
}

func inSet(list []uint64) map[uint64]bool {
	m := map[uint64]bool{}
	for _, s := range list {
		m[s] = true
	}
	return m
}

// now is the receive and ack time used by the accounting tests.
const now = accountingtest.Now

func wantCounts(t *testing.T, what string, got, want Counts) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func wantBacklog(t *testing.T, tr *Tracker, want int64, when string) {
	t.Helper()
	if got := tr.Backlog(); got != want {
		t.Errorf("backlog %s: %d, want %d", when, got, want)
	}
}

// TestTrackerKnownAnswers builds a run by hand: two producers send
// sequence numbers 0..9999; producer 0 has failures, unconfirmed sends,
// losses, duplicates, reordering, redeliveries, and both see foreign and
// malformed deliveries. Every figure is known in advance.
func TestTrackerKnownAnswers(t *testing.T) {
	tr := NewTracker(testRunID, 2, 0)
	tr.Sent(0, 4000)
	tr.Sent(0, 10000)
	tr.Sent(0, 9000) // never goes back
	tr.Sent(1, 10000)
	wantBacklog(t, tr, 0, "before any ack")

	var boom = errors.New("broker said no")
	var results []drivers.Result
	failed := seqs(10, 15)      // failed, never acked
	unconfirmed := seqs(15, 20) // fire-and-forget outcome
	unreported := seqs(20, 25)  // no outcome at all
	const failedThenAcked = 25  // a failure, then an ack
	const ackedTwice = 30       // two acks
	for _, s := range failed {
		results = append(results, outcome(0, s, boom))
	}
	for _, s := range unconfirmed {
		results = append(results, outcome(0, s, drivers.ErrUnconfirmed))
	}
	results = append(results, outcome(0, failedThenAcked, boom))
	notAcked := inSet(append(append(append([]uint64{}, failed...), unconfirmed...), unreported...))
	for s := uint64(0); s < 10000; s++ {
		if !notAcked[s] && s != failedThenAcked {
			results = append(results, ack(0, s))
		}
	}
	results = append(results,
		ack(0, ackedTwice),
		ack(0, 10000), // never sent: ignored
		ack(7, 1),     // no such producer: ignored
	)
	tr.Acked(results, now)
	results = results[:0]
	for s := uint64(0); s < 10000; s++ {
		results = append(results, ack(1, s))
	}
	tr.Acked(results, now)
	// 9,984 + 10,000 acked so far (seq 25 is acked later).
	wantBacklog(t, tr, 19984, "after acks, before deliveries")

	// Producer 1: a clean run on stream 0 in order: 0..8999 now, 9000..9009
	// among producer 0's deliveries, 9010..9999 after them.
	var batch []drivers.Delivery
	for s := uint64(0); s < 9000; s++ {
		batch = append(batch, delivery(1, s, 0))
	}
	tr.Received(0, batch, now)
	wantBacklog(t, tr, 10984, "after producer 1's first deliveries")

	// Producer 0.
	dropped := inSet(append(seqs(100, 150), 5000))
	landed := inSet([]uint64{10, 11, 12, 15, 16, 20}) // not acked, delivered anyway
	batch = batch[:0]
	for s := uint64(0); s < 10000; s++ {
		// Producer 1's messages interleave on the same stream, with higher
		// sequence numbers, without making producer 0's look reordered.
		if s%1000 == 0 {
			batch = append(batch, delivery(1, 9000+s/1000, 0))
		}
		switch {
		case dropped[s], notAcked[s] && !landed[s]:
			continue
		case s >= 400 && s < 410, s >= 500 && s < 510:
			continue // delivered below
		}
		batch = append(batch, delivery(0, s, 0))
	}
	// Stream 1 sees 409 first: 400..408 are then reordered (9).
	batch = append(batch, delivery(0, 409, 1))
	for s := uint64(400); s < 409; s++ {
		batch = append(batch, delivery(0, s, 1))
	}
	// An unordered stream never counts reordering.
	for s := uint64(509); s >= 500; s-- {
		batch = append(batch, delivery(0, s, drivers.Unordered))
	}
	// Duplicates: 200..209 once more each, 300 twice more.
	for s := uint64(200); s < 210; s++ {
		batch = append(batch, delivery(0, s, 0))
	}
	batch = append(batch, delivery(0, 300, 0), delivery(0, 300, 2))
	// Redelivered flags: two on duplicates, three on first deliveries.
	batch[len(batch)-1].Redelivered = true
	batch[len(batch)-2].Redelivered = true
	for _, i := range []int{1, 2, 3} { // producer 0's 0, 1, 2
		batch[i].Redelivered = true
	}
	tr.Received(0, batch, now)
	// Acked and not received: the 51 dropped and producer 1's last 990; 25
	// is received but not acked yet.
	wantBacklog(t, tr, 51+990, "after producer 0's deliveries")
	batch = batch[:0]
	for s := uint64(9010); s < 10000; s++ {
		batch = append(batch, delivery(1, s, 0))
	}
	tr.Received(0, batch, now)
	wantBacklog(t, tr, 51, "after all deliveries")

	// Foreign and malformed deliveries.
	var odd []drivers.Delivery
	for i := range 7 {
		s := msg(0, uint64(i))
		s.RunID = testRunID + 1 + uint64(i)
		odd = append(odd, drivers.Delivery{Stamp: encode(s)})
	}
	short := encode(msg(0, 1))[:stamp.Size-1]
	badVersion := encode(msg(0, 1))
	badVersion[2] = 99
	odd = append(odd,
		drivers.Delivery{Stamp: []byte("not a stamp at all, not at all, not at all, not at all")},
		drivers.Delivery{Stamp: nil},
		drivers.Delivery{Stamp: make([]byte, stamp.Size)},
		drivers.Delivery{Stamp: short},
		drivers.Delivery{Stamp: badVersion},
		delivery(0, 10000, 0), // never sent
		delivery(2, 0, 0),     // no such producer
	)
	tr.Received(0, odd, now)

	tr.Acked([]drivers.Result{ack(0, failedThenAcked)}, now)
	wantBacklog(t, tr, 51, "after the late ack of a received message")

	live := tr.Live()
	wantCounts(t, "live", live, Counts{
		Sent: 20000, Acked: 19985, Failed: 6, Received: 19940, Duplicates: 12,
		Reordered: 9, Redelivered: 5, Foreign: 7, Malformed: 7,
	})
	s := tr.Summary()
	wantCounts(t, "summary", s.Counts, Counts{
		Sent: 20000, Acked: 19985, Failed: 5, Unconfirmed: 10, Received: 19940,
		Duplicates: 12, Lost: 51, UnconfirmedDelivered: 6, Reordered: 9,
		Redelivered: 5, Foreign: 7, Malformed: 7,
	})
	if s.Counts.Lost != tr.Backlog() {
		t.Errorf("at the end lost %d != backlog %d", s.Counts.Lost, tr.Backlog())
	}
	var want []Example
	for _, seq := range append(seqs(100, 150), 5000) {
		want = append(want, Example{Producer: 0, Seq: seq, Kind: ExampleLost, Problem: "lost: acked, never received"})
	}
	byKind := map[string][]Example{}
	for _, e := range s.Examples {
		byKind[e.Kind] = append(byKind[e.Kind], e)
	}
	if !equalExamples(byKind[ExampleLost], want) {
		t.Errorf("lost examples:\n got %v\nwant %v", byKind[ExampleLost], want)
	}
	want = nil
	for _, seq := range seqs(200, 210) {
		want = append(want, Example{Producer: 0, Seq: seq, Kind: ExampleDuplicate, Problem: "duplicate: delivered again", Partition: i32(0)})
	}
	want = append(want,
		Example{Producer: 0, Seq: 300, Kind: ExampleDuplicate, Problem: "duplicate: delivered again", Partition: i32(0)},
		Example{Producer: 0, Seq: 300, Kind: ExampleDuplicate, Problem: "duplicate: delivered again", Partition: i32(2)})
	if !equalExamples(byKind[ExampleDuplicate], want) {
		t.Errorf("duplicate examples:\n got %v\nwant %v", byKind[ExampleDuplicate], want)
	}
	want = nil
	for _, seq := range seqs(400, 409) {
		want = append(want, Example{Producer: 0, Seq: seq, Kind: ExampleReordered, Problem: "reordered: after seq 409 of its producer", Partition: i32(1)})
	}
	if !equalExamples(byKind[ExampleReordered], want) {
		t.Errorf("reordered examples:\n got %v\nwant %v", byKind[ExampleReordered], want)
	}
	if len(s.Examples) != 51+12+9 {
		t.Errorf("%d examples, want %d", len(s.Examples), 51+12+9)
	}
	// The kinds take turns: lost, duplicate, reordered, lost, ...
	if k := []string{s.Examples[0].Kind, s.Examples[1].Kind, s.Examples[2].Kind, s.Examples[3].Kind}; !slices.Equal(k, []string{ExampleLost, ExampleDuplicate, ExampleReordered, ExampleLost}) {
		t.Errorf("examples start with kinds %v", k)
	}
	// Every received message has e2e and service latency; every ack publish.
	for kind, n := range map[string]int64{E2E: 19940, Service: 19940, Publish: 19985} {
		if got := s.Histograms[kind].TotalCount(); got != n {
			t.Errorf("%s histogram holds %d values, want %d", kind, got, n)
		}
		if got := s.Latency.Get(kind).Count; got != n {
			t.Errorf("%s latency count %d, want %d", kind, got, n)
		}
	}
}

func equalExamples(a, b []Example) bool { return reflect.DeepEqual(a, b) }

func i32(v int32) *int32 { return &v }
func i64(v int64) *int64 { return &v }

// cleanRun sends, acks and delivers producers × n messages, each delivered
// copies times, and returns the tracker.
func cleanRun(producers int, n uint64, copies int) *Tracker {
	tr := NewTracker(testRunID, producers, 0)
	for p := range producers {
		tr.Sent(uint32(p), n)
		var res []drivers.Result
		for s := uint64(0); s < n; s++ {
			res = append(res, ack(uint32(p), s))
		}
		tr.Acked(res, now)
	}
	for c := 0; c < copies; c++ {
		var batch []drivers.Delivery
		for s := uint64(0); s < n; s++ {
			for p := range producers {
				batch = append(batch, delivery(uint32(p), s, int32(p)))
			}
		}
		tr.Received(0, batch, now)
	}
	return tr
}

func TestTrackerCleanRun(t *testing.T) {
	tr := cleanRun(2, 10000, 1)
	s := tr.Summary()
	wantCounts(t, "clean run", s.Counts, Counts{Sent: 20000, Acked: 20000, Received: 20000})
	if len(s.Examples) != 0 {
		t.Errorf("clean run has examples: %v", s.Examples)
	}
	wantBacklog(t, tr, 0, "at the end of a clean run")
}

func TestTrackerEveryMessageDuplicated(t *testing.T) {
	tr := cleanRun(2, 10000, 2)
	wantCounts(t, "every message twice", tr.Summary().Counts,
		Counts{Sent: 20000, Acked: 20000, Received: 20000, Duplicates: 20000})
	tr = cleanRun(1, 1000, 4)
	wantCounts(t, "every message four times", tr.Summary().Counts,
		Counts{Sent: 1000, Acked: 1000, Received: 1000, Duplicates: 3000})
}

// TestTrackerExamplesCapped: every tenth message is lost; the examples
// stop at MaxExamples, in producer then sequence order.
func TestTrackerExamplesCapped(t *testing.T) {
	tr := NewTracker(testRunID, 3, 0)
	for p := range uint32(3) {
		tr.Sent(p, 1000)
		var res []drivers.Result
		var batch []drivers.Delivery
		for s := uint64(0); s < 1000; s++ {
			res = append(res, ack(p, s))
			if s%10 != 0 { // every tenth lost: 0, 10, 20, ...
				batch = append(batch, delivery(p, s, 0))
			}
		}
		tr.Acked(res, now)
		tr.Received(0, batch, now)
	}
	s := tr.Summary()
	if s.Counts.Lost != 300 {
		t.Fatalf("lost %d, want 300", s.Counts.Lost)
	}
	if len(s.Examples) != MaxExamples {
		t.Fatalf("%d examples, want %d", len(s.Examples), MaxExamples)
	}
	for i, e := range s.Examples {
		want := Example{Producer: uint32(i / 100), Seq: uint64(i%100) * 10, Kind: ExampleLost, Problem: "lost: acked, never received"}
		if !reflect.DeepEqual(e, want) {
			t.Fatalf("example %d: %+v, want %+v", i, e, want)
		}
	}
	// Producer 0 alone yields exactly MaxExamples lost: none from producer 1.
	if last := s.Examples[MaxExamples-1]; last.Producer != 0 || last.Seq != 990 {
		t.Errorf("last example %+v", last)
	}
}

// record runs one message through the tracker with the given latencies.

func TestTrackerLatencies(t *testing.T) {
	tr := NewTracker(testRunID, 1, 0)
	ref := map[string]*hdr.Histogram{E2E: NewHistogram(), Service: NewHistogram(), Publish: NewHistogram()}
	for i := uint64(0); i < 1000; i++ {
		e2e := time.Duration(i+1) * time.Millisecond // 1..1000 ms
		service := time.Duration(i+1) * 100 * time.Microsecond
		publish := time.Duration(i%10+1) * time.Microsecond
		recordOne(tr, i, e2e, service, publish)
		ref[E2E].RecordValue(e2e.Microseconds())
		ref[Service].RecordValue(service.Microseconds())
		ref[Publish].RecordValue(publish.Microseconds())
	}
	s := tr.Summary()
	for _, kind := range Kinds {
		if !s.Histograms[kind].Equals(ref[kind]) {
			t.Errorf("%s histogram differs from the values recorded", kind)
		}
		if got, want := s.Latency.Get(kind), Summarize(ref[kind]); got != want {
			t.Errorf("%s summary %+v, want %+v", kind, got, want)
		}
	}
	l := s.Latency
	// Within the histogram's 0.1% precision of the exact answers.
	near := func(what string, got, want int64) {
		t.Helper()
		if d := got - want; d < 0 || float64(d) > 0.001*float64(want)+1 {
			t.Errorf("%s = %d, want %d (+0.1%%)", what, got, want)
		}
	}
	near("e2e p50", l.E2E.P50, 500_000)
	near("e2e p90", l.E2E.P90, 900_000)
	near("e2e p99", l.E2E.P99, 990_000)
	near("e2e p99.9", l.E2E.P999, 999_000)
	near("e2e max", l.E2E.Max, 1_000_000)
	near("service p50", l.Service.P50, 50_000)
	near("publish max", l.Publish.Max, 10)
	if l.E2E.Min != 1000 || l.Publish.Min != 1 {
		t.Errorf("min e2e %d publish %d, want 1000 and 1", l.E2E.Min, l.Publish.Min)
	}
	if c := s.Counts; c.Negative != 0 || c.Clamped != 0 {
		t.Errorf("negative %d clamped %d, want 0", c.Negative, c.Clamped)
	}
}

func TestTrackerNegativeAndClampedLatencies(t *testing.T) {
	tr := NewTracker(testRunID, 1, 0)
	recordOne(tr, 0, -3*time.Millisecond, time.Millisecond, time.Millisecond)   // e2e negative
	recordOne(tr, 1, time.Millisecond, -500*time.Nanosecond, time.Millisecond)  // service negative by < 1µs
	recordOne(tr, 2, time.Millisecond, time.Millisecond, -time.Microsecond)     // publish negative
	recordOne(tr, 3, 2*time.Hour, time.Millisecond, time.Millisecond)           // e2e beyond the range
	recordOne(tr, 4, time.Hour+time.Microsecond, time.Millisecond, 3*time.Hour) // both beyond
	recordOne(tr, 5, time.Millisecond, 999*time.Nanosecond, 0)                  // 0 µs, not negative
	s := tr.Summary()
	if s.Counts.Negative != 3 {
		t.Errorf("negative latencies %d, want 3", s.Counts.Negative)
	}
	if s.Counts.Clamped != 3 {
		t.Errorf("clamped latencies %d, want 3", s.Counts.Clamped)
	}
	if s.Latency.E2E.Min != 0 || s.Latency.Service.Min != 0 || s.Latency.Publish.Min != 0 {
		t.Errorf("negative latencies not recorded as 0: %+v", s.Latency)
	}
	hourMax := NewHistogram()
	hourMax.RecordValue(HistogramMaxUS)
	if s.Latency.E2E.Max != hourMax.Max() || s.Latency.Publish.Max != hourMax.Max() {
		t.Errorf("clamped latencies not recorded as one hour: e2e max %d publish max %d, want %d",
			s.Latency.E2E.Max, s.Latency.Publish.Max, hourMax.Max())
	}
	if got := s.Histograms[E2E].TotalCount(); got != 6 {
		t.Errorf("e2e holds %d values, want 6", got)
	}
}

func TestTrackerTick(t *testing.T) {
	const start = int64(1_700_000_000) * int64(time.Second)
	ticked := NewTracker(testRunID, 2, start)
	plain := NewTracker(testRunID, 2, start) // the same traffic, never ticked
	both := []*Tracker{ticked, plain}
	rng := rand.New(rand.NewPCG(1, 2))
	var intervals []Interval
	var next [2]uint64
	clock := start
	for iv := range 5 {
		for range 200 * (iv + 1) {
			p := uint32(rng.IntN(2))
			seq := next[p]
			next[p]++
			s := stamp.Stamp{RunID: testRunID, Producer: p, Seq: seq, Intended: clock, Sent: clock + 1000}
			clock += int64(time.Millisecond)
			acked, copies := rng.IntN(10) != 0, rng.IntN(3) // 0: lost
			d := drivers.Delivery{Stamp: encode(s), Stream: int32(p)}
			recv := clock + int64(rng.IntN(5_000_000))
			for _, tr := range both {
				tr.Sent(p, seq+1)
				if acked {
					tr.Acked([]drivers.Result{{Stamp: s}}, clock)
				}
				for range copies {
					tr.Received(0, []drivers.Delivery{d}, recv)
				}
			}
		}
		clock += int64(time.Millisecond)
		visited := map[string]int64{}
		wantStartMs := start / 1e6
		wantStart := time.Duration(0)
		if len(intervals) > 0 {
			wantStart = intervals[len(intervals)-1].End
			wantStartMs = (start + int64(wantStart)) / 1e6
		}
		got := ticked.Tick(clock, func(kind string, h *hdr.Histogram) {
			visited[kind] = h.TotalCount()
			if h.StartTimeMs() != wantStartMs || h.EndTimeMs() != clock/1e6 {
				t.Errorf("interval %d %s: histogram times %d..%d, want %d..%d", iv, kind,
					h.StartTimeMs(), h.EndTimeMs(), wantStartMs, clock/1e6)
			}
		})
		for _, kind := range Kinds {
			if n, ok := visited[kind]; !ok || n != got.Latency.Get(kind).Count {
				t.Errorf("interval %d: visit saw %s with %d values (seen %v), interval says %d",
					iv, kind, n, ok, got.Latency.Get(kind).Count)
			}
		}
		if got.Start != wantStart || got.End != time.Duration(clock-start) {
			t.Errorf("interval %d spans %v..%v, want %v..%v", iv, got.Start, got.End, wantStart, time.Duration(clock-start))
		}
		if got.Latency.E2E.Count != got.Counts.Received || got.Latency.Service.Count != got.Counts.Received ||
			got.Latency.Publish.Count != got.Counts.Acked {
			t.Errorf("interval %d: latency counts %d/%d/%d, received %d acked %d", iv, got.Latency.E2E.Count,
				got.Latency.Service.Count, got.Latency.Publish.Count, got.Counts.Received, got.Counts.Acked)
		}
		if got.Counts.Received == 0 || got.Counts.Duplicates == 0 {
			t.Errorf("interval %d has no traffic to check: %+v", iv, got.Counts)
		}
		if got.Backlog != ticked.Backlog() {
			t.Errorf("interval %d backlog %d, tracker says %d", iv, got.Backlog, ticked.Backlog())
		}
		intervals = append(intervals, got)
	}
	// An interval with nothing in it: the histograms were reset.
	empty := ticked.Tick(clock+int64(time.Second), nil)
	if empty.Counts != (Counts{}) || empty.Latency != (LatencySet{}) {
		t.Errorf("idle interval: %+v %+v", empty.Counts, empty.Latency)
	}
	intervals = append(intervals, empty)

	var sum Counts
	var e2e int64
	for _, iv := range intervals {
		sum = addCounts(sum, iv.Counts)
		e2e += iv.Latency.E2E.Count
	}
	wantCounts(t, "sum of intervals vs live", sum, ticked.Live())
	wantCounts(t, "live of ticked vs untouched", ticked.Live(), plain.Live())
	s, p := ticked.Summary(), plain.Summary()
	if s.Latency.E2E.Count != e2e || s.Counts.Received != e2e {
		t.Errorf("summary e2e count %d, received %d, intervals' %d", s.Latency.E2E.Count, s.Counts.Received, e2e)
	}
	wantCounts(t, "summary of ticked vs untouched", s.Counts, p.Counts)
	for _, kind := range Kinds {
		if !s.Histograms[kind].Equals(p.Histograms[kind]) {
			t.Errorf("%s total of the ticked tracker differs from the untouched one's", kind)
		}
	}
	if s.Latency != p.Latency {
		t.Errorf("latency of ticked %+v, untouched %+v", s.Latency, p.Latency)
	}
}

func addCounts(a, b Counts) Counts {
	return Counts{
		Sent: a.Sent + b.Sent, Acked: a.Acked + b.Acked, Failed: a.Failed + b.Failed,
		Unconfirmed: a.Unconfirmed + b.Unconfirmed, Unsent: a.Unsent + b.Unsent,
		Received: a.Received + b.Received, Duplicates: a.Duplicates + b.Duplicates,
		Lost: a.Lost + b.Lost, UnconfirmedDelivered: a.UnconfirmedDelivered + b.UnconfirmedDelivered,
		Reordered: a.Reordered + b.Reordered, Redelivered: a.Redelivered + b.Redelivered,
		DeadLettered: a.DeadLettered + b.DeadLettered,
		Foreign:      a.Foreign + b.Foreign, Malformed: a.Malformed + b.Malformed,
		Clamped: a.Clamped + b.Clamped, Negative: a.Negative + b.Negative,
	}
}

// TestTrackerDeadLetters: messages rejected by a consumer and read back from
// the dead-letter queue count as received and dead-lettered, never lost; a
// second copy from the dead-letter queue is a duplicate.
func TestTrackerDeadLetters(t *testing.T) {
	tr := NewTracker(testRunID, 1, 0)
	tr.Sent(0, 10)
	var acks []drivers.Result
	var main, dlq []drivers.Delivery
	for seq := uint64(0); seq < 10; seq++ {
		acks = append(acks, ack(0, seq))
		if seq%3 == 0 {
			d := delivery(0, seq, 1)
			d.DeadLetter = true
			dlq = append(dlq, d)
		} else {
			main = append(main, delivery(0, seq, 0))
		}
	}
	tr.Acked(acks, now)
	tr.Received(0, main, now)
	tr.Received(0, dlq, now)
	tr.Received(0, dlq[:1], now) // seq 0 again
	c := tr.Summary().Counts
	if c.DeadLettered != 4 || c.Received != 10 || c.Lost != 0 || c.Duplicates != 1 || c.Reordered != 0 {
		t.Errorf("counts %+v; want 4 dead-lettered of 10 received, 0 lost, 1 duplicate, 0 reordered", c)
	}
}

// TestTrackerSummaryDuringRun: a summary taken between ticks includes the
// current interval, and taking it changes nothing.
func TestTrackerSummaryDuringRun(t *testing.T) {
	tr := NewTracker(testRunID, 1, 0)
	recordOne(tr, 0, time.Millisecond, time.Millisecond, time.Millisecond)
	tr.Tick(int64(time.Second), nil)
	recordOne(tr, 1, 2*time.Millisecond, time.Millisecond, time.Millisecond)
	for range 2 {
		s := tr.Summary()
		if s.Latency.E2E.Count != 2 || s.Latency.E2E.Max < 2000 {
			t.Fatalf("summary between ticks: %+v", s.Latency.E2E)
		}
	}
	iv := tr.Tick(int64(2*time.Second), nil)
	if iv.Latency.E2E.Count != 1 {
		t.Errorf("second interval e2e count %d, want 1", iv.Latency.E2E.Count)
	}
}

// TestTrackerConcurrent records from several goroutines while another
// ticks and reads; run it with -race. The totals are exact.
func TestTrackerConcurrent(t *testing.T) {
	const producers, n = 4, 5000
	tr := NewTracker(testRunID, producers, 0)
	done := make(chan struct{})
	ticks := make(chan Counts)
	go func() {
		var sum Counts
		clock := int64(0)
		for {
			select {
			case <-done:
				clock += int64(time.Second)
				ticks <- addCounts(sum, tr.Tick(clock, func(string, *hdr.Histogram) {}).Counts)
				return
			default:
				clock += int64(time.Millisecond)
				sum = addCounts(sum, tr.Tick(clock, nil).Counts)
				_ = tr.Backlog()
				_ = tr.Summary()
				time.Sleep(200 * time.Microsecond)
			}
		}
	}()
	var wg sync.WaitGroup
	for p := range uint32(producers) {
		wg.Add(2)
		sent := make(chan uint64, n)
		go func() { // producer: send and ack
			defer wg.Done()
			defer close(sent)
			for s := uint64(0); s < n; s += 10 {
				tr.Sent(p, s+10)
				var res []drivers.Result
				for i := s; i < s+10; i++ {
					res = append(res, ack(p, i))
				}
				tr.Acked(res, now)
				sent <- s
			}
		}()
		go func() { // consumer: deliver each batch twice
			defer wg.Done()
			for s := range sent {
				var batch []drivers.Delivery
				for i := s; i < s+10; i++ {
					batch = append(batch, delivery(p, i, 0))
				}
				tr.Received(0, batch, now)
				tr.Received(0, batch, now)
			}
		}()
	}
	wg.Wait()
	close(done)
	sum := <-ticks
	want := Counts{Sent: producers * n, Acked: producers * n, Received: producers * n, Duplicates: producers * n}
	wantCounts(t, "sum of intervals", sum, want)
	wantCounts(t, "summary", tr.Summary().Counts, want)
	if s := tr.Summary(); s.Latency.E2E.Count != producers*n || s.Latency.Publish.Count != producers*n {
		t.Errorf("latency counts %d %d", s.Latency.E2E.Count, s.Latency.Publish.Count)
	}
}
