package accounting

import (
	"bufio"
	"compress/gzip"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"sync"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// A State is a tracker's account in a form that can be written, read and
// merged: every sequence set as pages of bits, the running counts, the
// total latency histograms, the examples found as messages arrived, and the
// chaos spans. States of the shards of one distributed run merge exactly
// (Merge): sets by union, histograms of identical settings by addition, and
// counts so that the result is what one process would have counted from
// the same deliveries.
//
// A Delta is a State holding only the set pages written since the previous
// Delta and the running counts, for live aggregation while a run goes.
type State struct {
	RunID uint64
	// Shard and Shards say which producers the tracker counted sends and
	// outcomes for (Tracker.SetShard); Shards is 1 in a single process.
	Shard, Shards int
	// Partial says the state is not its shard's final account but what
	// was known of it (its last live report): its producers may have sent
	// more than Sent says.
	Partial       bool
	Start         int64 // the tracker's clock start, Unix ns
	Subs          int
	ReadCommitted bool
	// Live is the tracker's running totals (Tracker.Live).
	Live      Counts
	Producers []ProducerState
	// Histograms are the total latency histograms (E2E, Service, Publish,
	// and Pipeline when enabled) in HdrHistogram's V2 compressed encoding; empty in
	// a delta.
	Histograms  map[string][]byte
	Examples    []Example // found as messages arrived (lost ones are derived)
	PipeUntimed int64
	Spans       []SpanState
}

// ProducerState is one producer's sets. In a delta, the pages written
// since the previous one.
type ProducerState struct {
	Sent, Seen             uint64
	Acked, Failed, Aborted []Page
	Received               [][]Page // per subscription
	Txns                   []TxnMark
}

// Page holds members of a sequence set in [Index<<16, (Index+1)<<16): bit
// i of Bits[w] is sequence number Index<<16 + (Offset+w)*64 + i. A State's
// pages are whole (Offset 0, 1,024 words); a Delta's hold only the words
// written since the previous one.
type Page struct {
	Index  uint32
	Offset uint16
	Bits   []uint64
}

// TxnMark says that from Seq on (until the next mark) a producer's
// messages belong to transaction Txn.
type TxnMark struct{ Seq, Txn uint64 }

// SpanState is a chaos span (OpenSpan) as one tracker saw it.
type SpanState struct {
	ID       int
	From, To []uint64 // per producer; To is nil while the span is open
	Dups     int64
	E2E      []byte // V2 compressed histogram
}

// State returns the tracker's whole account.
func (t *Tracker) State() (*State, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.stateHeader()
	for i := range t.producers {
		p := &t.producers[i]
		ps := ProducerState{Sent: p.sent, Seen: p.seen, Acked: p.acked.all(), Failed: p.failed.all(), Aborted: p.aborted.all()}
		for sub := range p.received {
			ps.Received = append(ps.Received, p.received[sub].all())
		}
		for _, m := range p.txns {
			ps.Txns = append(ps.Txns, TxnMark{m.seq, m.txn})
		}
		s.Producers[i] = ps
	}
	s.Histograms = map[string][]byte{}
	for k := range t.total {
		h := t.total[k].Clone()
		h.Merge(t.cur[k])
		b, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
		if err != nil {
			return nil, fmt.Errorf("accounting: encode %s histogram: %w", Kinds[k], err)
		}
		s.Histograms[Kinds[k]] = b
	}
	if t.pipe != nil {
		b, err := t.pipe.Encode(hdr.V2CompressedEncodingCookieBase)
		if err != nil {
			return nil, fmt.Errorf("accounting: encode pipeline histogram: %w", err)
		}
		s.Histograms[Pipeline] = b
	}
	for k := range t.examples {
		s.Examples = append(s.Examples, t.examples[k]...)
	}
	for _, w := range t.spans {
		b, err := w.e2e.Encode(hdr.V2CompressedEncodingCookieBase)
		if err != nil {
			return nil, fmt.Errorf("accounting: encode span histogram: %w", err)
		}
		s.Spans = append(s.Spans, SpanState{ID: w.id, From: slices.Clone(w.from), To: slices.Clone(w.to), Dups: w.dups, E2E: b})
	}
	return s, nil
}

// Delta returns the running totals and the acked and received pages
// written since the previous Delta: what a shard ships while the run goes,
// so that the coordinator's union (Merge) knows the run's backlog exactly.
// Failed and aborted sets, histograms, examples and spans wait for State.
func (t *Tracker) Delta() *State {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.stateHeader()
	for i := range t.producers {
		p := &t.producers[i]
		ps := ProducerState{Sent: p.sent, Seen: p.seen, Acked: p.acked.takeDirty()}
		for sub := range p.received {
			ps.Received = append(ps.Received, p.received[sub].takeDirty())
		}
		s.Producers[i] = ps
	}
	return s
}

func (t *Tracker) stateHeader() *State {
	return &State{
		RunID: t.runID, Shard: t.shard, Shards: t.shards, Start: t.start, Subs: int(t.subs),
		ReadCommitted: t.readCommitted, Live: t.live, PipeUntimed: t.pipeUntimed,
		Producers: make([]ProducerState, len(t.producers)),
	}
}

// Merge returns a tracker holding the union of states, all of one run and
// of one shape (producers, subscriptions): the account one process would
// have kept had it seen every send, outcome and delivery the states saw.
// Its Summary and span Figures are the run's figures:
//   - acked, failed and aborted sets are unions (each producer's outcomes
//     come from the shard that ran it);
//   - received is the union of the shards' received sets, so a message
//     delivered to two shards (after a rebalance) is received once;
//   - duplicates are all deliveries (each state's first deliveries plus
//     its duplicates) minus the union;
//   - redelivered, reordered, dead-lettered, foreign, malformed, clamped
//     and negative latencies are sums (reordering is judged within each
//     shard's view of a stream);
//   - histograms add, dropping nothing;
//   - a received sequence number at or above its producer's sent (which
//     one process would have called malformed) is removed and counted as
//     malformed.
//
// Merge of one State gives back the tracker's account.
func Merge(states ...*State) (*Tracker, error) {
	if len(states) == 0 {
		return nil, errors.New("accounting: nothing to merge")
	}
	first := states[0]
	t := NewTracker(first.RunID, len(first.Producers), first.Start)
	t.setSubs(max(first.Subs, 1))
	t.readCommitted = first.ReadCommitted
	var deliveries int64
	partial := map[int]bool{} // shards whose sends are known only in part
	for _, s := range states {
		if err := t.MergeSets(s); err != nil {
			return nil, err
		}
		if err := t.mergeRest(s); err != nil {
			return nil, err
		}
		deliveries += s.Live.Received + s.Live.Duplicates
		if s.Partial {
			partial[s.Shard] = true
		}
	}
	t.settle(deliveries, func(p int) bool { return partial[p%max(first.Shards, 1)] })
	return t, nil
}

// MergeSets adds the set pages of s (a State or a Delta) to t, keeping
// t's acked, failed, aborted and received counts and its backlog exact,
// and raises each producer's sent and seen marks to s's. Other figures
// are left alone: a live union of deltas knows exactly what was acked and
// received, while deliveries and latencies come with each shard's counts.
func (t *Tracker) MergeSets(s *State) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.compatible(s); err != nil {
		return err
	}
	for i := range s.Producers {
		ps := &s.Producers[i]
		p := &t.producers[i]
		if ps.Sent > p.sent {
			t.live.Sent += int64(ps.Sent - p.sent)
			p.sent = ps.Sent
		}
		p.seen = max(p.seen, ps.Seen)
		for _, pg := range ps.Acked {
			p.acked.or(pg, func(w int, added uint64) {
				t.live.Acked += int64(bits.OnesCount64(added))
				for sub := range p.received {
					t.receivedAcked += int64(bits.OnesCount64(added & p.received[sub].word(uint64(pg.Index)<<(pageShift-6)+uint64(w))))
				}
			})
		}
		for _, pg := range ps.Failed {
			p.failed.or(pg, nil)
		}
		for _, pg := range ps.Aborted {
			p.aborted.or(pg, nil)
		}
		for sub, pages := range ps.Received {
			for _, pg := range pages {
				p.received[sub].or(pg, func(w int, added uint64) {
					t.live.Received += int64(bits.OnesCount64(added))
					t.receivedAcked += int64(bits.OnesCount64(added & p.acked.word(uint64(pg.Index)<<(pageShift-6)+uint64(w))))
				})
			}
		}
		for _, m := range ps.Txns {
			p.markTxn(m.Seq, m.Txn)
		}
	}
	return nil
}

