package rabbitmq_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/rabbitmq"
	"github.com/spate-dev/spate/drivers/stamp"
)

// openErr runs Kind.Open with o and returns its error, failing t if Open
// does not return within a minute (a hang).
func openErr(t *testing.T, o rabbitmq.Options) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		d, err := rabbitmq.Kind.Open(context.Background(), o, testEnv(t, 1, 1))
		if err == nil {
			_ = d.Close(context.Background())
		}
		errc <- err
	}()
	select {
	case err := <-errc:
		return err
	case <-time.After(time.Minute):
		t.Fatal("Open did not return within a minute")
		return nil
	}
}

func TestOpenErrors(t *testing.T) {
	n := node(t)
	port := strings.TrimSuffix(strings.TrimPrefix(n.URL(), "amqp://guest:guest@127.0.0.1:"), "/")

	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := l.Addr().String()
	_ = l.Close()

	// A listener that accepts and never speaks AMQP.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var held sync.WaitGroup
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held.Add(1)
			go func() { defer held.Done(); _, _ = io.Copy(io.Discard, c); _ = c.Close() }()
		}
	}()

	for _, tc := range []struct {
		name string
		url  string
		want []string
	}{
		{"wrong password", "amqp://guest:wrong@127.0.0.1:" + port + "/", []string{"refused the username or password"}},
		{"unknown virtual host", "amqp://guest:guest@127.0.0.1:" + port + "/nosuchvhost", []string{"virtual host"}},
		{"nothing listening", "amqp://guest:guest@" + closedAddr + "/", []string{"connection refused", closedAddr}},
		{"not an AMQP server", "amqp://guest:guest@" + silent.Addr().String() + "/", []string{"connect-timeout 500ms"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := rabbitmq.DefaultOptions()
			o.URL = tc.url
			o.ConnectTimeout = 500 * time.Millisecond
			err := openErr(t, o)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "wrong") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}

	t.Run("conflicting queue arguments", func(t *testing.T) {
		q := uniqueName("spate-conflict")
		ch := rawChannel(t)
		if _, err := ch.QueueDeclare(q, true, false, false, false, amqp.Table{"x-max-length": int64(10)}); err != nil {
			t.Fatal(err)
		}
		defer func() { _, _ = rawChannel(t).QueueDelete(q, false, false, false) }()
		o := options(t)
		o.Queue.Name = q
		o.Queue.Arguments = map[string]any{"x-max-length": int64(20)}
		err := openErr(t, o)
		if err == nil {
			t.Fatal("Open succeeded")
		}
		for _, w := range []string{q, "x-max-length", "delete it"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not mention %q", err, w)
			}
		}
	})
	t.Run("invalid options", func(t *testing.T) {
		o := options(t)
		o.Queue.Type = "streams"
		o.Reject = 2
		err := openErr(t, o)
		if err == nil || !strings.Contains(err.Error(), "queue.type") || !strings.Contains(err.Error(), "reject") {
			t.Errorf("error %v, want both problems", err)
		}
	})
}

// producerRig is one driver with one producer whose outcomes it records.
type producerRig struct {
	t   *testing.T
	d   drivers.Driver
	p   drivers.Producer
	env drivers.Env

	mu       sync.Mutex
	outcomes map[uint64]error
}

