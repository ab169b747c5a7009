package kafka

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/scenarios"
)

// EmbeddedBrokers is the value of `brokers` that starts the in-process cluster.
const EmbeddedBrokers = "embedded"

// Defaults and limits of the options. Where a default is the franz-go
// client's own, it is named after it so the two stay comparable.
const (
	DefaultTopic              = "spate"
	DefaultPartitions         = 3
	MaxPartitions             = 10_000
	DefaultEmbeddedBrokers    = 3
	MaxEmbeddedBrokers        = 16
	DefaultLinger             = 10 * time.Millisecond // kgo's default
	DefaultBatchMaxBytes      = 1_000_012             // kgo's default
	MinBatchMaxBytes          = 512
	MaxBatchMaxBytes          = 100 << 20 // kgo's default max broker write bytes
	DefaultMaxBufferedRecords = 10_000    // kgo's default
	MaxMaxBufferedRecords     = 10_000_000
	DefaultCommitInterval     = 5 * time.Second // kgo's default
	DefaultClientID           = "spate"
	DefaultConnectTimeout     = 10 * time.Second

	// Transactions (`transactions:`): records per transaction, how long
	// one stays open at most, and the transaction timeout. The timeout is
	// shorter than kgo's 40s so that a transaction a crashed producer or
	// processor left open blocks read_committed consumers for 10s at most.
	DefaultTxnRecords     = 100
	MaxTxnRecords         = 1_000_000
	DefaultTxnMaxDuration = 100 * time.Millisecond
	DefaultTxnTimeout     = 10 * time.Second

	// The built-in processor's commit interval: how long its transaction
	// stays open (exactly-once, Kafka Streams' default under EOS) or how
	// often it commits consumed offsets (at-least-once: the consumers'
	// commit-interval, kgo's autocommit interval).
	DefaultProcessorTxnInterval = 100 * time.Millisecond

	// External clusters: kgo's session timeout; a metadata min age shorter
	// than kgo's 5s so clients find moved leaders quickly during chaos.
	DefaultSessionTimeout = 45 * time.Second
	DefaultMetadataMinAge = time.Second
	DefaultMetadataMaxAge = time.Minute

	// The embedded cluster expects faults: a crashed consumer's partitions
	// move after 3s, and clients look for moved leaders every 100ms at most.
	EmbeddedSessionTimeout = 3 * time.Second
	EmbeddedMetadataMinAge = 100 * time.Millisecond
	EmbeddedMetadataMaxAge = 10 * time.Second
)

// The valid values of the enumerated options.
var (
	AcksValues        = []string{"all", "leader", "none"}
	CompressionValues = []string{"none", "gzip", "snappy", "lz4", "zstd"}
	IsolationValues   = []string{"read_uncommitted", "read_committed"}
	CommitValues      = []string{"after-processing", "auto"}
	StartValues       = []string{"run", "earliest", "latest"}
	MechanismValues   = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}
	LogLevelValues    = []string{"none", "error", "warn", "info", "debug"}
)

// Options configures the Kafka driver. The zero value is not ready for use:
// start from DefaultOptions. Open treats the zero value of Topic,
// Partitions, Acks, BatchMaxBytes, MaxBufferedRecords, Compression, Group,
// Isolation, Commit, CommitInterval, Start, SessionTimeout, ClientID,
// MetadataMaxAge, MetadataMinAge, ConnectTimeout, ReplicationFactor and the
// Embedded numbers as their defaults; every other field (the booleans,
// Linger) is taken as given.
type Options struct {
	// Brokers are the bootstrap addresses (host:port). Empty means the
	// embedded cluster, configured by Embedded.
	Brokers  []string
	Embedded EmbeddedOptions

	Topic             string
	CreateTopic       bool
	Partitions        int
	ReplicationFactor int // 0: 1 on an external cluster, min(3, brokers) embedded

	Acks               string // all, leader, none
	Idempotent         bool
	Linger             time.Duration
	BatchMaxBytes      int
	MaxBufferedRecords int
	Compression        string // none, gzip, snappy, lz4, zstd

	Group          string // "": spate-<run id>
	Isolation      string // read_uncommitted, read_committed
	Commit         string // after-processing, auto
	CommitInterval time.Duration
	Start          string // run, earliest, latest
	SessionTimeout time.Duration

	// Transactions makes spate's producers transactional; nil: they are not.
	Transactions *TransactionOptions

	TLS            *TLSOptions  // nil: plaintext
	SASL           *SASLOptions // nil: no authentication
	ClientID       string
	MetadataMaxAge time.Duration
	MetadataMinAge time.Duration
	ConnectTimeout time.Duration
}

