package chaos

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/spate-dev/spate/drivers"
)

// Network puts an in-process TCP proxy (Toxiproxy, used as a library) in
// front of every address a driver dials, one proxy per side and upstream,
// all listening on 127.0.0.1. Network faults add toxics to the proxies of
// one side, including proxies made while the fault is active (a Kafka
// client dialing a broker it just learned about). It is safe for concurrent
// use.
type Network struct {
	mu      sync.Mutex
	server  *toxiproxy.ApiServer
	proxies map[proxyKey]*proxy
	// active faults per side, applied to proxies made later too.
	active map[drivers.Side][]*netFault
	closed bool
	seq    int // names proxies and toxics
}

type proxyKey struct {
	side     drivers.Side
	upstream string
}

// proxy is one Toxiproxy proxy and the address it listens on, kept here
// because Toxiproxy rewrites its own copy when a proxy restarts.
type proxy struct {
	*toxiproxy.Proxy
	addr string
}

// netFault is one network fault: toxics to add, or the proxies to stop.
type netFault struct {
	toxics []toxic
	down   bool
}

// toxic is one Toxiproxy toxic, named uniquely so overlapping faults of the
// same type can be added and removed independently.
type toxic struct {
	name string
	json string // body for ToxicCollection.AddToxicJson, including the name
}

// NewNetwork returns an empty proxy set.
func NewNetwork() *Network {
	return &Network{
		server:  toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop()),
		proxies: map[proxyKey]*proxy{},
		active:  map[drivers.Side][]*netFault{},
	}
}

// Dial is a drivers.DialFunc: it connects through the side's proxy for
// address, making the proxy on first use.
func (n *Network) Dial(ctx context.Context, side drivers.Side, network, address string) (net.Conn, error) {
	if !strings.HasPrefix(network, "tcp") {
		return nil, fmt.Errorf("chaos network: cannot proxy %s connections", network)
	}
	p, err := n.proxy(side, address)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", p.addr)
}

func (n *Network) proxy(side drivers.Side, upstream string) (*proxy, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, fmt.Errorf("chaos network: closed")
	}
	key := proxyKey{side, upstream}
	if p, ok := n.proxies[key]; ok {
		return p, nil
	}
	n.seq++
	tp := toxiproxy.NewProxy(n.server, fmt.Sprintf("%s-%d", side, n.seq), "127.0.0.1:0", upstream)
	if err := tp.Start(); err != nil {
		return nil, fmt.Errorf("chaos network: proxy for %s: %w", upstream, err)
	}
	tp.Lock()
	p := &proxy{Proxy: tp, addr: tp.Listen}
	tp.Unlock()
	n.proxies[key] = p
	for _, f := range n.active[side] {
		n.applyLocked(p, f)
	}
	return p, nil
}

// toxicName returns a name no other toxic has.
func (n *Network) toxicName(kind string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seq++
	return fmt.Sprintf("spate-%s-%d", kind, n.seq)
}

// Proxies returns how many proxies a side has, for tests and details.
func (n *Network) Proxies(side drivers.Side) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for k := range n.proxies {
		if k.side == side {
			c++
		}
	}
	return c
}

// apply starts f on every proxy of side, now and later, and returns its undo.
func (n *Network) apply(side drivers.Side, f *netFault) (undo func(), err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, p := range n.proxies {
		if k.side == side {
			if err := n.applyLocked(p, f); err != nil {
				n.undoLocked(side, f)
				return nil, err
			}
		}
	}
	n.active[side] = append(n.active[side], f)
	return func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.undoLocked(side, f)
	}, nil
}

func (n *Network) applyLocked(p *proxy, f *netFault) error {
	if f.down {
		p.Stop()
		return nil
	}
	for _, t := range f.toxics {
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(t.json)); err != nil {
			return fmt.Errorf("chaos network: adding toxic %s: %w", t.json, err)
		}
	}
	return nil
}

func (n *Network) undoLocked(side drivers.Side, f *netFault) {
	for k, p := range n.proxies {
		if k.side != side {
			continue
		}
		if f.down {
			if !p.Enabled {
				_ = p.Start() // same listen address as before
			}
			continue
		}
		for _, t := range f.toxics {
			_ = p.Toxics.RemoveToxic(context.Background(), t.name)
		}
	}
	list := n.active[side]
	for i, a := range list {
		if a == f {
			n.active[side] = append(list[:i], list[i+1:]...)
			break
		}
	}
}

// Close stops every proxy; later dials fail.
func (n *Network) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	for _, p := range n.proxies {
		p.Stop()
	}
}

// Open reports how many proxies are still running, for leak checks.
func (n *Network) Open() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, p := range n.proxies {
		if p.Enabled {
			c++
		}
	}
	return c
}
