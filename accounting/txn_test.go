package accounting

import (
	"reflect"
	"testing"

	"github.com/spate-dev/spate/accounting/accountingtest"
)

// txnRun is accountingtest.TxnRun's run, summarized.
func txnRun(t *testing.T, readCommitted bool) Summary {
	t.Helper()
	tr := NewTracker(testRunID, 1, 0)
	accountingtest.TxnRun(tr, readCommitted)
	return tr.Summary()
}

// TestTrackerTransactions: aborted messages are neither acked, failed nor
// unconfirmed; those delivered are aborted reads when consumers read
// committed data, aborted-visible otherwise, whether the delivery came
// before or after the abort was reported; they are never lost.
func TestTrackerTransactions(t *testing.T) {
	for _, rc := range []bool{true, false} {
		s := txnRun(t, rc)
		want := Counts{Sent: 300, Acked: 200, Received: 209, Lost: 1, Aborted: 100, AbortedReads: 10}
		if !rc {
			want.AbortedReads, want.AbortedVisible = 0, 10
		}
		wantCounts(t, "summary", s.Counts, want)
		if !rc {
			for _, e := range s.Examples {
				if e.Kind == ExampleAbortedRead {
					t.Errorf("read_uncommitted: aborted-read example %+v", e)
				}
			}
			continue
		}
		var aborted []Example
		for _, e := range s.Examples {
			if e.Kind == ExampleAbortedRead {
				aborted = append(aborted, e)
			}
		}
		if len(aborted) != 10 {
			t.Fatalf("%d aborted-read examples, want 10: %+v", len(aborted), s.Examples)
		}
		for i, e := range aborted {
			// The five read after the abort are found at delivery; the
			// five read before it when the abort is reported, with the
			// place they were read.
			seq := uint64(100 + i)
			why := "aborted read: seen before the abort was reported"
			if i >= 5 {
				why = "aborted read: its transaction was aborted"
			}
			w := Example{Producer: 0, Seq: seq, Kind: ExampleAbortedRead, Problem: why, Partition: i32(1), Offset: i64(int64(1000 + seq)), Txn: 2}
			if !reflect.DeepEqual(e, w) {
				t.Errorf("aborted example %d:\n got %+v\nwant %+v", i, e, w)
			}
		}
		lost := Example{Producer: 0, Seq: 250, Kind: ExampleLost, Problem: "lost: its transaction committed, never received", Txn: 3}
		if s.Examples[1].Kind != ExampleLost || !reflect.DeepEqual(s.Examples[1], lost) {
			t.Errorf("examples %+v, want the lost one second: %+v", s.Examples, lost)
		}
	}
}

// TestTrackerPipelineLatency: with EnablePipeline, a first delivery's
// pipeline latency is its receive time − its confirmation time; one
// delivered before its confirmation is untimed, and duplicates are not
// timed.
func TestTrackerPipelineLatency(t *testing.T) {
	tr := NewTracker(testRunID, 1, 0)
	accountingtest.PipelineRun(tr)
	s := tr.Summary()
	if s.Pipeline == nil {
		t.Fatal("no pipeline latency")
	}
	if l := *s.Pipeline; l.Count != 2 || l.Min != 8000 || l.Max < 50000 || l.Max > 50050 {
		t.Errorf("pipeline latency %+v, want 8ms and 50ms", l)
	}
	if s.PipelineUntimed != 1 {
		t.Errorf("untimed %d, want 1", s.PipelineUntimed)
	}
	if h := s.Histograms[Pipeline]; h == nil || h.TotalCount() != 2 {
		t.Errorf("pipeline histogram %v", h)
	}
	if NewTracker(testRunID, 1, 0).Summary().Pipeline != nil {
		t.Error("pipeline latency without EnablePipeline")
	}

}

// TestPubTimesGrow: the page table grows by doubling, and every entry
// reads back.
func TestPubTimesGrow(t *testing.T) {
	var p pubTimes
	const n = 20 << pageShift // twenty pages
	for seq := uint64(0); seq < n; seq += 997 {
		p.set(seq, int64(seq)*1000)
	}
	if len(p.pages) != 20 || cap(p.pages) > 32 {
		t.Errorf("%d pages, capacity %d", len(p.pages), cap(p.pages))
	}
	for seq := uint64(0); seq < n; seq += 997 {
		if v, ok := p.get(seq); !ok || v != int64(seq)*1000 {
			t.Fatalf("get(%d) = %d, %v", seq, v, ok)
		}
	}
	if _, ok := p.get(1); ok {
		t.Error("an unset entry reads as set")
	}
	if _, ok := p.get(n * 4); ok {
		t.Error("an entry beyond the pages reads as set")
	}
}