// EmbeddedOptions configures the in-process cluster of `brokers: embedded`.
type EmbeddedOptions struct {
	Brokers    int    // 1..MaxEmbeddedBrokers
	SyncWrites bool   // fsync every appended batch
	LogLevel   string // the cluster's own log lines, into the driver's log
}

// TransactionOptions configures transactional producers. Each producer
// writes its messages in transactions of Records records (or fewer, when
// one has been open MaxDuration), commits them, or aborts a seeded
// fraction Abort of them on purpose. A message's stamp carries its
// transaction's number (1, 2, ... per producer); its outcome is reported
// once the transaction ends: confirmed when the commit is, or
// drivers.ErrAborted.
type TransactionOptions struct {
	IDPrefix    string        // transactional ids are <prefix>-producer-<id>; "": spate-<run id>
	Records     int           // records per transaction, 1..MaxTxnRecords
	MaxDuration time.Duration // the longest a transaction stays open
	Abort       float64       // fraction of transactions aborted on purpose, 0..1
	Seed        int64         // seeds which transactions abort
	Timeout     time.Duration // the transaction timeout the coordinator enforces
}

// DefaultTransactionOptions are the options of `transactions: {}`.
func DefaultTransactionOptions() TransactionOptions {
	return TransactionOptions{Records: DefaultTxnRecords, MaxDuration: DefaultTxnMaxDuration, Seed: 1, Timeout: DefaultTxnTimeout}
}

// TLSOptions configures TLS to the brokers.
type TLSOptions struct {
	CAFile             string // PEM roots; "": the system's
	CertFile, KeyFile  string // PEM client certificate and key, both or neither
	ServerName         string // "": the host of each broker address
	InsecureSkipVerify bool
}

// SASLOptions configures SASL authentication.
type SASLOptions struct {
	Mechanism   string // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
	Username    string
	Password    string
	PasswordEnv string // the environment variable holding the password, read at Open
}

// DefaultOptions returns the options of `driver: kafka`: the embedded
// cluster of three brokers, topic "spate" created with three partitions,
// acks=all idempotent producers, consumers in one group committing after
// processing, reading only the run's own traffic.
func DefaultOptions() Options {
	return Options{
		Embedded:           EmbeddedOptions{Brokers: DefaultEmbeddedBrokers, LogLevel: "error"},
		Topic:              DefaultTopic,
		CreateTopic:        true,
		Partitions:         DefaultPartitions,
		Acks:               "all",
		Idempotent:         true,
		Linger:             DefaultLinger,
		BatchMaxBytes:      DefaultBatchMaxBytes,
		MaxBufferedRecords: DefaultMaxBufferedRecords,
		Compression:        "none",
		Isolation:          "read_uncommitted",
		Commit:             "after-processing",
		CommitInterval:     DefaultCommitInterval,
		Start:              "run",
		ClientID:           DefaultClientID,
		ConnectTimeout:     DefaultConnectTimeout,
	}
}

// Abilities lists what a driver opened with o can do, for scenario
// validation (drivers.AbilityLister): on the embedded cluster restart
// brokers, move leaders and fail requests at the broker; everywhere crash
// consumers and dial through Env.Dial.
//
// Consumers with isolation read_committed have AbilityReadCommitted (a
// delivered record of an aborted transaction is an aborted read), and any
// cluster can run the built-in pipeline processor (AbilityProcessor) and
// serve several subscriptions, a consumer group each (AbilityFanOut). An
// external cluster can be shared by the shards of a distributed run
// (AbilityShared).
func (o Options) Abilities() []string {
	a := []string{scenarios.AbilityConsumerCrash, scenarios.AbilityDial, scenarios.AbilityProcessor, scenarios.AbilityFanOut}
	if o.IsEmbedded() {
		a = append(a, scenarios.AbilityBrokerRestart, scenarios.AbilityLeaderMove, scenarios.AbilityProtocolError)
	} else {
		a = append(a, scenarios.AbilityShared)
	}
	if o.Isolation == "read_committed" {
		a = append(a, scenarios.AbilityReadCommitted)
	}
	return a
}