// compatible checks that s is of t's run and shape, and that its pages
// are well formed. Called with t.mu held.
func (t *Tracker) compatible(s *State) error {
	switch {
	case s.RunID != t.runID:
		return fmt.Errorf("accounting: state of run %016x, merging run %016x", s.RunID, t.runID)
	case len(s.Producers) != len(t.producers):
		return fmt.Errorf("accounting: state of %d producers, merging %d", len(s.Producers), len(t.producers))
	case max(s.Subs, 1) != int(t.subs):
		return fmt.Errorf("accounting: state of %d subscriptions, merging %d", s.Subs, t.subs)
	}
	for i := range s.Producers {
		ps := &s.Producers[i]
		if len(ps.Received) > int(t.subs) {
			return fmt.Errorf("accounting: producer %d has received sets of %d subscriptions, merging %d", i, len(ps.Received), t.subs)
		}
		sets := [][]Page{ps.Acked, ps.Failed, ps.Aborted}
		sets = append(sets, ps.Received...)
		for _, pages := range sets {
			for _, pg := range pages {
				if int(pg.Offset)+len(pg.Bits) > pageWords || uint64(pg.Index) >= maxForeignSeq>>pageShift {
					return fmt.Errorf("accounting: producer %d has a malformed page (index %d, words %d..%d of %d)", i, pg.Index, pg.Offset, int(pg.Offset)+len(pg.Bits), pageWords)
				}
			}
		}
	}
	return nil
}

