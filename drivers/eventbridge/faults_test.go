package eventbridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/eventbridge"
	"github.com/spate-dev/spate/drivers/stamp"
	"github.com/spate-dev/spate/scenarios"
)

// putFaults fails picked PutEvents entries, once each, in the producers'
// HTTP transport, the way EventBridge reports partial failures: HTTP 200
// with FailedEntryCount and an ErrorCode per failed entry. Without landed,
// failed entries are taken out of the request (throttled: they never reach
// the bus); with landed, the whole request goes through and the picked
// entries are reported failed all the same (the ambiguous case: a re-send
// is a duplicate). It is safe for concurrent use.
type putFaults struct {
	landed bool
	code   string
	pick   func(producer uint32, seq uint64) bool
	// copies is how many deliveries of each failed entry the producers'
	// Close waits for, so that late copies (which the engine's drain does
	// not wait for: they were not acked, or were received already) are
	// counted before the run ends.
	copies int

	mu     sync.Mutex
	done   map[[2]uint64]bool
	seen   map[[2]uint64]int // deliveries of the failed entries
	failed atomic.Int64
}

// delivered counts the deliveries of failed entries in batch.
func (f *putFaults) delivered(batch []drivers.Delivery) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, dl := range batch {
		s, err := stamp.Parse(dl.Stamp)
		if err != nil {
			continue
		}
		if key := [2]uint64{uint64(s.Producer), s.Seq}; f.done[key] {
			f.seen[key]++
		}
	}
}

// waitCopies waits until every failed entry was delivered f.copies times,
// or ctx ends.
func (f *putFaults) waitCopies(ctx context.Context) {
	for {
		f.mu.Lock()
		ok := true
		for key := range f.done {
			if f.seen[key] < f.copies {
				ok = false
				break
			}
		}
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// kind returns the eventbridge Kind with f in every producer's transport.
func (f *putFaults) kind() drivers.Kind {
	return drivers.Kind{
		Name: eventbridge.Kind.Name,
		Options: func(d *scenarios.Decoder, n *yaml.Node, field string) any {
			o, ok := eventbridge.Kind.Options(d, n, field).(eventbridge.Options)
			if !ok {
				return nil
			}
			eventbridge.SetTransportWrapper(&o, func(side drivers.Side, rt http.RoundTripper) http.RoundTripper {
				if side != drivers.ProducerSide {
					return rt
				}
				return &faultRT{f: f, next: rt}
			})
			return o
		},
		Open: func(ctx context.Context, options any, env drivers.Env) (drivers.Driver, error) {
			d, err := eventbridge.Kind.Open(ctx, options, env)
			if err != nil {
				return nil, err
			}
			return &faultDriver{Driver: d, f: f}, nil
		},
	}
}

// faultDriver counts the deliveries of failed entries and makes producers'
// Close wait for their copies.
type faultDriver struct {
	drivers.Driver
	f *putFaults
}

func (fd *faultDriver) Stats() map[string]int64 { return fd.Driver.(drivers.StatsReporter).Stats() }

func (fd *faultDriver) NewProducer(ctx context.Context, id int, ack drivers.AckFunc) (drivers.Producer, error) {
	p, err := fd.Driver.NewProducer(ctx, id, ack)
	if err != nil {
		return nil, err
	}
	return &faultProducer{Producer: p, f: fd.f}, nil
}

func (fd *faultDriver) NewConsumer(ctx context.Context, id int) (drivers.Consumer, error) {
	c, err := fd.Driver.NewConsumer(ctx, id)
	if err != nil {
		return nil, err
	}
	return faultConsumer{c, fd.f}, nil
}

type faultProducer struct {
	drivers.Producer
	f *putFaults
}

func (fp *faultProducer) Close(ctx context.Context) error {
	err := fp.Producer.Close(ctx)
	fp.f.waitCopies(ctx)
	return err
}

type faultConsumer struct {
	drivers.Consumer
	f *putFaults
}

func (fc faultConsumer) Consume(ctx context.Context, h drivers.Handler) error {
	return fc.Consumer.Consume(ctx, func(batch []drivers.Delivery) {
		fc.f.delivered(batch)
		h(batch)
	})
}

type faultRT struct {
	f    *putFaults
	next http.RoundTripper
}

type putEventsOutput struct {
	FailedEntryCount int               `json:"FailedEntryCount"`
	Entries          []json.RawMessage `json:"Entries"`
}

func (rt *faultRT) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("X-Amz-Target") != "AWSEvents.PutEvents" {
		return rt.next.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	var in map[string]json.RawMessage
	var entries []json.RawMessage
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(in["Entries"], &entries); err != nil {
		return nil, err
	}
	f := rt.f
	fail := make([]bool, len(entries))
	var fwd []json.RawMessage
	f.mu.Lock()
	if f.done == nil {
		f.done, f.seen = map[[2]uint64]bool{}, map[[2]uint64]int{}
	}
	for i, e := range entries {
		var ent struct{ Detail string }
		var st [stamp.Size]byte
		if json.Unmarshal(e, &ent) == nil && eventbridge.StampOf(ent.Detail, &st) == eventbridge.StampFound {
			s, _ := stamp.Parse(st[:])
			key := [2]uint64{uint64(s.Producer), s.Seq}
			if f.pick(s.Producer, s.Seq) && !f.done[key] {
				f.done[key] = true
				fail[i] = true
				f.failed.Add(1)
			}
		}
		if !fail[i] || f.landed {
			fwd = append(fwd, e)
		}
	}
	f.mu.Unlock()

	var got putEventsOutput
	var header http.Header
	if len(fwd) > 0 {
		in["Entries"], _ = json.Marshal(fwd)
		nb, _ := json.Marshal(in)
		r2 := req.Clone(req.Context())
		r2.Body = io.NopCloser(bytes.NewReader(nb))
		r2.ContentLength = int64(len(nb))
		resp, err := rt.next.RoundTrip(r2)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return resp, nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &got); err != nil {
			return nil, fmt.Errorf("fault transport: response %q: %w", b, err)
		}
		header = resp.Header.Clone()
	} else {
		header = http.Header{"Content-Type": {"application/x-amz-json-1.1"}}
	}
	out := putEventsOutput{FailedEntryCount: got.FailedEntryCount}
	j := 0
	for i := range entries {
		if fail[i] {
			e, _ := json.Marshal(map[string]string{"ErrorCode": f.code, "ErrorMessage": "injected by the test transport"})
			out.Entries = append(out.Entries, e)
			out.FailedEntryCount++
			if f.landed {
				j++
			}
			continue
		}
		if j < len(got.Entries) {
			out.Entries = append(out.Entries, got.Entries[j])
		}
		j++
	}
	ob, _ := json.Marshal(out)
	header.Del("Content-Length")
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: header, Body: io.NopCloser(bytes.NewReader(ob)), ContentLength: int64(len(ob)), Request: req,
	}, nil
}