// CheckPipelineOutput checks a pipeline from o (its input) to output, both
// Kafka (scenarios.PipelineChecker): on one cluster the output needs a
// topic of its own, and transactions belong to the input, where spate's
// producers write.
func (o Options) CheckPipelineOutput(output any) error {
	out, ok := asOptions(output)
	if !ok {
		return nil
	}
	var problems []string
	sameCluster := out.IsEmbedded() || slices.Equal(out.Brokers, o.Brokers)
	if sameCluster && out.Topic == o.Topic {
		problems = append(problems, fmt.Sprintf("the output's topic is the input's (%q): the processor would read its own output; give the output a topic of its own, e.g. topic: %s-out", o.Topic, o.Topic))
	}
	if out.Transactions != nil {
		problems = append(problems, "transactions apply to spate's producers, which write to the input; move the transactions block to the input")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// asOptions returns options (a Kind.Options result) as Options.
func asOptions(options any) (Options, bool) {
	switch v := options.(type) {
	case Options:
		return v, true
	case *Options:
		if v != nil {
			return *v, true
		}
	case nil:
		return DefaultOptions(), true
	}
	return Options{}, false
}

var (
	_ drivers.AbilityLister     = Options{}
	_ scenarios.PipelineChecker = Options{}
)

// IsEmbedded reports whether o starts the in-process cluster.
func (o Options) IsEmbedded() bool { return len(o.Brokers) == 0 }

// BrokerIDs lists the embedded cluster's brokers, 0 to embedded.brokers-1,
// and none on an external cluster (drivers.BrokerLister).
func (o Options) BrokerIDs() []int {
	if !o.IsEmbedded() {
		return nil
	}
	ids := make([]int, o.Embedded.Brokers)
	for i := range ids {
		ids[i] = i
	}
	return ids
}

// fillDefaults gives zero fields their defaults; some depend on whether the
// cluster is embedded.
func (o *Options) fillDefaults() {
	def := DefaultOptions()
	str := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	num := func(n *int, d int) {
		if *n == 0 {
			*n = d
		}
	}
	dur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	str(&o.Topic, def.Topic)
	num(&o.Partitions, def.Partitions)
	str(&o.Acks, def.Acks)
	num(&o.BatchMaxBytes, def.BatchMaxBytes)
	num(&o.MaxBufferedRecords, def.MaxBufferedRecords)
	str(&o.Compression, def.Compression)
	str(&o.Isolation, def.Isolation)
	str(&o.Commit, def.Commit)
	dur(&o.CommitInterval, def.CommitInterval)
	str(&o.Start, def.Start)
	str(&o.ClientID, def.ClientID)
	dur(&o.ConnectTimeout, def.ConnectTimeout)
	if t := o.Transactions; t != nil {
		tc := *t
		td := DefaultTransactionOptions()
		num(&tc.Records, td.Records)
		dur(&tc.MaxDuration, td.MaxDuration)
		dur(&tc.Timeout, td.Timeout)
		o.Transactions = &tc
	}
	if o.IsEmbedded() {
		num(&o.Embedded.Brokers, def.Embedded.Brokers)
		str(&o.Embedded.LogLevel, def.Embedded.LogLevel)
		num(&o.ReplicationFactor, min(3, o.Embedded.Brokers))
		dur(&o.SessionTimeout, EmbeddedSessionTimeout)
		dur(&o.MetadataMinAge, EmbeddedMetadataMinAge)
		dur(&o.MetadataMaxAge, max(EmbeddedMetadataMaxAge, o.MetadataMinAge))
	} else {
		num(&o.ReplicationFactor, 1)
		dur(&o.SessionTimeout, DefaultSessionTimeout)
		dur(&o.MetadataMinAge, DefaultMetadataMinAge)
		dur(&o.MetadataMaxAge, max(DefaultMetadataMaxAge, o.MetadataMinAge))
	}
}

// validate checks o after zero fields took their defaults. Scenario files
// get the same checks, with positions, from decodeOptions.
func (o *Options) validate() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	for _, b := range o.Brokers {
		if err := checkAddress(b); err != nil {
			bad("brokers: %v", err)
		}
	}
	if o.IsEmbedded() {
		if o.Embedded.Brokers < 1 || o.Embedded.Brokers > MaxEmbeddedBrokers {
			bad("embedded.brokers must be within 1..%d, got %d", MaxEmbeddedBrokers, o.Embedded.Brokers)
		}
		if !slices.Contains(LogLevelValues, o.Embedded.LogLevel) {
			bad("embedded.log-level %q is not one of %s", o.Embedded.LogLevel, strings.Join(LogLevelValues, ", "))
		}
		if o.ReplicationFactor > o.Embedded.Brokers {
			bad("replication-factor %d is more than the %d embedded brokers", o.ReplicationFactor, o.Embedded.Brokers)
		}
		if o.TLS != nil {
			bad("tls: the embedded cluster listens in plaintext on loopback; remove tls or set brokers to your cluster")
		}
	}
	if o.Topic == "" || len(o.Topic) > 249 || strings.Trim(o.Topic, topicChars) != "" || o.Topic == "." || o.Topic == ".." {
		bad("topic %q is not a valid Kafka topic name (1..249 of a-z A-Z 0-9 . _ -)", o.Topic)
	}
	if o.Partitions < 1 || o.Partitions > MaxPartitions {
		bad("partitions must be within 1..%d, got %d", MaxPartitions, o.Partitions)
	}
	if o.ReplicationFactor < 1 || o.ReplicationFactor > 32767 {
		bad("replication-factor must be at least 1, got %d", o.ReplicationFactor)
	}
	if !slices.Contains(AcksValues, o.Acks) {
		bad("acks %q is not one of %s", o.Acks, strings.Join(AcksValues, ", "))
	} else if o.Idempotent && o.Acks != "all" {
		bad("idempotent writes need acks: all, but acks is %s; set idempotent: false or acks: all", o.Acks)
	}
	if o.Linger < 0 || o.Linger > time.Minute {
		bad("linger must be within 0..1m, got %v", o.Linger)
	}
	if o.BatchMaxBytes < MinBatchMaxBytes || o.BatchMaxBytes > MaxBatchMaxBytes {
		bad("batch-max-bytes must be within %d..%d, got %d", MinBatchMaxBytes, MaxBatchMaxBytes, o.BatchMaxBytes)
	}
	if o.MaxBufferedRecords < 1 || o.MaxBufferedRecords > MaxMaxBufferedRecords {
		bad("max-buffered-records must be within 1..%d, got %d", MaxMaxBufferedRecords, o.MaxBufferedRecords)
	}
	if !slices.Contains(CompressionValues, o.Compression) {
		bad("compression %q is not one of %s", o.Compression, strings.Join(CompressionValues, ", "))
	}
	if !slices.Contains(IsolationValues, o.Isolation) {
		bad("isolation %q is not one of %s", o.Isolation, strings.Join(IsolationValues, ", "))
	}
	if !slices.Contains(CommitValues, o.Commit) {
		bad("commit %q is not one of %s", o.Commit, strings.Join(CommitValues, ", "))
	}
	if o.CommitInterval < 100*time.Millisecond {
		bad("commit-interval must be at least 100ms, got %v", o.CommitInterval)
	}
	if !slices.Contains(StartValues, o.Start) {
		bad("start %q is not one of %s", o.Start, strings.Join(StartValues, ", "))
	}
	if o.SessionTimeout < 100*time.Millisecond || o.SessionTimeout > 30*time.Minute {
		bad("session-timeout must be within 100ms..30m, got %v", o.SessionTimeout)
	}
	if o.MetadataMinAge < 10*time.Millisecond || o.MetadataMaxAge > time.Hour || o.MetadataMaxAge < o.MetadataMinAge {
		bad("metadata ages must satisfy 10ms <= metadata-min-age <= metadata-max-age <= 1h, got %v and %v", o.MetadataMinAge, o.MetadataMaxAge)
	}
	if o.ConnectTimeout < 100*time.Millisecond || o.ConnectTimeout > 10*time.Minute {
		bad("connect-timeout must be within 100ms..10m, got %v", o.ConnectTimeout)
	}
	if t := o.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		bad("tls: cert-file and key-file go together; give both or neither")
	}
	if t := o.Transactions; t != nil {
		if !o.Idempotent || o.Acks != "all" {
			bad("transactions need idempotent producers with acks: all")
		}
		if t.Records < 1 || t.Records > MaxTxnRecords {
			bad("transactions.records must be within 1..%d, got %d", MaxTxnRecords, t.Records)
		}
		if t.MaxDuration < time.Millisecond || t.MaxDuration > time.Hour {
			bad("transactions.max-duration must be within 1ms..1h, got %v", t.MaxDuration)
		}
		if t.Abort < 0 || t.Abort > 1 {
			bad("transactions.abort must be within 0..1, got %g", t.Abort)
		}
		if t.Timeout < 100*time.Millisecond || t.Timeout > 15*time.Minute {
			bad("transactions.timeout must be within 100ms..15m, got %v", t.Timeout)
		}
	}
	if s := o.SASL; s != nil {
		if !slices.Contains(MechanismValues, s.Mechanism) {
			bad("sasl.mechanism %q is not one of %s", s.Mechanism, strings.Join(MechanismValues, ", "))
		}
		if s.Username == "" {
			bad("sasl.username is empty")
		}
		if (s.Password == "") == (s.PasswordEnv == "") {
			bad("sasl needs exactly one of password and password-env")
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("kafka: %s", strings.Join(errs, "; "))
	}
	return nil
}

const topicChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

// checkAddress checks a bootstrap address.
func checkAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Errorf("%q is not host:port, such as localhost:9092 or [::1]:9092", addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: port %q must be a number from 1 to 65535", addr, port)
	}
	return nil
}

