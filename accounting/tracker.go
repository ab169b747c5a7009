// Package accounting is spate's exact account of a run: the Tracker records
// every outcome and delivery into compact per-producer sequence sets and
// HDR latency histograms, and derives from them sent, acked, received,
// lost, duplicated and reordered messages (Summary), per interval, per
// chaos fault (Span) and per capacity-search step (StepWindow). The state
// is kept so that the accounts of several processes merge exactly: sets by
// union, histograms of identical settings by addition. It knows nothing of
// brokers, files or rendering (package report renders what it counts).
package accounting

import (
	"errors"
	"fmt"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
)

// Histogram range: latencies are recorded in microseconds from 1 µs to one
// hour with 3 significant digits. Larger values are recorded as one hour and
// counted in Counts.Clamped; negative ones (clock skew between hosts, even
// by less than a microsecond) as 0 and counted in Counts.Negative.
const (
	histMinUS      = 1
	HistogramMaxUS = int64(time.Hour / time.Microsecond)
	histDigits     = 3
)

// NewHistogram returns an empty latency histogram of the tracker's settings
// (microseconds, 1 µs to HistogramMaxUS, 3 significant digits): histograms
// merge exactly only with others of the same settings.
func NewHistogram() *hdr.Histogram { return hdr.New(histMinUS, HistogramMaxUS, histDigits) }

// Latency kinds, as named in results and thresholds.
const (
	E2E     = "e2e"     // receive time − intended send time (coordinated-omission safe)
	Service = "service" // receive time − actual send time
	Publish = "publish" // confirmation time − actual send time
	// Pipeline is receive time − confirmation time, timed in pipeline
	// runs only (Tracker.EnablePipeline): output receive − input ack.
	Pipeline = "pipeline"
)

type latencies [3]*hdr.Histogram // indexed like Kinds

// Kinds are the latency kinds every run records, in the order of a latencies.
var Kinds = [3]string{E2E, Service, Publish}

func newLatencies() latencies { return latencies{NewHistogram(), NewHistogram(), NewHistogram()} }

// Counts are the message counts of a run or an interval. See the results
// schema (report/SCHEMA.md) for each definition.
//
// Lost, UnconfirmedDelivered and Unconfirmed are set only in a Summary. In
// a Summary, Failed counts messages that failed and were never acked; in
// Live and in intervals it counts failure outcomes as they arrive, so the
// intervals' Failed can add up to more than the Summary's when a driver
// reports a failure and later an ack for the same message.
type Counts struct {
	Sent                 int64 `json:"sent"`
	Acked                int64 `json:"acked"`
	Failed               int64 `json:"failed"`
	Unconfirmed          int64 `json:"unconfirmed"`
	Unsent               int64 `json:"unsent"`
	Received             int64 `json:"received"`
	Duplicates           int64 `json:"duplicates"`
	Lost                 int64 `json:"lost"`
	UnconfirmedDelivered int64 `json:"unconfirmed_delivered"`
	Reordered            int64 `json:"reordered"`
	Redelivered          int64 `json:"redelivered"`
	DeadLettered         int64 `json:"dead_lettered"`
	// Aborted counts messages whose transaction was aborted (and that were
	// never confirmed); AbortedReads those of them delivered to consumers
	// that read only committed data (a violation of isolation), and
	// AbortedVisible those delivered to read_uncommitted consumers, where
	// seeing them is expected. Both are also counted in Received.
	Aborted        int64 `json:"aborted,omitempty"`
	AbortedReads   int64 `json:"aborted_reads,omitempty"`
	AbortedVisible int64 `json:"aborted_visible,omitempty"`
	Foreign        int64 `json:"foreign"`
	Malformed      int64 `json:"malformed"`
	Clamped        int64 `json:"clamped_latencies,omitempty"`
	Negative       int64 `json:"negative_latencies,omitempty"`
}