func newProducerRig(t *testing.T, o rabbitmq.Options) *producerRig {
	r := &producerRig{t: t, env: testEnv(t, 1, 0), outcomes: map[uint64]error{}}
	r.d = openDriver(t, o, r.env)
	p, err := r.d.NewProducer(context.Background(), 0, func(rs []drivers.Result) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, res := range rs {
			if _, dup := r.outcomes[res.Stamp.Seq]; dup {
				t.Errorf("seq %d: second outcome", res.Stamp.Seq)
			}
			r.outcomes[res.Stamp.Seq] = res.Err
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	r.p = p
	return r
}

// send sends seqs [from, to) with the given key and closes nothing.
func (r *producerRig) send(from, to int, key []byte) {
	r.t.Helper()
	var msgs []drivers.Message
	for i := from; i < to; i++ {
		now := time.Now().UnixNano()
		s := stamp.Stamp{RunID: r.env.RunID, Seq: uint64(i), Intended: now, Sent: now}
		body := make([]byte, 100)
		s.Put(body)
		msgs = append(msgs, drivers.Message{Stamp: s, Key: key, Head: body[:stamp.Size], Tail: body[stamp.Size:]})
	}
	if err := r.p.Send(context.Background(), msgs); err != nil {
		r.t.Fatal(err)
	}
}

func (r *producerRig) close() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.p.Close(ctx); err != nil {
		r.t.Fatal(err)
	}
}

// count returns how many outcomes match each of the errors (nil included).
func (r *producerRig) count(errs ...error) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := make([]int, len(errs)+1)
outcomes:
	for _, e := range r.outcomes {
		for i, want := range errs {
			if errors.Is(e, want) || e == want {
				n[i]++
				continue outcomes
			}
		}
		n[len(errs)]++ // anything else
	}
	return n
}

// TestNackedAndReturned: a full queue that rejects publishes nacks them
// (failed, ErrNacked); a mandatory message with no route comes back
// (failed, ErrReturned). Every message has exactly one outcome.
func TestNackedAndReturned(t *testing.T) {
	t.Run("nacked", func(t *testing.T) {
		o := options(t)
		o.Queue.Arguments = map[string]any{"x-max-length": int64(10), "x-overflow": "reject-publish"}
		r := newProducerRig(t, o)
		r.send(0, 30, nil)
		r.close()
		n := r.count(nil, rabbitmq.ErrNacked)
		if n[0] != 10 || n[1] != 20 || n[2] != 0 {
			t.Errorf("outcomes: %d acked, %d nacked, %d other; want 10, 20, 0", n[0], n[1], n[2])
		}
		st := r.d.(drivers.StatsReporter).Stats()
		expect(t, "driver nacked", st["nacked"], 20)
		expect(t, "queue depth", st["queue_depth"], 10)
	})
	t.Run("returned", func(t *testing.T) {
		o := options(t)
		o.Exchange = rabbitmq.ExchangeOptions{Name: uniqueName("spate-mandatory"), Kind: "direct"}
		o.Mandatory = true
		r := newProducerRig(t, o)
		r.send(0, 10, []byte("routed"))
		// Take the binding away: what follows has no route.
		d := r.d.(*rabbitmq.ManagedDriver)
		if err := rawChannel(t).QueueUnbind(d.Queue(), "routed", o.Exchange.Name, nil); err != nil {
			t.Fatal(err)
		}
		r.send(10, 25, []byte("routed"))
		r.close()
		n := r.count(nil, rabbitmq.ErrReturned)
		if n[0] != 10 || n[1] != 15 || n[2] != 0 {
			t.Errorf("outcomes: %d acked, %d returned, %d other; want 10, 15, 0", n[0], n[1], n[2])
		}
		expect(t, "driver returned", r.d.(drivers.StatsReporter).Stats()["returned"], 15)
	})
}

