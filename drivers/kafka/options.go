package kafka

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/spate-dev/spate/scenarios"
)

// EmbeddedBrokers is the value of `brokers` that starts the in-process cluster.
const EmbeddedBrokers = "embedded"

// Defaults the driver's code shares; the options table holds the others
// and every bound. Where a default is the franz-go client's own, it is
// named after it so the two stay comparable.
const (
	DefaultEmbeddedBrokers    = 3
	MaxEmbeddedBrokers        = 16
	DefaultLinger             = 10 * time.Millisecond // kgo's default
	DefaultBatchMaxBytes      = 1_000_012             // kgo's default
	DefaultMaxBufferedRecords = 10_000                // kgo's default
	// DefaultTxnTimeout is shorter than kgo's 40s so that a transaction a
	// crashed producer or processor left open blocks read_committed
	// consumers for 10s at most.
	DefaultTxnTimeout = 10 * time.Second
	// DefaultProcessorTxnInterval is how long the built-in processor's
	// transaction stays open (exactly-once, Kafka Streams' default under EOS).
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

// Options configures the Kafka driver; each field is the option of the
// same name in the options table below (README.md, the package doc). The
// zero value is not ready for use: start from DefaultOptions. Open treats
// a zero field whose zero the option does not take as its default (so not
// the booleans, Linger, MaxBufferedBytes or a transaction's Seed and
// Abort), some of which depend on the cluster: ReplicationFactor,
// SessionTimeout and the metadata ages.
type Options struct {
	Brokers  []string // empty: the embedded cluster, configured by Embedded
	Embedded EmbeddedOptions

	Topic              string
	CreateTopic        bool
	Partitions         int
	ReplicationFactor  int
	Acks               Acks
	Idempotent         bool
	Linger             time.Duration
	BatchMaxBytes      int
	MaxBufferedRecords int
	MaxBufferedBytes   int // 0: unbounded (franz-go's default)
	Compression        Compression
	Group              string // "": spate-<run id>
	Isolation          Isolation
	Commit             Commit
	CommitInterval     time.Duration
	Start              Start
	SessionTimeout     time.Duration
	Transactions       *TransactionOptions // nil: producers are not transactional
	TLS                *TLSOptions         // nil: plaintext
	SASL               *SASLOptions        // nil: no authentication
	ClientID           string
	MetadataMaxAge     time.Duration
	MetadataMinAge     time.Duration
	ConnectTimeout     time.Duration
}

// EmbeddedOptions configures the in-process cluster of `brokers: embedded`.
type EmbeddedOptions struct {
	Brokers    int
	SyncWrites bool
	LogLevel   string
}

// TransactionOptions configures transactional producers (txn.go): each
// writes its messages in transactions of Records records (or fewer, when
// one has been open MaxDuration) and aborts a seeded fraction Abort of
// them on purpose.
type TransactionOptions struct {
	IDPrefix    string // "": spate-<run id>
	Records     int
	MaxDuration time.Duration
	Abort       float64
	Seed        int64
	Timeout     time.Duration
}

// DefaultTransactionOptions are the options of `transactions: {}`.
func DefaultTransactionOptions() TransactionOptions {
	return TransactionOptions{Records: 100, MaxDuration: 100 * time.Millisecond, Seed: 1, Timeout: DefaultTxnTimeout}
}

// TLSOptions configures TLS to the brokers; "" is an option left out.
type TLSOptions struct {
	CAFile, CertFile, KeyFile, ServerName string
	InsecureSkipVerify                    bool

	disabled bool // a scenario's tls: {enabled: false}, while decoding
}

// SASLOptions configures SASL authentication.
type SASLOptions struct {
	Mechanism, Username, Password string
	PasswordEnv                   string // read at Open
}

// DefaultOptions returns the options of `driver: kafka`: the embedded
// cluster of three brokers, topic "spate" created with three partitions,
// acks=all idempotent producers, consumers in one group committing after
// processing, reading only the run's own traffic.
func DefaultOptions() Options {
	return Options{
		Embedded:           EmbeddedOptions{Brokers: DefaultEmbeddedBrokers, LogLevel: "error"},
		Topic:              "spate",
		CreateTopic:        true,
		Partitions:         3,
		Acks:               AcksAll,
		Idempotent:         true,
		Linger:             DefaultLinger,
		BatchMaxBytes:      DefaultBatchMaxBytes,
		MaxBufferedRecords: DefaultMaxBufferedRecords,
		Compression:        CompressionNone,
		Isolation:          ReadUncommitted,
		Commit:             CommitAfterProcessing,
		CommitInterval:     5 * time.Second, // kgo's default
		Start:              StartRun,
		ClientID:           "spate",
		ConnectTimeout:     10 * time.Second,
	}
}

// fillDefaults gives zero fields their defaults (options.FillZero), then
// those that depend on whether the cluster is embedded.
func (o *Options) fillDefaults() {
	if t := o.Transactions; t != nil {
		tc := *t // filled here, not the caller's
		o.Transactions = &tc
	}
	options.FillZero(o)
	session, minAge, maxAge := DefaultSessionTimeout, DefaultMetadataMinAge, DefaultMetadataMaxAge
	if o.IsEmbedded() {
		o.ReplicationFactor = cmp.Or(o.ReplicationFactor, min(3, o.Embedded.Brokers))
		session, minAge, maxAge = EmbeddedSessionTimeout, EmbeddedMetadataMinAge, EmbeddedMetadataMaxAge
	}
	o.ReplicationFactor = cmp.Or(o.ReplicationFactor, 1)
	o.SessionTimeout = cmp.Or(o.SessionTimeout, session)
	o.MetadataMinAge = cmp.Or(o.MetadataMinAge, minAge)
	o.MetadataMaxAge = cmp.Or(o.MetadataMaxAge, max(maxAge, o.MetadataMinAge))
}

// options is the Kafka driver's options, declared once: the scenario block
// is decoded, Go callers' options checked and the docs' tables (README.md,
// the package doc) written from these rows. Rules that relate several
// options are Options.check.
//
//go:generate go test -run TestOptionsDocs -update-docs .
var options = scenarios.OptionsTable[Options]{Defaults: DefaultOptions, Opts: []scenarios.Opt[Options]{
	scenarios.CustomOpt("brokers", "`embedded`, or `host:port` addresses as a list or one comma-separated string", "where the cluster is; `embedded` starts one in-process", decodeBrokers, checkBrokers, nil).WithDefault("`embedded`"),
	scenarios.StrOpt("topic", func(o *Options) *string { return &o.Topic }, topicProblem, "the topic messages go to").WithValues("Kafka topic name"),
	scenarios.BoolOpt("create-topic", func(o *Options) *bool { return &o.CreateTopic }, "create the topic if it is missing; `false`: it must exist (checked at the start, with a clear error)"),
	scenarios.IntOpt("partitions", func(o *Options) *int { return &o.Partitions }, 1, 10_000, "partitions of a topic spate creates; an existing topic keeps its own"),
	scenarios.IntOpt("replication-factor", func(o *Options) *int { return &o.ReplicationFactor }, 1, 32767, "replicas of a topic spate creates").WithDefault("1; embedded: min(3, brokers)"),
	scenarios.EnumOpt("acks", func(o *Options) *Acks { return &o.Acks }, AcksValues, "what the leader waits for before confirming; with `none` nothing is confirmed and publish latency is not measured").Refusing(numericAcks),
	scenarios.BoolOpt("idempotent", func(o *Options) *bool { return &o.Idempotent }, "idempotent producers: the broker drops retried duplicates. Needs `acks: all` (a validation error names both)"),
	scenarios.DurOpt("linger", func(o *Options) *time.Duration { return &o.Linger }, 0, time.Minute, "how long a partition's batch waits to fill"),
	scenarios.SizeOpt("batch-max-bytes", func(o *Options) *int { return &o.BatchMaxBytes }, 512, 100<<20, "largest record batch"),
	scenarios.IntOpt("max-buffered-records", func(o *Options) *int { return &o.MaxBufferedRecords }, 1, 10_000_000, "records a producer holds without an outcome; sends block beyond it"),
	scenarios.SizeOpt("max-buffered-bytes", func(o *Options) *int { return &o.MaxBufferedBytes }, 0, 16<<30, "bytes of records (keys, values, headers) a producer's client holds without an outcome; sends block beyond it, and a larger record fails with MESSAGE_TOO_LARGE. `0`: no bound (franz-go's default)"),
	scenarios.EnumOpt("compression", func(o *Options) *Compression { return &o.Compression }, CompressionValues, "batch compression (spate's filler is random, so it barely compresses)"),
	scenarios.OptionalStrOpt("group", func(o *Options) *string { return &o.Group }, "leave group out for spate-<run id>", "the consumer group all consumers of the run join; with `subscriptions: N` (fan-out, scenario level) the groups `<group>-0` … `<group>-N-1`, one per subscription, each reading every record").WithDefault("`spate-<run id>`"),
	scenarios.EnumOpt("isolation", func(o *Options) *Isolation { return &o.Isolation }, IsolationValues, "consumers' isolation level"),
	scenarios.EnumOpt("commit", func(o *Options) *Commit { return &o.Commit }, CommitValues, "`after-processing`: commit only records spate has counted (at-least-once); `auto`: franz-go's autocommit of everything polled"),
	scenarios.DurOpt("commit-interval", func(o *Options) *time.Duration { return &o.CommitInterval }, 100*time.Millisecond, 0, "how often offsets are committed"),
	scenarios.EnumOpt("start", func(o *Options) *Start { return &o.Start }, StartValues, "where consumers start: `run` reads exactly the messages sent after the start; `earliest` the whole topic (other runs' messages count as foreign); `latest` the end as each consumer joins (earlier messages are missed and count as lost)"),
	scenarios.DurOpt("session-timeout", func(o *Options) *time.Duration { return &o.SessionTimeout }, 100*time.Millisecond, 30*time.Minute, "how long the group waits for a silent consumer before moving its partitions").WithDefault(byCluster(DefaultSessionTimeout, EmbeddedSessionTimeout)),
	scenarios.BlockOpt("tls", func(o *Options) { o.TLS = &TLSOptions{} }, func(o *Options) bool { return o.TLS != nil }, "TLS to the brokers (external clusters only)").WithDefault("off"),
	scenarios.CustomOpt("tls.enabled", "bool", "`false` turns TLS off and keeps the block", decodeTLSEnabled, nil, nil).WithDefault("`true`"),
	scenarios.OptionalStrOpt("tls.ca-file", func(o *Options) *string { return &o.TLS.CAFile }, "leave it out instead", "PEM roots").WithDefault("the system's"),
	scenarios.OptionalStrOpt("tls.cert-file", func(o *Options) *string { return &o.TLS.CertFile }, "leave it out instead", "PEM client certificate for mutual TLS; with `key-file`").WithDefault("none"),
	scenarios.OptionalStrOpt("tls.key-file", func(o *Options) *string { return &o.TLS.KeyFile }, "leave it out instead", "PEM key of `cert-file`").WithDefault("none"),
	scenarios.OptionalStrOpt("tls.server-name", func(o *Options) *string { return &o.TLS.ServerName }, "leave it out instead", "the name broker certificates are verified against").WithDefault("each broker's host"),
	scenarios.BoolOpt("tls.insecure-skip-verify", func(o *Options) *bool { return &o.TLS.InsecureSkipVerify }, "accept any certificate (tests only)"),
	scenarios.BlockOpt("sasl", func(o *Options) { o.SASL = &SASLOptions{} }, func(o *Options) bool { return o.SASL != nil }, "SASL authentication, with `password` or `password-env`").WithDefault("off"),
	scenarios.EnumOpt("sasl.mechanism", func(o *Options) *string { return &o.SASL.Mechanism }, MechanismValues, "`PLAIN` sends the password as is: use it with `tls`").WithDefault("required"),
	scenarios.StrOpt("sasl.username", func(o *Options) *string { return &o.SASL.Username }, scenarios.NotEmpty("give the SASL user"), "the user").WithDefault("required"),
	scenarios.StrOpt("sasl.password", func(o *Options) *string { return &o.SASL.Password }, nil, "the password, inline (keep such files private)").WithDefault("none"),
	scenarios.StrOpt("sasl.password-env", func(o *Options) *string { return &o.SASL.PasswordEnv }, nil, "the environment variable holding the password, read at the start").WithDefault("none"),
	scenarios.StrOpt("client-id", func(o *Options) *string { return &o.ClientID }, scenarios.NotEmpty(`leave client-id out for "spate"`), "prefix of the client ids (`spate-producer-0`, `spate-consumer-1`, `spate-admin`)"),
	scenarios.DurOpt("metadata-max-age", func(o *Options) *time.Duration { return &o.MetadataMaxAge }, 10*time.Millisecond, time.Hour, "how often clients refresh metadata regardless").WithDefault(byCluster(DefaultMetadataMaxAge, EmbeddedMetadataMaxAge)),
	scenarios.DurOpt("metadata-min-age", func(o *Options) *time.Duration { return &o.MetadataMinAge }, 10*time.Millisecond, time.Hour, "how often clients may refresh metadata at most; franz-go's 5s default makes moved leaders slow to find during chaos").WithDefault(byCluster(DefaultMetadataMinAge, EmbeddedMetadataMinAge)),
	scenarios.DurOpt("connect-timeout", func(o *Options) *time.Duration { return &o.ConnectTimeout }, 100*time.Millisecond, 10*time.Minute, "how long the start waits for a broker to answer before failing"),
	scenarios.BlockOpt("embedded", func(*Options) {}, func(o *Options) bool { return o.IsEmbedded() }, "the embedded cluster; only with `brokers: embedded`").WithDefault("three brokers"),
	scenarios.IntOpt("embedded.brokers", func(o *Options) *int { return &o.Embedded.Brokers }, 1, MaxEmbeddedBrokers, "brokers of the cluster"),
	scenarios.BoolOpt("embedded.sync-writes", func(o *Options) *bool { return &o.Embedded.SyncWrites }, "fsync every appended batch"),
	scenarios.EnumOpt("embedded.log-level", func(o *Options) *string { return &o.Embedded.LogLevel }, LogLevelValues, "the cluster's own log lines, into the driver's log"),
	scenarios.BlockOpt("transactions", func(o *Options) { t := DefaultTransactionOptions(); o.Transactions = &t }, func(o *Options) bool { return o.Transactions != nil }, "spate's producers write in transactions, some aborted on purpose (see Transactions)").WithDefault("off"),
	scenarios.OptionalStrOpt("transactions.id-prefix", func(o *Options) *string { return &o.Transactions.IDPrefix }, "leave id-prefix out for spate-<run id>", "transactional ids are `<prefix>-producer-<id>` (and `<prefix>-processor-<id>` for the built-in processor)").WithDefault("`spate-<run id>`"),
	scenarios.IntOpt("transactions.records", func(o *Options) *int { return &o.Transactions.Records }, 1, 1_000_000, "records per transaction"),
	scenarios.DurOpt("transactions.max-duration", func(o *Options) *time.Duration { return &o.Transactions.MaxDuration }, time.Millisecond, time.Hour, "a transaction ends after this long even if it holds fewer records, so a slow schedule is not held back"),
	scenarios.FractionOpt("transactions.abort", func(o *Options) *float64 { return &o.Transactions.Abort }, "fraction of the transactions aborted on purpose, drawn when each begins"),
	scenarios.Int64Opt("transactions.seed", func(o *Options) *int64 { return &o.Transactions.Seed }, "seeds the draw (per producer), so runs abort the same transactions"),
	scenarios.DurOpt("transactions.timeout", func(o *Options) *time.Duration { return &o.Transactions.Timeout }, 100*time.Millisecond, 15*time.Minute, "the transaction timeout the coordinator enforces (`transaction.timeout.ms`); shorter than franz-go's 40s so a transaction a crashed producer or processor left open blocks read_committed consumers for 10s at most"),
}}

// byCluster is the docs' default of an option whose default depends on
// whether the cluster is embedded.
func byCluster(external, embedded time.Duration) string {
	return fmt.Sprintf("`%s`; embedded `%s`", scenarios.FormatDuration(external), scenarios.FormatDuration(embedded))
}

func topicProblem(t string) string {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
	if t == "" || len(t) > 249 || strings.Trim(t, chars) != "" || t == "." || t == ".." {
		return fmt.Sprintf("%q is not a valid Kafka topic name: 1 to 249 characters of a-z, A-Z, 0-9, '.', '_' and '-'", t)
	}
	return ""
}

func numericAcks(v string) string {
	if _, err := strconv.Atoi(v); err == nil {
		return "write acks by name: all (the number -1), leader (1) or none (0); got " + v
	}
	return ""
}

func decodeTLSEnabled(d *scenarios.Decoder, n *yaml.Node, field string, o *Options) {
	var on bool
	if d.Decode(n, field, &on) {
		o.TLS.disabled = !on
	}
}

// problem is one mistake in Options: the option's dotted YAML path and
// what is wrong with it.
type problem struct{ key, msg string }

// check returns the problems of the rules that relate several options, in
// field order. n is the scenario's options block, for rules on what it
// gives and its lines, or nil for options made in Go.
func (o *Options) check(n *yaml.Node) []problem {
	var ps []problem
	add := func(key, format string, args ...any) { ps = append(ps, problem{key, fmt.Sprintf(format, args...)}) }
	if !o.IsEmbedded() && nodeAt(n, "embedded") != nil {
		add("embedded", "applies only with brokers: embedded; remove it or the broker addresses")
	} else if o.IsEmbedded() && o.ReplicationFactor > o.Embedded.Brokers {
		add("replication-factor", "%d is more than the %d embedded brokers; lower it or raise embedded.brokers", o.ReplicationFactor, o.Embedded.Brokers)
	}
	if o.Idempotent && o.Acks != AcksAll {
		at, acks, how := "acks", string(o.Acks), "idempotent is true"
		if a := nodeAt(n, "acks"); a != nil {
			acks, how = fmt.Sprintf("%s (line %d)", acks, a.Line), how+" by default"
		}
		if i := nodeAt(n, "idempotent"); i != nil {
			at, how = "idempotent", fmt.Sprintf("idempotent is true (line %d)", i.Line)
		}
		add(at, "idempotent writes need acks: all, but acks is %s and %s; set idempotent: false or acks: all", acks, how)
	}
	if o.MetadataMinAge > 0 && o.MetadataMaxAge > 0 && o.MetadataMaxAge < o.MetadataMinAge {
		add("metadata-max-age", "%v is less than metadata-min-age %v", o.MetadataMaxAge, o.MetadataMinAge)
	}
	if o.Transactions != nil && !o.Idempotent {
		add("transactions", "transactions need idempotent producers; remove idempotent: false")
	} else if o.Transactions != nil && o.Acks != AcksAll {
		add("transactions", "transactions need acks: all, but acks is %s", o.Acks)
	}
	if t := o.TLS; t != nil && o.IsEmbedded() {
		add("tls", "the embedded cluster listens in plaintext on loopback; remove tls or set brokers to your cluster")
	} else if t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		missing, has := "key-file", "cert-file"
		if t.CertFile == "" {
			missing, has = has, missing
		}
		add("tls."+has, "needs %s too: a client certificate comes with its key", missing)
	}
	if s := o.SASL; s != nil {
		for _, k := range []string{"sasl.mechanism", "sasl.username"} {
			if n != nil && nodeAt(n, k) == nil {
				add(k, "required field is missing")
			}
		}
		if s.Password != "" && s.PasswordEnv != "" {
			add("sasl.password-env", "give password or password-env, not both")
		} else if s.Password == "" && s.PasswordEnv == "" {
			add("sasl", "needs password or password-env (the name of an environment variable holding the password)")
		}
	}
	return ps
}