// Tracker accounts for one run's messages, exactly. It keeps, per producer,
// which sequence numbers were acked, failed, aborted and received, and the
// highest sequence seen per ordered stream; and HDR histograms of the three
// latencies, in total and for the current interval. In a pipeline run
// (EnablePipeline) it also keeps each message's publish latency, 4 bytes
// a message, to time the pipeline's own latency.
//
// A Tracker is safe for concurrent use. Each method takes the lock once, so
// callers pass batches. Recording allocates nothing except a new 8 KiB page
// of a sequence set every 65,536 messages per producer.
type Tracker struct {
	mu        sync.Mutex
	runID     uint64
	producers []producerState
	live      Counts // running totals
	// subs is the number of subscriptions (SetSubscriptions): each must
	// receive every message, so a run owes subs deliveries per acked
	// message.
	subs int64
	// receivedAcked counts (message, subscription) pairs both acked and
	// received, so that backlog = acked × subs − receivedAcked is exact at
	// every moment.
	receivedAcked int64
	// Latencies are recorded only into cur, the current interval; Tick
	// merges cur into total, which therefore holds every interval before
	// the current one. Summary adds the two.
	total, cur latencies

	// Chaos support (spans.go): every span opened, those still open,
	// and the fine-grained e2e slice histogram (nil unless enabled).
	spans  []*Span
	active []*Span
	slice  *hdr.Histogram
	// slicePeak is the largest backlog since the last SwapSlice.
	slicePeak int64
	// Find-max support (steps.go): the open step windows.
	steps []*StepWindow

	// readCommitted: consumers read only committed data, so a delivered
	// aborted message is an aborted read (SetReadCommitted).
	readCommitted bool
	// pipe is the pipeline latency histogram (nil unless EnablePipeline);
	// pipeUntimed counts first deliveries it could not time.
	pipe        *hdr.Histogram
	pipeUntimed int64
	// examples collects violations seen as they happen, by kind (indexed
	// like exampleKinds); lost messages are found by Summary.
	examples [len(exampleKinds)][]Example
	// seenAt remembers where transactional messages were first delivered
	// before their outcome was reported, when consumers read committed
	// data: an abort reported later is an aborted read, and its example
	// names the partition and offset. Bounded by maxSeenAt.
	seenAt map[msgID]location

	// shard and shards say which producers this tracker's process runs
	// (SetShard): producer p when p mod shards == shard.
	shard, shards int

	// Tick state, owned by the single goroutine that calls Tick.
	start    int64
	lastTick int64
	mark     Counts
	spare    latencies
}

type producerState struct {
	sent uint64 // sequence numbers below this were sent
	// seen is one more than the highest sequence number received of a
	// producer another shard runs (SetShard), whose sent this tracker
	// never learns: the limit of its sets here.
	seen                   uint64
	acked, failed, aborted seqset
	// received[sub] holds what subscription sub received.
	received []seqset
	// highest[sub][stream] is one more than the highest sequence number
	// first delivered to subscription sub on that stream (0: none yet).
	highest [][]uint64
	// txns marks where each transaction's messages start, in sequence
	// order, from the outcomes of transactional messages: examples name a
	// lost message's transaction. One entry per transaction.
	txns []txnMark
	// pub holds each acked message's publish latency, in pipeline runs.
	pub pubTimes
}

// limit is one more than the highest sequence number the sets may hold.
func (p *producerState) limit() uint64 { return max(p.sent, p.seen) }

// msgID names a message: its producer and sequence number.
type msgID struct {
	producer uint32
	seq      uint64
}

// location is where a delivery was found.
type location struct {
	stream    int32
	offset    int64
	hasOffset bool
}

// maxSeenAt bounds Tracker.seenAt: a transaction's worth of messages per
// producer is typically a few hundred, so this is ample; beyond it
// examples go without a location.
const maxSeenAt = 1 << 16

// txnMark says that from seq on (until the next mark) messages belong to
// transaction txn.
type txnMark struct {
	seq, txn uint64
}

