package accounting

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
)

// feeder builds batches of acks and deliveries without allocating per
// message: stamps are encoded once into a reused buffer and only the
// producer, sequence number and times change.
type feeder struct {
	runID   uint64
	results []drivers.Result
	dels    []drivers.Delivery
}

func newFeeder(runID uint64, batch int) *feeder {
	f := &feeder{
		runID:   runID,
		results: make([]drivers.Result, batch),
		dels:    make([]drivers.Delivery, batch),
	}
	buf := make([]byte, batch*stamp.Size)
	for i := range f.dels {
		b := buf[i*stamp.Size : (i+1)*stamp.Size : (i+1)*stamp.Size]
		s := stamp.Stamp{RunID: runID}
		s.Put(b)
		f.dels[i] = drivers.Delivery{Stamp: b, Stream: 0}
	}
	return f
}

// fill prepares producer p's sequence numbers [first, first+n): intended at
// seq µs, sent 100 µs later. It returns their acks and deliveries.
func (f *feeder) fill(p uint32, first uint64, n int) ([]drivers.Result, []drivers.Delivery) {
	for i := 0; i < n; i++ {
		seq := first + uint64(i)
		intended := int64(seq) * 1000
		f.results[i] = drivers.Result{Stamp: stamp.Stamp{RunID: f.runID, Producer: p, Seq: seq, Intended: intended, Sent: intended + 100_000}}
		b := f.dels[i].Stamp
		binary.LittleEndian.PutUint32(b[4:], p)
		binary.LittleEndian.PutUint64(b[16:], seq)
		binary.LittleEndian.PutUint64(b[24:], uint64(intended))
		binary.LittleEndian.PutUint64(b[32:], uint64(intended+100_000))
	}
	return f.results[:n], f.dels[:n]
}

// next advances a batch prepared by fill to the following n sequence
// numbers, changing only the sequence numbers (the latencies stay those
// of the first batch): a cheap step for benchmarks.
func (f *feeder) next(n int) ([]drivers.Result, []drivers.Delivery) {
	for i := 0; i < n; i++ {
		f.results[i].Stamp.Seq += uint64(n)
		b := f.dels[i].Stamp[16:24]
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)+uint64(n))
	}
	return f.results[:n], f.dels[:n]
}

const benchBatch = 512

// recordClean sends, acks and receives producer p's messages [first,
// first+n) in batches of benchBatch: a clean run.
func recordClean(t *Tracker, f *feeder, p uint32, first, n uint64, now int64) {
	for seq := first; seq < first+n; seq += benchBatch {
		k := int(min(benchBatch, first+n-seq))
		res, dels := f.fill(p, seq, k)
		t.Sent(p, seq+uint64(k))
		t.Acked(res, now)
		t.Received(0, dels, now)
	}
}

// touchPages allocates every page of s below limit without adding members,
// so that benchmarks and allocation tests see the steady state.
func touchPages(s *seqset, limit uint64) {
	for pi := uint64(0); pi<<pageShift < limit; pi++ {
		if pi >= uint64(len(s.pages)) {
			s.grow(int(pi) + 1)
		}
		if s.pages[pi] == nil {
			s.pages[pi] = make([]uint64, pageWords)
		}
	}
}

// touchTracker pre-touches the acked, failed and received pages of every
// producer for limit messages each.
func touchTracker(t *Tracker, limit uint64) {
	for i := range t.producers {
		p := &t.producers[i]
		touchPages(&p.acked, limit)
		touchPages(&p.failed, limit)
		for j := range p.received {
			touchPages(&p.received[j], limit)
		}
	}
}