// brokerList is `brokers` as written: `embedded`, one address, a
// comma-separated list of addresses, or a YAML list of addresses.
type brokerList struct {
	addrs []string // nil: embedded
}

// DecodeNode parses and checks the addresses.
func (b *brokerList) DecodeNode(d *scenarios.Decoder, n *yaml.Node, field string) {
	type item struct {
		node *yaml.Node
		addr string
	}
	var items []item
	switch n.Kind {
	case yaml.ScalarNode:
		if strings.TrimSpace(n.Value) == EmbeddedBrokers {
			b.addrs = nil
			return
		}
		for _, a := range strings.Split(n.Value, ",") {
			items = append(items, item{n, strings.TrimSpace(a)})
		}
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			d.Errorf(n, field, "the list of brokers is empty; give host:port addresses or write brokers: embedded")
			return
		}
		for i, c := range n.Content {
			if c.Kind != yaml.ScalarNode || scenarios.IsNull(c) {
				d.Errorf(c, fmt.Sprintf("%s[%d]", field, i), "want a host:port address such as localhost:9092")
				continue
			}
			items = append(items, item{c, strings.TrimSpace(c.Value)})
		}
	default:
		d.Errorf(n, field, "want embedded or a list of host:port addresses")
		return
	}
	ok := true
	for _, it := range items {
		if it.addr == EmbeddedBrokers {
			d.Errorf(it.node, field, "embedded stands alone: write brokers: embedded, or list only host:port addresses")
			ok = false
			continue
		}
		if err := checkAddress(it.addr); err != nil {
			d.Errorf(it.node, field, "%v", err)
			ok = false
			continue
		}
		b.addrs = append(b.addrs, it.addr)
	}
	if !ok {
		b.addrs = nil
	}
}