// txnOf returns the transaction seq belongs to, or 0 when unknown.
func (p *producerState) txnOf(seq uint64) uint64 {
	lo, hi := 0, len(p.txns)
	for lo < hi { // the first mark above seq
		m := (lo + hi) / 2
		if p.txns[m].seq <= seq {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return 0
	}
	return p.txns[lo-1].txn
}

// markTxn records that seq, confirmed or aborted, belongs to txn.
func (p *producerState) markTxn(seq, txn uint64) {
	if txn == 0 {
		return
	}
	if k := len(p.txns); k > 0 && (p.txns[k-1].txn == txn || p.txns[k-1].seq >= seq) {
		return
	}
	p.txns = append(p.txns, txnMark{seq, txn})
}

// NewTracker returns a tracker for run runID with the given number of
// producers, whose clock starts at start (Unix nanoseconds).
func NewTracker(runID uint64, producers int, start int64) *Tracker {
	t := &Tracker{
		runID:     runID,
		producers: make([]producerState, producers),
		total:     newLatencies(),
		cur:       newLatencies(),
		spare:     newLatencies(),
		start:     start,
		lastTick:  start,
	}
	t.shards = 1
	t.setSubs(1)
	return t
}

// maxForeignSeq bounds the sequence numbers accepted for a producer another
// shard runs: this tracker cannot check them against what was sent, and a
// sequence set's page table grows with the highest member (at this bound,
// 24 MiB). 2^36 messages is eleven days at 100,000/s from one producer.
const maxForeignSeq = 1 << 36

// SetShard says this tracker counts for shard index of a distributed run
// of count processes: producer p runs on shard p mod count, so only those
// producers' sends and outcomes are recorded here, while deliveries of
// every producer are (a consumer receives from all). Call it before
// traffic starts. Such a tracker's own Summary is partial; Merge combines
// the shards' States into the run's account.
func (t *Tracker) SetShard(index, count int) {
	t.mu.Lock()
	t.shard, t.shards = index, max(count, 1)
	t.mu.Unlock()
}

// owns reports whether producer p runs in this tracker's process.
func (t *Tracker) owns(p uint32) bool { return t.shards <= 1 || int(p)%t.shards == t.shard }

// SetSubscriptions says how many subscriptions the run's consumers form
// (1 by default: one set of competing consumers). Each subscription (a
// Kafka consumer group, a queue of its own) must receive every message,
// so every figure about deliveries counts (message, subscription) pairs:
// received, duplicates, lost, reordered, unconfirmed-delivered and aborted
// reads are summed over the subscriptions, latencies are recorded for each
// subscription's first delivery, and the backlog is acked × subscriptions −
// deliveries owed and made. n = 0 is a run without consumers (produce
// only): no delivery is owed, so nothing is lost, the backlog stays 0 and
// every delivery counts as malformed. Call it before traffic starts; n < 0
// counts as 0.
func (t *Tracker) SetSubscriptions(n int) {
	t.mu.Lock()
	t.setSubs(max(n, 0))
	t.mu.Unlock()
}

func (t *Tracker) setSubs(n int) {
	t.subs = int64(n)
	for i := range t.producers {
		t.producers[i].received = make([]seqset, n)
		t.producers[i].highest = make([][]uint64, n)
	}
}

// receivedBy returns how many subscriptions received seq of p.
func (p *producerState) receivedBy(seq uint64) int64 {
	var n int64
	for i := range p.received {
		if p.received[i].has(seq) {
			n++
		}
	}
	return n
}

// SetReadCommitted says whether the run's consumers read only committed
// data (Kafka isolation read_committed; a pipeline's output). Then a
// delivered message of an aborted transaction counts as an aborted read,
// else as aborted-visible. Call it before traffic starts.
func (t *Tracker) SetReadCommitted(on bool) {
	t.mu.Lock()
	t.readCommitted = on
	t.mu.Unlock()
}

// EnablePipeline makes the tracker time each message's pipeline latency:
// its first delivery's time − its confirmation time (in a pipeline run,
// output receive − input ack). It keeps every acked message's publish
// latency for that, 4 bytes a message. Call it before traffic starts.
func (t *Tracker) EnablePipeline() {
	t.mu.Lock()
	if t.pipe == nil {
		t.pipe = NewHistogram()
	}
	t.mu.Unlock()
}

// Sent records that producer has sent every sequence number below next.
func (t *Tracker) Sent(producer uint32, next uint64) {
	t.mu.Lock()
	p := &t.producers[producer]
	if next > p.sent {
		t.live.Sent += int64(next - p.sent)
		p.sent = next
	}
	t.mu.Unlock()
}

// Acked records outcomes reported at now (Unix nanoseconds). Outcomes for a
// producer or sequence number never sent (a driver bug: outcomes come only
// for messages handed to Send, after Sent recorded them) are ignored, so
// that acked and failed stay subsets of sent.
func (t *Tracker) Acked(results []drivers.Result, now int64) {
	t.mu.Lock()
	for i := range results {
		r := &results[i]
		if int(r.Stamp.Producer) >= len(t.producers) {
			continue
		}
		p := &t.producers[r.Stamp.Producer]
		if r.Stamp.Seq >= p.sent {
			continue
		}
		var w *StepWindow
		if len(t.steps) > 0 {
			w = t.stepOf(r.Stamp.Intended)
		}
		switch {
		case r.Err == nil:
			if p.acked.add(r.Stamp.Seq) {
				t.live.Acked++
				received := p.receivedBy(r.Stamp.Seq)
				t.receivedAcked += received
				if received < t.subs && t.slice != nil {
					t.slicePeak = max(t.slicePeak, t.live.Acked*t.subs-t.receivedAcked)
				}
				t.record(2, now-r.Stamp.Sent)
				if w != nil {
					w.c.Acked++
					w.c.ReceivedAcked += received
					w.record(2, now-r.Stamp.Sent)
				}
				if t.pipe != nil {
					p.pub.set(r.Stamp.Seq, now-r.Stamp.Sent)
				}
				if r.Stamp.Txn != 0 {
					p.markTxn(r.Stamp.Seq, r.Stamp.Txn)
					if len(t.seenAt) > 0 {
						delete(t.seenAt, msgID{r.Stamp.Producer, r.Stamp.Seq})
					}
				}
			}
		case errors.Is(r.Err, drivers.ErrUnconfirmed):
		case errors.Is(r.Err, drivers.ErrAborted):
			if p.aborted.add(r.Stamp.Seq) {
				t.live.Aborted++
				p.markTxn(r.Stamp.Seq, r.Stamp.Txn)
				if seen := p.receivedBy(r.Stamp.Seq); seen > 0 && !p.acked.has(r.Stamp.Seq) {
					// Delivered before the abort was reported.
					var d *drivers.Delivery
					id := msgID{r.Stamp.Producer, r.Stamp.Seq}
					if at, ok := t.seenAt[id]; ok {
						d = &drivers.Delivery{Stream: at.stream, Offset: at.offset, HasOffset: at.hasOffset}
						delete(t.seenAt, id)
					}
					for range seen {
						t.abortedDelivered(r.Stamp.Producer, r.Stamp.Seq, r.Stamp.Txn, d,
							"seen before the abort was reported")
					}
				}
			}
		default:
			if p.failed.add(r.Stamp.Seq) {
				t.live.Failed++
				if w != nil {
					w.c.Failed++
				}
			}
		}
	}
	t.mu.Unlock()
}

// Received records deliveries to subscription sub (0 when there is one:
// SetSubscriptions) that arrived at now (Unix nanoseconds). A sub out of
// range counts the batch as malformed.
func (t *Tracker) Received(sub int, batch []drivers.Delivery, now int64) {
	t.mu.Lock()
	if sub < 0 || int64(sub) >= t.subs {
		t.live.Malformed += int64(len(batch))
		t.mu.Unlock()
		return
	}
	for i := range batch {
		d := &batch[i]
		runID, producer, seq, intended, sent, ok := stamp.Fields(d.Stamp)
		switch {
		case !ok:
			t.live.Malformed++
			continue
		case runID != t.runID:
			t.live.Foreign++
			continue
		case uint64(producer) >= uint64(len(t.producers)):
			t.live.Malformed++ // claims to be ours but names a producer the run has not
			continue
		case seq >= t.producers[producer].sent:
			if t.owns(producer) || seq >= maxForeignSeq {
				t.live.Malformed++ // claims to be ours but names a message never sent
				continue
			}
			// Sent by another shard: Merge checks it against what was sent.
			t.producers[producer].seen = max(t.producers[producer].seen, seq+1)
		}
		if d.Redelivered {
			t.live.Redelivered++
		}
		p := &t.producers[producer]
		var w *StepWindow
		if len(t.steps) > 0 {
			w = t.stepOf(intended)
		}
		if !p.received[sub].add(seq) {
			t.live.Duplicates++
			if len(t.spans) > 0 {
				t.spanDuplicate(producer, seq)
			}
			if w != nil {
				w.c.Duplicates++
			}
			if len(t.examples[exDuplicate]) < MaxExamples {
				t.example(exDuplicate, producer, seq, d, "delivered again"+t.inSub(sub))
			}
			continue
		}
		t.live.Received++
		acked := p.acked.has(seq)
		if acked {
			t.receivedAcked++
		} else if p.aborted.n > 0 && p.aborted.has(seq) {
			t.abortedDelivered(producer, seq, 0, d, "its transaction was aborted")
		} else if t.readCommitted && len(t.seenAt) < maxSeenAt && stamp.TxnOf(d.Stamp) != 0 {
			if t.seenAt == nil {
				t.seenAt = map[msgID]location{}
			}
			t.seenAt[msgID{producer, seq}] = location{d.Stream, d.Offset, d.HasOffset}
		}
		if t.pipe != nil {
			if pub, ok := p.pub.get(seq); ok {
				t.recordPipeline(now - sent - pub)
			} else {
				t.pipeUntimed++
			}
		}
		if w != nil {
			w.c.Received++
			if acked {
				w.c.ReceivedAcked++
			}
		}
		if d.DeadLetter {
			// Rejected by a consumer and routed back through the broker's
			// dead-letter path: counted, but neither order-checked (the
			// dead-letter queue is in rejection order) nor timed (the time
			// includes the rejection's round trip).
			t.live.DeadLettered++
			continue
		}
		if w != nil {
			w.record(0, now-intended)
			w.record(1, now-sent)
		}
		if d.Stream >= 0 {
			highest := p.highest[sub]
			if int(d.Stream) >= len(highest) {
				highest = append(highest, make([]uint64, int(d.Stream)+1-len(highest))...)
				p.highest[sub] = highest
			}
			if seq+1 < highest[d.Stream] {
				t.live.Reordered++
				if len(t.examples[exReordered]) < MaxExamples {
					t.example(exReordered, producer, seq, d,
						fmt.Sprintf("after seq %d of its producer%s", highest[d.Stream]-1, t.inSub(sub)))
				}
			} else {
				highest[d.Stream] = seq + 1
			}
		}
		e2e := t.record(0, now-intended)
		t.record(1, now-sent)
		if t.slice != nil || len(t.active) > 0 {
			t.observe(e2e)
		}
	}
	t.mu.Unlock()
}

// inSub names subscription sub for an example's problem when there are
// several. Called with t.mu held.
func (t *Tracker) inSub(sub int) string {
	if t.subs <= 1 {
		return ""
	}
	return fmt.Sprintf(" in subscription %d", sub)
}

// abortedDelivered counts the first delivery of a message of an aborted
// transaction (never confirmed): an aborted read when consumers read only
// committed data, else aborted-visible. d is the delivery when known (the
// abort may be reported after it). Summary recounts both exactly from the
// sets; these live counts serve intervals and progress. Called with t.mu
// held.
func (t *Tracker) abortedDelivered(producer uint32, seq, txn uint64, d *drivers.Delivery, why string) {
	if !t.readCommitted {
		t.live.AbortedVisible++
		return
	}
	t.live.AbortedReads++
	if len(t.examples[exAbortedRead]) < MaxExamples {
		e := t.example(exAbortedRead, producer, seq, d, why)
		if e.Txn == 0 {
			e.Txn = txn
		}
	}
}

// example records a violation of kind k (an index of exampleKinds) found
// at a delivery d (nil when there is none) and returns it for amending.
// Called with t.mu held.
func (t *Tracker) example(k int, producer uint32, seq uint64, d *drivers.Delivery, why string) *Example {
	e := Example{Producer: producer, Seq: seq, Kind: exampleKinds[k], Problem: exampleNames[k] + ": " + why}
	if d != nil {
		e.Txn = stamp.TxnOf(d.Stamp)
		if d.Stream >= 0 {
			stream := d.Stream
			e.Partition = &stream
		}
		if d.HasOffset {
			off := d.Offset
			e.Offset = &off
		}
	}
	t.examples[k] = append(t.examples[k], e)
	return &t.examples[k][len(t.examples[k])-1]
}

// recordPipeline adds a pipeline latency in nanoseconds. Called with t.mu
// held.
func (t *Tracker) recordPipeline(ns int64) {
	us := min(max(ns/1e3, 0), HistogramMaxUS)
	_ = t.pipe.RecordValue(us)
}

// record adds a latency in nanoseconds to kind k's current histogram.
func (t *Tracker) record(k int, ns int64) int64 {
	us := ns / 1e3
	switch {
	case ns < 0:
		us = 0
		t.live.Negative++
	case us > HistogramMaxUS:
		us = HistogramMaxUS
		t.live.Clamped++
	}
	_ = t.cur[k].RecordValue(us) // in range by construction
	return us
}

// Backlog is the number of messages acked and not yet received.
func (t *Tracker) Backlog() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.live.Acked*t.subs - t.receivedAcked
}

