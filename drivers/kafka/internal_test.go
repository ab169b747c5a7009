package kafka

import (
	"slices"
	"testing"
)

func TestSpans(t *testing.T) {
	var ps partition
	for _, o := range []int64{5, 6, 7, 9, 10, 20} {
		ps.add(o)
	}
	if want := []span{{5, 3}, {9, 2}, {20, 1}}; !slices.Equal(ps.sent, want) {
		t.Fatalf("spans %v, want %v", ps.sent, want)
	}
	for _, tc := range []struct{ from, want int64 }{{0, 6}, {5, 6}, {6, 5}, {8, 3}, {10, 2}, {11, 1}, {21, 0}} {
		if got := count(ps.sent, tc.from); got != tc.want {
			t.Errorf("count from %d = %d, want %d", tc.from, got, tc.want)
		}
	}
	ps.trim(6)
	if want := []span{{6, 2}, {9, 2}, {20, 1}}; !slices.Equal(ps.sent, want) {
		t.Fatalf("after trim(6): %v, want %v", ps.sent, want)
	}
	ps.trim(10)
	if want := []span{{10, 1}, {20, 1}}; !slices.Equal(ps.sent, want) {
		t.Fatalf("after trim(10): %v, want %v", ps.sent, want)
	}
	ps.trim(100)
	if len(ps.sent) != 0 {
		t.Fatalf("after trim(100): %v", ps.sent)
	}
}

func TestKebab(t *testing.T) {
	for in, want := range map[string]string{
		"Produce": "produce", "OffsetCommit": "offset-commit", "SASLHandshake": "sasl-handshake",
		"DescribeACLs": "describe-acls", "InitProducerID": "init-producer-id", "LeaderAndISR": "leader-and-isr",
		"ApiVersions": "api-versions", "DescribeUserSCRAMCredentials": "describe-user-scram-credentials",
	} {
		if got := kebab(in); got != want {
			t.Errorf("kebab(%q) = %q, want %q", in, got, want)
		}
	}
	for _, name := range []string{"produce", "Fetch", "offset_commit", "commit", "end-txn", "join-group", "all"} {
		if _, err := requestKeys(name); err != nil {
			t.Errorf("requestKeys(%q): %v", name, err)
		}
	}
}

// TestFillDefaults: zero fields a Go caller left take their defaults
// (inside the transactions block too) and the cluster's, zeros the options
// take stay, and the caller's own transactions block is not written.
func TestFillDefaults(t *testing.T) {
	txn := &TransactionOptions{Abort: 0.1}
	o := Options{Transactions: txn, Linger: 0}
	o.fillDefaults()
	def := DefaultOptions()
	if o.Topic != def.Topic || o.Partitions != def.Partitions || o.Acks != def.Acks || o.ClientID != def.ClientID || o.Embedded.Brokers != DefaultEmbeddedBrokers {
		t.Errorf("filled %+v, want the defaults", o)
	}
	if o.Linger != 0 || o.Idempotent {
		t.Errorf("linger %v, idempotent %v: zeros the options take were changed", o.Linger, o.Idempotent)
	}
	if o.ReplicationFactor != 3 || o.SessionTimeout != EmbeddedSessionTimeout || o.MetadataMinAge != EmbeddedMetadataMinAge {
		t.Errorf("replication %d, session %v, metadata min age %v: want the embedded cluster's", o.ReplicationFactor, o.SessionTimeout, o.MetadataMinAge)
	}
	if tx := o.Transactions; tx.Records != 100 || tx.Timeout != DefaultTxnTimeout || tx.Abort != 0.1 || tx.Seed != 0 {
		t.Errorf("transactions %+v: want records and timeout filled, abort and seed kept", *tx)
	}
	if *txn != (TransactionOptions{Abort: 0.1}) {
		t.Errorf("the caller's transactions block was written: %+v", *txn)
	}
}
