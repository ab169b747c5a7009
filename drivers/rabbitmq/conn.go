package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/spate-dev/spate/drivers"
)

// connSlot is one AMQP connection shared by the producers or consumers
// mapped to it, redialled when it is found closed. It is safe for
// concurrent use.
type connSlot struct {
	d    *Driver
	side drivers.Side
	name string // for logs and the connection_name property
	// pref is the node (index in Driver.urls) the slot connects to first;
	// slots spread over the nodes, and each goes to the next node that
	// answers when its own does not.
	pref int

	dialMu sync.Mutex // one dial at a time; not held by crash or close

	mu   sync.Mutex
	conn *amqp.Connection
	raw  net.Conn // the socket under conn, closed abruptly by crash
	used bool     // a connection was made before: the next one is a reconnect
}

// get returns the slot's connection, dialling a new one when there is none
// or it is closed. One attempt, bounded by connect-timeout and ctx.
func (s *connSlot) get(ctx context.Context) (*amqp.Connection, error) {
	s.dialMu.Lock()
	defer s.dialMu.Unlock()
	s.mu.Lock()
	if s.conn != nil && !s.conn.IsClosed() {
		conn := s.conn
		s.mu.Unlock()
		return conn, nil
	}
	old := s.raw
	s.conn, s.raw = nil, nil
	s.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	if s.d.isClosed() {
		return nil, ErrClosed
	}
	conn, raw, err := s.d.dialAny(ctx, s.side, s.name, s.pref)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.d.isClosed() {
		// Close ran while dialling and could not see this connection.
		_ = raw.Close()
		return nil, ErrClosed
	}
	if s.used {
		s.d.stats.Reconnects.Add(1)
		s.d.log.Info("rabbitmq: reconnected", "connection", s.name)
	}
	s.conn, s.raw, s.used = conn, raw, true
	return conn, nil
}

// getRetry is get, retried until the driver's reconnect window after the
// first failure has passed. It fails at once when the driver is closed or
// ctx is done.
func (s *connSlot) getRetry(ctx context.Context) (*amqp.Connection, error) {
	var deadline time.Time
	wait := 50 * time.Millisecond
	for {
		conn, err := s.get(ctx)
		if err == nil || errors.Is(err, ErrClosed) || ctx.Err() != nil {
			return conn, err
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(s.d.opts.Reconnect)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w (gave up reconnecting after reconnect: %v)", err, s.d.opts.Reconnect)
		}
		if err := s.d.sleep(ctx, wait); err != nil {
			return nil, err
		}
		wait = min(2*wait, time.Second)
	}
}

// crash closes the slot's socket without any AMQP goodbye, as a killed
// process would: the broker requeues the deliveries its channels held.
func (s *connSlot) crash() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.raw != nil {
		_ = s.raw.Close()
	}
	// Forget it: the next get dials, even if the client has not noticed
	// the closed socket yet.
	s.conn, s.raw = nil, nil
}

// close closes the connection cleanly, waiting at most until deadline.
func (s *connSlot) close(deadline time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && !s.conn.IsClosed() {
		_ = s.conn.CloseDeadline(deadline)
	}
	if s.raw != nil {
		_ = s.raw.Close()
	}
	s.conn, s.raw = nil, nil
}

// dialAny opens one AMQP connection for side to the node pref, or when it
// cannot, to each other node in turn (each attempt bounded by
// connect-timeout). With one node it is dial.
func (d *Driver) dialAny(ctx context.Context, side drivers.Side, name string, pref int) (*amqp.Connection, net.Conn, error) {
	n := len(d.urls)
	var errs []error
	for i := range n {
		u := d.urls[(pref+i)%n]
		conn, raw, err := d.dial(ctx, side, name, u)
		if err == nil {
			if i > 0 {
				d.log.Info("rabbitmq: connected to another node", "connection", name, "node", address(u))
			}
			return conn, raw, nil
		}
		if n == 1 {
			return nil, nil, err
		}
		errs = append(errs, err)
		if ctx.Err() != nil || d.ctx.Err() != nil {
			break
		}
	}
	return nil, nil, fmt.Errorf("rabbitmq: %s: no node of %d answered: %w", side, n, errors.Join(errs...))
}