// TestPartialFailures: entries failed by PutEvents are counted as failed
// per message; with retries they are sent again and counted in the
// driver's stats; and when a "failed" entry had in fact landed, the
// re-send shows as a duplicate. One message in ten fails its first attempt.
func TestPartialFailures(t *testing.T) {
	k := startKumo(t)
	pick := func(_ uint32, seq uint64) bool { return seq%10 == 3 }
	for _, tc := range []struct {
		name    string
		landed  bool
		code    string
		copies  int // deliveries of each failed entry to wait for
		options string
		check   func(t *testing.T, c accounting.Counts, st map[string]int64, picked int64)
	}{
		{"throttled", false, "ThrottlingException", 0, "", func(t *testing.T, c accounting.Counts, st map[string]int64, picked int64) {
			expect(t, "failed", c.Failed, picked)
			expect(t, "acked", c.Acked, c.Sent-picked)
			expect(t, "received", c.Received, c.Sent-picked)
			expect(t, "lost", c.Lost, 0)
			expect(t, "duplicates", c.Duplicates, 0)
			expect(t, "stats throttled", st["throttled"], picked)
			expect(t, "stats entries_failed", st["entries_failed"], picked)
			expect(t, "stats entries_retried", st["entries_retried"], 0)
		}},
		{"throttled, retried", false, "ThrottlingException", 1, ", retries: 2, retry-backoff: 10ms", func(t *testing.T, c accounting.Counts, st map[string]int64, picked int64) {
			expect(t, "failed", c.Failed, 0)
			expect(t, "acked", c.Acked, c.Sent)
			expect(t, "received", c.Received, c.Sent)
			expect(t, "lost", c.Lost, 0)
			expect(t, "duplicates", c.Duplicates, 0)
			expect(t, "stats throttled", st["throttled"], picked)
			expect(t, "stats entries_retried", st["entries_retried"], picked)
		}},
		{"landed, reported failed", true, "InternalFailure", 1, "", func(t *testing.T, c accounting.Counts, st map[string]int64, picked int64) {
			expect(t, "failed", c.Failed, picked)
			expect(t, "unconfirmed delivered", c.UnconfirmedDelivered, picked)
			expect(t, "received", c.Received, c.Sent)
			expect(t, "duplicates", c.Duplicates, 0)
		}},
		{"landed, retried", true, "InternalFailure", 2, ", retries: 1, retry-backoff: 10ms", func(t *testing.T, c accounting.Counts, st map[string]int64, picked int64) {
			expect(t, "failed", c.Failed, 0)
			expect(t, "acked", c.Acked, c.Sent)
			expect(t, "received", c.Received, c.Sent)
			expect(t, "duplicates", c.Duplicates, picked)
			expect(t, "lost", c.Lost, 0)
			expect(t, "stats entries_retried", st["entries_retried"], picked)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &putFaults{landed: tc.landed, code: tc.code, pick: pick, copies: tc.copies}
			kind := f.kind()
			sc := load(t, fmt.Sprintf(`
driver: {eventbridge: {endpoint: %q, provision: true%s}}
producers: 2
message: {size: 200B}
traffic:
  - constant: {rate: 400/s, for: 2s}
drain: 15s
`, k.URL(), tc.options), kind)
			res := runScenario(t, sc, kind)
			picked := f.failed.Load()
			if picked < 50 {
				t.Fatalf("only %d entries failed; the test proves little", picked)
			}
			expect(t, "unsent", res.Counts.Unsent, 0)
			expect(t, "malformed", res.Counts.Malformed, 0)
			tc.check(t, res.Counts, res.DriverStats, picked)
		})
	}
}

// TestEntryErrorText: a per-entry failure names the code and the message.
func TestEntryErrorText(t *testing.T) {
	e := &eventbridge.EntryError{Code: "ThrottlingException", Message: "Rate exceeded"}
	if got, want := e.Error(), "eventbridge: PutEvents entry failed: ThrottlingException: Rate exceeded"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}