// nodeAt returns the node of a dotted option path in n, or nil.
func nodeAt(n *yaml.Node, path string) *yaml.Node {
	for _, k := range strings.Split(path, ".") {
		n = scenarios.Child(n, k)
	}
	return n
}

// validate checks o after zero fields took their defaults: the table's
// ranges and values, then check's rules on the options that passed.
func (o *Options) validate() error {
	errs := options.Check(o)
	for _, p := range o.check(nil) {
		if !slices.ContainsFunc(errs, func(e string) bool { return strings.HasPrefix(e, p.key+": ") }) {
			errs = append(errs, p.key+": "+p.msg)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("kafka: %s", strings.Join(errs, "; "))
	}
	return nil
}

// decodeOptions is Kind.Options: it decodes the options block n (nil for
// `driver: kafka`) into an Options value, recording every problem on d:
// the table's, then check's at options that decoded, so that each mistake
// is reported once. Defaults that depend on the cluster are left zero for
// Open.
func decodeOptions(d *scenarios.Decoder, n *yaml.Node, field string) any {
	o := options.Decode(d, n, field)
	if o.TLS != nil && o.TLS.disabled {
		o.TLS = nil
	}
	for _, p := range o.check(n) {
		scenarios.ReportAt(d, n, field, p.key, p.msg)
	}
	return o
}

// checkAddress checks a bootstrap address.
func checkAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Errorf("%q is not host:port, such as localhost:9092 or [::1]:9092", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: port %q must be a number from 1 to 65535", addr, port)
	}
	return nil
}

