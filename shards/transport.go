package shards

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// longPoll is how long the coordinator holds a request that waits for the
// run to reach a phase before answering "pending" (the shard asks again).
const longPoll = 5 * time.Second

// Request body limits: a sync carries set pages (a few per producer and
// subscription); a final, a shard's whole state.
const (
	maxSyncBody  = 256 << 20
	maxFinalBody = maxStateBytes + maxArtifactBytes
	maxSmallBody = 1 << 20
)

// server serves the coordinator's API.
type server struct {
	co   *coordinator
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
	// extra, when set, serves every path the API does not (the report
	// files, for fetching after the run).
	extra http.Handler
}

// serve listens on addr and serves co, and extra (may be nil) on every
// other path.
func serve(addr string, co *coordinator, extra http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("the coordinator cannot listen on %s: %w", addr, err)
	}
	s := &server{co: co, ln: ln, done: make(chan struct{}), extra: extra}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathRegister, handle(maxSmallBody, func(r *http.Request, req registerRequest) (any, error) {
		return co.register(r.Context(), req)
	}))
	mux.HandleFunc("POST "+pathClock, func(w http.ResponseWriter, r *http.Request) {
		t2 := co.clock.now() // before reading the body: the round trip excludes the coordinator's work
		var req clockRequest
		if err := decodeBody(w, r, maxSmallBody, &req); err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, co.clockReading(t2))
	})
	mux.HandleFunc("POST "+pathOpen, handle(maxSmallBody, func(r *http.Request, req memberRequest) (any, error) {
		ok, err := co.open(r.Context(), req, longPoll)
		if err != nil || !ok {
			return pendingResponse{Pending: true}, err
		}
		return openResponse{}, nil
	}))
	mux.HandleFunc("POST "+pathReady, handle(maxSmallBody, func(r *http.Request, req readyRequest) (any, error) {
		resp, ok, err := co.ready(r.Context(), req, longPoll)
		if err != nil || !ok {
			return pendingResponse{Pending: true}, err
		}
		return resp, nil
	}))
	mux.HandleFunc("POST "+pathSync, handle(maxSyncBody, func(r *http.Request, req syncRequest) (any, error) {
		deltas, err := decodeDeltas(req)
		if err != nil {
			return nil, err
		}
		return co.sync(req, deltas)
	}))
	mux.HandleFunc("POST "+pathFinal, handle(maxFinalBody, func(r *http.Request, req finalRequest) (any, error) {
		a, err := decodeArtifact(bytes.NewReader(req.Artifact), bytes.NewReader(req.State))
		if err != nil {
			return nil, &refusal{msg: "artifact: " + err.Error(), fatal: true}
		}
		return finalResponse{}, co.final(req.memberRequest, a)
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if s.extra != nil {
			s.extra.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Addr is the address the coordinator listens on.
func (s *server) Addr() string { return s.ln.Addr().String() }

// close stops serving, bounded.
func (s *server) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	<-s.done
}

// handle decodes a JSON request of type Req (at most limit bytes), calls
// fn and writes its answer as JSON, or its error.
func handle[Req any](limit int64, fn func(r *http.Request, req Req) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if err := decodeBody(w, r, limit, &req); err != nil {
			writeError(w, err)
			return
		}
		resp, err := fn(r, req)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, resp)
	}
}

func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit)).Decode(v); err != nil {
		return &refusal{msg: "bad request: " + err.Error(), fatal: true}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	var r *refusal
	if errors.As(err, &r) {
		status := http.StatusServiceUnavailable
		if r.fatal {
			status = http.StatusConflict
		}
		writeJSON(w, status, errorResponse{Error: r.msg, Fatal: r.fatal})
		return
	}
	writeJSON(w, http.StatusInternalServerError, errorResponse{Error: err.Error()})
}

// client calls the coordinator's API.
type client struct {
	base string
	http *http.Client
}

func newClient(addr string) *client {
	return &client{base: "http://" + addr, http: &http.Client{Timeout: longPoll + requestTimeout}}
}

// call posts req to path and decodes the answer into resp. It reports
// pending when the coordinator asked to poll again; a refusal comes back
// as a *refusal.
func (c *client) call(ctx context.Context, path string, req, resp any) (pending bool, err error) {
	body, err := json.Marshal(req)
	if err != nil {
		return false, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	hr.Header.Set("Content-Type", "application/json")
	r, err := c.http.Do(hr)
	if err != nil {
		return false, err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(io.LimitReader(r.Body, maxSmallBody))
	if err != nil {
		return false, err
	}
	if r.StatusCode != http.StatusOK {
		var e errorResponse
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			return false, fmt.Errorf("%s: %s", path, r.Status)
		}
		return false, &refusal{msg: e.Error, fatal: e.Fatal}
	}
	var p pendingResponse
	if json.Unmarshal(b, &p) == nil && p.Pending {
		return true, nil
	}
	return false, json.Unmarshal(b, resp)
}

// poll calls path until it is not pending, ctx ends or a refusal comes.
// Connection errors are retried until retryFor has passed without an
// answer.
func (c *client) poll(ctx context.Context, path string, req, resp any, retryFor time.Duration) error {
	lastAnswer := time.Now()
	for {
		pending, err := c.call(ctx, path, req, resp)
		var r *refusal
		switch {
		case err == nil && !pending:
			return nil
		case errors.As(err, &r) && (r.fatal || errors.Is(ctx.Err(), context.Canceled)):
			return err
		case err == nil || errors.As(err, &r):
			lastAnswer = time.Now()
		case time.Since(lastAnswer) > retryFor:
			return fmt.Errorf("no answer from the coordinator at %s for %s: %w", c.base, retryFor.Round(time.Second), err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil { // not answered, or refused for now: do not spin
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}
