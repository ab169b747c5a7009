package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
)

// Kind is the Kafka driver as scenarios name it: `driver: kafka` (the
// embedded cluster with every default) or `driver: {kafka: {...}}`.
var Kind = drivers.Kind{Name: "kafka", Options: decodeOptions, Open: open}

// StampHeader is the record header that carries a message's stamp.
const StampHeader = "spate-stamp"

// ErrClosed is returned by every method called after Driver.Close, and by
// Consume when the driver is closed under it.
var ErrClosed = errors.New("kafka: driver closed")

// closeWait bounds each step of an orderly shutdown that talks to the
// cluster (a last commit, leaving the group), so a dead cluster cannot
// hold a run's end hostage.
const closeWait = 5 * time.Second

func open(ctx context.Context, options any, env drivers.Env) (drivers.Driver, error) {
	var o Options
	switch v := options.(type) {
	case nil:
		o = DefaultOptions()
	case Options:
		o = v
	case *Options:
		if v == nil {
			o = DefaultOptions()
		} else {
			o = *v
		}
	default:
		return nil, fmt.Errorf("kafka: options of type %T, want kafka.Options", options)
	}
	return Open(ctx, o, env)
}

// Driver is the Kafka driver on an external cluster; on the embedded
// cluster Open returns an *EmbeddedDriver, which adds the abilities only a
// cluster spate runs itself can have. Its methods are safe for concurrent
// use.
type Driver struct {
	opts       Options
	env        drivers.Env
	log        *slog.Logger
	seeds      []string
	group      string
	partitions int // the topic's, found at Open
	tls        *tls.Config
	sasl       sasl.Mechanism

	admin *kgo.Client
	adm   *kadm.Client
	embed *cluster // nil on an external cluster

	mu         sync.Mutex
	closed     bool
	producers  map[*producer]struct{}
	consumers  map[*consumer]struct{}
	processors map[*processor]struct{}
	bg         sync.WaitGroup // crashed consumers' clients closing

	// The built-in processor's group starts at the input's ends once.
	procStart    sync.Once
	procStartErr error

	crashMu sync.Mutex
	crashed map[groupPartition][]span // offsets crashed consumers delivered after their last commit

	stats stats
}

// stats are the driver's own counts (Stats), declared once: each field's
// tags give its name in driver_stats and its line in the package doc and
// README tables, which go generate writes from them (stats_test.go). The
// groups are in Stats only when they apply: txn with transactions, proc
// once the built-in processor has done anything; the embedded cluster's
// are clusterStats. Safe for concurrent use.
type stats struct {
	Produced         drivers.Counter `stat:"produced" doc:"records the cluster confirmed"`
	ProduceErrors    drivers.Counter `stat:"produce_errors" doc:"records that failed"`
	Delivered        drivers.Counter `stat:"delivered" doc:"records handed to handlers"`
	Unstamped        drivers.Counter `stat:"unstamped" doc:"records delivered without a spate-stamp header"`
	Assigned         drivers.Counter `stat:"partitions_assigned" doc:"partitions the consumers were assigned"`
	Revoked          drivers.Counter `stat:"partitions_revoked" doc:"partitions revoked from the consumers in a rebalance"`
	Lost             drivers.Counter `stat:"partitions_lost" doc:"partitions taken away without a revoke, after a session expired"`
	Crashes          drivers.Counter `stat:"crashes" doc:"consumers crashed"`
	CrashUncommitted drivers.Counter `stat:"crash_uncommitted" doc:"records crashed consumers delivered after their last commit they saw confirmed"`
	CrashRedelivered drivers.Counter `stat:"crash_redelivered" doc:"of those, the records delivered again to the consumers that took their partitions over, measured by offset when they start reading"`
	LeaderMoves      drivers.Counter `stat:"leader_moves" doc:"partitions given a new leader by MoveLeaders"`
	FaultsInjected   drivers.Counter `stat:"faults_injected" doc:"protocol faults injected"`

	txn  txnStats
	proc procStats
}

