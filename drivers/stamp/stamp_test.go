package stamp

import (
	"math/rand/v2"
	"testing"
)

// TestFieldsMatchesParse: Fields accepts what
// Parse accepts and reads the same fields.
func TestFieldsMatchesParse(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(b []byte) {
		t.Helper()
		want, err := Parse(b)
		runID, producer, seq, intended, sent, ok := Fields(b)
		if ok != (err == nil) {
			t.Fatalf("% x: Fields ok=%v, Parse err=%v", b, ok, err)
		}
		if ok && (runID != want.RunID || producer != want.Producer || seq != want.Seq || intended != want.Intended || sent != want.Sent) {
			t.Fatalf("% x: Fields %d %d %d %d %d, Parse %+v", b, runID, producer, seq, intended, sent, want)
		}
	}
	for range 2000 {
		s := Stamp{RunID: rng.Uint64(), Producer: rng.Uint32(), Seq: rng.Uint64(), Intended: int64(rng.Uint64()),
			Sent: int64(rng.Uint64()), Txn: rng.Uint64(), Flags: uint8(rng.Uint32())}
		b := make([]byte, Size+rng.IntN(3))
		s.Put(b)
		check(b)
		check(b[:Size-1-rng.IntN(Size-1)])
		i := rng.IntN(4) // corrupt the header
		b[i] ^= byte(1 + rng.IntN(255))
		check(b)
	}
	check(nil)
}

func TestRoundTrip(t *testing.T) {
	in := Stamp{RunID: 1, Producer: 2, Seq: 3, Intended: -4, Sent: 5, Txn: 6, Flags: FlagPoison}
	b := make([]byte, Size)
	in.Put(b)
	SetSent(b, 99)
	out, err := Parse(b)
	in.Sent = 99
	if err != nil || out != in {
		t.Fatalf("Parse = %+v, %v; want %+v", out, err, in)
	}
	b[2] = 9
	if _, err := Parse(b); err == nil || err == ErrNotStamp {
		t.Errorf("a future version must be reported as such, got %v", err)
	}
}

func TestTxnOf(t *testing.T) {
	b := make([]byte, Size+8)
	(&Stamp{RunID: 1, Seq: 2, Txn: 77}).Put(b)
	if got := TxnOf(b); got != 77 {
		t.Errorf("TxnOf = %d, want 77", got)
	}
	if got := TxnOf(b[:Size-1]); got != 0 {
		t.Errorf("TxnOf of a short stamp = %d", got)
	}
	b[0] = 'X'
	if got := TxnOf(b); got != 0 {
		t.Errorf("TxnOf of a non-stamp = %d", got)
	}
}
