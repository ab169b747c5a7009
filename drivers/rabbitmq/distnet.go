package rabbitmq

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
)

// This file is the distribution network of a managed cluster: a TCP proxy
// on 127.0.0.1 in front of each member's Erlang distribution port. The
// cluster's port mapper (epmd.go) gives out the proxy's port when a node
// looks a member up, so every connection between members passes through
// one of these proxies. The proxy reads the first handshake message of each
// connection (send_name, which carries the connecting node's name) to learn
// which two members it joins; a partition closes the connections between
// the isolated member and the others and refuses new ones, while clients
// (AMQP, on other ports) still reach every node, and rabbitmqctl (not a
// member) still reaches every node too.
//
// A cut connection is closed, not silently dropped: both nodes see the
// other go down at once, as after a reset or a crashed peer, instead of
// after net_ticktime (60 s) of silence.

// distHandshakeTimeout bounds the wait for the first handshake message.
const distHandshakeTimeout = 10 * time.Second

// distNet is the set of proxies of one cluster. It is safe for concurrent
// use.
type distNet struct {
	log  *slog.Logger
	epmd *epmdServer

	mu      sync.Mutex
	members map[string]int // node name (before @) -> member index
	proxies []*distProxy
	cut     map[[2]int]bool // member pairs (low, high) that cannot talk
	links   map[*distLink]struct{}
	closed  bool
	wg      sync.WaitGroup
}

// distProxy fronts one member's distribution port.
type distProxy struct {
	member int
	name   string // the member's node name before @
	ln     net.Listener
}

// distLink is one proxied connection between two members (from is -1 when
// the connecting node is not a member, e.g. rabbitmqctl).
type distLink struct {
	from, to   int
	down, up   net.Conn
	closeOnce  sync.Once
	fromName   string
	targetName string
}

func (l *distLink) close() {
	l.closeOnce.Do(func() {
		_ = l.down.Close()
		if l.up != nil {
			_ = l.up.Close()
		}
	})
}

func newDistNet(log *slog.Logger, epmd *epmdServer) *distNet {
	return &distNet{log: log, epmd: epmd, members: map[string]int{}, cut: map[[2]int]bool{}, links: map[*distLink]struct{}{}}
}

// addMember starts the proxy of member i, named name (before @), and tells
// the port mapper to give out its port.
func (dn *distNet) addMember(i int, name string) (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("rabbitmq: managed cluster: distribution proxy: %v", err)
	}
	p := &distProxy{member: i, name: name, ln: ln}
	dn.mu.Lock()
	dn.members[name] = i
	dn.proxies = append(dn.proxies, p)
	dn.wg.Add(1)
	dn.mu.Unlock()
	port := ln.Addr().(*net.TCPAddr).Port
	dn.epmd.setRedirect(name, port)
	go dn.serve(p)
	return port, nil
}

func pairOf(a, b int) [2]int {
	if a > b {
		a, b = b, a
	}
	return [2]int{a, b}
}

// isolate cuts member i off from every other member: open connections
// between them are closed, new ones refused, until heal. It returns how
// many connections it closed.
func (dn *distNet) isolate(i int) int {
	dn.mu.Lock()
	for _, p := range dn.proxies {
		if p.member != i {
			dn.cut[pairOf(i, p.member)] = true
		}
	}
	var doomed []*distLink
	for l := range dn.links {
		if l.from >= 0 && dn.cut[pairOf(l.from, l.to)] {
			doomed = append(doomed, l)
		}
	}
	dn.mu.Unlock()
	for _, l := range doomed {
		l.close()
	}
	return len(doomed)
}

// heal lets member i talk to the others again.
func (dn *distNet) heal(i int) {
	dn.mu.Lock()
	for pair := range dn.cut {
		if pair[0] == i || pair[1] == i {
			delete(dn.cut, pair)
		}
	}
	dn.mu.Unlock()
}

// healAll lifts every cut.
func (dn *distNet) healAll() {
	dn.mu.Lock()
	clear(dn.cut)
	dn.mu.Unlock()
}

