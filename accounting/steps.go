package accounting

import (
	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// StepWindow attributes messages to a step of a find-max search by their
// intended send time: every message due in [from, to) belongs to the step,
// whenever it is acked or received. Its latencies (e2e and service of first
// deliveries, publish of confirmations) and counts are the step's own,
// not the run's cumulative ones. Attribution by the stamp's intended time
// is exact whatever the order of arrival, so a straggler of one step that
// arrives during the next still counts for its own.
type StepWindow struct {
	from, to int64 // Unix ns of intended send time
	lat      latencies
	c        StepCounts
}

// StepCounts are a step's message counts, as known when it is read.
type StepCounts struct {
	Acked      int64 // confirmed
	Failed     int64 // failure outcomes
	Received   int64 // first deliveries
	Duplicates int64 // deliveries after the first
	// ReceivedAcked counts deliveries owed and made: (message,
	// subscription) pairs both acked and received.
	ReceivedAcked int64
	// Subscriptions is the run's number of subscriptions, each owed every
	// acked message (Tracker.SetSubscriptions).
	Subscriptions int64
}

// Missing is the deliveries of the step's acked messages not made (yet):
// with one subscription, its acked messages not received.
func (c StepCounts) Missing() int64 { return c.Acked*max(c.Subscriptions, 1) - c.ReceivedAcked }

// StepFigures are what a step window saw.
type StepFigures struct {
	Counts  StepCounts
	Latency LatencySet
	// Histograms of the step's latencies, by kind (E2E, Service, Publish),
	// owned by the caller.
	Histograms map[string]*hdr.Histogram
}

// OpenStep starts attributing messages intended in [from, to) (Unix ns)
// to a new window. Open it before the first of those messages is sent.
func (t *Tracker) OpenStep(from, to int64) *StepWindow {
	w := &StepWindow{from: from, to: to, lat: newLatencies()}
	t.mu.Lock()
	w.c.Subscriptions = t.subs
	t.steps = append(t.steps, w)
	t.mu.Unlock()
	return w
}

// StepFigures returns the window's figures so far.
func (t *Tracker) StepFigures(w *StepWindow) StepFigures {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := StepFigures{Counts: w.c, Histograms: map[string]*hdr.Histogram{}}
	var lat [3]LatencySummary
	for k := range w.lat {
		h := w.lat[k].Clone()
		f.Histograms[Kinds[k]] = h
		lat[k] = Summarize(h)
	}
	f.Latency = LatencySet{E2E: lat[0], Service: lat[1], Publish: lat[2]}
	return f
}

// CloseStep stops attributing messages to w and returns its figures;
// messages of the step that arrive later count only in the run's totals.
// Closing twice returns the same figures.
func (t *Tracker) CloseStep(w *StepWindow) StepFigures {
	t.mu.Lock()
	for i, s := range t.steps {
		if s == w {
			t.steps = append(t.steps[:i], t.steps[i+1:]...)
			break
		}
	}
	t.mu.Unlock()
	return t.StepFigures(w)
}

// stepOf returns the open window that intended falls in, or nil. Called
// with t.mu held; windows are few (one or two) and only open during a
// find-max phase.
func (t *Tracker) stepOf(intended int64) *StepWindow {
	for _, w := range t.steps {
		if intended >= w.from && intended < w.to {
			return w
		}
	}
	return nil
}

// recordStep adds a latency in nanoseconds to w's histogram of kind k,
// clamped as the totals are.
func (w *StepWindow) record(k int, ns int64) {
	us := ns / 1e3
	switch {
	case ns < 0:
		us = 0
	case us > HistogramMaxUS:
		us = HistogramMaxUS
	}
	_ = w.lat[k].RecordValue(us)
}

// ImputeMissing counts each of the step's acked messages still missing
// as an e2e latency of waitedUS (how long after the step's end it was
// judged): a lower bound of their real latency, where leaving them out
// would flatter the step. The e2e summary is updated.
func (f *StepFigures) ImputeMissing(waitedUS int64) {
	n := f.Counts.Missing()
	h := f.Histograms[E2E]
	if n <= 0 || h == nil {
		return
	}
	_ = h.RecordValues(min(max(waitedUS, 0), HistogramMaxUS), n)
	f.Latency.E2E = Summarize(h)
}
