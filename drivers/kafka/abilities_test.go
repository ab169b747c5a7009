package kafka_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/kafka"
	"github.com/spate-dev/spate/drivers/stamp"
)

// traffic sends and receives messages through one driver, outside the engine.
type traffic struct {
	t   *testing.T
	d   drivers.Driver
	mu  sync.Mutex
	got map[uint64]int // seq: deliveries
	err map[uint64]error
}

func newTraffic(t *testing.T, d drivers.Driver) *traffic {
	return &traffic{t: t, d: d, got: map[uint64]int{}, err: map[uint64]error{}}
}

// consume runs consumer id until the returned stop is called; stop returns
// Consume's error.
func (tr *traffic) consume(id int) (drivers.Consumer, func() error) {
	tr.t.Helper()
	c, err := tr.d.NewConsumer(context.Background(), id)
	if err != nil {
		tr.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Consume(ctx, func(batch []drivers.Delivery) {
			tr.mu.Lock()
			defer tr.mu.Unlock()
			for _, dv := range batch {
				s, err := stamp.Parse(dv.Stamp)
				if err != nil {
					tr.t.Errorf("delivery: %v", err)
					continue
				}
				tr.got[s.Seq]++
			}
		})
	}()
	return c, func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			tr.t.Fatal("Consume did not return")
			return nil
		}
	}
}

// send sends seqs [from, from+n) from producer 0 and closes it.
func (tr *traffic) send(from, n int) {
	tr.t.Helper()
	p, err := tr.d.NewProducer(context.Background(), 0, func(rs []drivers.Result) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		for _, r := range rs {
			tr.err[r.Stamp.Seq] = r.Err
		}
	})
	if err != nil {
		tr.t.Fatal(err)
	}
	msgs := make([]drivers.Message, 0, n)
	for i := from; i < from+n; i++ {
		now := time.Now().UnixNano()
		s := stamp.Stamp{RunID: 0x5eed, Producer: 0, Seq: uint64(i), Intended: now, Sent: now}
		body := make([]byte, 100)
		s.Put(body)
		msgs = append(msgs, drivers.Message{Stamp: s, Key: []byte{byte(i)}, Head: body[:stamp.Size], Tail: body[stamp.Size:]})
	}
	if err := p.Send(context.Background(), msgs); err != nil {
		tr.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		tr.t.Fatal(err)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for i := from; i < from+n; i++ {
		if err, ok := tr.err[uint64(i)]; !ok || err != nil {
			tr.t.Errorf("seq %d: outcome %v (reported: %v)", i, err, ok)
		}
	}
}

// waitAll waits until seqs [0, n) were all delivered.
func (tr *traffic) waitAll(n int) {
	tr.t.Helper()
	waitFor(tr.t, "every message delivered", 30*time.Second, func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		for i := range n {
			if tr.got[uint64(i)] == 0 {
				return false
			}
		}
		return true
	})
}