// yamlOptions is the scenario's kafka block as written. Pointers tell an
// absent field from one given its zero value.
type yamlOptions struct {
	Brokers            *brokerList         `yaml:"brokers"`
	Topic              *string             `yaml:"topic"`
	CreateTopic        *bool               `yaml:"create-topic"`
	Partitions         *int                `yaml:"partitions"`
	ReplicationFactor  *int                `yaml:"replication-factor"`
	Acks               *string             `yaml:"acks"`
	Idempotent         *bool               `yaml:"idempotent"`
	Linger             *scenarios.Duration `yaml:"linger"`
	BatchMaxBytes      *scenarios.Size     `yaml:"batch-max-bytes"`
	MaxBufferedRecords *int                `yaml:"max-buffered-records"`
	Compression        *string             `yaml:"compression"`
	Group              *string             `yaml:"group"`
	Isolation          *string             `yaml:"isolation"`
	Commit             *string             `yaml:"commit"`
	CommitInterval     *scenarios.Duration `yaml:"commit-interval"`
	Start              *string             `yaml:"start"`
	SessionTimeout     *scenarios.Duration `yaml:"session-timeout"`
	TLS                *yamlTLS            `yaml:"tls"`
	SASL               *yamlSASL           `yaml:"sasl"`
	ClientID           *string             `yaml:"client-id"`
	MetadataMaxAge     *scenarios.Duration `yaml:"metadata-max-age"`
	MetadataMinAge     *scenarios.Duration `yaml:"metadata-min-age"`
	ConnectTimeout     *scenarios.Duration `yaml:"connect-timeout"`
	Embedded           *yamlEmbedded       `yaml:"embedded"`
	Transactions       *yamlTransactions   `yaml:"transactions"`
}