// Live returns the running totals (no set arithmetic: Lost, Unconfirmed and
// UnconfirmedDelivered are only known in the Summary).
func (t *Tracker) Live() Counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.live
}

// Interval is what happened between two ticks.
type Interval struct {
	Start, End time.Duration // offsets from the run's start
	Counts     Counts        // events within the interval
	Backlog    int64         // acked and not yet received, at End
	Latency    LatencySet
	// Histograms of the interval, indexed E2E, Service, Publish order; valid
	// until the visit function passed to Tick returns.
	hists latencies
}

// Tick closes the current interval at now and returns its figures; visit, if
// not nil, sees each of the interval's histograms (for interval logs), with
// start and end times set (Unix milliseconds), before they are reused. Tick
// must not be called concurrently with itself. It holds the tracker's lock
// while it adds the interval's histograms to the totals: at most about half
// a millisecond (BenchmarkTrackerTick), against the 10 ns per message that
// recording every latency twice, in the interval and the totals, would
// cost under the lock.
func (t *Tracker) Tick(now int64, visit func(kind string, h *hdr.Histogram)) Interval {
	t.mu.Lock()
	cur := t.cur
	t.cur = t.spare
	for k := range cur {
		t.total[k].Merge(cur[k]) // same geometry: drops nothing
	}
	live := t.live
	backlog := t.live.Acked*t.subs - t.receivedAcked
	t.mu.Unlock()

	iv := Interval{
		Start:   time.Duration(t.lastTick - t.start),
		End:     time.Duration(now - t.start),
		Counts:  diff(live, t.mark),
		Backlog: backlog,
		Latency: LatencySet{E2E: Summarize(cur[0]), Service: Summarize(cur[1]), Publish: Summarize(cur[2])},
	}
	for k := range cur {
		if visit != nil {
			cur[k].SetStartTimeMs(t.lastTick / 1e6)
			cur[k].SetEndTimeMs(now / 1e6)
			visit(Kinds[k], cur[k])
		}
		cur[k].Reset()
	}
	t.spare, t.mark, t.lastTick = cur, live, now
	return iv
}