// mergeRest adds s's counts, histograms, examples and spans. Called
// before settle.
func (t *Tracker) mergeRest(s *State) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := &t.live
	c.Redelivered += s.Live.Redelivered
	c.DeadLettered += s.Live.DeadLettered
	c.Reordered += s.Live.Reordered
	c.Foreign += s.Live.Foreign
	c.Malformed += s.Live.Malformed
	c.Clamped += s.Live.Clamped
	c.Negative += s.Live.Negative
	c.Aborted += s.Live.Aborted
	c.AbortedReads += s.Live.AbortedReads
	c.AbortedVisible += s.Live.AbortedVisible
	t.pipeUntimed += s.PipeUntimed
	for kind, b := range s.Histograms {
		h, err := hdr.Decode(b)
		if err != nil {
			return fmt.Errorf("accounting: %s histogram: %w", kind, err)
		}
		dst := t.histogram(kind)
		if dst == nil {
			return fmt.Errorf("accounting: unknown histogram %q", kind)
		}
		if dropped := dst.Merge(h); dropped != 0 {
			return fmt.Errorf("accounting: %s histogram of other settings: %d values out of range", kind, dropped)
		}
	}
	for _, e := range s.Examples {
		k := slices.Index(exampleKinds[:], e.Kind)
		if k < 0 || k == exLost {
			continue
		}
		if len(t.examples[k]) < MaxExamples {
			t.examples[k] = append(t.examples[k], e)
		}
	}
	for _, ss := range s.Spans {
		if err := t.mergeSpan(ss); err != nil {
			return err
		}
	}
	return nil
}

// histogram returns the total histogram of kind, making the pipeline's
// on demand. Called with t.mu held.
func (t *Tracker) histogram(kind string) *hdr.Histogram {
	if k := slices.Index(Kinds[:], kind); k >= 0 {
		return t.total[k]
	}
	if kind == Pipeline {
		if t.pipe == nil {
			t.pipe = NewHistogram()
		}
		return t.pipe
	}
	return nil
}

