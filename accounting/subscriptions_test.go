package accounting

import (
	"strings"
	"testing"

	"github.com/spate-dev/spate/drivers"
)

// TestTrackerSubscriptions builds a fan-out run by hand: one producer
// sends 0..999, all acked; subscription 0 receives everything in order;
// subscription 1 misses 990..999, receives 500 twice and 701 before 700;
// subscription 2 receives 0 before its ack was reported, then everything
// else. Each figure is counted per subscription and summed.
func TestTrackerSubscriptions(t *testing.T) {
	tr := NewTracker(testRunID, 1, 0)
	tr.SetSubscriptions(3)
	tr.Sent(0, 1000)
	now := int64(2e9)
	tr.Received(2, []drivers.Delivery{delivery(0, 0, 0)}, now) // before its ack
	var acks []drivers.Result
	for s := uint64(0); s < 1000; s++ {
		acks = append(acks, ack(0, s))
	}
	tr.Acked(acks, now)
	wantBacklog(t, tr, 3*1000-1, "after acks")

	var all, sub1 []drivers.Delivery
	for s := uint64(0); s < 1000; s++ {
		all = append(all, delivery(0, s, 0))
	}
	tr.Received(0, all, now)
	for s := uint64(0); s < 990; s++ {
		switch s {
		case 700:
			sub1 = append(sub1, delivery(0, 701, 0), delivery(0, 700, 0))
		case 701:
		default:
			sub1 = append(sub1, delivery(0, s, 0))
		}
	}
	sub1 = append(sub1, delivery(0, 500, 0))
	tr.Received(1, sub1, now)
	tr.Received(2, all[1:], now)
	wantBacklog(t, tr, 10, "after deliveries")
	tr.Received(3, all[:5], now) // no such subscription

	s := tr.Summary()
	c := s.Counts
	expect := func(what string, got, want int64) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %d, want %d", what, got, want)
		}
	}
	expect("acked", c.Acked, 1000)
	expect("received", c.Received, 1000+990+1000)
	expect("lost", c.Lost, 10)
	expect("duplicates", c.Duplicates, 1)
	expect("reordered", c.Reordered, 1)
	expect("unconfirmed_delivered", c.UnconfirmedDelivered, 0)
	expect("malformed", c.Malformed, 5)
	expect("e2e count", s.Latency.E2E.Count, c.Received)
	var lost int
	for _, e := range s.Examples {
		if e.Kind == ExampleLost {
			lost++
			if !strings.HasSuffix(e.Problem, "in subscription 1") || e.Seq < 990 {
				t.Errorf("lost example %+v: want seq 990..999 of subscription 1", e)
			}
		}
	}
	for _, e := range s.Examples {
		if e.Kind != ExampleLost && !strings.HasSuffix(e.Problem, "in subscription 1") {
			t.Errorf("example %+v: want it in subscription 1", e)
		}
	}
	if lost != 10 {
		t.Errorf("%d lost examples, want 10", lost)
	}
}