func diff(a, b Counts) Counts {
	return Counts{
		Sent: a.Sent - b.Sent, Acked: a.Acked - b.Acked, Failed: a.Failed - b.Failed,
		Received: a.Received - b.Received, Duplicates: a.Duplicates - b.Duplicates,
		Reordered: a.Reordered - b.Reordered, Redelivered: a.Redelivered - b.Redelivered,
		DeadLettered: a.DeadLettered - b.DeadLettered,
		Aborted:      a.Aborted - b.Aborted, AbortedReads: a.AbortedReads - b.AbortedReads,
		AbortedVisible: a.AbortedVisible - b.AbortedVisible,
		Foreign:        a.Foreign - b.Foreign, Malformed: a.Malformed - b.Malformed,
		Clamped: a.Clamped - b.Clamped, Negative: a.Negative - b.Negative,
	}
}

// Example names one message behind a figure, so a finding can be traced:
// which producer sent it, its sequence number, and where it was found
// (the stream, e.g. a Kafka partition, and the offset in it) and its
// transaction, when known.
type Example struct {
	Producer uint32 `json:"producer"`
	Seq      uint64 `json:"seq"`
	Problem  string `json:"problem"`
	// Kind is the check it violates: ExampleLost, ExampleDuplicate,
	// ExampleReordered or ExampleAbortedRead.
	Kind string `json:"kind,omitempty"`
	// Partition is the ordered stream it was delivered on; nil when it
	// never was (lost) or the stream has no order.
	Partition *int32 `json:"partition,omitempty"`
	// Offset is its position in the stream, when the driver reports it.
	Offset *int64 `json:"offset,omitempty"`
	// Txn is the producer's transaction it was written in; 0: none or unknown.
	Txn uint64 `json:"txn,omitempty"`
}

