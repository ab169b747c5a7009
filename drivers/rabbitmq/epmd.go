package rabbitmq

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"sync"
	"time"
)

// This file is a port mapper for the Erlang nodes of a managed cluster: the
// part of Erlang's epmd the nodes and rabbitmqctl use (register a node,
// look a node up, list nodes), served from this process on a private
// loopback port. It exists so that a node looking up another cluster member
// is given the port of that member's distribution proxy (distnet.go)
// instead of the member's own port: every connection between members then
// passes through spate, which can cut it to partition the cluster. Running
// it in-process also means it can never outlive spate.
//
// The protocol is the one documented in ERTS's "Distribution Protocol"
// chapter: each request is a 2-byte length and a tagged body; a
// registration (ALIVE2_REQ) holds its connection open for as long as the
// node is alive.

// epmd request and response tags.
const (
	epmdAlive2Req     = 120 // 'x'
	epmdAlive2Resp    = 121 // 'y': 16-bit creation
	epmdAlive2XResp   = 118 // 'v': 32-bit creation
	epmdPortPlease2   = 122 // 'z'
	epmdPort2Resp     = 119 // 'w'
	epmdNamesReq      = 110 // 'n'
	epmdDumpReq       = 100 // 'd'
	epmdKillReq       = 107 // 'k'
	epmdStopReq       = 115 // 's'
	epmdMaxRequest    = 4096
	epmdRequestIdle   = 10 * time.Second // a request must arrive this soon after connecting
	epmdMaxRegistered = 1024
)

// epmdEntry is one registered node.
type epmdEntry struct {
	name     string // the part before @
	port     int    // where the node listens for distribution
	nodeType byte
	protocol byte
	high     uint16
	low      uint16
	extra    []byte
	conn     net.Conn
}

// epmdServer is a port mapper on 127.0.0.1. It is safe for concurrent use.
type epmdServer struct {
	ln  net.Listener
	log *slog.Logger

	mu       sync.Mutex
	nodes    map[string]*epmdEntry
	redirect map[string]int // node name (before @) -> port to give out instead
	conns    map[net.Conn]struct{}
	creation uint32
	closed   bool
	wg       sync.WaitGroup
}

// startEPMD listens on a free port of 127.0.0.1 in the managed port range
// and serves until close.
func startEPMD(log *slog.Logger) (*epmdServer, error) {
	var ln net.Listener
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		var ports []int
		if ports, err = freePorts(1); err != nil {
			return nil, err
		}
		if ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0])); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: managed cluster: port mapper: %v", err)
	}
	v, _ := rand.Int(rand.Reader, big.NewInt(1<<30))
	e := &epmdServer{
		ln: ln, log: log,
		nodes:    map[string]*epmdEntry{},
		redirect: map[string]int{},
		conns:    map[net.Conn]struct{}{},
		creation: uint32(v.Int64()) + 4,
	}
	e.wg.Add(1)
	go e.serve()
	return e, nil
}

// Port is the port the mapper listens on (ERL_EPMD_PORT for the nodes).
func (e *epmdServer) Port() int { return e.ln.Addr().(*net.TCPAddr).Port }

// setRedirect makes lookups of node name (before @) answer port.
func (e *epmdServer) setRedirect(name string, port int) {
	e.mu.Lock()
	e.redirect[name] = port
	e.mu.Unlock()
}

// lookup returns the distribution port node name registered, or 0.
func (e *epmdServer) lookup(name string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if n := e.nodes[name]; n != nil {
		return n.port
	}
	return 0
}

// close stops serving, drops every registration and waits for the
// connection handlers to end.
func (e *epmdServer) close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	_ = e.ln.Close()
	for c := range e.conns {
		_ = c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
}

func (e *epmdServer) serve() {
	defer e.wg.Done()
	for {
		c, err := e.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors for now
			continue
		}
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			_ = c.Close()
			return
		}
		e.conns[c] = struct{}{}
		e.wg.Add(1)
		e.mu.Unlock()
		go func() {
			defer e.wg.Done()
			e.handle(c)
			e.mu.Lock()
			delete(e.conns, c)
			e.mu.Unlock()
			_ = c.Close()
		}()
	}
}