// BenchmarkTrackerRecord measures the record path per message: Sent, an
// Acked batch and a Received batch of 512 first-time outcomes and
// deliveries (recording three latencies per message), on pages already
// touched. Advancing the batch's sequence numbers is included (about 1 ns
// per message).
func BenchmarkTrackerRecord(b *testing.B) {
	tr := NewTracker(7, 1, 0)
	f := newFeeder(7, benchBatch)
	touchTracker(tr, uint64(b.N+1)*benchBatch)
	res, dels := f.fill(0, 0, benchBatch)
	tr.Sent(0, benchBatch)
	tr.Acked(res, 5e9)
	tr.Received(0, dels, 5e9)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		res, dels := f.next(benchBatch)
		tr.Sent(0, uint64(i+1)*benchBatch)
		tr.Acked(res, 5e9)
		tr.Received(0, dels, 5e9)
	}
	b.StopTimer()
	if got := tr.Live().Received; got != int64(b.N+1)*benchBatch {
		b.Fatalf("received %d, want %d", got, (b.N+1)*benchBatch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/msg")
}

// BenchmarkTrackerReceived isolates the receive path of first deliveries
// (stamp parsing, set update, reorder check, two latencies).
func BenchmarkTrackerReceived(b *testing.B) {
	tr := NewTracker(7, 1, 0)
	f := newFeeder(7, benchBatch)
	touchTracker(tr, uint64(b.N+1)*benchBatch)
	tr.Sent(0, uint64(b.N+1)*benchBatch)
	_, dels := f.fill(0, 0, benchBatch)
	tr.Received(0, dels, 5e9)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, dels := f.next(benchBatch)
		tr.Received(0, dels, 5e9)
	}
	b.StopTimer()
	if got := tr.Live().Received; got != int64(b.N+1)*benchBatch {
		b.Fatalf("received %d, want %d", got, (b.N+1)*benchBatch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/msg")
}

// BenchmarkTrackerAcked isolates the ack path (set update, one latency).
func BenchmarkTrackerAcked(b *testing.B) {
	tr := NewTracker(7, 1, 0)
	f := newFeeder(7, benchBatch)
	touchTracker(tr, uint64(b.N+1)*benchBatch)
	tr.Sent(0, uint64(b.N+1)*benchBatch)
	res, _ := f.fill(0, 0, benchBatch)
	tr.Acked(res, 5e9)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, _ := f.next(benchBatch)
		tr.Acked(res, 5e9)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/msg")
}

// BenchmarkTrackerFill is the cost of advancing a batch, included in the
// figures above.
func BenchmarkTrackerFill(b *testing.B) {
	f := newFeeder(7, benchBatch)
	f.fill(0, 0, benchBatch)
	for i := 0; i < b.N; i++ {
		f.next(benchBatch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/msg")
}

// BenchmarkTrackerDuplicate measures deliveries that are all duplicates.
func BenchmarkTrackerDuplicate(b *testing.B) {
	tr := NewTracker(7, 1, 0)
	f := newFeeder(7, benchBatch)
	recordClean(tr, f, 0, 0, benchBatch, 5e9)
	_, dels := f.fill(0, 0, benchBatch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tr.Received(0, dels, 5e9)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/msg")
}

// TestTrackerRecordAllocs asserts that the steady-state record path
// allocates nothing once pages exist.
func TestTrackerRecordAllocs(t *testing.T) {
	const runs = 200
	tr := NewTracker(7, 1, 0)
	f := newFeeder(7, benchBatch)
	touchTracker(tr, (runs+2)*benchBatch)
	var seq uint64
	allocs := testing.AllocsPerRun(runs, func() {
		res, dels := f.fill(0, seq, benchBatch)
		seq += benchBatch
		tr.Sent(0, seq)
		tr.Acked(res, 5e9)
		tr.Received(0, dels, 5e9)
	})
	if allocs != 0 {
		t.Errorf("record path: %v allocations per batch of %d, want 0", allocs, benchBatch)
	}
	if got, want := tr.Live().Received, int64(seq); got != want {
		t.Errorf("received %d, want %d", got, want)
	}
}

// track50M tracks a clean run of n messages spread over producers and
// returns the summary and the growth of the heap in use.
func track50M(tb testing.TB, n uint64, producers int) (Summary, int64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tr := NewTracker(7, producers, 0)
	f := newFeeder(7, benchBatch)
	per := n / uint64(producers)
	for p := range producers {
		recordClean(tr, f, uint32(p), 0, per, 5e9)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	s := tr.Summary()
	runtime.KeepAlive(tr)
	c := s.Counts
	if c.Sent != int64(n) || c.Acked != int64(n) || c.Received != int64(n) || c.Lost != 0 || c.Duplicates != 0 || c.Unconfirmed != 0 {
		tb.Fatalf("clean run of %d: %+v", n, c)
	}
	return s, int64(after.HeapInuse) - int64(before.HeapInuse)
}

const (
	fiftyMillion = 50_000_000
	stateLimit   = 100 << 20
)

// BenchmarkTracker50M tracks a clean run of 50,000,000 messages (acked and
// received) with one and with eight producers and reports the accounting
// state: Summary().StateBytes and the growth of the heap in use. Both must
// stay under 100 MB. Set SPATE_BENCH_MESSAGES to track another number.
func BenchmarkTracker50M(b *testing.B) {
	n := uint64(fiftyMillion)
	if v := os.Getenv("SPATE_BENCH_MESSAGES"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil {
			b.Fatalf("SPATE_BENCH_MESSAGES: %v", err)
		}
	}
	for _, producers := range []int{1, 8} {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			var s Summary
			var heap int64
			for i := 0; i < b.N; i++ {
				s, heap = track50M(b, n, producers)
			}
			b.ReportMetric(float64(s.StateBytes)/1e6, "state-MB")
			b.ReportMetric(float64(heap)/1e6, "heap-MB")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(uint64(b.N)*n), "ns/msg")
			if s.StateBytes >= stateLimit || heap >= stateLimit {
				b.Errorf("accounting for %d messages: state %d bytes, heap %d bytes; want < %d", n, s.StateBytes, heap, stateLimit)
			}
		})
	}
}

// TestTracker50M is BenchmarkTracker50M's limit as a test; it runs only
// when SPATE_TEST_50M is set, as it takes seconds (minutes under -race).
func TestTracker50M(t *testing.T) {
	if os.Getenv("SPATE_TEST_50M") == "" {
		t.Skip("set SPATE_TEST_50M=1 to track 50,000,000 messages")
	}
	for _, producers := range []int{1, 8} {
		s, heap := track50M(t, fiftyMillion, producers)
		t.Logf("producers=%d: state %.1f MB, heap in use +%.1f MB", producers, float64(s.StateBytes)/1e6, float64(heap)/1e6)
		if s.StateBytes >= stateLimit || heap >= stateLimit {
			t.Errorf("producers=%d: state %d bytes, heap %d bytes; want < %d", producers, s.StateBytes, heap, stateLimit)
		}
	}
}

// BenchmarkTrackerTick measures Tick with interval histograms whose values
// span the whole range (the worst case for adding them to the totals,
// which Tick does under the tracker's lock).
func BenchmarkTrackerTick(b *testing.B) {
	tr := NewTracker(7, 1, 0)
	fillCur := func() {
		for k := range tr.cur {
			for v := int64(1); v < HistogramMaxUS; v = v*21/20 + 1 {
				tr.cur[k].RecordValue(v)
			}
		}
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		fillCur()
		b.StartTimer()
		tr.Tick(int64(i+1)*1e9, nil)
	}
}