// TestDialThroughEnv: every connection goes through Env.Dial with the side
// it serves, reconnections included.
func TestDialThroughEnv(t *testing.T) {
	o := options(t)
	env := testEnv(t, 2, 2)
	var mu sync.Mutex
	dials := map[drivers.Side]int{}
	env.Dial = func(ctx context.Context, side drivers.Side, network, address string) (net.Conn, error) {
		if !strings.HasPrefix(address, "127.0.0.1:") {
			t.Errorf("dial to %s, want loopback", address)
		}
		mu.Lock()
		dials[side]++
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}
	count := func(s drivers.Side) int { mu.Lock(); defer mu.Unlock(); return dials[s] }
	d := openDriver(t, o, env)
	ctx := context.Background()
	var cons []drivers.Consumer
	for i := range 2 {
		c, err := d.NewConsumer(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		cons = append(cons, c)
	}
	for i := range 2 {
		p, err := d.NewProducer(ctx, i, func([]drivers.Result) {})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close(ctx)
	}
	if a, p, c := count(drivers.AdminSide), count(drivers.ProducerSide), count(drivers.ConsumerSide); a != 1 || p != 2 || c != 2 {
		t.Errorf("dials: admin %d, producers %d, consumers %d; want 1, 2, 2", a, p, c)
	}
	// A crashed consumer's replacement dials again, as a consumer.
	cons[0].(drivers.Crasher).Crash()
	if err := cons[0].Consume(ctx, func([]drivers.Delivery) {}); !errors.Is(err, drivers.ErrCrashed) {
		t.Errorf("Consume after Crash = %v, want ErrCrashed", err)
	}
	if _, err := d.NewConsumer(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if c := count(drivers.ConsumerSide); c != 3 {
		t.Errorf("consumer dials after a crash and a new consumer: %d, want 3", c)
	}
}

// TestManagedURL: `url: managed` starts a private node, makes the driver a
// BrokerRestarter, and Close stops the node and its epmd, leaving no
// process behind.
func TestManagedURL(t *testing.T) {
	node(t) // the same requirements; the shared node is not used
	o := rabbitmq.DefaultOptions()
	o.NodeOptions.Server = os.Getenv("SPATE_RABBITMQ_SERVER")
	env := testEnv(t, 1, 1)
	ctx := context.Background()
	d, err := rabbitmq.Kind.Open(ctx, o, env)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = d.Close(ctx)
		}
	}()
	br, ok := d.(drivers.BrokerRestarter)
	if !ok {
		t.Fatalf("%T is not a BrokerRestarter", d)
	}
	if b := br.Brokers(); len(b) != 1 || b[0] != 0 {
		t.Errorf("Brokers() = %v, want [0]", b)
	}
	if err := br.RestartBroker(ctx, 3, drivers.Kill, 0); err == nil {
		t.Error("RestartBroker(3) succeeded; there is only broker 0")
	}
	n := d.(*rabbitmq.ManagedDriver).Node()
	beam, epmd := n.PIDs()
	if beam == 0 || epmd == 0 {
		t.Fatalf("node pids %d, %d", beam, epmd)
	}
	checkLoopback(t, beam, epmd)

	got := make(chan drivers.Delivery, 1)
	c, err := d.NewConsumer(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		_ = c.Consume(cctx, func(b []drivers.Delivery) {
			select {
			case got <- b[0]:
			default:
			}
		})
	}()
	p, err := d.NewProducer(ctx, 0, func([]drivers.Result) {})
	if err != nil {
		t.Fatal(err)
	}
	s := stamp.Stamp{RunID: env.RunID, Seq: 0}
	body := make([]byte, stamp.Size)
	s.Put(body)
	if err := p.Send(ctx, []drivers.Message{{Stamp: s, Head: body[:stamp.Size], Tail: body[stamp.Size:]}}); err != nil {
		t.Fatal(err)
	}
	select {
	case dv := <-got:
		if dv.Stream != 0 || dv.Redelivered || dv.DeadLetter {
			t.Errorf("delivery %+v", dv)
		}
	case <-time.After(time.Minute):
		t.Fatal("no delivery")
	}
	_ = p.Close(ctx)
	stop()
	closed = true
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{beam, epmd} {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after Close (kill -0: %v)", pid, err)
		}
	}
	if _, err := os.Stat(n.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the node's directory %s is still there (%v)", n.Dir(), err)
	}
}

// TestNodeLoopbackOnly: every socket the shared node and its epmd listen
// on is bound to a loopback address.
func TestNodeLoopbackOnly(t *testing.T) {
	beam, epmd := node(t).PIDs()
	checkLoopback(t, beam, epmd)
}

// checkLoopback fails t unless each listening TCP socket of pids is bound
// to 127.0.0.1 or ::1, and there is at least one.
func checkLoopback(t *testing.T, pids ...int) {
	t.Helper()
	inodes := map[string]int{}
	for _, pid := range pids {
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		fds, err := os.ReadDir(dir)
		if err != nil {
			t.Fatalf("read %s: %v", dir, err)
		}
		for _, fd := range fds {
			link, err := os.Readlink(dir + "/" + fd.Name())
			if err == nil && strings.HasPrefix(link, "socket:[") {
				inodes[strings.Trim(link[len("socket:"):], "[]")] = pid
			}
		}
	}
	listening := 0
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" { // 0A: LISTEN
				continue
			}
			pid, ours := inodes[f[9]]
			if !ours {
				continue
			}
			listening++
			addr, _, _ := strings.Cut(f[1], ":")
			if addr != "0100007F" && addr != "00000000000000000000000001000000" {
				t.Errorf("process %d listens on %s (%s), which is not loopback", pid, f[1], file)
			}
		}
	}
	if listening == 0 {
		t.Error("found no listening socket of the node")
	}
}