// handle serves one connection: one request, or a registration that lasts
// until the node closes the connection.
func (e *epmdServer) handle(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(epmdRequestIdle))
	r := bufio.NewReader(c)
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n == 0 || n > epmdMaxRequest {
		return
	}
	req := make([]byte, n)
	if _, err := io.ReadFull(r, req); err != nil {
		return
	}
	switch req[0] {
	case epmdAlive2Req:
		e.register(c, r, req[1:])
	case epmdPortPlease2:
		_, _ = c.Write(e.portResponse(string(req[1:])))
	case epmdNamesReq, epmdDumpReq:
		_, _ = c.Write(e.names())
	case epmdKillReq:
		// Refused: the nodes of the cluster depend on it, and spate
		// stops it with the cluster.
		_, _ = c.Write([]byte("NO"))
	case epmdStopReq:
		_, _ = c.Write([]byte("NOEXIST"))
	}
}

// register handles ALIVE2_REQ: PortNo(2) NodeType(1) Protocol(1)
// HighestVersion(2) LowestVersion(2) Nlen(2) NodeName Elen(2) Extra.
func (e *epmdServer) register(c net.Conn, r *bufio.Reader, b []byte) {
	if len(b) < 10 {
		return
	}
	ent := &epmdEntry{
		port:     int(binary.BigEndian.Uint16(b[0:])),
		nodeType: b[2],
		protocol: b[3],
		high:     binary.BigEndian.Uint16(b[4:]),
		low:      binary.BigEndian.Uint16(b[6:]),
		conn:     c,
	}
	nlen := int(binary.BigEndian.Uint16(b[8:]))
	if len(b) < 10+nlen {
		return
	}
	ent.name = string(b[10 : 10+nlen])
	if rest := b[10+nlen:]; len(rest) >= 2 {
		elen := int(binary.BigEndian.Uint16(rest))
		if len(rest) >= 2+elen {
			ent.extra = append([]byte(nil), rest[2:2+elen]...)
		}
	}
	e.mu.Lock()
	result := byte(0)
	if _, taken := e.nodes[ent.name]; taken || len(e.nodes) >= epmdMaxRegistered || ent.name == "" {
		result = 1
	} else {
		e.nodes[ent.name] = ent
	}
	e.creation++
	creation := e.creation
	e.mu.Unlock()
	var resp []byte
	if ent.high >= 6 {
		resp = []byte{epmdAlive2XResp, result, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(resp[2:], creation)
	} else {
		resp = []byte{epmdAlive2Resp, result, 0, 0}
		binary.BigEndian.PutUint16(resp[2:], uint16(creation%3+1))
	}
	if _, err := c.Write(resp); err != nil || result != 0 {
		if result == 0 {
			e.unregister(ent)
		}
		return
	}
	e.log.Debug("rabbitmq: port mapper: node registered", "node", ent.name, "port", ent.port)
	// The registration lasts as long as the connection.
	_ = c.SetReadDeadline(time.Time{})
	_, _ = io.Copy(io.Discard, r)
	e.unregister(ent)
	e.log.Debug("rabbitmq: port mapper: node unregistered", "node", ent.name)
}

func (e *epmdServer) unregister(ent *epmdEntry) {
	e.mu.Lock()
	if e.nodes[ent.name] == ent {
		delete(e.nodes, ent.name)
	}
	e.mu.Unlock()
}

// portResponse answers PORT_PLEASE2_REQ: PORT2_RESP with the node's port,
// or its proxy's port when it has one, or an error result when the node is
// not registered.
func (e *epmdServer) portResponse(name string) []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	ent := e.nodes[name]
	if ent == nil {
		return []byte{epmdPort2Resp, 1}
	}
	port := ent.port
	if p, ok := e.redirect[name]; ok {
		port = p
	}
	b := make([]byte, 0, 14+len(ent.name)+len(ent.extra))
	b = append(b, epmdPort2Resp, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(port))
	b = append(b, ent.nodeType, ent.protocol)
	b = binary.BigEndian.AppendUint16(b, ent.high)
	b = binary.BigEndian.AppendUint16(b, ent.low)
	b = binary.BigEndian.AppendUint16(b, uint16(len(ent.name)))
	b = append(b, ent.name...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(ent.extra)))
	return append(b, ent.extra...)
}

// names answers NAMES_REQ: the mapper's port, then a line per node.
func (e *epmdServer) names() []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	b := binary.BigEndian.AppendUint32(nil, uint32(e.Port()))
	for _, k := range sortedKeys(e.nodes) {
		b = fmt.Appendf(b, "name %s at port %d\n", k, e.nodes[k].port)
	}
	return b
}
