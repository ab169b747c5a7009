package accounting

import (
	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Span attributes traffic to a span of the run, such as a chaos fault:
// the e2e latency of messages received while it is open, and the lost and
// duplicated messages whose send falls inside it. Send time is attributed by
// sequence number: a span remembers each producer's sent count when it
// opened and closed, so the attribution is exact.
type Span struct {
	id       int // the caller's name for it, kept in States
	e2e      *hdr.Histogram
	from, to []uint64 // per producer; to is nil while open
	dups     int64
}

// OpenSpan starts a span at the current moment. id names it in States, so
// that the shards' views of one span merge (Merge): the same id on every
// shard, e.g. the chaos fault's place in the scenario's timeline.
func (t *Tracker) OpenSpan(id int) *Span {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := &Span{id: id, e2e: NewHistogram(), from: make([]uint64, len(t.producers))}
	for i := range t.producers {
		w.from[i] = t.producers[i].sent
	}
	t.spans = append(t.spans, w)
	t.active = append(t.active, w)
	return w
}

// CloseSpan ends w at the current moment; closing twice does nothing.
func (t *Tracker) CloseSpan(w *Span) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if w.to != nil {
		return
	}
	w.to = make([]uint64, len(t.producers))
	for i := range t.producers {
		w.to[i] = t.producers[i].sent
	}
	for i, a := range t.active {
		if a == w {
			t.active = append(t.active[:i], t.active[i+1:]...)
			break
		}
	}
}

// SpanFigures are what a span saw.
type SpanFigures struct {
	E2E        LatencySummary // of messages received while it was open
	Lost       int64          // sent inside it, acked, never received
	Duplicates int64          // duplicate deliveries of messages sent inside it
}

// Figures returns w's figures; call it after the drain for final lost counts.
// A span still open is measured up to now.
func (t *Tracker) Figures(w *Span) SpanFigures {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := SpanFigures{E2E: Summarize(w.e2e), Duplicates: w.dups}
	for i := range t.producers {
		p := &t.producers[i]
		to := p.sent
		if w.to != nil {
			to = w.to[i]
		}
		for sub := range p.received {
			recv := &p.received[sub]
			f.Lost += countAndNot(&p.acked, recv, to, nil) - countAndNot(&p.acked, recv, w.from[i], nil)
		}
	}
	return f
}

// spanDuplicate attributes a duplicate delivery to the spans its message
// was sent in. Called with t.mu held.
func (t *Tracker) spanDuplicate(producer uint32, seq uint64) {
	for _, w := range t.spans {
		if seq < w.from[producer] || (w.to != nil && seq >= w.to[producer]) {
			continue
		}
		w.dups++
	}
}

// observe records an e2e latency (µs) into the open spans and the slice.
// Called with t.mu held.
func (t *Tracker) observe(us int64) {
	for _, w := range t.active {
		_ = w.e2e.RecordValue(us)
	}
	if t.slice != nil {
		_ = t.slice.RecordValue(us)
	}
}

// EnableSlices makes the tracker also record e2e latency into a slice
// histogram that SwapSlice hands out, for measurements finer than the
// report interval (chaos recovery times).
func (t *Tracker) EnableSlices() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.slice == nil {
		t.slice = NewHistogram()
	}
}

// NewSliceHistogram returns an empty histogram of the kind SwapSlice takes.
func NewSliceHistogram() *hdr.Histogram { return NewHistogram() }

// SwapSlice installs fresh (which must be empty) as the slice histogram and
// returns the one filled since the last swap, the backlog now, and the
// largest backlog since the last swap (exact, not sampled).
func (t *Tracker) SwapSlice(fresh *hdr.Histogram) (filled *hdr.Histogram, backlog, peak int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	filled, t.slice = t.slice, fresh
	backlog = t.live.Acked*t.subs - t.receivedAcked
	peak = max(t.slicePeak, backlog)
	t.slicePeak = backlog
	return filled, backlog, peak
}
