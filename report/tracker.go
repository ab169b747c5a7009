// Package report turns what a run observed into spate's figures and files:
// the Tracker (exact accounting and HDR histograms), Results (the schema of
// results.json), threshold evaluation, and writers for the text summary,
// results.json and .hgrm percentile files. It knows nothing of brokers.
package report

import (
	"errors"
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
	histMinUS  = 1
	histMaxUS  = int64(time.Hour / time.Microsecond)
	histDigits = 3
)

func newHist() *hdr.Histogram { return hdr.New(histMinUS, histMaxUS, histDigits) }

// Latency kinds, as named in results and thresholds.
const (
	E2E     = "e2e"     // receive time − intended send time (coordinated-omission safe)
	Service = "service" // receive time − actual send time
	Publish = "publish" // confirmation time − actual send time
)

type latencies [3]*hdr.Histogram // indexed like kinds

var kinds = [3]string{E2E, Service, Publish}

func newLatencies() latencies { return latencies{newHist(), newHist(), newHist()} }

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
	Foreign              int64 `json:"foreign"`
	Malformed            int64 `json:"malformed"`
	Clamped              int64 `json:"clamped_latencies,omitempty"`
	Negative             int64 `json:"negative_latencies,omitempty"`
}

// Tracker accounts for one run's messages, exactly. It keeps, per producer,
// which sequence numbers were acked, failed and received, and the highest
// sequence seen per ordered stream; and HDR histograms of the three
// latencies, in total and for the current interval.
//
// A Tracker is safe for concurrent use. Each method takes the lock once, so
// callers pass batches. Recording allocates nothing except a new 8 KiB page
// of a sequence set every 65,536 messages per producer.
type Tracker struct {
	mu        sync.Mutex
	runID     uint64
	producers []producerState
	live      Counts // running totals
	// receivedAcked counts messages both acked and received, so that
	// backlog = acked − receivedAcked is exact at every moment.
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

	// Tick state, owned by the single goroutine that calls Tick.
	start    int64
	lastTick int64
	mark     Counts
	spare    latencies
}

type producerState struct {
	sent                    uint64 // sequence numbers below this were sent
	acked, failed, received seqset
	// highest[stream] is one more than the highest sequence number first
	// delivered on that stream (0: none yet).
	highest []uint64
}

// NewTracker returns a tracker for run runID with the given number of
// producers, whose clock starts at start (Unix nanoseconds).
func NewTracker(runID uint64, producers int, start int64) *Tracker {
	return &Tracker{
		runID:     runID,
		producers: make([]producerState, producers),
		total:     newLatencies(),
		cur:       newLatencies(),
		spare:     newLatencies(),
		start:     start,
		lastTick:  start,
	}
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
				received := p.received.has(r.Stamp.Seq)
				if received {
					t.receivedAcked++
				} else if t.slice != nil {
					t.slicePeak = max(t.slicePeak, t.live.Acked-t.receivedAcked)
				}
				t.record(2, now-r.Stamp.Sent)
				if w != nil {
					w.c.Acked++
					if received {
						w.c.ReceivedAcked++
					}
					w.record(2, now-r.Stamp.Sent)
				}
			}
		case errors.Is(r.Err, drivers.ErrUnconfirmed):
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