// txnStats are the transactional producers' counts, in Stats with
// transactions.
type txnStats struct {
	Committed        drivers.Counter `stat:"txn_committed" doc:"transactions committed"`
	Aborted          drivers.Counter `stat:"txn_aborted" doc:"transactions aborted, on purpose or after a failed write"`
	AbortedOnPurpose drivers.Counter `stat:"txn_aborted_on_purpose" doc:"of those, the transactions aborted on purpose by transactions.abort"`
	Unknown          drivers.Counter `stat:"txn_unknown" doc:"transactions whose commit outcome is unknown, whose records failed"`
	CommittedRecords drivers.Counter `stat:"txn_committed_records" doc:"records of committed transactions"`
	AbortedRecords   drivers.Counter `stat:"txn_aborted_records" doc:"records of aborted transactions"`
}

// procStats are the built-in processor's counts, in Stats once it
// processed, committed, aborted or crashed (used).
type procStats struct {
	Processed    drivers.Counter `stat:"processor_processed" doc:"records it wrote and committed: in committed transactions exactly-once, confirmed at least once"`
	TxnCommitted drivers.Counter `stat:"processor_txn_committed" doc:"its transactions committed, exactly-once"`
	TxnAborted   drivers.Counter `stat:"processor_txn_aborted" doc:"its transactions aborted, exactly-once"`
	Crashes      drivers.Counter `stat:"processor_crashes" doc:"instances crashed"`
	CrashPending drivers.Counter `stat:"processor_crash_pending" doc:"records crashed instances had written without committing their input offsets: in an open transaction, aborted; at least once, written again"`
	Restarts     drivers.Counter `stat:"processor_restarts" doc:"sessions replaced after a transaction failed to end"`
}

// used tells whether the processor has counted anything that puts its
// figures in Stats.
func (s *procStats) used() bool {
	return s.Processed.Load()+s.Crashes.Load()+s.TxnCommitted.Load()+s.TxnAborted.Load() > 0
}

var (
	_ drivers.Driver         = (*Driver)(nil)
	_ drivers.StatsReporter  = (*Driver)(nil)
	_ drivers.PeerOpener     = (*Driver)(nil)
	_ drivers.ProcessorMaker = (*Driver)(nil)
)

// Open connects to the cluster o names, or starts the embedded one, and
// prepares the topic and the consumer group for the run env. It returns an
// *EmbeddedDriver for `brokers: embedded` and a *Driver otherwise. It fails
// within o.ConnectTimeout when no broker answers.
func Open(ctx context.Context, o Options, env drivers.Env) (drivers.Driver, error) {
	return openOn(ctx, o, env, nil)
}

// OpenPeer opens the output end of a pipeline (drivers.PeerOpener): a
// driver with options that, when they name no brokers (or brokers:
// embedded), uses this driver's cluster, TLS and SASL, and otherwise
// connects to the brokers they name. The peer's consumer group defaults to
// spate-<run id>-out. Closing it never stops this driver's cluster.
func (d *Driver) OpenPeer(ctx context.Context, options any, env drivers.Env) (drivers.Driver, error) {
	o, ok := asOptions(options)
	if !ok {
		return nil, fmt.Errorf("kafka: peer options of type %T, want kafka.Options", options)
	}
	if !o.IsEmbedded() {
		return openOn(ctx, o, env, nil)
	}
	if d.embed == nil {
		o.Brokers = d.BootstrapBrokers() // an external cluster's defaults apply
	}
	return openOn(ctx, o, env, d)
}