func TestAbilitiesOnlyWhereSpateRunsTheCluster(t *testing.T) {
	e := openEmbedded(t, kafka.DefaultOptions(), testEnv(1, 1))
	var d drivers.Driver = e
	for name, ok := range map[string]bool{
		"BrokerRestarter": is[drivers.BrokerRestarter](d),
		"LeaderMover":     is[drivers.LeaderMover](d),
		"ProtocolFaulter": is[drivers.ProtocolFaulter](d),
		"StatsReporter":   is[drivers.StatsReporter](d),
	} {
		if !ok {
			t.Errorf("the embedded driver is not a %s", name)
		}
	}
	if got := e.Brokers(); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("Brokers() = %v, want [0 1 2]", got)
	}
	for _, a := range e.BrokerAddrs() {
		if !strings.HasPrefix(a, "127.0.0.1:") {
			t.Errorf("embedded broker at %s, not on loopback", a)
		}
	}

	// The same cluster, named by address, is an external cluster.
	o := kafka.DefaultOptions()
	o.Brokers = e.BrokerAddrs()
	o.CreateTopic = false // the embedded driver created it
	x, err := kafka.Open(context.Background(), o, testEnv(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close(context.Background())
	if _, ok := x.(*kafka.Driver); !ok {
		t.Fatalf("Open on addresses returned %T, want *kafka.Driver", x)
	}
	for name, ok := range map[string]bool{
		"BrokerRestarter": is[drivers.BrokerRestarter](x),
		"LeaderMover":     is[drivers.LeaderMover](x),
		"ProtocolFaulter": is[drivers.ProtocolFaulter](x),
	} {
		if ok {
			t.Errorf("the driver on an external cluster is a %s", name)
		}
	}
	tr := newTraffic(t, x)
	_, stop := tr.consume(0)
	tr.send(0, 200)
	tr.waitAll(200)
	if err := stop(); err != nil {
		t.Errorf("Consume: %v", err)
	}
}

func is[T any](v any) bool {
	_, ok := v.(T)
	return ok
}

// TestShortMessage: a message shorter than a stamp breaks the Producer
// contract; it fails with an error rather than being sent or panicking.
func TestShortMessage(t *testing.T) {
	e := openEmbedded(t, kafka.DefaultOptions(), testEnv(1, 1))
	var got []drivers.Result
	var mu sync.Mutex
	p, err := e.NewProducer(context.Background(), 0, func(rs []drivers.Result) {
		mu.Lock()
		got = append(got, rs...)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	st := stamp.Stamp{RunID: 1, Seq: 7}
	if err := p.Send(context.Background(), []drivers.Message{{Stamp: st, Head: []byte("short")}}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Stamp != st || got[0].Err == nil {
		t.Fatalf("outcomes %+v, want one failure for seq 7", got)
	}
}

// TestDialSides: every connection goes through Env.Dial, with the side of
// the client that opens it, to the brokers' own addresses.
func TestDialSides(t *testing.T) {
	var mu sync.Mutex
	seen := map[drivers.Side]map[string]bool{}
	env := testEnv(1, 1)
	env.Dial = func(ctx context.Context, side drivers.Side, network, addr string) (net.Conn, error) {
		mu.Lock()
		if seen[side] == nil {
			seen[side] = map[string]bool{}
		}
		seen[side][addr] = true
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	e := openEmbedded(t, kafka.DefaultOptions(), env)
	tr := newTraffic(t, e)
	_, stop := tr.consume(0)
	tr.send(0, 300) // 256 keys: every partition, so every leader
	tr.waitAll(300)
	if err := stop(); err != nil {
		t.Errorf("Consume: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	brokers := e.BrokerAddrs()
	for _, side := range []drivers.Side{drivers.AdminSide, drivers.ProducerSide, drivers.ConsumerSide} {
		if len(seen[side]) == 0 {
			t.Errorf("no %s connection went through Env.Dial", side)
		}
		for addr := range seen[side] {
			if !slices.Contains(brokers, addr) {
				t.Errorf("%s dialed %s, not a broker (%v)", side, addr, brokers)
			}
		}
	}
	if len(seen[drivers.ProducerSide]) < 2 {
		t.Errorf("producers dialed %v: want the leaders' advertised addresses too", seen[drivers.ProducerSide])
	}
}

// TestProtocolFaults: fault names parse, faults fire the number of times
// asked, and remove stops them.
func TestProtocolFaults(t *testing.T) {
	e := openEmbedded(t, kafka.DefaultOptions(), testEnv(1, 1))
	ctx := context.Background()
	for _, f := range []drivers.ProtocolFault{
		{Request: "produce", Error: "REQUEST_TIMED_OUT", Count: 1},
		{Request: "Fetch", Error: "not_leader_or_follower", Count: 1},
		{Request: "commit", Error: "COORDINATOR_NOT_AVAILABLE", Count: 1},
		{Request: "offset-commit", Error: "REQUEST_TIMED_OUT", Count: 1},
		{Request: "init-producer-id", Error: "NOT_COORDINATOR", Count: 1},
		{Request: "describe-acls", Error: "UNKNOWN_SERVER_ERROR", Count: 1},
		{Request: "all", Error: "UNKNOWN_SERVER_ERROR", Count: 1},
	} {
		remove, err := e.InjectFault(ctx, f)
		if err != nil {
			t.Errorf("%+v: %v", f, err)
			continue
		}
		remove()
		remove() // twice is fine
	}
	for _, f := range []drivers.ProtocolFault{
		{Request: "produc", Error: "REQUEST_TIMED_OUT"},
		{Request: "produce", Error: "TIMED_OUT"},
		{Request: "produce", Error: ""},
		{Request: "produce", Error: "REQUEST_TIMED_OUT", Count: -1},
	} {
		if _, err := e.InjectFault(ctx, f); err == nil {
			t.Errorf("%+v: no error", f)
		} else {
			t.Logf("%+v: %v", f, err)
		}
	}

	// Fetches fail with NOT_LEADER_FOR_PARTITION five times and produces
	// with a timeout after appending three times: everything still arrives.
	tr := newTraffic(t, e)
	_, stop := tr.consume(0)
	rmFetch, err := e.InjectFault(ctx, drivers.ProtocolFault{Request: "fetch", Error: "NOT_LEADER_FOR_PARTITION", Count: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer rmFetch()
	if _, err := e.InjectFault(ctx, drivers.ProtocolFault{Request: "produce", Error: "REQUEST_TIMED_OUT", Count: 3}); err != nil {
		t.Fatal(err)
	}
	tr.send(0, 500)
	tr.waitAll(500)
	waitFor(t, "the faults to fire", 10*time.Second, func() bool { return e.Stats()["fault_hits"] == 8 })
	if err := stop(); err != nil {
		t.Errorf("Consume: %v", err)
	}

	// A fault without a count lasts until removed.
	remove, err := e.InjectFault(ctx, drivers.ProtocolFault{Request: "metadata", Error: "UNKNOWN_SERVER_ERROR"})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.BrokerAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for range 3 {
		qctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		td, err := adm.ListTopics(qctx, e.Topic())
		cancel()
		if err == nil && td.Error() == nil {
			t.Fatal("metadata answered while faulted")
		}
	}
	remove()
	cl2, err := kgo.NewClient(kgo.SeedBrokers(e.BrokerAddrs()...)) // kadm caches metadata answers
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	if td, err := kadm.NewClient(cl2).ListTopics(ctx, e.Topic()); err != nil || td.Error() != nil {
		t.Errorf("metadata after remove: %v, %v", err, td.Error())
	}
}

func leaders(t *testing.T, e *kafka.EmbeddedDriver) map[int32]int32 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.BrokerAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(context.Background(), e.Topic())
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int32{}
	for p, pd := range td[e.Topic()].Partitions {
		out[p] = pd.Leader
	}
	return out
}

func TestMoveLeaders(t *testing.T) {
	o := kafka.DefaultOptions()
	o.Partitions = 6
	e := openEmbedded(t, o, testEnv(1, 1))
	before := leaders(t, e)
	if err := e.MoveLeaders(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := leaders(t, e)
	if len(after) != 6 {
		t.Fatalf("leaders after: %v", after)
	}
	for p, l := range before {
		if after[p] == l {
			t.Errorf("partition %d kept leader %d", p, l)
		}
	}
	expect(t, "leader_moves", e.Stats()["leader_moves"], 6)

	// One broker: nothing to move to.
	o.Embedded.Brokers, o.ReplicationFactor = 1, 0
	one := openEmbedded(t, o, testEnv(1, 1))
	if err := one.MoveLeaders(context.Background()); err != nil {
		t.Fatal(err)
	}
	expect(t, "leader_moves with one broker", one.Stats()["leader_moves"], 0)
}

func TestRestartBroker(t *testing.T) {
	e := openEmbedded(t, kafka.DefaultOptions(), testEnv(1, 1))
	ctx := context.Background()
	if err := e.RestartBroker(ctx, 3, drivers.Kill, 0); err == nil {
		t.Error("restarting broker 3 of 0..2 succeeded")
	}
	if err := e.RestartBroker(ctx, 0, drivers.RestartMode(7), 0); err == nil {
		t.Error("an unknown restart mode succeeded")
	}
	addrs := e.BrokerAddrs()
	tr := newTraffic(t, e)
	_, stop := tr.consume(0)
	tr.send(0, 100)
	for _, step := range []struct {
		id   int
		mode drivers.RestartMode
	}{{1, drivers.Kill}, {0, drivers.Graceful}, {drivers.AllBrokers, drivers.Graceful}, {drivers.AllBrokers, drivers.Kill}} {
		if err := e.RestartBroker(ctx, step.id, step.mode, 50*time.Millisecond); err != nil {
			t.Fatalf("restart %d mode %d: %v", step.id, step.mode, err)
		}
		if got := e.BrokerAddrs(); !slices.Equal(got, addrs) {
			t.Fatalf("brokers moved from %v to %v", addrs, got)
		}
	}
	tr.send(100, 100)
	tr.waitAll(200) // the first 100 survived every restart: data is kept
	if err := stop(); err != nil {
		t.Errorf("Consume: %v", err)
	}

	// A context that ends during the down time brings the brokers back at once.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := e.RestartBroker(cctx, drivers.AllBrokers, drivers.Kill, time.Hour)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("RestartBroker with a short context: %v, want the deadline", err)
	}
	if took := time.Since(start); took > time.Minute {
		t.Errorf("RestartBroker with a 50ms context took %v", took)
	}
	tr2 := newTraffic(t, e)
	_, stop2 := tr2.consume(1)
	tr2.send(0, 50)
	if err := stop2(); err != nil {
		t.Errorf("Consume: %v", err)
	}
	expect(t, "broker_restarts", e.Stats()["broker_restarts"], 5)
}

// TestCrash: a crashed consumer's Consume returns ErrCrashed promptly, a
// second Crash is harmless, and a new consumer with the same id reads
// again what the crashed one never committed.
func TestCrash(t *testing.T) {
	o := kafka.DefaultOptions()
	o.SessionTimeout = 500 * time.Millisecond
	e := openEmbedded(t, o, testEnv(1, 1))
	tr := newTraffic(t, e)
	c, stop := tr.consume(0)
	waitFor(t, "the consumer to own partitions", 10*time.Second, func() bool { return kafka.Owned(c) > 0 })
	tr.send(0, 300)
	tr.waitAll(300)
	c.(drivers.Crasher).Crash()
	c.(drivers.Crasher).Crash()
	if err := stop(); !errors.Is(err, drivers.ErrCrashed) {
		t.Errorf("Consume after Crash returned %v, want ErrCrashed", err)
	}
	st := e.Stats()
	expect(t, "crashes", st["crashes"], 1)
	expect(t, "crash_uncommitted", st["crash_uncommitted"], 300) // commit-interval is 5s
	// The same id again: it joins as a new member and reads from the commit.
	_, stop = tr.consume(0)
	waitFor(t, "the 300 messages again", 20*time.Second, func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		for i := range 300 {
			if tr.got[uint64(i)] < 2 {
				return false
			}
		}
		return true
	})
	if err := stop(); err != nil {
		t.Errorf("Consume: %v", err)
	}
	expect(t, "crash_redelivered", e.Stats()["crash_redelivered"], 300)

	// Crash before Consume: Consume returns ErrCrashed at once.
	c3, err := e.NewConsumer(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	c3.(drivers.Crasher).Crash()
	if err := c3.Consume(context.Background(), func([]drivers.Delivery) {}); !errors.Is(err, drivers.ErrCrashed) {
		t.Errorf("Consume of a crashed consumer: %v", err)
	}
}

// TestSASL: the embedded cluster takes the scenario's SASL user, and a
// client with the wrong password is refused at Open.
func TestSASL(t *testing.T) {
	for _, mech := range kafka.MechanismValues {
		t.Run(mech, func(t *testing.T) {
			o := kafka.DefaultOptions()
			o.Embedded.Brokers, o.ReplicationFactor = 1, 1
			o.SASL = &kafka.SASLOptions{Mechanism: mech, Username: "spate", Password: "s3cret"}
			e := openEmbedded(t, o, testEnv(1, 1))
			tr := newTraffic(t, e)
			_, stop := tr.consume(0)
			tr.send(0, 50)
			tr.waitAll(50)
			if err := stop(); err != nil {
				t.Errorf("Consume: %v", err)
			}

			x := kafka.DefaultOptions()
			x.Brokers = e.BrokerAddrs()
			x.ConnectTimeout = time.Second
			x.SASL = &kafka.SASLOptions{Mechanism: mech, Username: "spate", PasswordEnv: "SPATE_TEST_KAFKA_PASSWORD"}
			t.Setenv("SPATE_TEST_KAFKA_PASSWORD", "wrong")
			d, err := kafka.Open(context.Background(), x, testEnv(1, 1))
			if err == nil {
				d.Close(context.Background())
				t.Fatal("Open with a wrong password succeeded")
			}
			t.Log(err)
		})
	}
}

// TestTLS points the driver at a TLS cluster by address, as at a real one.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	cert, caFile := selfSigned(t, dir)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	o := kafka.DefaultOptions()
	o.Brokers = kc.ListenAddrs()
	o.ConnectTimeout = 3 * time.Second

	for _, tc := range []struct {
		name string
		tls  *kafka.TLSOptions
		ok   bool
	}{
		{"ca-file", &kafka.TLSOptions{CAFile: caFile}, true},
		{"server-name", &kafka.TLSOptions{CAFile: caFile, ServerName: "kafka.test"}, true},
		{"wrong server-name", &kafka.TLSOptions{CAFile: caFile, ServerName: "other.test"}, false},
		{"unknown authority", &kafka.TLSOptions{}, false},
		{"insecure-skip-verify", &kafka.TLSOptions{InsecureSkipVerify: true}, true},
		{"plaintext to a TLS broker", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := o
			o.TLS = tc.tls
			d, err := kafka.Open(context.Background(), o, testEnv(1, 1))
			if !tc.ok {
				if err == nil {
					d.Close(context.Background())
					t.Fatal("Open succeeded")
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close(context.Background())
			tr := newTraffic(t, d)
			_, stop := tr.consume(0)
			tr.send(0, 20)
			tr.waitAll(20)
			if err := stop(); err != nil {
				t.Errorf("Consume: %v", err)
			}
		})
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and
// kafka.test to dir and returns it and the CA file's path.
func selfSigned(t *testing.T, dir string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "spate test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"kafka.test"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert, caFile
}