func TestStartWithoutServer(t *testing.T) {
	_, err := rabbitmq.Start(context.Background(), rabbitmq.NodeOptions{Server: "/nonexistent/rabbitmq-server"})
	if !errors.Is(err, rabbitmq.ErrNotInstalled) {
		t.Fatalf("Start = %v, want ErrNotInstalled", err)
	}
	if !strings.Contains(err.Error(), "apt-get install -y rabbitmq-server") {
		t.Errorf("error %q does not say what to install", err)
	}
}

// TestCloseDeletesWhatItCreated: the queue and exchange Open declared are
// gone after Close; with keep they stay.
func TestCloseDeletesWhatItCreated(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprint("keep=", keep), func(t *testing.T) {
			o := options(t)
			o.Exchange = rabbitmq.ExchangeOptions{Name: uniqueName("spate-ex"), Kind: "fanout"}
			o.DeadLetter = uniqueName("spate-dlq")
			o.Keep = keep
			d, err := rabbitmq.Kind.Open(context.Background(), o, testEnv(t, 1, 1))
			if err != nil {
				t.Fatal(err)
			}
			q := d.(*rabbitmq.ManagedDriver).Queue()
			_ = d.Close(context.Background())
			for _, name := range []string{q, o.DeadLetter} {
				_, err := rawChannel(t).QueueDeclarePassive(name, false, false, false, false, nil)
				if exists := err == nil; exists != keep {
					t.Errorf("queue %s exists: %v, want %v (%v)", name, exists, keep, err)
				}
				if keep {
					_, _ = rawChannel(t).QueueDelete(name, false, false, false)
				}
			}
			err = rawChannel(t).ExchangeDeclarePassive(o.Exchange.Name, "fanout", false, false, false, false, nil)
			if exists := err == nil; exists != keep {
				t.Errorf("exchange exists: %v, want %v (%v)", exists, keep, err)
			}
			if keep {
				_ = rawChannel(t).ExchangeDelete(o.Exchange.Name, false, false)
			}
		})
	}
}

// TestPauseNode: a paused managed node hangs (it accepts TCP connections,
// the kernel does that, but completes no AMQP handshake) until resumed; a
// pause left in effect is resumed when the driver closes.
func TestPauseNode(t *testing.T) {
	n := node(t)
	d := openDriver(t, options(t), testEnv(t, 1, 1)).(*rabbitmq.ManagedDriver)
	ctx := context.Background()
	if _, err := d.PauseBroker(ctx, 1); err == nil || !strings.Contains(err.Error(), "no broker 1") {
		t.Errorf("PauseBroker(1) = %v, want no broker 1", err)
	}
	handshake := func() error {
		conn, err := amqp.DialConfig(n.URL(), amqp.Config{Dial: amqp.DefaultDial(time.Second)})
		if err == nil {
			_ = conn.Close()
		}
		return err
	}
	resume, err := d.PauseBroker(ctx, drivers.AllBrokers)
	if err != nil {
		t.Fatal(err)
	}
	if !n.Paused() {
		t.Fatal("the node is not paused")
	}
	if err := handshake(); err == nil {
		t.Error("a paused node completed an AMQP handshake")
	}
	if err := resume(); err != nil {
		t.Fatal(err)
	}
	if err := resume(); err != nil {
		t.Errorf("resume twice: %v", err)
	}
	waitFor(t, "an AMQP handshake after resume", time.Minute, func() bool { return handshake() == nil })
	if _, err := d.PauseBroker(ctx, 0); err != nil {
		t.Fatal(err)
	}
	_ = d.Close(ctx)
	if n.Paused() {
		t.Error("Close left the node paused")
	}
	waitFor(t, "an AMQP handshake after Close", time.Minute, func() bool { return handshake() == nil })
}
