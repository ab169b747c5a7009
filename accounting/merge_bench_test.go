package accounting

import (
	"bytes"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// benchStates makes the states of shards shards of a run whose producers
// (producersPerShard on each) send perShard messages per shard, all acked;
// shard s's consumers receive every message whose seq mod shards is s (as
// competing consumers of a partitioned topic do: every page of every
// producer's received set holds some of each shard's bits), and with dup
// set, one message in a hundred is also received by the next shard. They
// are written and read back through the file format.
func benchStates(tb testing.TB, shards, producersPerShard int, perShard uint64, dup bool) [][]byte {
	tb.Helper()
	producers := shards * producersPerShard
	perProducer := perShard / uint64(producersPerShard)
	pages := int((perProducer + 1<<pageShift - 1) >> pageShift)
	var out [][]byte
	for s := range shards {
		st := &State{RunID: testRunID, Shard: s, Shards: shards, Subs: 1, Producers: make([]ProducerState, producers)}
		for p := range producers {
			ps := &st.Producers[p]
			if p%shards == s {
				ps.Sent = perProducer
				for pi := range pages {
					ps.Acked = append(ps.Acked, fullPage(uint32(pi), perProducer))
				}
				st.Live.Sent += int64(perProducer)
				st.Live.Acked += int64(perProducer)
			}
			var recv []Page
			for pi := range pages {
				pg := Page{Index: uint32(pi), Bits: make([]uint64, pageWords)}
				for w := range pageWords {
					for b := range 64 {
						seq := uint64(pi)<<pageShift + uint64(w*64+b)
						if seq >= perProducer {
							break
						}
						mine := seq%uint64(shards) == uint64(s)
						again := dup && seq%100 == 7 && (seq+1)%uint64(shards) == uint64(s)
						if mine || again { // a first delivery on this shard; again ones are duplicates in the run
							pg.Bits[w] |= 1 << b
							st.Live.Received++
						}
					}
				}
				recv = append(recv, pg)
			}
			ps.Received = [][]Page{recv}
			ps.Seen = perProducer
		}
		var b bytes.Buffer
		if _, err := st.WriteTo(&b); err != nil {
			tb.Fatal(err)
		}
		out = append(out, b.Bytes())
	}
	return out
}

func fullPage(index uint32, limit uint64) Page {
	pg := Page{Index: index, Bits: make([]uint64, pageWords)}
	for w := range pageWords {
		lo := uint64(index)<<pageShift + uint64(w)*64
		switch {
		case lo+64 <= limit:
			pg.Bits[w] = ^uint64(0)
		case lo < limit:
			pg.Bits[w] = 1<<(limit-lo) - 1
		}
	}
	return pg
}

// peakHeap samples the heap in use until stop is closed and returns the
// largest seen.
func peakHeap(stop chan struct{}) func() uint64 {
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { <-done; return peak.Load() }
}

// BenchmarkMerge16x10M reads 16 shard states of 10 M messages each (a run
// of 160 M) and merges them, as the coordinator and spate merge do; it
// reports the time and the peak heap, clean and with 1% of the messages
// delivered to a second shard.
func BenchmarkMerge16x10M(b *testing.B) {
	for _, dup := range []bool{false, true} {
		name := "clean"
		if dup {
			name = "1pct-duplicates"
		}
		b.Run(name, func(b *testing.B) {
			files := benchStates(b, 16, 4, 10_000_000, dup)
			var size int
			for _, f := range files {
				size += len(f)
			}
			b.ReportMetric(float64(size)/(1<<20), "state-MiB")
			for b.Loop() {
				runtime.GC()
				stop := make(chan struct{})
				peak := peakHeap(stop)
				start := time.Now()
				var states []*State
				for _, f := range files {
					s, err := ReadState(bytes.NewReader(f), 1<<30)
					if err != nil {
						b.Fatal(err)
					}
					states = append(states, s)
				}
				tr, err := Merge(states...)
				if err != nil {
					b.Fatal(err)
				}
				sum := tr.Summary()
				took := time.Since(start)
				close(stop)
				if sum.Counts.Received != 160_000_000 || sum.Counts.Lost != 0 {
					b.Fatalf("merged %+v", sum.Counts)
				}
				if dup && sum.Counts.Duplicates == 0 {
					b.Fatal("no duplicates")
				}
				b.ReportMetric(took.Seconds(), "merge-s")
				b.ReportMetric(float64(peak())/(1<<20), "peak-heap-MiB")
			}
		})
	}
}

// TestMergeBenchShape runs the benchmark's set-up and merge at a small
// size, so its code cannot rot.
func TestMergeBenchShape(t *testing.T) {
	files := benchStates(t, 4, 2, 200_000, true)
	var states []*State
	for _, f := range files {
		s, err := ReadState(bytes.NewReader(f), 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, s)
	}
	tr, err := Merge(states...)
	if err != nil {
		t.Fatal(err)
	}
	c := tr.Summary().Counts
	want := int64(0)
	for seq := range uint64(100_000) {
		if seq%100 == 7 {
			want++
		}
	}
	if c.Received != 800_000 || c.Lost != 0 || c.Duplicates != want*8 {
		t.Errorf("%+v; want 800,000 received, 0 lost, %d duplicates", c, want*8)
	}
}
