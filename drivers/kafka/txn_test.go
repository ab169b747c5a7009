package kafka_test

import (
	"testing"

	"github.com/spate-dev/spate/drivers/kafka"
	"github.com/spate-dev/spate/report"
)

// txnTraffic: two transactional producers, 100 records per transaction
// (or fewer after 100ms), a fifth of the transactions aborted on purpose.
const txnTraffic = `
producers: 2
consumers: 2
message: {size: 100B, keys: {strategy: round-robin, count: 12}}
traffic:
  - constant: {rate: 3000/s, for: 2s}
drain: 10s
`

// checkTxnAccounting: every message sent has an outcome, committed or
// aborted, and the tracker's counts match the driver's own count of the
// records in committed and aborted transactions.
func checkTxnAccounting(t *testing.T, res *report.Results) {
	t.Helper()
	c, st := res.Counts, res.DriverStats
	if c.Sent < 1000 || c.Unsent != 0 {
		t.Fatalf("sent %d, unsent %d", c.Sent, c.Unsent)
	}
	expect(t, "acked + aborted", c.Acked+c.Aborted, c.Sent)
	expect(t, "failed", c.Failed, 0)
	expect(t, "unconfirmed", c.Unconfirmed, 0)
	expect(t, "acked", c.Acked, st["txn_committed_records"])
	expect(t, "aborted", c.Aborted, st["txn_aborted_records"])
	expect(t, "txn_unknown", st["txn_unknown"], 0)
	expect(t, "txn_aborted (all on purpose)", st["txn_aborted"], st["txn_aborted_on_purpose"])
	if ratio := float64(st["txn_aborted"]) / float64(st["txn_aborted"]+st["txn_committed"]); ratio < 0.1 || ratio > 0.3 {
		t.Errorf("%.0f%% of transactions aborted, want about 20%%", 100*ratio)
	}
	expect(t, "lost", c.Lost, 0)
	expect(t, "duplicates", c.Duplicates, 0)
	expect(t, "reordered", c.Reordered, 0)
	expect(t, "foreign", c.Foreign, 0)
	expect(t, "malformed", c.Malformed, 0)
}

// TestTransactionsReadCommitted: with 20% of transactions aborted,
// read_committed consumers see every committed record exactly once, in
// order, and no record of an aborted transaction.
func TestTransactionsReadCommitted(t *testing.T) {
	res := runKind(t, kafka.Kind, `
driver: {kafka: {partitions: 3, isolation: read_committed, transactions: {records: 100, abort: 20%, seed: 7}}}
thresholds: [aborted_reads == 0, lost == 0, duplicates == 0]
`+txnTraffic)
	checkTxnAccounting(t, res)
	expect(t, "aborted_reads", res.Counts.AbortedReads, 0)
	expect(t, "aborted_visible", res.Counts.AbortedVisible, 0)
	expect(t, "received", res.Counts.Received, res.Counts.Acked)
	if res.Verdict != report.Pass || res.Claim == nil || !res.Claim.Held {
		t.Errorf("verdict %s, claim %+v", res.Verdict, res.Claim)
	}
	t.Logf("claim: %s", res.Claim.Statement)
}

// TestTransactionsReadUncommitted: read_uncommitted consumers see the
// records of aborted transactions too, every one of them (each was
// written before its transaction aborted), counted as aborted-visible,
// not as aborted reads.
func TestTransactionsReadUncommitted(t *testing.T) {
	res := runKind(t, kafka.Kind, `
driver: {kafka: {partitions: 3, isolation: read_uncommitted, transactions: {records: 100, abort: 20%, seed: 7}}}
`+txnTraffic)
	checkTxnAccounting(t, res)
	expect(t, "aborted_reads", res.Counts.AbortedReads, 0)
	expect(t, "aborted_visible", res.Counts.AbortedVisible, res.Counts.Aborted)
	expect(t, "received", res.Counts.Received, res.Counts.Sent)
	expect(t, "unconfirmed_delivered", res.Counts.UnconfirmedDelivered, 0)
}
