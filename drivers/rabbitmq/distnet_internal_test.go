package rabbitmq

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// These tests exercise the cluster's port mapper and distribution proxies
// with fake nodes, no RabbitMQ needed.

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// epmdRequest sends one request to the port mapper and returns the
// connection, for reading the answer.
func epmdRequest(t *testing.T, port int, req []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := binary.BigEndian.AppendUint16(nil, uint16(len(req)))
	if _, err := c.Write(append(msg, req...)); err != nil {
		t.Fatal(err)
	}
	return c
}

// register registers node name at port and returns the connection that
// holds the registration.
func register(t *testing.T, port int, name string, nodePort int) net.Conn {
	t.Helper()
	req := []byte{epmdAlive2Req}
	req = binary.BigEndian.AppendUint16(req, uint16(nodePort))
	req = append(req, 77, 0)                    // normal node, TCP
	req = binary.BigEndian.AppendUint16(req, 6) // highest version
	req = binary.BigEndian.AppendUint16(req, 5) // lowest
	req = binary.BigEndian.AppendUint16(req, uint16(len(name)))
	req = append(req, name...)
	req = binary.BigEndian.AppendUint16(req, 0)
	c := epmdRequest(t, port, req)
	resp := make([]byte, 6)
	if _, err := io.ReadFull(c, resp); err != nil {
		t.Fatal(err)
	}
	if resp[0] != epmdAlive2XResp || resp[1] != 0 {
		t.Fatalf("ALIVE2 response %v", resp)
	}
	return c
}

// portOf asks the port mapper for name's port; 0 when it has none.
func portOf(t *testing.T, port int, name string) int {
	t.Helper()
	c := epmdRequest(t, port, append([]byte{epmdPortPlease2}, name...))
	resp, _ := io.ReadAll(c)
	if len(resp) < 2 || resp[0] != epmdPort2Resp {
		t.Fatalf("PORT2 response %v", resp)
	}
	if resp[1] != 0 {
		return 0
	}
	if got := string(resp[12 : 12+int(binary.BigEndian.Uint16(resp[10:]))]); got != name {
		t.Errorf("PORT2 response names %q, want %q", got, name)
	}
	return int(binary.BigEndian.Uint16(resp[2:]))
}

func TestPortMapper(t *testing.T) {
	e, err := startEPMD(quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	reg := register(t, e.Port(), "a", 20001)
	register(t, e.Port(), "b", 20002)
	if p := portOf(t, e.Port(), "a"); p != 20001 {
		t.Errorf("port of a: %d, want 20001", p)
	}
	e.setRedirect("b", 30002)
	if p := portOf(t, e.Port(), "b"); p != 30002 {
		t.Errorf("port of b: %d, want its proxy's 30002", p)
	}
	if p := portOf(t, e.Port(), "nobody"); p != 0 {
		t.Errorf("port of an unknown node: %d", p)
	}
	names, _ := io.ReadAll(epmdRequest(t, e.Port(), []byte{epmdNamesReq}))
	if len(names) < 4 || int(binary.BigEndian.Uint32(names)) != e.Port() ||
		string(names[4:]) != "name a at port 20001\nname b at port 20002\n" {
		t.Errorf("NAMES response %q", names)
	}
	// A registration lasts as long as its connection.
	reg.Close()
	deadline := time.Now().Add(10 * time.Second)
	for portOf(t, e.Port(), "a") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a is still registered after its connection closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sendName is a distribution handshake's first message: version 6 ('N')
// or 5 ('n').
func sendName(name string, v6 bool) []byte {
	var body []byte
	if v6 {
		body = append([]byte{'N'}, make([]byte, 12)...) // flags, creation
		body = binary.BigEndian.AppendUint16(body, uint16(len(name)))
		body = append(body, name...)
	} else {
		body = append([]byte{'n', 0, 5, 0, 0, 0, 0}, name...)
	}
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(body))), body...)
}

func TestReadSendName(t *testing.T) {
	for _, v6 := range []bool{true, false} {
		msg := sendName("spate-1@localhost", v6)
		got, name, err := readSendName(strings.NewReader(string(msg) + "rest"))
		if err != nil || name != "spate-1" || string(got) != string(msg) {
			t.Errorf("v6 %v: name %q, bytes %v, err %v", v6, name, got, err)
		}
	}
	if _, name, err := readSendName(strings.NewReader("\x00\x03xyz")); err != nil || name != "" {
		t.Errorf("not a send_name: name %q, err %v", name, err)
	}
}

// fakeNode accepts distribution connections and echoes what it reads.
func fakeNode(t *testing.T) int {
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
	return ln.Addr().(*net.TCPAddr).Port
}

