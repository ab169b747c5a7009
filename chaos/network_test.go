package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/spate-dev/spate/drivers"
)

// echoServer answers every connection by echoing what it reads.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// roundTrip writes n bytes and reads them back, within d.
func roundTrip(c net.Conn, n int, d time.Duration) (time.Duration, error) {
	start := time.Now()
	_ = c.SetDeadline(start.Add(d))
	msg := bytes.Repeat([]byte{'x'}, n)
	if _, err := c.Write(msg); err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func apply(t *testing.T, n *Network, side drivers.Side, kind string, streams []string, attrs map[string]any) func() {
	t.Helper()
	f := &netFault{down: kind == "down"}
	for _, s := range streams {
		name := n.toxicName(kind)
		b, _ := json.Marshal(map[string]any{"name": name, "type": kind, "stream": s, "toxicity": 1.0, "attributes": attrs})
		f.toxics = append(f.toxics, toxic{name: name, json: string(b)})
	}
	undo, err := n.apply(side, f)
	if err != nil {
		t.Fatal(err)
	}
	return undo
}

// TestNetworkFaults drives each fault through a real TCP echo server and
// checks it does what it says, only on its side, and that undoing it
// restores the connection's behaviour.
func TestNetworkFaults(t *testing.T) {
	up := echoServer(t)
	n := NewNetwork()
	defer n.Close()
	ctx := context.Background()
	dial := func(side drivers.Side) net.Conn {
		t.Helper()
		c, err := n.Dial(ctx, side, "tcp", up)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	prod, cons := dial(drivers.ProducerSide), dial(drivers.ConsumerSide)
	if n.Proxies(drivers.ProducerSide) != 1 || n.Proxies(drivers.ConsumerSide) != 1 {
		t.Fatal("one proxy per side and upstream")
	}

	t.Run("latency", func(t *testing.T) {
		undo := apply(t, n, drivers.ProducerSide, "latency", []string{"downstream"}, map[string]any{"latency": 200, "jitter": 0})
		if d, err := roundTrip(prod, 10, 5*time.Second); err != nil || d < 200*time.Millisecond {
			t.Errorf("producer round trip %v, %v; want ≥ 200ms", d, err)
		}
		if d, err := roundTrip(cons, 10, 5*time.Second); err != nil || d >= 200*time.Millisecond {
			t.Errorf("consumer round trip %v, %v; the other side must not be slowed", d, err)
		}
		undo()
		if d, err := roundTrip(prod, 10, 5*time.Second); err != nil || d >= 200*time.Millisecond {
			t.Errorf("after undo: %v, %v", d, err)
		}
	})

	t.Run("bandwidth", func(t *testing.T) {
		undo := apply(t, n, drivers.ConsumerSide, "bandwidth", []string{"upstream", "downstream"}, map[string]any{"rate": 64}) // KB/s
		// 64 KiB each way at 64 KB/s takes about a second.
		if d, err := roundTrip(cons, 64<<10, 10*time.Second); err != nil || d < 700*time.Millisecond {
			t.Errorf("64KiB round trip at 64KB/s took %v, %v", d, err)
		}
		undo()
	})

	t.Run("blackhole", func(t *testing.T) {
		undo := apply(t, n, drivers.ProducerSide, "timeout", []string{"upstream", "downstream"}, map[string]any{"timeout": 0})
		_, err := roundTrip(prod, 10, 300*time.Millisecond)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("blackholed round trip: %v, want a timeout (data dropped, connection held)", err)
		}
		undo()
		fresh := dial(drivers.ProducerSide)
		if _, err := roundTrip(fresh, 10, 5*time.Second); err != nil {
			t.Errorf("after undo: %v", err)
		}
	})

	t.Run("down", func(t *testing.T) {
		c := dial(drivers.ConsumerSide)
		undo := apply(t, n, drivers.ConsumerSide, "down", nil, nil)
		if _, err := roundTrip(c, 10, 2*time.Second); err == nil {
			t.Error("a connection survived the partition")
		}
		if c2, err := n.Dial(ctx, drivers.ConsumerSide, "tcp", up); err == nil {
			if _, err := roundTrip(c2, 10, time.Second); err == nil {
				t.Error("a new connection worked during the partition")
			}
			c2.Close()
		}
		undo()
		if _, err := roundTrip(dial(drivers.ConsumerSide), 10, 5*time.Second); err != nil {
			t.Errorf("after the partition healed: %v", err)
		}
	})

	t.Run("reset", func(t *testing.T) {
		c := dial(drivers.ProducerSide)
		undo := apply(t, n, drivers.ProducerSide, "reset_peer", []string{"upstream"}, map[string]any{"timeout": 0})
		if _, err := roundTrip(c, 10, 2*time.Second); err == nil {
			t.Error("the connection was not reset")
		}
		undo()
	})

	if n.Open() != 2 {
		t.Errorf("%d proxies running, want 2", n.Open())
	}
	n.Close()
	if n.Open() != 0 {
		t.Errorf("%d proxies still running after Close", n.Open())
	}
	if _, err := n.Dial(ctx, drivers.ProducerSide, "tcp", up); err == nil {
		t.Error("Dial after Close succeeded")
	}
}