// openOn opens a driver with o; on peer's cluster when peer is not nil.
func openOn(ctx context.Context, o Options, env drivers.Env, peer *Driver) (drivers.Driver, error) {
	o.fillDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	if env.Log == nil {
		env.Log = slog.New(slog.DiscardHandler)
	}
	d := &Driver{
		opts:       o,
		env:        env,
		log:        env.Log.With("driver", "kafka"),
		group:      o.Group,
		producers:  map[*producer]struct{}{},
		consumers:  map[*consumer]struct{}{},
		processors: map[*processor]struct{}{},
		crashed:    map[groupPartition][]span{},
	}
	if d.group == "" {
		d.group = "spate-" + stamp.RunIDString(env.RunID)
		if peer != nil {
			d.group += "-out"
		}
	}
	if peer != nil {
		d.log = d.log.With("end", "output")
	}
	var err error
	if d.tls, err = tlsConfig(o.TLS); err != nil {
		return nil, err
	}
	if d.sasl, err = saslMechanism(o.SASL); err != nil {
		return nil, err
	}
	if o.SASL != nil && o.SASL.Mechanism == "PLAIN" && o.TLS == nil && !o.IsEmbedded() {
		d.log.Warn("sasl PLAIN without tls sends the password in clear text")
	}
	switch {
	case peer != nil:
		d.seeds, d.tls, d.sasl = peer.BootstrapBrokers(), peer.tls, peer.sasl
	case o.IsEmbedded():
		if d.embed, err = startCluster(o, d.log); err != nil {
			return nil, err
		}
		d.seeds = d.embed.addrs()
	default:
		d.seeds = o.Brokers
	}
	if err := d.prepare(ctx); err != nil {
		_ = d.Close(context.Background())
		return nil, err
	}
	if d.embed != nil {
		return &EmbeddedDriver{d}, nil
	}
	return d, nil
}

// prepare checks that a broker answers, makes sure the topic exists and
// sets the group's start offsets.
func (d *Driver) prepare(ctx context.Context) error {
	o := &d.opts
	dial := newDialer(drivers.AdminSide, d.env.Dial, d.tls, o.ConnectTimeout)
	var err error
	d.admin, err = kgo.NewClient(d.clientOpts(dial, "admin")...)
	if err != nil {
		return fmt.Errorf("kafka: admin client: %w", err)
	}
	d.adm = kadm.NewClient(d.admin)
	ctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()

	if _, err := d.adm.BrokerMetadata(ctx); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = errors.New("no answer before the timeout")
			if derr := dial.lastError(); derr != nil {
				err = derr
			}
		}
		hint := "check brokers (and tls, sasl)"
		if o.SASL != nil {
			hint = "check brokers, tls, and sasl: a broker that refuses the mechanism, username or password may just close the connection"
		}
		return fmt.Errorf("kafka: no broker answered at %s (connect-timeout %v): %v; %s",
			strings.Join(d.seeds, ", "), o.ConnectTimeout, err, hint)
	}
	if err := d.ensureTopic(ctx); err != nil {
		return err
	}
	if o.Start == StartRun && !d.env.Attach { // the coordinator set the start
		for sub := range max(d.env.Subscriptions, 1) {
			if err := d.commitStart(ctx, d.groupOf(sub)); err != nil {
				return err
			}
		}
	}
	if o.Start == StartLatest {
		d.log.Warn("start: latest skips messages sent before a consumer gets its partitions; lost counts may include them")
	}
	return nil
}