// dialAs connects to a proxy as node name and checks that the handshake
// and a message come back (the fake node echoes), or that the proxy closes
// the connection when blocked.
func dialAs(t *testing.T, proxy int, name string) error {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", proxy))
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := append(sendName(name, true), "ping"...)
	if _, err := c.Write(msg); err != nil {
		return err
	}
	back := make([]byte, len(msg))
	if _, err := io.ReadFull(bufio.NewReader(c), back); err != nil {
		return fmt.Errorf("no echo: %w", err)
	}
	return nil
}

// TestPartitionProxies: connections between members pass until a member
// is isolated; then its open connections are closed and new ones refused,
// in both directions, while non-members still pass; heal lets them
// through again.
func TestPartitionProxies(t *testing.T) {
	e, err := startEPMD(quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	dn := newDistNet(quietLog(), e)
	defer dn.close()
	var proxies []int
	for i, name := range []string{"n0", "n1", "n2"} {
		register(t, e.Port(), name, fakeNode(t))
		p, err := dn.addMember(i, name)
		if err != nil {
			t.Fatal(err)
		}
		proxies = append(proxies, p)
		if got := portOf(t, e.Port(), name); got != p {
			t.Errorf("port mapper gives %d for %s, want its proxy %d", got, name, p)
		}
	}
	for _, from := range []string{"n0", "n2", "rabbitmqcli-1-n1"} {
		if err := dialAs(t, proxies[1], from+"@localhost"); err != nil {
			t.Errorf("%s -> n1 before the partition: %v", from, err)
		}
	}
	// An open connection n0 -> n1, cut by the partition.
	open, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", proxies[1]))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if _, err := open.Write(sendName("n0@localhost", false)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool {
		dn.mu.Lock()
		defer dn.mu.Unlock()
		for l := range dn.links {
			if l.from == 0 && l.up != nil {
				return true
			}
		}
		return false
	})

	if n := dn.isolate(1); n < 1 {
		t.Errorf("isolate closed %d connections, want the open one", n)
	}
	_ = open.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := open.Read(make([]byte, 64)); !errors.Is(err, io.EOF) {
		// The echo of the handshake may come first; then the close.
		if _, err = open.Read(make([]byte, 64)); !errors.Is(err, io.EOF) {
			t.Errorf("the open connection was not closed: %v", err)
		}
	}
	for _, tc := range []struct {
		from  string
		to    int
		block bool
	}{
		{"n0", 1, true}, {"n2", 1, true}, {"n1", 0, true}, {"n1", 2, true},
		{"n0", 2, false}, {"n2", 0, false}, {"rabbitmqcli-2-n1", 1, false},
	} {
		err := dialAs(t, proxies[tc.to], tc.from+"@localhost")
		if blocked := err != nil; blocked != tc.block {
			t.Errorf("%s -> n%d during the partition: blocked %v (%v), want %v", tc.from, tc.to, blocked, err, tc.block)
		}
	}
	if !dn.isolated() {
		t.Error("isolated() is false during the partition")
	}
	dn.heal(1)
	if dn.isolated() {
		t.Error("isolated() is true after heal")
	}
	for _, from := range []string{"n0", "n2"} {
		if err := dialAs(t, proxies[1], from+"@localhost"); err != nil {
			t.Errorf("%s -> n1 after heal: %v", from, err)
		}
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestParseLeaders(t *testing.T) {
	index := map[string]int{"spate-x-0@localhost": 0, "spate-x-1@localhost": 1, "spate-x-2@localhost": 2}
	out := "cl\tclassic\t\t<spate-x-2@localhost.1796285639.1360.0>\n" +
		"qq\tquorum\tspate-x-1@localhost\t<spate-x-1@localhost.1796285640.1396.0>\n" +
		"st\tstream\tspate-x-0@localhost\t\n" +
		"nl\tquorum\t\t\n"
	got := parseLeaders(out, index, []string{"cl", "qq", "st", "nl", "gone"})
	want := map[string]int{"cl": 2, "qq": 1, "st": 0, "nl": -1, "gone": -1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("leaders %v, want %v", got, want)
	}
}

func TestParseCallLeaders(t *testing.T) {
	index := map[string]int{"spate-x-0@localhost": 0, "spate-x-1@localhost": 1}
	out := "7171=spate-x-1@localhost;636C=spate-x-0@localhost;6E6C=;zz=spate-x-0@localhost;"
	got := parseCallLeaders(out, index, []string{"qq", "cl", "nl", "gone"})
	want := map[string]int{"qq": 1, "cl": 0, "nl": -1, "gone": -1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("leaders %v, want %v", got, want)
	}
}