// dial opens one AMQP connection for side to url, through Env.Dial when
// set.
func (d *Driver) dial(ctx context.Context, side drivers.Side, name, url string) (*amqp.Connection, net.Conn, error) {
	timeout := d.opts.ConnectTimeout
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if !d.isClosed() { // (Close's own clean-up dials after closing)
		stop := context.AfterFunc(d.ctx, cancel) // Close ends a dial in progress
		defer stop()
	}
	var raw net.Conn
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(fmt.Sprintf("spate %s %s run %016x", d.env.Scenario, name, d.env.RunID))
	cfg := amqp.Config{
		Heartbeat:  d.opts.Heartbeat,
		Locale:     "en_US",
		Properties: props,
		Dial: func(network, addr string) (net.Conn, error) {
			var c net.Conn
			var err error
			if d.env.Dial != nil {
				c, err = d.env.Dial(dctx, side, network, addr)
			} else {
				var nd net.Dialer
				c, err = nd.DialContext(dctx, network, addr)
			}
			if err != nil {
				return nil, err
			}
			// Bounds the TLS and AMQP handshakes; the client clears it.
			if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
				_ = c.Close()
				return nil, err
			}
			raw = c
			return c, nil
		},
	}
	conn, err := amqp.DialConfig(url, cfg)
	if err != nil {
		if raw != nil {
			_ = raw.Close()
		}
		return nil, nil, d.explainDial(err, side, url)
	}
	return conn, raw, nil
}

// explainDial turns a connection error into one that says what to check.
func (d *Driver) explainDial(err error, side drivers.Side, url string) error {
	where := address(url)
	var aerr *amqp.Error
	var nerr net.Error
	switch {
	case errors.Is(err, amqp.ErrCredentials) || errors.As(err, &aerr) && aerr.Code == amqp.AccessRefused:
		return fmt.Errorf("rabbitmq: %s: the broker at %s refused the username or password of url (%v); check them (the default guest user may only connect from localhost)", side, where, err)
	case errors.Is(err, amqp.ErrVhost) || errors.As(err, &aerr) && aerr.Code == amqp.NotAllowed:
		return fmt.Errorf("rabbitmq: %s: the broker at %s refused the virtual host of url %s (%v); check that it exists and the user may use it", side, where, redact(url), err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("rabbitmq: %s: cannot connect to %s: connection refused; is the broker running and is url right?", side, where)
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &nerr) && nerr.Timeout() ||
		// The client reports a handshake timeout as a frame error.
		errors.As(err, &aerr) && strings.Contains(aerr.Reason, "i/o timeout"):
		return fmt.Errorf("rabbitmq: %s: no AMQP connection to %s within connect-timeout %v (%v); is the host reachable and is it an AMQP port?", side, where, d.opts.ConnectTimeout, err)
	}
	return fmt.Errorf("rabbitmq: %s: connect to %s: %w", side, where, err)
}

// address is host:port of a broker's URL, for messages (no credentials).
func address(url string) string {
	if u, err := amqp.ParseURI(url); err == nil {
		return net.JoinHostPort(u.Host, fmt.Sprint(u.Port))
	}
	return redact(url)
}

// addresses is host:port of every node, for messages.
func (d *Driver) addresses() string {
	out := make([]string, len(d.urls))
	for i, u := range d.urls {
		out[i] = address(u)
	}
	return strings.Join(out, ",")
}

// sleep waits for dur, or until ctx is done or the driver closes.
func (d *Driver) sleep(ctx context.Context, dur time.Duration) error {
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-d.closed:
		return ErrClosed
	case <-t.C:
		return nil
	}
}

// explainDeclare turns a declaration error into one that says what to do.
func explainDeclare(what, name string, err error) error {
	var aerr *amqp.Error
	if errors.As(err, &aerr) {
		switch aerr.Code {
		case amqp.PreconditionFailed:
			return fmt.Errorf("rabbitmq: declare %s %q: %s; a %s of that name exists with other settings: delete it (rabbitmqctl delete_%s %s) or give the scenario its settings",
				what, name, aerr.Reason, what, what, name)
		case amqp.AccessRefused:
			return fmt.Errorf("rabbitmq: declare %s %q: %s; the user of url may not configure it, or the name is reserved (amq.*)", what, name, aerr.Reason)
		case amqp.ResourceLocked:
			return fmt.Errorf("rabbitmq: declare %s %q: %s; it is an exclusive queue of another connection", what, name, aerr.Reason)
		}
	}
	return fmt.Errorf("rabbitmq: declare %s %q: %w", what, name, err)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// isNotFound reports whether err is the broker's 404 NOT_FOUND.
func isNotFound(err error) bool {
	var aerr *amqp.Error
	return errors.As(err, &aerr) && aerr.Code == amqp.NotFound
}

// channelOf opens a channel on the slot's connection (one attempt).
func (s *connSlot) channel(ctx context.Context) (*amqp.Channel, error) {
	conn, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: open a channel on %s: %w", s.name, err)
	}
	return ch, nil
}

// slotName names a connection slot in logs and in the broker's UI.
func slotName(side drivers.Side, i int) string {
	return strings.TrimSuffix(side.String(), "s") + "-" + fmt.Sprint(i)
}