// ensureTopic creates the topic if it is missing and create-topic allows,
// and waits until every partition has a leader.
func (d *Driver) ensureTopic(ctx context.Context) error {
	o := &d.opts
	topics, err := d.adm.ListTopics(ctx, o.Topic)
	if err != nil {
		return fmt.Errorf("kafka: looking up topic %q: %w", o.Topic, err)
	}
	if topics.Has(o.Topic) {
		if err := topics[o.Topic].Err; err != nil {
			return fmt.Errorf("kafka: topic %q: %w", o.Topic, err)
		}
		d.partitions = len(topics[o.Topic].Partitions)
		if d.partitions != o.Partitions {
			d.log.Info("the topic exists; using its partitions", "topic", o.Topic, "partitions", d.partitions)
		}
	} else {
		if d.env.Attach {
			return fmt.Errorf("kafka: topic %q does not exist on %s; the coordinator of the distributed run creates it", o.Topic, strings.Join(d.seeds, ", "))
		}
		if !o.CreateTopic {
			return fmt.Errorf("kafka: topic %q does not exist on %s and create-topic is false: create it, or set create-topic: true",
				o.Topic, strings.Join(d.seeds, ", "))
		}
		resp, err := d.adm.CreateTopic(ctx, int32(o.Partitions), int16(o.ReplicationFactor), nil, o.Topic)
		if err == nil {
			err = resp.Err
		}
		d.partitions = o.Partitions
		switch {
		case err == nil:
			d.log.Info("created topic", "topic", o.Topic, "partitions", o.Partitions, "replication-factor", o.ReplicationFactor)
		case errors.Is(err, kerr.TopicAlreadyExists):
		case errors.Is(err, kerr.InvalidReplicationFactor):
			return fmt.Errorf("kafka: creating topic %q: replication-factor %d is more than the cluster's brokers: %w", o.Topic, o.ReplicationFactor, err)
		default:
			return fmt.Errorf("kafka: creating topic %q: %w", o.Topic, err)
		}
	}
	// A new topic takes a moment to have leaders everywhere.
	for {
		ends, err := d.adm.ListEndOffsets(ctx, o.Topic)
		if err == nil {
			err = ends.Error()
		}
		if err == nil && len(ends[o.Topic]) > 0 {
			d.partitions = len(ends[o.Topic])
			return nil
		}
		if sleep(ctx, 50*time.Millisecond) != nil {
			return fmt.Errorf("kafka: topic %q has no leaders after %v: %v", o.Topic, o.ConnectTimeout, err)
		}
	}
}

// commitStart commits the topic's end offsets for the group, so consumers
// read exactly the messages sent from now on, whenever they join.
func (d *Driver) commitStart(ctx context.Context, group string) error {
	ends, err := d.adm.ListEndOffsets(ctx, d.opts.Topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("kafka: listing the end offsets of topic %q: %w", d.opts.Topic, err)
	}
	resp, err := d.adm.CommitOffsets(ctx, group, ends.Offsets())
	if err == nil {
		resp.EachError(func(r kadm.OffsetResponse) {
			if err == nil {
				err = r.Err
			}
		})
	}
	if err != nil {
		return fmt.Errorf("kafka: setting the start offsets of group %q: %w; the group may have active members: leave group out for a fresh one, or use start: earliest", group, err)
	}
	return nil
}

// clientOpts are the options every client of the driver shares.
func (d *Driver) clientOpts(dial *dialer, role string) []kgo.Opt {
	o := &d.opts
	opts := []kgo.Opt{
		kgo.SeedBrokers(d.seeds...),
		kgo.Dialer(dial.DialContext),
		kgo.ClientID(o.ClientID + "-" + role),
		kgo.MetadataMinAge(o.MetadataMinAge),
		kgo.MetadataMaxAge(o.MetadataMaxAge),
		kgo.WithLogger(kgoLogger{d.log.With("client", role), kgo.LogLevelWarn}),
	}
	if d.sasl != nil {
		opts = append(opts, kgo.SASL(d.sasl))
	}
	return opts
}

// Stats returns the driver's own figures (drivers.StatsReporter): the
// counters of stats, with transactions those of txnStats, once the built-in
// processor ran those of procStats, and on the embedded cluster its
// clusterStats and fault_hits. The package doc lists them all.
func (d *Driver) Stats() map[string]int64 {
	s := &d.stats
	m := drivers.StatsOf(s)
	if c := d.embed; c != nil {
		maps.Copy(m, drivers.StatsOf(&c.stats))
		m[faultHitsStat.Name] = c.faultHits()
	}
	if d.opts.Transactions != nil {
		maps.Copy(m, drivers.StatsOf(&s.txn))
	}
	if s.proc.used() {
		maps.Copy(m, drivers.StatsOf(&s.proc))
	}
	return m
}

// Group is the consumer group of the run: with several subscriptions
// (Env.Subscriptions), the stem of their groups' names (groupOf).
func (d *Driver) Group() string { return d.group }