// Example kinds.
const (
	ExampleLost        = "lost"
	ExampleDuplicate   = "duplicate"
	ExampleReordered   = "reordered"
	ExampleAbortedRead = "aborted_read"
)

// exampleKinds orders the Kinds in a summary's examples, the gravest
// first; exampleNames are their names in problems.
var (
	exampleKinds = [...]string{ExampleAbortedRead, ExampleLost, ExampleDuplicate, ExampleReordered}
	exampleNames = [...]string{"aborted read", "lost", "duplicate", "reordered"}
)

// Where formats the example's partition, offset and transaction for a
// table, none standing for each that is unknown.
func (e Example) Where(none string) (partition, offset, txn string) {
	partition, offset, txn = none, none, none
	if e.Partition != nil {
		partition = fmt.Sprint(*e.Partition)
	}
	if e.Offset != nil {
		offset = fmt.Sprint(*e.Offset)
	}
	if e.Txn != 0 {
		txn = fmt.Sprint(e.Txn)
	}
	return partition, offset, txn
}

// Indexes of exampleKinds.
const (
	exAbortedRead = iota
	exLost
	exDuplicate
	exReordered
)

// MaxExamples bounds the examples a summary lists.
const MaxExamples = 100

// Summary is the tracker's final account.
type Summary struct {
	Counts   Counts
	Latency  LatencySet
	Examples []Example
	// Histograms are copies of the total histograms, indexed by kind name;
	// with EnablePipeline it holds a "pipeline" histogram too.
	Histograms map[string]*hdr.Histogram
	// Pipeline is the pipeline latency (EnablePipeline), nil otherwise;
	// PipelineUntimed counts first deliveries that came before their
	// confirmation was reported, so they have no pipeline latency.
	Pipeline        *LatencySummary
	PipelineUntimed int64
	// StateBytes is the memory held by the accounting sets and the
	// tracker's histograms (total, current and spare interval).
	StateBytes int64
}

