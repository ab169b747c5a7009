package shards

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
)

// BenchmarkReporting100k is the cost of what a shard adds to take part in
// a distributed run, for one second of a shard at 100,000 msgs/s (acked
// by its 4 producers of 12, received by its consumers from all 12): four
// reports (the tracker's delta, encoded, in a JSON request) and one
// interval's three histograms encoded. It reports that cost as a share of
// one core (cpu-%), and what the coordinator spends applying the reports.
// Recording the messages themselves is the tracker's own cost, not
// counted here.
func BenchmarkReporting100k(b *testing.B) {
	const (
		rate      = 100_000
		producers = 12
		shards    = 3
		syncs     = int(time.Second / (250 * time.Millisecond))
	)
	tr := accounting.NewTracker(1, producers, 0)
	tr.SetShard(0, shards)
	union := accounting.NewTracker(1, producers, 0)
	var next [producers]uint64
	// feed records a quarter second of traffic into tr, untimed.
	feed := func() {
		per := uint64(rate / syncs / producers)
		var acks []drivers.Result
		var dels []drivers.Delivery
		for p := range uint32(producers) {
			for range per {
				s := stamp.Stamp{RunID: 1, Producer: p, Seq: next[p], Intended: 1, Sent: 1}
				if int(p)%shards == 0 {
					acks = append(acks, drivers.Result{Stamp: s})
				}
				if next[p]%shards == 0 { // a third of every producer's messages come to this shard
					head := make([]byte, stamp.Size)
					s.Put(head)
					dels = append(dels, drivers.Delivery{Stamp: head, Stream: int32(next[p] % 6)})
				}
				next[p]++
			}
			if int(p)%shards == 0 {
				tr.Sent(p, next[p])
			}
		}
		tr.Acked(acks, 2)
		tr.Received(0, dels, 3)
	}
	hists := [3]*hdr.Histogram{accounting.NewHistogram(), accounting.NewHistogram(), accounting.NewHistogram()}
	for _, h := range hists {
		for v := range int64(2000) {
			_ = h.RecordValue(100 + v*37)
		}
	}
	var shardCost, coordCost time.Duration
	var bytesSent int
	for b.Loop() {
		for range syncs {
			b.StopTimer()
			feed()
			b.StartTimer()
			start := time.Now()
			d := tr.Delta()
			var buf bytes.Buffer
			if _, err := d.WriteTo(&buf); err != nil {
				b.Fatal(err)
			}
			body, err := json.Marshal(syncRequest{Live: d.Live, Deltas: [][]byte{buf.Bytes()}})
			if err != nil {
				b.Fatal(err)
			}
			shardCost += time.Since(start)
			bytesSent += len(body)

			start = time.Now()
			var req syncRequest
			if err := json.Unmarshal(body, &req); err != nil {
				b.Fatal(err)
			}
			deltas, err := decodeDeltas(req)
			if err != nil {
				b.Fatal(err)
			}
			for _, d := range deltas {
				if err := union.MergeSets(d); err != nil {
					b.Fatal(err)
				}
			}
			coordCost += time.Since(start)
		}
		start := time.Now()
		for _, h := range hists {
			if _, err := h.Encode(hdr.V2CompressedEncodingCookieBase); err != nil {
				b.Fatal(err)
			}
		}
		shardCost += time.Since(start)
	}
	secs := float64(b.N)
	b.ReportMetric(shardCost.Seconds()/secs*100, "shard-cpu-%")
	b.ReportMetric(coordCost.Seconds()/secs*100, "coordinator-cpu-%-per-shard")
	b.ReportMetric(float64(bytesSent)/secs/1024, "KiB/s-sent")
}
