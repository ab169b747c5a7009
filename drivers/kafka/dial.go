package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spate-dev/spate/drivers"
)

// errSevered is what dials of a severed dialer return.
var errSevered = errors.New("kafka: connections severed (the client crashed)")

// dialer opens one client's connections to the brokers: through Env.Dial
// when the harness set it (so a fault-injecting proxy sits in the path of
// every broker connection, including the addresses brokers advertise),
// then TLS when configured. It tracks the connections so that they can be
// severed at once, as a process killed with -9 would leave them. It is safe
// for concurrent use.
type dialer struct {
	side    drivers.Side
	dial    drivers.DialFunc // nil: a plain net.Dialer
	tls     *tls.Config      // nil: plaintext
	timeout time.Duration

	lastErr atomic.Pointer[error] // the most recent dial failure, for messages

	mu    sync.Mutex
	dead  bool
	conns map[*trackedConn]struct{}
}

func newDialer(side drivers.Side, dial drivers.DialFunc, tlsCfg *tls.Config, timeout time.Duration) *dialer {
	return &dialer{side: side, dial: dial, tls: tlsCfg, timeout: timeout, conns: map[*trackedConn]struct{}{}}
}

// DialContext is the kgo.Dialer of one client.
func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := d.open(ctx, network, addr)
	if err != nil {
		d.lastErr.Store(&err)
		return nil, err
	}
	return conn, nil
}

func (d *dialer) open(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	dead := d.dead
	d.mu.Unlock()
	if dead {
		return nil, errSevered
	}
	var raw net.Conn
	var err error
	if d.dial != nil {
		raw, err = d.dial(ctx, d.side, network, addr)
	} else {
		raw, err = (&net.Dialer{Timeout: d.timeout}).DialContext(ctx, network, addr)
	}
	if err != nil {
		return nil, err
	}
	conn := raw
	if d.tls != nil {
		cfg := d.tls.Clone()
		if cfg.ServerName == "" {
			host, _, splitErr := net.SplitHostPort(addr)
			if splitErr != nil {
				host = addr
			}
			cfg.ServerName = host
		}
		tc := tls.Client(raw, cfg)
		hctx, cancel := context.WithTimeout(ctx, d.timeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w (check tls.ca-file and tls.server-name)", addr, err)
		}
		conn = tc
	}
	tc := &trackedConn{Conn: conn, raw: raw, d: d}
	d.mu.Lock()
	if d.dead {
		d.mu.Unlock()
		abort(raw)
		return nil, errSevered
	}
	d.conns[tc] = struct{}{}
	d.mu.Unlock()
	return tc, nil
}

// lastError is the most recent dial failure, or nil.
func (d *dialer) lastError() error {
	if p := d.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// sever resets every open connection and makes later dials fail.
func (d *dialer) sever() {
	d.mu.Lock()
	d.dead = true
	conns := d.conns
	d.conns = map[*trackedConn]struct{}{}
	d.mu.Unlock()
	for c := range conns {
		abort(c.raw)
	}
}

// trackedConn is a connection its dialer can sever.
type trackedConn struct {
	net.Conn
	raw  net.Conn
	d    *dialer
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.d.mu.Lock()
		delete(c.d.conns, c)
		c.d.mu.Unlock()
	})
	return c.Conn.Close()
}

// abort closes c at once; a TCP connection is reset rather than shut down,
// so the peer sees what it would see from a killed process's host.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// trackedListener is one embedded broker's listener. It keeps the
// connections it accepted, so a broker can be killed with its connections
// reset, as a killed broker process would leave them. It is safe for
// concurrent use.
type trackedListener struct {
	net.Listener
	mu     sync.Mutex
	closed bool
	conns  map[*serverConn]struct{}
}

func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := &serverConn{Conn: c, l: l}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		abort(c)
		return nil, net.ErrClosed
	}
	l.conns[sc] = struct{}{}
	l.mu.Unlock()
	return sc, nil
}

func (l *trackedListener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return l.Listener.Close()
}

// shut closes the listener and every accepted connection: reset when kill
// is set, closed cleanly otherwise.
func (l *trackedListener) shut(kill bool) {
	_ = l.Close()
	l.mu.Lock()
	conns := l.conns
	l.conns = map[*serverConn]struct{}{}
	l.mu.Unlock()
	for c := range conns {
		if kill {
			abort(c.Conn)
		} else {
			_ = c.Conn.Close()
		}
	}
}

type serverConn struct {
	net.Conn
	l    *trackedListener
	once sync.Once
}

func (c *serverConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