// Summary computes the final counts: lost (acked, never received),
// unconfirmed-delivered (received, neither acked nor aborted), failed
// (failed and never acked), aborted (aborted and never acked), aborted
// reads or aborted-visible (received, aborted, never acked) and unconfirmed
// (sent, with no outcome). Examples lists up to MaxExamples violations,
// taking the kinds in turn (aborted reads, lost, duplicates, reordered),
// each in the order found: lost messages producer by producer in sequence
// order, the others as they were delivered.
func (t *Tracker) Summary() Summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.live
	c.Acked, c.Failed, c.Lost, c.UnconfirmedDelivered, c.Unconfirmed = 0, 0, 0, 0, 0
	c.Aborted, c.AbortedReads, c.AbortedVisible = 0, 0, 0
	var lost []Example
	var state int64
	for i := range t.producers {
		p := &t.producers[i]
		acked := p.acked.len()
		c.Acked += acked
		var aborted int64
		if p.aborted.n > 0 {
			aborted = countAndNot(&p.aborted, &p.acked, p.sent, nil)
		}
		c.Aborted += aborted
		for sub := range p.received {
			recv := &p.received[sub]
			var each func(uint64) bool
			if len(lost) < MaxExamples {
				each = func(seq uint64) bool {
					e := Example{Producer: uint32(i), Seq: seq, Kind: ExampleLost, Problem: "lost: acked, never received"}
					if e.Txn = p.txnOf(seq); e.Txn != 0 {
						e.Problem = "lost: its transaction committed, never received"
					}
					e.Problem += t.inSub(sub)
					lost = append(lost, e)
					return len(lost) < MaxExamples
				}
			}
			c.Lost += countAndNot(&p.acked, recv, p.sent, each)
			var abortedSeen int64
			if p.aborted.n > 0 {
				abortedSeen = countWords(&p.aborted, p.sent, func(i uint64) uint64 {
					return p.aborted.word(i) & recv.word(i) &^ p.acked.word(i)
				})
			}
			if t.readCommitted {
				c.AbortedReads += abortedSeen
			} else {
				c.AbortedVisible += abortedSeen
			}
			c.UnconfirmedDelivered += countAndNot(recv, &p.acked, p.sent, nil) - abortedSeen
			state += recv.bytes() + int64(cap(p.highest[sub]))*8
		}
		failed := countWords(&p.failed, p.sent, func(i uint64) uint64 {
			return p.failed.word(i) &^ p.acked.word(i) &^ p.aborted.word(i)
		})
		c.Failed += failed
		c.Unconfirmed += int64(p.sent) - acked - failed - aborted
		state += p.acked.bytes() + p.failed.bytes() + p.aborted.bytes() +
			int64(cap(p.txns))*16 + p.pub.bytes()
	}
	hists := map[string]*hdr.Histogram{}
	var lat [3]LatencySummary
	for k := range t.total {
		h := t.total[k].Clone()
		h.Merge(t.cur[k])
		hists[Kinds[k]] = h
		lat[k] = Summarize(h)
		state += int64(t.total[k].ByteSize() + t.cur[k].ByteSize() + t.spare[k].ByteSize())
	}
	s := Summary{
		Counts:     c,
		Latency:    LatencySet{E2E: lat[0], Service: lat[1], Publish: lat[2]},
		Examples:   t.mergeExamples(lost),
		Histograms: hists,
	}
	if t.pipe != nil {
		h := t.pipe.Clone()
		hists[Pipeline] = h
		l := Summarize(h)
		s.Pipeline, s.PipelineUntimed = &l, t.pipeUntimed
		state += int64(h.ByteSize())
	}
	s.StateBytes = state
	return s
}

// mergeExamples takes the kinds of examples in turn, gravest first, until
// MaxExamples. Called with t.mu held.
func (t *Tracker) mergeExamples(lost []Example) []Example {
	byKind := t.examples
	byKind[exLost] = lost
	var out []Example
	for i := 0; len(out) < MaxExamples; i++ {
		added := false
		for k := range byKind {
			if i < len(byKind[k]) && len(out) < MaxExamples {
				out = append(out, byKind[k][i])
				added = true
			}
		}
		if !added {
			break
		}
	}
	return out
}
