package kafka_test

import (
	"context"
	"net"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/drivers/drivertest"
	"github.com/spate-dev/spate/drivers/kafka"
	"github.com/spate-dev/spate/scenarios"
)

// decode runs Kind.Options on the YAML src (nil for `driver: kafka`).
func decode(t *testing.T, src *string) (any, scenarios.Problems) {
	t.Helper()
	return drivertest.DecodeOptions(t, kafka.Kind, src)
}

func TestOptions(t *testing.T) {
	def := kafka.DefaultOptions()
	with := func(f func(*kafka.Options)) kafka.Options {
		o := kafka.DefaultOptions()
		f(&o)
		return o
	}
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name string
		src  *string
		want kafka.Options
	}{
		{"bare kind", nil, def},
		{"empty block", str("{}"), def},
		{"embedded by name", str("brokers: embedded"), def},
		{"external, every field", str(`
brokers: [kafka-1:9092, "kafka-2:9093"]
topic: orders.v1
create-topic: false
partitions: 12
replication-factor: 3
acks: leader
idempotent: false
linger: 0s
batch-max-bytes: 256KiB
max-buffered-records: 50000
compression: zstd
group: checkout
isolation: read_committed
commit: auto
commit-interval: 1s
start: earliest
session-timeout: 10s
tls: {ca-file: ca.pem, cert-file: c.pem, key-file: k.pem, server-name: kafka.internal, insecure-skip-verify: true}
sasl: {mechanism: SCRAM-SHA-512, username: spate, password-env: KAFKA_PASSWORD}
client-id: loadtest
metadata-max-age: 30s
metadata-min-age: 250ms
connect-timeout: 5s
`), kafka.Options{
			Brokers: []string{"kafka-1:9092", "kafka-2:9093"}, Embedded: def.Embedded,
			Topic: "orders.v1", CreateTopic: false, Partitions: 12, ReplicationFactor: 3,
			Acks: "leader", Idempotent: false, Linger: 0, BatchMaxBytes: 256 << 10, MaxBufferedRecords: 50000,
			Compression: "zstd", Group: "checkout", Isolation: "read_committed", Commit: "auto",
			CommitInterval: time.Second, Start: "earliest", SessionTimeout: 10 * time.Second,
			TLS:      &kafka.TLSOptions{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem", ServerName: "kafka.internal", InsecureSkipVerify: true},
			SASL:     &kafka.SASLOptions{Mechanism: "SCRAM-SHA-512", Username: "spate", PasswordEnv: "KAFKA_PASSWORD"},
			ClientID: "loadtest", MetadataMaxAge: 30 * time.Second, MetadataMinAge: 250 * time.Millisecond,
			ConnectTimeout: 5 * time.Second,
		}},
		{"one address", str("brokers: localhost:9092"), with(func(o *kafka.Options) { o.Brokers = []string{"localhost:9092"} })},
		{"comma-separated addresses", str(`brokers: "a:1, [::1]:9092"`), with(func(o *kafka.Options) { o.Brokers = []string{"a:1", "[::1]:9092"} })},
		{"embedded block", str("embedded: {brokers: 1, sync-writes: true, log-level: debug}\nreplication-factor: 1"),
			with(func(o *kafka.Options) {
				o.Embedded = kafka.EmbeddedOptions{Brokers: 1, SyncWrites: true, LogLevel: "debug"}
				o.ReplicationFactor = 1
			})},
		{"tls disabled", str("brokers: [b:9092]\ntls: {enabled: false, ca-file: x}"), with(func(o *kafka.Options) { o.Brokers = []string{"b:9092"} })},
		{"sasl on embedded", str("sasl: {mechanism: PLAIN, username: u, password: p}"),
			with(func(o *kafka.Options) { o.SASL = &kafka.SASLOptions{Mechanism: "PLAIN", Username: "u", Password: "p"} })},
		{"max-buffered-bytes", str("max-buffered-bytes: 64MiB"), with(func(o *kafka.Options) { o.MaxBufferedBytes = 64 << 20 })},
		{"acks none without idempotence", str("acks: none\nidempotent: false"), with(func(o *kafka.Options) { o.Acks, o.Idempotent = "none", false })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ps := decode(t, tc.src)
			if len(ps) > 0 {
				t.Fatalf("problems:\n%v", ps)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("options =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestOptionProblems(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want []string // each problem's Error(), in order; "~" prefix: a substring
	}{
		{"partitions: 0", []string{"test.yaml:1:13: driver.kafka.partitions: must be a whole number from 1 to 10000, got 0"}},
		{"partitions: many", []string{`test.yaml:1:13: driver.kafka.partitions: want a whole number, got "many"`}},
		{"acks: 1", []string{"test.yaml:1:7: driver.kafka.acks: write acks by name: all (the number -1), leader (1) or none (0); got 1"}},
		{"acks: al", []string{`test.yaml:1:7: driver.kafka.acks: unknown value "al" (did you mean "all"?); valid: all, leader, none`}},
		{"acks: leader", []string{"test.yaml:1:7: driver.kafka.acks: idempotent writes need acks: all, but acks is leader (line 1) and idempotent is true by default; set idempotent: false or acks: all"}},
		{"acks: none\nidempotent: true", []string{"test.yaml:2:13: driver.kafka.idempotent: idempotent writes need acks: all, but acks is none (line 1) and idempotent is true (line 2); set idempotent: false or acks: all"}},
		{"max-buffered-bytes: 17GiB", []string{"test.yaml:1:21: driver.kafka.max-buffered-bytes: must be from 0B to 16GiB, got 17GiB"}},
		{"max-buffered-bytes: lots", []string{`~test.yaml:1:21: driver.kafka.max-buffered-bytes: `}},
		{"compression: brotli", []string{`test.yaml:1:14: driver.kafka.compression: unknown value "brotli"; valid: none, gzip, snappy, lz4, zstd`}},
		{"commit: manual", []string{`~test.yaml:1:9: driver.kafka.commit: unknown value "manual"; valid: after-processing, auto`}},
		{"start: begining", []string{`~test.yaml:1:8: driver.kafka.start: unknown value "begining"; valid: run, earliest, latest`}},
		{"isolation: committed", []string{`~test.yaml:1:12: driver.kafka.isolation: unknown value "committed"`}},
		{"brokers: kafka", []string{`test.yaml:1:10: driver.kafka.brokers: "kafka" is not host:port, such as localhost:9092 or [::1]:9092`}},
		{"brokers: [a:9092, b:0]", []string{`test.yaml:1:19: driver.kafka.brokers: "b:0": port "0" must be a number from 1 to 65535`}},
		{"brokers: [a, b:0]\ntls: {ca-file: ca.pem}", []string{
			`test.yaml:1:11: driver.kafka.brokers: "a" is not host:port, such as localhost:9092 or [::1]:9092`,
			`test.yaml:1:14: driver.kafka.brokers: "b:0": port "0" must be a number from 1 to 65535`,
		}},
		{"brokers: [embedded, a:1]", []string{"test.yaml:1:11: driver.kafka.brokers: embedded stands alone: write brokers: embedded, or list only host:port addresses"}},
		{"brokers: []", []string{"test.yaml:1:10: driver.kafka.brokers: the list of brokers is empty; give host:port addresses or write brokers: embedded"}},
		{"brokers: {a: 1}", []string{"test.yaml:1:10: driver.kafka.brokers: want embedded or a list of host:port addresses"}},
		{"topic: a/b", []string{`test.yaml:1:8: driver.kafka.topic: "a/b" is not a valid Kafka topic name: 1 to 249 characters of a-z, A-Z, 0-9, '.', '_' and '-'`}},
		{"replication-factor: 4", []string{"test.yaml:1:21: driver.kafka.replication-factor: 4 is more than the 3 embedded brokers; lower it or raise embedded.brokers"}},
		{"embedded: {brokers: 2}\nreplication-factor: 3", []string{"test.yaml:2:21: driver.kafka.replication-factor: 3 is more than the 2 embedded brokers; lower it or raise embedded.brokers"}},
		{"embedded: {brokers: 17}", []string{"test.yaml:1:21: driver.kafka.embedded.brokers: must be a whole number from 1 to 16, got 17"}},
		{"embedded: {log-level: loud}", []string{`~test.yaml:1:23: driver.kafka.embedded.log-level: unknown value "loud"`}},
		{"brokers: [a:1]\nembedded: {brokers: 1}", []string{"test.yaml:2:11: driver.kafka.embedded: applies only with brokers: embedded; remove it or the broker addresses"}},
		{"linger: 2m", []string{"test.yaml:1:9: driver.kafka.linger: must be at most 1m, got 2m0s"}},
		{"linger: 5", []string{`~test.yaml:1:9: driver.kafka.linger: duration "5" needs a unit`}},
		{"batch-max-bytes: 100B", []string{"test.yaml:1:18: driver.kafka.batch-max-bytes: must be from 512B to 100MiB, got 100B"}},
		{"max-buffered-records: 0", []string{"test.yaml:1:23: driver.kafka.max-buffered-records: must be a whole number from 1 to 10000000, got 0"}},
		{"commit-interval: 10ms", []string{"test.yaml:1:18: driver.kafka.commit-interval: must be at least 100ms, got 10ms"}},
		{"session-timeout: 1h", []string{"test.yaml:1:18: driver.kafka.session-timeout: must be from 100ms to 30m, got 1h0m0s"}},
		{"metadata-min-age: 5s\nmetadata-max-age: 1s", []string{"test.yaml:2:19: driver.kafka.metadata-max-age: 1s is less than metadata-min-age 5s"}},
		{"connect-timeout: 0s", []string{"test.yaml:1:18: driver.kafka.connect-timeout: must be from 100ms to 10m, got 0s"}},
		{"group: ''", []string{"test.yaml:1:8: driver.kafka.group: must not be empty; leave group out for spate-<run id>"}},
		{"tls: {ca-file: ca.pem}", []string{"test.yaml:1:6: driver.kafka.tls: the embedded cluster listens in plaintext on loopback; remove tls or set brokers to your cluster"}},
		{"brokers: [a:1]\ntls: {cert-file: c.pem}", []string{"test.yaml:2:18: driver.kafka.tls.cert-file: needs key-file too: a client certificate comes with its key"}},
		{"brokers: [a:1]\ntls: {ca-file: ''}", []string{"test.yaml:2:16: driver.kafka.tls.ca-file: must not be empty; leave it out instead"}},
		{"brokers: [a:1]\ntls: {ca: x}", []string{`~test.yaml:2:7: driver.kafka.tls.ca: unknown field; valid fields: enabled, ca-file, cert-file, key-file, server-name, insecure-skip-verify`}},
		{"sasl: {mechanism: plain, username: u, password: p}", []string{`test.yaml:1:19: driver.kafka.sasl.mechanism: unknown value "plain" (did you mean "PLAIN"?); valid: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`}},
		{"sasl: {mechanism: PLAIN, username: u}", []string{"test.yaml:1:7: driver.kafka.sasl: needs password or password-env (the name of an environment variable holding the password)"}},
		{"sasl: {mechanism: PLAIN, username: u, password: p, password-env: P}", []string{"test.yaml:1:66: driver.kafka.sasl.password-env: give password or password-env, not both"}},
		{"sasl: {mechanism: PLAIN, password: p}", []string{"test.yaml:1:7: driver.kafka.sasl.username: required field is missing"}},
		{"parititons: 3", []string{`test.yaml:1:1: driver.kafka.parititons: unknown field (did you mean "partitions"?); valid fields: brokers, topic, create-topic, partitions, replication-factor, acks, idempotent, linger, batch-max-bytes, max-buffered-records, max-buffered-bytes, compression, group, isolation, commit, commit-interval, start, session-timeout, tls, sasl, client-id, metadata-max-age, metadata-min-age, connect-timeout, embedded, transactions`}},
		{"keys: round-robin", []string{`~test.yaml:1:1: driver.kafka.keys: unknown field`}},
		{"- a", []string{"test.yaml:1:1: driver.kafka: want a mapping, got a list"}},
		{"partitions: 0\nacks: most\nlinger: -1s\nbogus: 1", []string{
			"test.yaml:1:13: driver.kafka.partitions: must be a whole number from 1 to 10000, got 0",
			`test.yaml:2:7: driver.kafka.acks: unknown value "most"; valid: all, leader, none`,
			`~test.yaml:3:9: driver.kafka.linger: duration "-1s" must not be negative`,
			"~test.yaml:4:1: driver.kafka.bogus: unknown field",
		}},
		{"topic: a\ntopic: b", []string{"test.yaml:2:1: driver.kafka.topic: given twice (first at line 1)"}},
	} {
		t.Run(tc.src, func(t *testing.T) {
			_, ps := decode(t, &tc.src)
			drivertest.CheckProblems(t, ps, tc.want)
		})
	}
}

// TestOpenChecksOptions: Open validates options given in Go, as
// decodeOptions does for scenario files, before starting anything.
func TestOpenChecksOptions(t *testing.T) {
	env := testEnv(1, 1)
	bad := []func(*kafka.Options){
		func(o *kafka.Options) { o.Partitions = -1 },
		func(o *kafka.Options) { o.Acks = "leader" }, // idempotent is true
		func(o *kafka.Options) { o.Acks = "most" },
		func(o *kafka.Options) { o.Compression = "brotli" },
		func(o *kafka.Options) { o.MaxBufferedBytes = -1 },
		func(o *kafka.Options) { o.Brokers = []string{"nohost"} },
		func(o *kafka.Options) { o.Embedded.Brokers = 99 },
		func(o *kafka.Options) { o.ReplicationFactor = 4 },
		func(o *kafka.Options) { o.TLS = &kafka.TLSOptions{} },
		func(o *kafka.Options) { o.Topic = "a b" },
		func(o *kafka.Options) { o.SASL = &kafka.SASLOptions{Mechanism: "PLAIN", Username: "u"} },
		func(o *kafka.Options) { o.MetadataMinAge, o.MetadataMaxAge = time.Minute, time.Second },
		func(o *kafka.Options) {
			o.Brokers = []string{"127.0.0.1:1"}
			o.TLS = &kafka.TLSOptions{CAFile: "/nonexistent/ca.pem"}
		},
		func(o *kafka.Options) {
			o.SASL = &kafka.SASLOptions{Mechanism: "PLAIN", Username: "u", PasswordEnv: "SPATE_TEST_UNSET_VARIABLE"}
		},
	}
	os.Unsetenv("SPATE_TEST_UNSET_VARIABLE")
	for i, f := range bad {
		o := kafka.DefaultOptions()
		f(&o)
		d, err := kafka.Kind.Open(context.Background(), o, env)
		if err == nil {
			_ = d.Close(context.Background())
			t.Errorf("case %d: Open(%+v) succeeded, want an error", i, o)
			continue
		}
		t.Logf("case %d: %v", i, err)
	}
	if _, err := kafka.Kind.Open(context.Background(), "partitions: 3", env); err == nil {
		t.Error("Open with options of the wrong type succeeded")
	}
}

// TestUnreachableBrokers: Open gives up within connect-timeout with an
// error that names the brokers and the dial failure, rather than hanging.
func TestUnreachableBrokers(t *testing.T) {
	o := kafka.DefaultOptions()
	o.Brokers = []string{"127.0.0.1:1"}
	o.ConnectTimeout = 2 * time.Second
	start := time.Now()
	d, err := kafka.Kind.Open(context.Background(), o, testEnv(1, 1))
	took := time.Since(start)
	if err == nil {
		_ = d.Close(context.Background())
		t.Fatal("Open succeeded against 127.0.0.1:1")
	}
	t.Logf("after %v: %v", took, err)
	for _, want := range []string{"127.0.0.1:1", "connection refused", "connect-timeout 2s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// A generous bound: the point is that Open does not hang.
	if took > o.ConnectTimeout+10*time.Second {
		t.Errorf("Open took %v with connect-timeout %v", took, o.ConnectTimeout)
	}
}

// TestSilentBroker: a broker that accepts connections and never answers
// makes Open fail once connect-timeout passes.
func TestSilentBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	o := kafka.DefaultOptions()
	o.Brokers = []string{ln.Addr().String()}
	o.ConnectTimeout = time.Second
	start := time.Now()
	d, err := kafka.Kind.Open(context.Background(), o, testEnv(1, 1))
	took := time.Since(start)
	if err == nil {
		_ = d.Close(context.Background())
		t.Fatal("Open succeeded against a silent broker")
	}
	t.Logf("after %v: %v", took, err)
	if !strings.Contains(err.Error(), "connect-timeout 1s") || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("error %q does not name the broker and the timeout", err)
	}
	if took > o.ConnectTimeout+10*time.Second {
		t.Errorf("Open took %v with connect-timeout %v", took, o.ConnectTimeout)
	}
}

// TestMissingTopic: with create-topic false, a missing topic is a clear
// error at Open.
func TestMissingTopic(t *testing.T) {
	o := kafka.DefaultOptions()
	o.CreateTopic = false
	o.Topic = "absent"
	d, err := kafka.Kind.Open(context.Background(), o, testEnv(1, 1))
	if err == nil {
		_ = d.Close(context.Background())
		t.Fatal("Open succeeded without the topic")
	}
	if want := `topic "absent" does not exist`; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "create-topic: true") {
		t.Errorf("error %q, want it to say %q and how to fix it", err, want)
	}
}