type yamlTransactions struct {
	IDPrefix    *string             `yaml:"id-prefix"`
	Records     *int                `yaml:"records"`
	MaxDuration *scenarios.Duration `yaml:"max-duration"`
	Abort       *scenarios.Fraction `yaml:"abort"`
	Seed        *int64              `yaml:"seed"`
	Timeout     *scenarios.Duration `yaml:"timeout"`
}

type yamlTLS struct {
	Enabled            *bool   `yaml:"enabled"`
	CAFile             *string `yaml:"ca-file"`
	CertFile           *string `yaml:"cert-file"`
	KeyFile            *string `yaml:"key-file"`
	ServerName         *string `yaml:"server-name"`
	InsecureSkipVerify *bool   `yaml:"insecure-skip-verify"`
}

type yamlSASL struct {
	Mechanism   string `yaml:"mechanism,required"`
	Username    string `yaml:"username,required"`
	Password    string `yaml:"password"`
	PasswordEnv string `yaml:"password-env"`
}

type yamlEmbedded struct {
	Brokers    *int    `yaml:"brokers"`
	SyncWrites *bool   `yaml:"sync-writes"`
	LogLevel   *string `yaml:"log-level"`
}

// decodeOptions is Kind.Options: it decodes the options block n (nil for
// `driver: kafka`) into an Options value, recording every problem on d.
// Defaults that depend on the cluster kind are left zero for Open.
func decodeOptions(d *scenarios.Decoder, n *yaml.Node, field string) any {
	o := DefaultOptions()
	if scenarios.IsNull(n) {
		return o
	}
	var y yamlOptions
	d.Decode(n, field, &y)

	// Range and cross-field checks run on fields that decoded: each
	// mistake is reported once.
	failed := map[string]bool{}
	for _, p := range d.Problems() {
		failed[p.Field] = true
	}
	nodeOf := func(parent *yaml.Node, path ...string) *yaml.Node {
		at := parent
		for _, k := range path {
			c := scenarios.Child(at, k)
			if c == nil {
				return at
			}
			at = c
		}
		return at
	}
	check := func(key string, bad bool, format string, args ...any) bool {
		f := field + "." + key
		if failed[f] || !bad {
			return !bad
		}
		d.Errorf(nodeOf(n, strings.Split(key, ".")...), f, format, args...)
		failed[f] = true
		return false
	}
	oneOf := func(key string, v *string, valid []string) string {
		if v == nil || failed[field+"."+key] {
			return ""
		}
		if !d.OneOf(nodeOf(n, strings.Split(key, ".")...), field+"."+key, *v, valid...) {
			failed[field+"."+key] = true
			return ""
		}
		return *v
	}

	if y.Brokers != nil {
		o.Brokers = y.Brokers.addrs
	}
	embedded := y.Brokers == nil || (len(y.Brokers.addrs) == 0 && !failed[field+".brokers"])
	if y.Embedded != nil {
		if !embedded {
			check("embedded", true, "applies only with brokers: embedded; remove it or the broker addresses")
		} else {
			e := y.Embedded
			if e.Brokers != nil && check("embedded.brokers", *e.Brokers < 1 || *e.Brokers > MaxEmbeddedBrokers,
				"must be a whole number from 1 to %d, got %d", MaxEmbeddedBrokers, *e.Brokers) {
				o.Embedded.Brokers = *e.Brokers
			}
			if e.SyncWrites != nil {
				o.Embedded.SyncWrites = *e.SyncWrites
			}
			if v := oneOf("embedded.log-level", e.LogLevel, LogLevelValues); v != "" {
				o.Embedded.LogLevel = v
			}
		}
	}

	if y.Topic != nil {
		t := *y.Topic
		if check("topic", t == "" || len(t) > 249 || strings.Trim(t, topicChars) != "" || t == "." || t == "..",
			"%q is not a valid Kafka topic name: 1 to 249 characters of a-z, A-Z, 0-9, '.', '_' and '-'", t) {
			o.Topic = t
		}
	}
	if y.CreateTopic != nil {
		o.CreateTopic = *y.CreateTopic
	}
	if y.Partitions != nil && check("partitions", *y.Partitions < 1 || *y.Partitions > MaxPartitions,
		"must be a whole number from 1 to %d, got %d", MaxPartitions, *y.Partitions) {
		o.Partitions = *y.Partitions
	}
	if y.ReplicationFactor != nil {
		rf := *y.ReplicationFactor
		switch {
		case rf < 1 || rf > 32767:
			check("replication-factor", true, "must be a whole number of at least 1, got %d", rf)
		case embedded && rf > o.Embedded.Brokers:
			check("replication-factor", true, "%d is more than the %d embedded brokers; lower it or raise embedded.brokers", rf, o.Embedded.Brokers)
		default:
			o.ReplicationFactor = rf
		}
	}
	if y.Acks != nil && !failed[field+".acks"] {
		if _, err := strconv.Atoi(*y.Acks); err == nil {
			check("acks", true, "write acks by name: all (the number -1), leader (1) or none (0); got %s", *y.Acks)
		} else if v := oneOf("acks", y.Acks, AcksValues); v != "" {
			o.Acks = v
		}
	}
	if y.Idempotent != nil {
		o.Idempotent = *y.Idempotent
	}
	if o.Idempotent && o.Acks != "all" && !failed[field+".acks"] {
		at := "acks"
		if y.Idempotent != nil {
			at = "idempotent"
		}
		how := "idempotent is true by default"
		if y.Idempotent != nil {
			how = fmt.Sprintf("idempotent is true (line %d)", scenarios.Child(n, "idempotent").Line)
		}
		check(at, true, "idempotent writes need acks: all, but acks is %s (line %d) and %s; set idempotent: false or acks: all",
			o.Acks, scenarios.Child(n, "acks").Line, how)
	}
	if y.Linger != nil && check("linger", y.Linger.D() > time.Minute, "must be at most 1m, got %v", y.Linger.D()) {
		o.Linger = y.Linger.D()
	}
	if y.BatchMaxBytes != nil {
		b := int64(*y.BatchMaxBytes)
		if check("batch-max-bytes", b < MinBatchMaxBytes || b > MaxBatchMaxBytes,
			"must be from %dB to 100MiB, got %dB", MinBatchMaxBytes, b) {
			o.BatchMaxBytes = int(b)
		}
	}
	if y.MaxBufferedRecords != nil && check("max-buffered-records", *y.MaxBufferedRecords < 1 || *y.MaxBufferedRecords > MaxMaxBufferedRecords,
		"must be a whole number from 1 to %d, got %d", MaxMaxBufferedRecords, *y.MaxBufferedRecords) {
		o.MaxBufferedRecords = *y.MaxBufferedRecords
	}
	if v := oneOf("compression", y.Compression, CompressionValues); v != "" {
		o.Compression = v
	}
	if y.Group != nil && check("group", strings.TrimSpace(*y.Group) == "", "must not be empty; leave group out for spate-<run id>") {
		o.Group = *y.Group
	}
	if v := oneOf("isolation", y.Isolation, IsolationValues); v != "" {
		o.Isolation = v
	}
	if v := oneOf("commit", y.Commit, CommitValues); v != "" {
		o.Commit = v
	}
	if y.CommitInterval != nil && check("commit-interval", y.CommitInterval.D() < 100*time.Millisecond,
		"must be at least 100ms, got %v", y.CommitInterval.D()) {
		o.CommitInterval = y.CommitInterval.D()
	}
	if v := oneOf("start", y.Start, StartValues); v != "" {
		o.Start = v
	}
	if y.SessionTimeout != nil && check("session-timeout", y.SessionTimeout.D() < 100*time.Millisecond || y.SessionTimeout.D() > 30*time.Minute,
		"must be from 100ms to 30m, got %v", y.SessionTimeout.D()) {
		o.SessionTimeout = y.SessionTimeout.D()
	}
	if y.ClientID != nil && check("client-id", strings.TrimSpace(*y.ClientID) == "", "must not be empty; leave client-id out for %q", DefaultClientID) {
		o.ClientID = *y.ClientID
	}
	if y.MetadataMinAge != nil && check("metadata-min-age", y.MetadataMinAge.D() < 10*time.Millisecond || y.MetadataMinAge.D() > time.Hour,
		"must be from 10ms to 1h, got %v", y.MetadataMinAge.D()) {
		o.MetadataMinAge = y.MetadataMinAge.D()
	}
	if y.MetadataMaxAge != nil && check("metadata-max-age", y.MetadataMaxAge.D() < 10*time.Millisecond || y.MetadataMaxAge.D() > time.Hour,
		"must be from 10ms to 1h, got %v", y.MetadataMaxAge.D()) {
		o.MetadataMaxAge = y.MetadataMaxAge.D()
	}
	if o.MetadataMinAge > 0 && o.MetadataMaxAge > 0 && o.MetadataMaxAge < o.MetadataMinAge {
		check("metadata-max-age", true, "%v is less than metadata-min-age %v", o.MetadataMaxAge, o.MetadataMinAge)
	}
	if y.ConnectTimeout != nil && check("connect-timeout", y.ConnectTimeout.D() < 100*time.Millisecond || y.ConnectTimeout.D() > 10*time.Minute,
		"must be from 100ms to 10m, got %v", y.ConnectTimeout.D()) {
		o.ConnectTimeout = y.ConnectTimeout.D()
	}

	if t := y.Transactions; t != nil {
		tx := DefaultTransactionOptions()
		if t.IDPrefix != nil && check("transactions.id-prefix", strings.TrimSpace(*t.IDPrefix) == "",
			"must not be empty; leave id-prefix out for spate-<run id>") {
			tx.IDPrefix = *t.IDPrefix
		}
		if t.Records != nil && check("transactions.records", *t.Records < 1 || *t.Records > MaxTxnRecords,
			"must be a whole number from 1 to %d, got %d", MaxTxnRecords, *t.Records) {
			tx.Records = *t.Records
		}
		if t.MaxDuration != nil && check("transactions.max-duration", t.MaxDuration.D() < time.Millisecond || t.MaxDuration.D() > time.Hour,
			"must be from 1ms to 1h, got %v", t.MaxDuration.D()) {
			tx.MaxDuration = t.MaxDuration.D()
		}
		if t.Abort != nil && check("transactions.abort", *t.Abort < 0 || *t.Abort > 1,
			"must be a fraction from 0 to 1 (or 0%% to 100%%), got %g", float64(*t.Abort)) {
			tx.Abort = float64(*t.Abort)
		}
		if t.Seed != nil {
			tx.Seed = *t.Seed
		}
		if t.Timeout != nil && check("transactions.timeout", t.Timeout.D() < 100*time.Millisecond || t.Timeout.D() > 15*time.Minute,
			"must be from 100ms to 15m, got %v", t.Timeout.D()) {
			tx.Timeout = t.Timeout.D()
		}
		if !o.Idempotent && !failed[field+".idempotent"] {
			check("transactions", true, "transactions need idempotent producers; remove idempotent: false")
		} else if o.Acks != "all" && !failed[field+".acks"] && !failed[field+".idempotent"] {
			check("transactions", true, "transactions need acks: all, but acks is %s", o.Acks)
		}
		o.Transactions = &tx
	}

	if t := y.TLS; t != nil {
		tn := scenarios.Child(n, "tls")
		enabled := t.Enabled == nil || *t.Enabled
		switch {
		case !enabled:
		case embedded:
			check("tls", true, "the embedded cluster listens in plaintext on loopback; remove tls or set brokers to your cluster")
		default:
			o.TLS = &TLSOptions{
				CAFile:             deref(t.CAFile),
				CertFile:           deref(t.CertFile),
				KeyFile:            deref(t.KeyFile),
				ServerName:         deref(t.ServerName),
				InsecureSkipVerify: t.InsecureSkipVerify != nil && *t.InsecureSkipVerify,
			}
			for _, k := range []string{"ca-file", "cert-file", "key-file", "server-name"} {
				if c := scenarios.Child(tn, k); c != nil && c.Kind == yaml.ScalarNode && strings.TrimSpace(c.Value) == "" {
					check("tls."+k, true, "must not be empty; leave it out instead")
				}
			}
			if (o.TLS.CertFile == "") != (o.TLS.KeyFile == "") {
				missing, given := "key-file", "cert-file"
				if o.TLS.CertFile == "" {
					missing, given = given, missing
				}
				check("tls."+given, true, "needs %s too: a client certificate comes with its key", missing)
			}
		}
	}
	if s := y.SASL; s != nil {
		oneOf("sasl.mechanism", &s.Mechanism, MechanismValues)
		if c := scenarios.Child(scenarios.Child(n, "sasl"), "username"); c != nil && strings.TrimSpace(s.Username) == "" {
			check("sasl.username", true, "must not be empty")
		}
		switch {
		case s.Password != "" && s.PasswordEnv != "":
			check("sasl.password-env", true, "give password or password-env, not both")
		case s.Password == "" && s.PasswordEnv == "":
			check("sasl", true, "needs password or password-env (the name of an environment variable holding the password)")
		}
		o.SASL = &SASLOptions{Mechanism: s.Mechanism, Username: s.Username, Password: s.Password, PasswordEnv: s.PasswordEnv}
	}
	return o
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
