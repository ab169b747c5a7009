package eventbridge_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/spate-dev/spate/drivers/eventbridge"
)

// TestClosedRequestBodyKeepsConnection replays, step by step, the race
// the driver's HTTP client avoids (drivers/eventbridge/httpbody.go): the
// response's headers arrive while net/http is still writing the request,
// the SDK closes the request body as it does once Do returns, and then
// net/http finishes the body. With smithy-go's body as it is, that write
// fails with io.EOF and the connection is closed under the response being
// read; through the driver's client the write ends cleanly and the whole
// response is read. The first case fails if smithy-go changes, which is
// the sign that the workaround can go.
func TestClosedRequestBodyKeepsConnection(t *testing.T) {
	const size = 1 << 20 // far more than the transport's 4 KiB read buffer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for n := 0; n < size; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()

	for _, tc := range []struct {
		name     string
		readOnly bool
	}{{"smithy-body", false}, {"driver-client", true}} {
		t.Run(tc.name, func(t *testing.T) {
			gate := make(chan struct{})
			conns := make(chan *gatedConn, 1)
			tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				g := &gatedConn{Conn: c, gate: gate, closed: make(chan struct{})}
				conns <- g
				return g, nil
			}}
			defer tr.CloseIdleConnections()
			var c aws.HTTPClient = &http.Client{Transport: tr}
			if tc.readOnly {
				c = eventbridge.BodyReadOnly(c)
			}

			wrote := make(chan error, 1)
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				WroteRequest: func(i httptrace.WroteRequestInfo) { wrote <- i.Err },
			})
			sreq := smithyhttp.NewStackRequest().(*smithyhttp.Request)
			sreq.Method = http.MethodPost
			u, _ := sreq.URL.Parse(srv.URL)
			sreq.URL = u
			sreq, err := sreq.SetStream(bytes.NewReader(bytes.Repeat([]byte("{}"), 100)))
			if err != nil {
				t.Fatal(err)
			}
			req := sreq.Build(ctx)

			resp, err := c.Do(req) // the headers are in; the body's write waits at the gate
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			req.Body.Close() // what smithy-go's ClientHandler does after Do
			close(gate)
			writeErr := receive(t, wrote, "net/http to finish writing the request")
			conn := receive(t, conns, "the connection")

			body, readErr := io.ReadAll(resp.Body)
			if !tc.readOnly {
				if !errors.Is(writeErr, io.EOF) {
					t.Fatalf("request write error %v, want io.EOF: smithy-go's closed body no longer fails WriteTo, so httpbody.go may go", writeErr)
				}
				receive(t, conn.closed, "net/http to close the connection")
				if !errors.Is(readErr, net.ErrClosed) {
					t.Fatalf("reading the response: %d bytes, %v; want net.ErrClosed", len(body), readErr)
				}
				return
			}
			if writeErr != nil || readErr != nil || len(body) != size {
				t.Fatalf("request write error %v; response %d of %d bytes, %v", writeErr, len(body), size, readErr)
			}
			select {
			case <-conn.closed:
				t.Fatal("the connection was closed")
			default:
			}
		})
	}
}

// gatedConn holds its second write (the request's body, after the
// headers were flushed) until gate is closed, once the write is on the
// wire, and reports when it is closed.
type gatedConn struct {
	net.Conn
	gate   chan struct{}
	writes int
	closed chan struct{}
	once   sync.Once
}

func (g *gatedConn) Write(p []byte) (int, error) {
	n, err := g.Conn.Write(p)
	if g.writes++; g.writes == 2 {
		select {
		case <-g.gate:
		case <-time.After(10 * time.Second):
		}
	}
	return n, err
}

func (g *gatedConn) Close() error {
	g.once.Do(func() { close(g.closed) })
	return g.Conn.Close()
}

// receive returns what ch gives, failing the test after 10 s.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("waited 10s for %s", what)
		var zero T
		return zero
	}
}