func checkBrokers(o *Options) string {
	var errs []string
	for _, b := range o.Brokers {
		if err := checkAddress(b); err != nil {
			errs = append(errs, err.Error())
		}
	}
	return strings.Join(errs, "; ")
}

// decodeBrokers reads `brokers` as written: `embedded`, one address, a
// comma-separated list of addresses, or a YAML list of addresses. Bad
// addresses are kept (with their problems), so that the rules on the
// cluster's kind still see an external cluster.
func decodeBrokers(d *scenarios.Decoder, n *yaml.Node, field string, o *Options) {
	items := []*yaml.Node{n}
	switch {
	case n.Kind == yaml.SequenceNode && len(n.Content) == 0:
		d.Errorf(n, field, "the list of brokers is empty; give host:port addresses or write brokers: embedded")
		return
	case n.Kind == yaml.SequenceNode:
		items = n.Content
	case n.Kind != yaml.ScalarNode:
		d.Errorf(n, field, "want embedded or a list of host:port addresses")
		return
	case strings.TrimSpace(n.Value) == EmbeddedBrokers:
		return
	}
	var addrs []string
	for i, c := range items {
		if c.Kind != yaml.ScalarNode || scenarios.IsNull(c) {
			d.Errorf(c, fmt.Sprintf("%s[%d]", field, i), "want a host:port address such as localhost:9092")
			continue
		}
		list := []string{c.Value}
		if c == n { // one string: a comma-separated list
			list = strings.Split(c.Value, ",")
		}
		for _, a := range list {
			a = strings.TrimSpace(a)
			if a == EmbeddedBrokers {
				d.Errorf(c, field, "embedded stands alone: write brokers: embedded, or list only host:port addresses")
			} else if err := checkAddress(a); err != nil {
				d.Errorf(c, field, "%v", err)
			}
			addrs = append(addrs, a)
		}
	}
	o.Brokers = addrs
}
