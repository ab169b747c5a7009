package eventbridge_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/eventbridge"
	"github.com/spate-dev/spate/drivers/stamp"
)

// faultDialer is an Env.Dial that reaches kumo whatever address the driver
// asks for (so an address that resolves nowhere proves every connection
// goes through it), counts connections per side, and can cut every open
// connection of a side. It is safe for concurrent use.
type faultDialer struct {
	target string // kumo's host:port
	counts [3]atomic.Int64
	mu     sync.Mutex
	conns  map[drivers.Side]map[net.Conn]bool
	cuts   atomic.Int64
}

func newFaultDialer(k *eventbridge.Kumo) *faultDialer {
	u, _ := url.Parse(k.URL())
	return &faultDialer{target: u.Host, conns: map[drivers.Side]map[net.Conn]bool{}}
}

func (f *faultDialer) dial(ctx context.Context, side drivers.Side, network, address string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, f.target)
	if err != nil {
		return nil, err
	}
	f.counts[side].Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns[side] == nil {
		f.conns[side] = map[net.Conn]bool{}
	}
	f.conns[side][c] = true
	return &trackedConn{Conn: c, forget: func() { f.mu.Lock(); delete(f.conns[side], c); f.mu.Unlock() }}, nil
}

// cut closes every open connection of side, as a network fault would.
func (f *faultDialer) cut(side drivers.Side) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns[side] {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, not a polite close
		}
		c.Close()
		f.cuts.Add(1)
	}
}

type trackedConn struct {
	net.Conn
	forget func()
	once   sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(c.forget)
	return c.Conn.Close()
}

// TestDial: with Env.Dial set, every connection of every side goes through
// it: the endpoint's host does not resolve, so one that did not would fail.
func TestDial(t *testing.T) {
	k := startKumo(t)
	fd := newFaultDialer(k)
	o := eventbridge.DefaultOptions()
	o.Endpoint, o.Provision = "http://kumo.invalid:4566", true
	env := testEnv(t, 1, 1)
	env.Dial = fd.dial
	d := openDriver(t, o, env)
	got := make(chan int, 100)
	c, err := d.NewConsumer(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Consume(ctx, func(b []drivers.Delivery) { got <- len(b) })
	sendN(t, d, env, 20, 100)
	for n := 0; n < 20; {
		select {
		case k := <-got:
			n += k
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of 20 delivered", n)
		}
	}
	for side := drivers.ProducerSide; side <= drivers.AdminSide; side++ {
		if fd.counts[side].Load() == 0 {
			t.Errorf("no %s connection went through Env.Dial", side)
		}
	}
}

// TestNetworkFaults: every open connection of the producers and of the
// consumers is reset, several times, while traffic runs. Requests in
// flight fail and are retried (the SDK's retryer; failed receives and
// deletes by the consumers), messages received but not deleted come back
// after the 2s visibility timeout, and nothing acked is lost.
func TestNetworkFaults(t *testing.T) {
	k := startKumo(t)
	fd := newFaultDialer(k)
	kind := drivers.Kind{
		Name:    eventbridge.Kind.Name,
		Options: eventbridge.Kind.Options,
		Open: func(ctx context.Context, options any, env drivers.Env) (drivers.Driver, error) {
			env.Dial = fd.dial
			return eventbridge.Kind.Open(ctx, options, env)
		},
	}
	sc := load(t, fmt.Sprintf(`
driver: {eventbridge: {endpoint: %q, provision: true, visibility-timeout: 2s, wait: 1s}}
producers: 2
consumers: 2
message: {size: 200B}
traffic:
  - constant: {rate: 300/s, for: 4s}
drain: 20s
`, k.URL()), kind)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(400 * time.Millisecond):
			}
			if i < 6 {
				fd.cut(drivers.ProducerSide)
				fd.cut(drivers.ConsumerSide)
			}
		}
	}()
	res := runScenario(t, sc, kind)
	close(stop)
	<-done
	c, st := res.Counts, res.DriverStats
	if fd.cuts.Load() == 0 {
		t.Fatal("no connection was cut")
	}
	expect(t, "lost", c.Lost, 0)
	if c.Received+c.Failed < c.Sent-c.Unconfirmed {
		t.Errorf("received %d + failed %d < sent %d - unconfirmed %d", c.Received, c.Failed, c.Sent, c.Unconfirmed)
	}
	t.Logf("cuts %d: sent %d acked %d failed %d received %d duplicates %d redelivered %d; sdk_retries %d receive_errors %d delete_failed %d",
		fd.cuts.Load(), c.Sent, c.Acked, c.Failed, c.Received, c.Duplicates, c.Redelivered, st["sdk_retries"], st["receive_errors"], st["delete_failed"])
}