// isolated reports whether any cut is in effect.
func (dn *distNet) isolated() bool {
	dn.mu.Lock()
	defer dn.mu.Unlock()
	return len(dn.cut) > 0
}

// close stops every proxy and closes every connection.
func (dn *distNet) close() {
	dn.mu.Lock()
	dn.closed = true
	for _, p := range dn.proxies {
		_ = p.ln.Close()
	}
	links := make([]*distLink, 0, len(dn.links))
	for l := range dn.links {
		links = append(links, l)
	}
	dn.mu.Unlock()
	for _, l := range links {
		l.close()
	}
	dn.wg.Wait()
}

// ports returns the proxies' ports, by member.
func (dn *distNet) ports() []int {
	dn.mu.Lock()
	defer dn.mu.Unlock()
	out := make([]int, len(dn.proxies))
	for _, p := range dn.proxies {
		out[p.member] = p.ln.Addr().(*net.TCPAddr).Port
	}
	return out
}

func (dn *distNet) serve(p *distProxy) {
	defer dn.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors for now
			continue
		}
		dn.mu.Lock()
		if dn.closed {
			dn.mu.Unlock()
			_ = c.Close()
			return
		}
		l := &distLink{from: -1, to: p.member, down: c, targetName: p.name}
		dn.links[l] = struct{}{}
		dn.wg.Add(1)
		dn.mu.Unlock()
		go func() {
			defer dn.wg.Done()
			dn.relay(l)
			dn.mu.Lock()
			delete(dn.links, l)
			dn.mu.Unlock()
			l.close()
		}()
	}
}

// relay reads the connecting node's name, refuses the connection if it
// crosses a cut, and otherwise joins it to the member's own port.
func (dn *distNet) relay(l *distLink) {
	_ = l.down.SetReadDeadline(time.Now().Add(distHandshakeTimeout))
	first, name, err := readSendName(l.down)
	if err != nil {
		return
	}
	_ = l.down.SetReadDeadline(time.Time{})
	dn.mu.Lock()
	if i, ok := dn.members[name]; ok {
		l.from, l.fromName = i, name
	}
	blocked := l.from >= 0 && dn.cut[pairOf(l.from, l.to)]
	dn.mu.Unlock()
	if blocked {
		dn.log.Debug("rabbitmq: partition: refused a distribution connection", "from", name, "to", l.targetName)
		return
	}
	port := dn.epmd.lookup(l.targetName)
	if port == 0 {
		return // the member is down
	}
	up, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), distHandshakeTimeout)
	if err != nil {
		return
	}
	dn.mu.Lock()
	l.up = up
	// A cut made while dialling must not miss this connection.
	blocked = l.from >= 0 && dn.cut[pairOf(l.from, l.to)]
	dn.mu.Unlock()
	if blocked {
		return
	}
	if _, err := up.Write(first); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, l.down); l.close(); done <- struct{}{} }()
	go func() { _, _ = io.Copy(l.down, up); l.close(); done <- struct{}{} }()
	<-done
	<-done
}

// readSendName reads the first handshake message of a distribution
// connection (2-byte length, then send_name) and returns its bytes and the
// connecting node's name before @, or "" when it is not a send_name. Two
// formats exist: 'n' (version 5: Version(2) Flags(4) Name) and 'N'
// (version 6: Flags(8) Creation(4) Nlen(2) Name).
func readSendName(r io.Reader) ([]byte, string, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, "", err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n == 0 || n > 4096 {
		return nil, "", fmt.Errorf("handshake message of %d bytes", n)
	}
	msg := make([]byte, 2+n)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(r, msg[2:]); err != nil {
		return nil, "", err
	}
	body := msg[2:]
	var full string
	switch {
	case body[0] == 'n' && len(body) >= 7:
		full = string(body[7:])
	case body[0] == 'N' && len(body) >= 15:
		nlen := int(binary.BigEndian.Uint16(body[13:]))
		if len(body) >= 15+nlen {
			full = string(body[15 : 15+nlen])
		}
	}
	name, _, _ := strings.Cut(full, "@")
	return msg, name, nil
}
