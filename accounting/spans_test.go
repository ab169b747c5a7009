package accounting

import (
	"testing"

	"github.com/spate-dev/spate/drivers"
)

// TestWindowAttribution: a window open while seqs 100..199 are sent counts
// exactly the lost and duplicated messages among them, and the latency of
// messages received while it was open.
func TestWindowAttribution(t *testing.T) {
	tr := NewTracker(testRunID, 1, 0)
	send := func(from, to uint64) {
		tr.Sent(0, to)
		var acks []drivers.Result
		for s := from; s < to; s++ {
			acks = append(acks, ack(0, s))
		}
		tr.Acked(acks, now)
	}
	deliver := func(seqs ...uint64) {
		var ds []drivers.Delivery
		for _, s := range seqs {
			ds = append(ds, delivery(0, s, 0))
		}
		tr.Received(0, ds, now)
	}
	send(0, 100)
	w := tr.OpenSpan(0)
	send(100, 200)
	tr.CloseSpan(w)
	send(200, 300)
	tr.CloseSpan(w) // twice is harmless

	for s := uint64(0); s < 300; s++ {
		switch {
		case s == 50 || s == 150 || s == 151 || s == 250:
			// lost: two inside the window, two outside
		case s == 120 || s == 20 || s == 220:
			deliver(s, s) // duplicated: one inside the window
		default:
			deliver(s)
		}
	}
	f := tr.Figures(w)
	if f.Lost != 2 || f.Duplicates != 1 {
		t.Errorf("window figures %+v; want 2 lost, 1 duplicate", f)
	}
	if f.E2E.Count != 0 {
		t.Errorf("nothing was received while the window was open, got %d latencies", f.E2E.Count)
	}
	if c := tr.Summary().Counts; c.Lost != 4 || c.Duplicates != 3 {
		t.Errorf("whole run: %+v", c)
	}

	// Latencies land in the windows open when the message arrives.
	w2 := tr.OpenSpan(0)
	tr.Sent(0, 301)
	tr.Received(0, []drivers.Delivery{delivery(0, 300, 0)}, now)
	if got := tr.Figures(w2).E2E.Count; got != 1 {
		t.Errorf("open window saw %d latencies, want 1", got)
	}
}

func TestSlices(t *testing.T) {
	tr := NewTracker(testRunID, 1, 0)
	tr.EnableSlices()
	tr.Sent(0, 3)
	tr.Acked([]drivers.Result{ack(0, 0), ack(0, 1), ack(0, 2)}, now)
	tr.Received(0, []drivers.Delivery{delivery(0, 0, 0), delivery(0, 1, 0)}, now)
	h, backlog, peak := tr.SwapSlice(NewSliceHistogram())
	if h.TotalCount() != 2 || backlog != 1 || peak != 3 {
		t.Errorf("slice has %d latencies, backlog %d, peak %d; want 2, 1 and 3", h.TotalCount(), backlog, peak)
	}
	h.Reset()
	h, _, _ = tr.SwapSlice(h)
	if h.TotalCount() != 0 {
		t.Errorf("a fresh slice has %d latencies", h.TotalCount())
	}
}
