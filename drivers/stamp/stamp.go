// Package stamp is the identity every spate message carries: which run and
// producer sent it, its sequence number, when it was due and when it was sent.
// From stamps alone the tracker derives loss, duplicates, reordering and
// latency, so the codec is fixed-size, allocation-free and versioned.
package stamp

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Size is the encoded size of a stamp in bytes. A message cannot be smaller.
const Size = 48

const (
	magic0, magic1 = 'S', 'P'
	version        = 1
)

// Flag bits carried in a stamp.
const (
	// FlagResend marks a deliberate re-send of an already sent message (chaos
	// duplicate injection), so observed duplicates can be matched to injected ones.
	FlagResend uint8 = 1 << iota
	// FlagPoison asks spate's consumers to fail processing this message.
	FlagPoison
)

// Stamp identifies one message of one run. Times are Unix nanoseconds.
type Stamp struct {
	RunID    uint64
	Producer uint32
	Seq      uint64
	Intended int64 // when the pacer scheduled it
	Sent     int64 // when the producer handed it to the client library
	Txn      uint64
	Flags    uint8
}

// ErrNotStamp means the bytes do not start with a spate stamp.
var ErrNotStamp = errors.New("stamp: not a spate stamp")

// Put encodes s into b[:Size]. It panics if b is shorter than Size, as copy
// into a short buffer would be a programming error in the caller.
func (s *Stamp) Put(b []byte) {
	_ = b[Size-1]
	b[0], b[1], b[2], b[3] = magic0, magic1, version, s.Flags
	binary.LittleEndian.PutUint32(b[4:], s.Producer)
	binary.LittleEndian.PutUint64(b[8:], s.RunID)
	binary.LittleEndian.PutUint64(b[16:], s.Seq)
	binary.LittleEndian.PutUint64(b[24:], uint64(s.Intended))
	binary.LittleEndian.PutUint64(b[32:], uint64(s.Sent))
	binary.LittleEndian.PutUint64(b[40:], s.Txn)
}

// SetSent overwrites only the send time of an encoded stamp, so a producer can
// stamp the moment it hands the message over without re-encoding the rest.
func SetSent(b []byte, sent int64) {
	binary.LittleEndian.PutUint64(b[32:], uint64(sent))
}

// Parse decodes the stamp at the start of b.
func Parse(b []byte) (Stamp, error) {
	var s Stamp
	if len(b) < Size || b[0] != magic0 || b[1] != magic1 {
		return s, ErrNotStamp
	}
	if b[2] != version {
		return s, fmt.Errorf("stamp: version %d, this build reads version %d", b[2], version)
	}
	s.Flags = b[3]
	s.Producer = binary.LittleEndian.Uint32(b[4:])
	s.RunID = binary.LittleEndian.Uint64(b[8:])
	s.Seq = binary.LittleEndian.Uint64(b[16:])
	s.Intended = int64(binary.LittleEndian.Uint64(b[24:]))
	s.Sent = int64(binary.LittleEndian.Uint64(b[32:]))
	s.Txn = binary.LittleEndian.Uint64(b[40:])
	return s, nil
}

// RunIDString formats a run id the way results and logs show it.
func RunIDString(id uint64) string { return fmt.Sprintf("%016x", id) }

// Fields decodes the fields that identify and time a message, without
// building a Stamp: it is the tracker's hot path, where returning a 48-byte
// struct costs more than the decoding. ok is false exactly when Parse fails.
func Fields(b []byte) (runID uint64, producer uint32, seq uint64, intended, sent int64, ok bool) {
	if len(b) < Size {
		return 0, 0, 0, 0, 0, false
	}
	b = b[:Size]
	if b[0] != magic0 || b[1] != magic1 || b[2] != version {
		return 0, 0, 0, 0, 0, false
	}
	return binary.LittleEndian.Uint64(b[8:16]),
		binary.LittleEndian.Uint32(b[4:8]),
		binary.LittleEndian.Uint64(b[16:24]),
		int64(binary.LittleEndian.Uint64(b[24:32])),
		int64(binary.LittleEndian.Uint64(b[32:40])),
		true
}

// SetFlags sets flags in the encoded stamp b.
func SetFlags(b []byte, flags uint8) { b[3] |= flags }

// HasFlag reports whether b starts with a spate stamp carrying flag.
func HasFlag(b []byte, flag uint8) bool {
	return len(b) >= Size && b[0] == magic0 && b[1] == magic1 && b[2] == version && b[3]&flag != 0
}

// TxnOf returns the transaction number of the stamp b starts with, or 0
// when b is not a stamp (or its message was not written in a transaction).
func TxnOf(b []byte) uint64 {
	if len(b) < Size || b[0] != magic0 || b[1] != magic1 || b[2] != version {
		return 0
	}
	return binary.LittleEndian.Uint64(b[40:48])
}
