package kafka

import "github.com/twmb/franz-go/pkg/kgo"

// The enumerated options are typed strings, decoded once; the YAML
// spelling is the value. *Values list the valid values.
type (
	Acks        string // what the partition leader waits for before confirming
	Compression string // the producers' batch compression codec
	Isolation   string // the consumers' isolation level
	Commit      string // how consumers commit offsets
	Start       string // where consumers start reading
)

const (
	AcksAll, AcksLeader, AcksNone Acks = "all", "leader", "none"

	CompressionNone, CompressionGzip, CompressionSnappy, CompressionLz4, CompressionZstd Compression = "none", "gzip", "snappy", "lz4", "zstd"

	ReadUncommitted, ReadCommitted Isolation = "read_uncommitted", "read_committed"

	CommitAfterProcessing, CommitAuto Commit = "after-processing", "auto"

	StartRun, StartEarliest, StartLatest Start = "run", "earliest", "latest"
)

var (
	AcksValues        = []Acks{AcksAll, AcksLeader, AcksNone}
	CompressionValues = []Compression{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLz4, CompressionZstd}
	IsolationValues   = []Isolation{ReadUncommitted, ReadCommitted}
	CommitValues      = []Commit{CommitAfterProcessing, CommitAuto}
	StartValues       = []Start{StartRun, StartEarliest, StartLatest}
	MechanismValues   = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}
	LogLevelValues    = []string{"none", "error", "warn", "info", "debug"}
)

// kgo is a's franz-go setting.
func (a Acks) kgo() kgo.Acks {
	switch a {
	case AcksLeader:
		return kgo.LeaderAck()
	case AcksNone:
		return kgo.NoAck()
	}
	return kgo.AllISRAcks()
}

// codec is c's franz-go codec.
func (c Compression) codec() kgo.CompressionCodec {
	switch c {
	case CompressionGzip:
		return kgo.GzipCompression()
	case CompressionSnappy:
		return kgo.SnappyCompression()
	case CompressionLz4:
		return kgo.Lz4Compression()
	case CompressionZstd:
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}