// TestManaged: endpoint: managed starts kumo, provisions, delivers, and
// survives restarts of the emulator (graceful, then killed), with its
// resources intact; Close stops the process.
func TestManaged(t *testing.T) {
	t.Setenv(eventbridge.KumoEnv, kumoBinary(t))
	o := eventbridge.DefaultOptions()
	o.Endpoint, o.Provision = eventbridge.Managed, true
	o.Wait = time.Second // a graceful stop lets long polls finish
	env := testEnv(t, 1, 1)
	d := openDriver(t, o, env)
	pid := eventbridge.ManagedPid(d)
	if pid == 0 || !reflect.DeepEqual(d.Brokers(), []int{0}) {
		t.Fatalf("pid %d, brokers %v: no managed emulator", pid, d.Brokers())
	}

	var mu sync.Mutex
	seen := map[uint64]bool{}
	c, err := d.NewConsumer(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	consumed := make(chan error, 1)
	go func() {
		consumed <- c.Consume(ctx, func(b []drivers.Delivery) {
			mu.Lock()
			defer mu.Unlock()
			for _, dl := range b {
				s, err := stamp.Parse(dl.Stamp)
				if err == nil {
					seen[s.Seq] = true
				}
			}
		})
	}()
	p, err := d.NewProducer(context.Background(), 0, func([]drivers.Result) {})
	if err != nil {
		t.Fatal(err)
	}
	seq := uint64(0)
	sendAndSee := func(what string, n int) {
		t.Helper()
		first := seq
		msgs := make([]drivers.Message, n)
		for i := range msgs {
			now := time.Now().UnixNano()
			st := stamp.Stamp{RunID: env.RunID, Seq: seq, Intended: now, Sent: now}
			seq++
			body := make([]byte, 100)
			st.Put(body)
			msgs[i] = drivers.Message{Stamp: st, Head: body[:stamp.Size], Tail: body[stamp.Size:]}
		}
		if err := p.Send(context.Background(), msgs); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, what, func() bool {
			mu.Lock()
			defer mu.Unlock()
			for s := first; s < seq; s++ {
				if !seen[s] {
					return false
				}
			}
			return true
		})
	}
	sendAndSee("messages before any restart", 20)
	for _, mode := range []drivers.RestartMode{drivers.Graceful, drivers.Kill} {
		if err := d.RestartBroker(context.Background(), 0, mode, 200*time.Millisecond); err != nil {
			t.Fatalf("restart: %v", err)
		}
		newPid := eventbridge.ManagedPid(d)
		if newPid == pid {
			t.Fatalf("the emulator still runs as pid %d", pid)
		}
		pid = newPid
		// The bus, rule, target and queue were restored from the saved state.
		sendAndSee(fmt.Sprintf("messages after a %v restart", mode), 20)
	}
	if err := d.RestartBroker(context.Background(), 3, drivers.Kill, 0); err == nil {
		t.Error("restarting broker 3 succeeded")
	}
	cancel()
	if err := <-consumed; err != nil {
		t.Errorf("Consume: %v", err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Error(err)
	}
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the emulator (pid %d) still runs after Close: %v", pid, err)
	}
	if err := d.Close(context.Background()); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// TestRestartNeedsManaged: a driver that does not manage the emulator has
// no broker to restart.
func TestRestartNeedsManaged(t *testing.T) {
	k := startKumo(t)
	d := openDriver(t, kumoOptions(k), testEnv(t, 1, 1))
	if len(d.Brokers()) != 0 {
		t.Errorf("brokers %v, want none", d.Brokers())
	}
	if err := d.RestartBroker(context.Background(), 0, drivers.Graceful, 0); err == nil {
		t.Error("RestartBroker succeeded without a managed emulator")
	}
}

// TestRateLimit: rate-limit caps the entries all producers send: 2
// producers sending 300 messages under a 200/s cap (burst 10) cannot be
// done in less than 1.45s, however fast the emulator.
func TestRateLimit(t *testing.T) {
	k := startKumo(t)
	o := kumoOptions(k)
	o.RateLimit = 200
	env := testEnv(t, 2, 1)
	d := openDriver(t, o, env)
	start := time.Now()
	var wg sync.WaitGroup
	for pid := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := d.NewProducer(context.Background(), pid, func([]drivers.Result) {})
			if err != nil {
				t.Error(err)
				return
			}
			msgs := make([]drivers.Message, 150)
			for i := range msgs {
				st := stamp.Stamp{RunID: env.RunID, Producer: uint32(pid), Seq: uint64(i)}
				body := make([]byte, 100)
				st.Put(body)
				msgs[i] = drivers.Message{Stamp: st, Head: body[:stamp.Size], Tail: body[stamp.Size:]}
			}
			if err := p.Send(context.Background(), msgs); err != nil {
				t.Error(err)
			}
			if err := p.Close(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if el := time.Since(start); el < 1450*time.Millisecond {
		t.Errorf("300 entries under a 200/s cap took %v, less than the cap allows", el)
	}
	st := d.Stats()
	if st["rate_limit_waits"] == 0 || st["entries_ok"] != 300 {
		t.Errorf("stats %v: want rate_limit_waits > 0 and entries_ok 300", st)
	}
}