// mergeSpan adds a shard's view of span ss: the e2e latencies received
// and duplicates delivered in it add up; its bounds per producer come from
// the shard that ran the producer (the others never saw it send). Called
// with t.mu held.
func (t *Tracker) mergeSpan(ss SpanState) error {
	if len(ss.From) != len(t.producers) || (ss.To != nil && len(ss.To) != len(t.producers)) {
		return fmt.Errorf("accounting: span %d has bounds for %d producers, merging %d", ss.ID, len(ss.From), len(t.producers))
	}
	h, err := hdr.Decode(ss.E2E)
	if err != nil {
		return fmt.Errorf("accounting: span %d histogram: %w", ss.ID, err)
	}
	var w *Span
	for _, s := range t.spans {
		if s.id == ss.ID {
			w = s
		}
	}
	if w == nil {
		w = &Span{id: ss.ID, e2e: NewHistogram(), from: make([]uint64, len(t.producers)), to: make([]uint64, len(t.producers))}
		t.spans = append(t.spans, w)
	}
	w.e2e.Merge(h)
	w.dups += ss.Dups
	for i := range w.from {
		w.from[i] = max(w.from[i], ss.From[i])
		if ss.To != nil {
			w.to[i] = max(w.to[i], ss.To[i])
		}
	}
	return nil
}

// settle finishes a merge: deliveries is every first delivery and
// duplicate the states counted. Received members at or above their
// producer's sent become malformed, unless the producer's sends are known
// only in part (partialSends): then they were sent, after its shard's last
// report.
func (t *Tracker) settle(deliveries int64, partialSends func(producer int) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.producers {
		p := &t.producers[i]
		if p.seen <= p.sent {
			continue
		}
		if partialSends(i) {
			t.live.Sent += int64(p.seen - p.sent)
			p.sent = p.seen
			continue
		}
		for sub := range p.received {
			n := p.received[sub].clearFrom(p.sent)
			t.live.Received -= n
			t.live.Malformed += n
			deliveries -= n
		}
		p.seen = p.sent
	}
	t.live.Duplicates = max(deliveries-t.live.Received, 0)
}

// Spans returns the merged tracker's spans by id, for chaos results.
func (t *Tracker) Spans() map[int]*Span {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[int]*Span{}
	for _, w := range t.spans {
		out[w.id] = w
	}
	return out
}

// stateMagic starts an encoded State; the digit is the format's version.
const stateMagic = "spate-accounting-state-1\n"

// gzipWriters are reused: a compressor's tables cost more to make than
// compressing a delta of a few pages does.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed) // a valid level: no error
	return zw
}}

// WriteTo writes s gzip-compressed, as ReadState reads it.
func (s *State) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(cw)
	if _, err := io.WriteString(zw, stateMagic); err != nil {
		return cw.n, err
	}
	if err := gob.NewEncoder(zw).Encode(s); err != nil {
		return cw.n, fmt.Errorf("accounting: encode state: %w", err)
	}
	if err := zw.Close(); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}

// ReadState reads a State written by WriteTo, refusing one that would
// take more than maxBytes once decompressed (a guard against a corrupt or
// hostile file: a State takes about one bit per message and subscription
// for each set).
func ReadState(r io.Reader, maxBytes int64) (*State, error) {
	zr, err := gzip.NewReader(bufio.NewReader(r))
	if err != nil {
		return nil, fmt.Errorf("accounting: not a state file: %w", err)
	}
	lr := &io.LimitedReader{R: zr, N: maxBytes + 1}
	magic := make([]byte, len(stateMagic))
	if _, err := io.ReadFull(lr, magic); err != nil || string(magic) != stateMagic {
		return nil, errors.New("accounting: not a state file of this format (spate-accounting-state-1)")
	}
	var s State
	if err := gob.NewDecoder(lr).Decode(&s); err != nil {
		if lr.N <= 0 {
			return nil, fmt.Errorf("accounting: state larger than %d bytes", maxBytes)
		}
		return nil, fmt.Errorf("accounting: decode state: %w", err)
	}
	if lr.N <= 0 {
		return nil, fmt.Errorf("accounting: state larger than %d bytes", maxBytes)
	}
	return &s, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
