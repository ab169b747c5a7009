// Package accountingtest holds fixtures for tests of the accounting and of
// what is built on it (reports, merges): stamps, deliveries and outcomes of
// a test run, and a transactional run with known answers. It imports no
// accounting code, so the accounting package's own tests can use it.
package accountingtest

import (
	"time"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
)

// RunID is the run id of every fixture message.
const RunID = 0x5ba7e

// Now is the receive and ack time fixtures use.
const Now = int64(20 * time.Second)

// Msg is message seq of producer: due at seq ms, sent 100 µs later.
func Msg(producer uint32, seq uint64) stamp.Stamp {
	intended := int64(seq) * int64(time.Millisecond)
	return stamp.Stamp{RunID: RunID, Producer: producer, Seq: seq, Intended: intended, Sent: intended + 100_000}
}

// Encode encodes s at the start of a longer body, as messages carry it.
func Encode(s stamp.Stamp) []byte {
	b := make([]byte, stamp.Size+16)
	s.Put(b)
	return b
}

// Delivery is a delivery of Msg(producer, seq) on stream.
func Delivery(producer uint32, seq uint64, stream int32) drivers.Delivery {
	return drivers.Delivery{Stamp: Encode(Msg(producer, seq)), Stream: stream}
}

// Ack is the confirmation of Msg(producer, seq).
func Ack(producer uint32, seq uint64) drivers.Result {
	return drivers.Result{Stamp: Msg(producer, seq)}
}

// Outcome is Msg(producer, seq)'s outcome err.
func Outcome(producer uint32, seq uint64, err error) drivers.Result {
	return drivers.Result{Stamp: Msg(producer, seq), Err: err}
}

// TxnMsg is message seq of producer 0 written in transaction txn.
func TxnMsg(seq, txn uint64) stamp.Stamp {
	s := Msg(0, seq)
	s.Txn = txn
	return s
}

// TxnDelivery is a delivery of TxnMsg(seq, txn) at offset of stream.
func TxnDelivery(seq, txn uint64, stream int32, offset int64) drivers.Delivery {
	return drivers.Delivery{Stamp: Encode(TxnMsg(seq, txn)), Stream: stream, HasOffset: true, Offset: offset}
}

// Feeder is what the runs here feed: an accounting.Tracker.
type Feeder interface {
	Sent(producer uint32, next uint64)
	Acked(results []drivers.Result, now int64)
	Received(sub int, batch []drivers.Delivery, now int64)
}

// Recorder is what TxnRun feeds: an accounting.Tracker.
type Recorder interface {
	Feeder
	SetReadCommitted(on bool)
}

// RecordOne feeds tr message seq of producer 0, sent, acked and received
// once on stream 0, with the given latencies.
func RecordOne(tr Feeder, seq uint64, e2e, service, publish time.Duration) {
	const base = int64(time.Hour)
	recv := base + int64(seq)*int64(time.Second)
	s := stamp.Stamp{RunID: RunID, Seq: seq, Intended: recv - int64(e2e), Sent: recv - int64(service)}
	tr.Sent(0, seq+1)
	tr.Acked([]drivers.Result{{Stamp: s}}, s.Sent+int64(publish))
	tr.Received(0, []drivers.Delivery{{Stamp: Encode(s), Stream: 0}}, recv)
}

// TxnRun feeds tr a run of one transactional producer: transactions 1, 2
// and 3 of 100 messages each (seq 0..99, 100..199, 200..299); 2 aborted, 1
// and 3 committed. The consumers receive every committed message but seq
// 250, and ten messages of transaction 2: five before its abort is
// reported, five after. Two messages of transaction 3 are received before
// their commit is reported.
func TxnRun(tr Recorder, readCommitted bool) {
	tr.SetReadCommitted(readCommitted)
	tr.Sent(0, 300)
	var committed1, aborted2, committed3 []drivers.Result
	for s := uint64(0); s < 100; s++ {
		committed1 = append(committed1, drivers.Result{Stamp: TxnMsg(s, 1)})
		aborted2 = append(aborted2, drivers.Result{Stamp: TxnMsg(100+s, 2), Err: drivers.ErrAborted})
		committed3 = append(committed3, drivers.Result{Stamp: TxnMsg(200+s, 3)})
	}
	tr.Acked(committed1, Now)
	var early []drivers.Delivery
	for s := uint64(0); s < 100; s++ {
		early = append(early, TxnDelivery(s, 1, int32(s%3), int64(s)))
	}
	for s := uint64(100); s < 105; s++ { // read before the abort is known
		early = append(early, TxnDelivery(s, 2, 1, int64(1000+s)))
	}
	early = append(early, TxnDelivery(200, 3, 2, 2000), TxnDelivery(201, 3, 2, 2001)) // before the commit
	tr.Received(0, early, Now)
	tr.Acked(aborted2, Now)
	var late []drivers.Delivery
	for s := uint64(105); s < 110; s++ { // read after the abort is known
		late = append(late, TxnDelivery(s, 2, 1, int64(1000+s)))
	}
	tr.Received(0, late, Now)
	tr.Acked(committed3, Now)
	late = late[:0]
	for s := uint64(202); s < 300; s++ {
		if s != 250 {
			late = append(late, TxnDelivery(s, 3, 2, int64(2000+s-200)))
		}
	}
	tr.Received(0, late, Now)
}

// PipelineRecorder is what PipelineRun feeds: an accounting.Tracker.
type PipelineRecorder interface {
	Feeder
	EnablePipeline()
}

// PipelineRun feeds tr, with pipeline latency enabled, three messages:
// seq 0 received 8 ms after its ack, seq 1 50 ms after its ack and again
// later (a duplicate), seq 2 received before its ack. The pipeline
// latencies are 8 ms and 50 ms, and one first delivery is untimed.
func PipelineRun(tr PipelineRecorder) {
	tr.EnablePipeline()
	tr.Sent(0, 3)
	m0, m1, m2 := Msg(0, 0), Msg(0, 1), Msg(0, 2)
	ms := int64(time.Millisecond)
	tr.Acked([]drivers.Result{{Stamp: m0}}, m0.Sent+2*ms)
	tr.Acked([]drivers.Result{{Stamp: m1}}, m1.Sent+3*ms)
	tr.Received(0, []drivers.Delivery{{Stamp: Encode(m0)}}, m0.Sent+10*ms)
	tr.Received(0, []drivers.Delivery{{Stamp: Encode(m1)}}, m1.Sent+53*ms)
	tr.Received(0, []drivers.Delivery{{Stamp: Encode(m1)}}, m1.Sent+90*ms)
	tr.Received(0, []drivers.Delivery{{Stamp: Encode(m2)}}, m2.Sent+ms)
	tr.Acked([]drivers.Result{{Stamp: m2}}, m2.Sent+5*ms)
}