// Received records deliveries that arrived at now (Unix nanoseconds).
func (t *Tracker) Received(batch []drivers.Delivery, now int64) {
	t.mu.Lock()
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
		case uint64(producer) >= uint64(len(t.producers)) || seq >= t.producers[producer].sent:
			t.live.Malformed++ // claims to be ours but names a message never sent
			continue
		}
		if d.Redelivered {
			t.live.Redelivered++
		}
		p := &t.producers[producer]
		var w *StepWindow
		if len(t.steps) > 0 {
			w = t.stepOf(intended)
		}
		if !p.received.add(seq) {
			t.live.Duplicates++
			if len(t.spans) > 0 {
				t.spanDuplicate(producer, seq)
			}
			if w != nil {
				w.c.Duplicates++
			}
			continue
		}
		t.live.Received++
		acked := p.acked.has(seq)
		if acked {
			t.receivedAcked++
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
			if int(d.Stream) >= len(p.highest) {
				p.highest = append(p.highest, make([]uint64, int(d.Stream)+1-len(p.highest))...)
			}
			if seq+1 < p.highest[d.Stream] {
				t.live.Reordered++
			} else {
				p.highest[d.Stream] = seq + 1
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

// record adds a latency in nanoseconds to kind k's current histogram.
func (t *Tracker) record(k int, ns int64) int64 {
	us := ns / 1e3
	switch {
	case ns < 0:
		us = 0
		t.live.Negative++
	case us > histMaxUS:
		us = histMaxUS
		t.live.Clamped++
	}
	_ = t.cur[k].RecordValue(us) // in range by construction
	return us
}

// Backlog is the number of messages acked and not yet received.
func (t *Tracker) Backlog() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.live.Acked - t.receivedAcked
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
	backlog := t.live.Acked - t.receivedAcked
	t.mu.Unlock()

	iv := Interval{
		Start:   time.Duration(t.lastTick - t.start),
		End:     time.Duration(now - t.start),
		Counts:  diff(live, t.mark),
		Backlog: backlog,
		Latency: LatencySet{E2E: summarize(cur[0]), Service: summarize(cur[1]), Publish: summarize(cur[2])},
	}
	for k := range cur {
		if visit != nil {
			cur[k].SetStartTimeMs(t.lastTick / 1e6)
			cur[k].SetEndTimeMs(now / 1e6)
			visit(kinds[k], cur[k])
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
		Foreign:      a.Foreign - b.Foreign, Malformed: a.Malformed - b.Malformed,
		Clamped: a.Clamped - b.Clamped, Negative: a.Negative - b.Negative,
	}
}

// Example names one message behind a figure, so a finding can be traced.
type Example struct {
	Producer uint32 `json:"producer"`
	Seq      uint64 `json:"seq"`
	Problem  string `json:"problem"`
}

// MaxExamples bounds the examples a summary lists.
const MaxExamples = 100

// Summary is the tracker's final account.
type Summary struct {
	Counts   Counts
	Latency  LatencySet
	Examples []Example
	// Histograms are copies of the total histograms, indexed by kind name.
	Histograms map[string]*hdr.Histogram
	// StateBytes is the memory held by the accounting sets and the
	// tracker's histograms (total, current and spare interval).
	StateBytes int64
}

// Summary computes the final counts: lost (acked, never received),
// unconfirmed-delivered (received, never acked), failed (failed and never
// acked) and unconfirmed (sent, neither acked nor failed). Examples lists
// the first lost messages, producer by producer in sequence order, at most
// MaxExamples.
func (t *Tracker) Summary() Summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.live
	c.Acked, c.Failed, c.Lost, c.UnconfirmedDelivered, c.Unconfirmed = 0, 0, 0, 0, 0
	var examples []Example
	var state int64
	for i := range t.producers {
		p := &t.producers[i]
		var each func(uint64) bool
		if len(examples) < MaxExamples {
			each = func(seq uint64) bool {
				examples = append(examples, Example{Producer: uint32(i), Seq: seq, Problem: "lost: acked, never received"})
				return len(examples) < MaxExamples
			}
		}
		acked := p.acked.len()
		c.Acked += acked
		c.Lost += countAndNot(&p.acked, &p.received, p.sent, each)
		c.UnconfirmedDelivered += countAndNot(&p.received, &p.acked, p.sent, nil)
		failed := countAndNot(&p.failed, &p.acked, p.sent, nil)
		c.Failed += failed
		c.Unconfirmed += int64(p.sent) - acked - failed
		state += p.acked.bytes() + p.failed.bytes() + p.received.bytes() + int64(cap(p.highest))*8
	}
	hists := map[string]*hdr.Histogram{}
	var lat [3]LatencySummary
	for k := range t.total {
		h := t.total[k].Clone()
		h.Merge(t.cur[k])
		hists[kinds[k]] = h
		lat[k] = summarize(h)
		state += int64(t.total[k].ByteSize() + t.cur[k].ByteSize() + t.spare[k].ByteSize())
	}
	return Summary{
		Counts:     c,
		Latency:    LatencySet{E2E: lat[0], Service: lat[1], Publish: lat[2]},
		Examples:   examples,
		Histograms: hists,
		StateBytes: state,
	}
}