// groupOf is the consumer group of subscription sub: the run's group, or
// with several subscriptions the group "<group>-<sub>" each.
func (d *Driver) groupOf(sub int) string {
	if d.env.Subscriptions <= 1 {
		return d.group
	}
	return fmt.Sprintf("%s-%d", d.group, sub)
}

// groupPartition names a partition as one consumer group reads it.
type groupPartition struct {
	sub       int
	partition int32
}

// Topic is the topic of the run.
func (d *Driver) Topic() string { return d.opts.Topic }

// BootstrapBrokers are the addresses clients start from: the scenario's,
// or those of the embedded brokers.
func (d *Driver) BootstrapBrokers() []string { return append([]string(nil), d.seeds...) }

// consumerCount is the number of consumers open in subscription sub's
// group.
func (d *Driver) consumerCount(sub int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for c := range d.consumers {
		if c.sub == sub {
			n++
		}
	}
	return n
}

func (d *Driver) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

// Close closes every producer, consumer and processor still open
// (consumers leave the group), then stops the embedded cluster and removes
// its data. Records
// still buffered by producers fail. Close is idempotent.
func (d *Driver) Close(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	ps, cs, prs := d.producers, d.consumers, d.processors
	d.producers, d.consumers, d.processors = nil, nil, nil
	d.mu.Unlock()

	var wg sync.WaitGroup
	for p := range prs {
		wg.Add(1)
		go func() { defer wg.Done(); p.shut() }()
	}
	for p := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); p.shut(ctx) }()
	}
	for c := range cs {
		wg.Add(1)
		go func() { defer wg.Done(); c.shut() }()
	}
	wg.Wait()
	d.bg.Wait()
	if d.admin != nil {
		d.admin.Close()
	}
	if d.embed != nil {
		d.embed.close()
	}
	return nil
}

// track records a producer or consumer for Close; it fails after Close.
func (d *Driver) track(p *producer, c *consumer) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	if p != nil {
		d.producers[p] = struct{}{}
	}
	if c != nil {
		d.consumers[c] = struct{}{}
	}
	return nil
}

func (d *Driver) untrack(p *producer, c *consumer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p != nil {
		delete(d.producers, p)
	}
	if c != nil {
		delete(d.consumers, c)
	}
}

// tlsConfig builds the TLS configuration of o, or nil for plaintext.
func tlsConfig(o *TLSOptions) (*tls.Config, error) {
	if o == nil {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         o.ServerName,
		InsecureSkipVerify: o.InsecureSkipVerify, //nolint:gosec // the scenario asked for it
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: tls.ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka: tls.ca-file %s holds no PEM certificate", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if o.CertFile != "" || o.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: tls.cert-file and tls.key-file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// password returns the SASL password, from the environment if so asked.
func password(o *SASLOptions) (string, error) {
	if o.PasswordEnv == "" {
		return o.Password, nil
	}
	p, ok := os.LookupEnv(o.PasswordEnv)
	if !ok || p == "" {
		return "", fmt.Errorf("kafka: sasl.password-env: the environment variable %s is not set or empty", o.PasswordEnv)
	}
	return p, nil
}

// saslMechanism builds the SASL mechanism of o, or nil for none.
func saslMechanism(o *SASLOptions) (sasl.Mechanism, error) {
	if o == nil {
		return nil, nil
	}
	pass, err := password(o)
	if err != nil {
		return nil, err
	}
	switch o.Mechanism {
	case "PLAIN":
		return plain.Auth{User: o.Username, Pass: pass}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: o.Username, Pass: pass}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: o.Username, Pass: pass}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("kafka: unknown sasl.mechanism %q", o.Mechanism)
}

// kgoLogger sends franz-go's log lines to the driver's log.
type kgoLogger struct {
	l     *slog.Logger
	level kgo.LogLevel
}

func (k kgoLogger) Level() kgo.LogLevel { return k.level }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	l := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		l = slog.LevelError
	case kgo.LogLevelWarn:
		l = slog.LevelWarn
	case kgo.LogLevelInfo:
		l = slog.LevelInfo
	}
	k.l.Log(context.Background(), l, msg, keyvals...)
}
