package eventbridge

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
)

// MaxEntryBytes is the largest PutEvents entry and the largest request
// (the sum of its entries), as EventBridge computes them: 256 KiB.
const MaxEntryBytes = 256 << 10

// EntryError is the outcome of a message whose PutEvents entry failed:
// EventBridge answered the entry with an error code, or the whole request
// failed (Code is then empty and Err holds the request's error).
type EntryError struct {
	Code    string // e.g. ThrottlingException, InternalFailure
	Message string
	Err     error // the request's error when the whole request failed
}

func (e *EntryError) Error() string {
	if e.Err != nil {
		return "eventbridge: PutEvents failed: " + e.Err.Error()
	}
	return fmt.Sprintf("eventbridge: PutEvents entry failed: %s: %s", e.Code, e.Message)
}

func (e *EntryError) Unwrap() error { return e.Err }

// ErrTooLarge is the outcome of a message whose entry would exceed 256 KiB.
var ErrTooLarge = errors.New("eventbridge: event larger than PutEvents' 256 KiB entry limit; use a smaller message size")

// maxBackoff caps the wait between re-sends of failed entries.
const maxBackoff = 10 * time.Second

// timeBytes is what EventBridge adds to an entry's size for its Time field.
const timeBytes = 14

// detail layout: {"run":"<16 hex>","spate":"<64 base64>","pad":"<pad>"}
const (
	detailRun   = `{"run":"`
	detailStamp = `","spate":"`
	detailPad   = `","pad":"`
	detailEnd   = `"}`
	stampB64    = 64 // base64 of stamp.Size bytes
	detailFixed = len(detailRun) + 16 + len(detailStamp) + stampB64 + len(detailPad) + len(detailEnd)
)

// padAlphabet maps filler bytes to JSON-safe characters.
const padAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// EntrySize returns the size EventBridge counts for an entry of a message
// of size bytes with this source and detail-type, as spate builds it: the
// message size, or the fixed part when the message is smaller.
func EntrySize(size int, source, detailType string) int {
	fixed := timeBytes + len(source) + len(detailType) + detailFixed
	return max(size, fixed)
}

// buildDetail returns the Detail of msg: run id, stamp and a pad that makes
// the entry's size the message size.
func buildDetail(runHex string, fixed int, head, filler []byte) string {
	pad := max(0, len(head)+len(filler)-fixed)
	var b strings.Builder
	b.Grow(detailFixed + pad)
	b.WriteString(detailRun)
	b.WriteString(runHex)
	b.WriteString(detailStamp)
	var enc [stampB64]byte
	head = head[:min(len(head), stamp.Size)]
	base64.StdEncoding.Encode(enc[:], head)
	b.Write(enc[:base64.StdEncoding.EncodedLen(len(head))])
	b.WriteString(detailPad)
	// The pad is mapped a chunk at a time (a byte at a time costs 4x):
	// from the filler, then, should the filler be shorter, from the
	// position.
	var chunk [512]byte
	src := filler[:min(len(filler), pad)]
	for len(src) > 0 {
		n := min(len(src), len(chunk))
		for j, c := range src[:n] {
			chunk[j] = padAlphabet[c&63]
		}
		b.Write(chunk[:n])
		src = src[n:]
	}
	for i := len(filler); i < pad; i++ {
		b.WriteByte(padAlphabet[byte(i)&63])
	}
	b.WriteString(detailEnd)
	return b.String()
}

// producer is one Producer: Send splits messages into PutEvents requests
// and runs up to InFlight of them at once, each on its own goroutine, which
// reports outcomes as responses arrive. As the contract says, Send and
// Close are called by one goroutine at a time; the producer's own
// goroutines (requests, the linger timer) synchronize with them.
type producer struct {
	d      *Driver
	id     int
	ack    drivers.AckFunc
	client *eventbridge.Client
	tr     *http.Transport
	fixed  int // entry bytes besides the pad
	slots  chan struct{}

	ctx    context.Context // requests' context: cancelled when Close gives up or the driver closes
	cancel context.CancelFunc
	wg     sync.WaitGroup // requests running, and an armed linger timer

	mu     sync.Mutex
	closed bool
	cur    *request    // the request being filled
	timer  *time.Timer // sends cur when Linger has passed; nil when not armed
}

// request is one PutEvents request's entries and their stamps.
type request struct {
	entries []ebtypes.PutEventsRequestEntry
	stamps  []stamp.Stamp
	bytes   int
}

// NewProducer returns producer id, which reports outcomes to ack. Its
// requests go through their own connections (Env.Dial's producer side).
func (d *Driver) NewProducer(_ context.Context, id int, ack drivers.AckFunc) (drivers.Producer, error) {
	if d.isClosed() {
		return nil, ErrClosed
	}
	if id < 0 {
		return nil, fmt.Errorf("eventbridge: producer id %d is negative", id)
	}
	if ack == nil {
		return nil, errors.New("eventbridge: producer needs an AckFunc")
	}
	hc, tr := d.httpClient(drivers.ProducerSide, d.opts.InFlight)
	d.track(tr)
	p := &producer{
		d:      d,
		id:     id,
		ack:    ack,
		client: d.eventbridgeClient(hc),
		tr:     tr,
		fixed:  timeBytes + len(d.opts.Source) + len(d.opts.DetailType) + detailFixed,
		slots:  make(chan struct{}, d.opts.InFlight),
	}
	p.ctx, p.cancel = context.WithCancel(d.ctx)
	return p, nil
}

// Send builds an entry per message and hands full requests to goroutines,
// waiting while InFlight requests are already running (and for the rate
// limit). A request that is not full waits up to Linger for more entries
// (Close sends it at once). Outcomes are reported as responses arrive. If
// ctx ends before every request left, the messages not sent are reported
// failed and Send returns ctx's error.
func (p *producer) Send(ctx context.Context, msgs []drivers.Message) error {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return errors.New("eventbridge: producer closed")
	}
	if p.d.isClosed() {
		return ErrClosed
	}
	o := &p.d.opts
	var tooBig []drivers.Result
	defer func() {
		if len(tooBig) > 0 {
			p.d.stats.TooLarge.Add(int64(len(tooBig)))
			p.report(tooBig)
		}
	}()
	for i := range msgs {
		m := &msgs[i]
		size := max(m.Size(), p.fixed)
		if size > MaxEntryBytes {
			tooBig = append(tooBig, drivers.Result{Stamp: m.Stamp, Err: ErrTooLarge})
			continue
		}
		entry := ebtypes.PutEventsRequestEntry{
			EventBusName: aws.String(p.d.bus),
			Source:       aws.String(o.Source),
			DetailType:   aws.String(o.DetailType),
			Detail:       aws.String(buildDetail(p.d.runHex, p.fixed, m.Head, m.Tail)),
		}
		p.mu.Lock()
		if p.cur != nil && (len(p.cur.entries) == o.Batch || p.cur.bytes+size > MaxEntryBytes) {
			full := p.takeLocked()
			p.mu.Unlock()
			if err := p.dispatch(ctx, full, msgs[i:]); err != nil {
				return err
			}
			p.mu.Lock()
		}
		if p.cur == nil {
			p.cur = &request{}
		}
		p.cur.entries = append(p.cur.entries, entry)
		p.cur.stamps = append(p.cur.stamps, m.Stamp)
		p.cur.bytes += size
		p.mu.Unlock()
	}
	p.mu.Lock()
	switch {
	case p.cur == nil:
	case o.Linger == 0 || len(p.cur.entries) == o.Batch:
		r := p.takeLocked()
		p.mu.Unlock()
		return p.dispatch(ctx, r, nil)
	case p.timer == nil:
		p.wg.Add(1)
		p.timer = time.AfterFunc(o.Linger, p.flush)
	}
	p.mu.Unlock()
	return nil
}

// takeLocked takes the request being filled and disarms its linger timer.
// p.mu must be held.
func (p *producer) takeLocked() *request {
	r := p.cur
	p.cur = nil
	if p.timer != nil {
		if p.timer.Stop() {
			p.wg.Done() // the timer's flush will not run
		}
		p.timer = nil
	}
	return r
}

// flush is the linger timer's: it sends the request being filled.
func (p *producer) flush() {
	defer p.wg.Done()
	p.mu.Lock()
	var r *request
	if p.timer != nil { // else Send or Close took the request first
		r, p.cur, p.timer = p.cur, nil, nil
	}
	p.mu.Unlock()
	if r != nil {
		_ = p.dispatch(p.ctx, r, nil) // a failure is reported per message
	}
}

// dispatch starts req once a slot is free. If ctx ends first, it reports
// req's messages and those of rest (not yet built into a request) as not
// sent, and returns ctx's error.
func (p *producer) dispatch(ctx context.Context, req *request, rest []drivers.Message) error {
	notSent := func(err error) error {
		res := make([]drivers.Result, 0, len(req.stamps)+len(rest))
		for _, s := range req.stamps {
			res = append(res, drivers.Result{Stamp: s, Err: fmt.Errorf("eventbridge: not sent: %w", err)})
		}
		for i := range rest {
			res = append(res, drivers.Result{Stamp: rest[i].Stamp, Err: fmt.Errorf("eventbridge: not sent: %w", err)})
		}
		p.report(res)
		return err
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return notSent(ctx.Err())
	case <-p.ctx.Done():
		return notSent(ErrClosed)
	}
	p.wg.Add(1)
	started := p.d.goroutine(func() {
		defer p.wg.Done()
		defer func() { <-p.slots }()
		p.put(req)
	})
	if !started {
		p.wg.Done()
		<-p.slots
		return notSent(ErrClosed)
	}
	return nil
}

func (p *producer) report(res []drivers.Result) {
	if len(res) > 0 {
		p.ack(res)
	}
}

// put sends req, reports each entry's outcome, and re-sends failed entries
// while retries last. If the producer's context ends (Close gave up, or
// the driver closed) during a request, its outcomes are not reported: the
// messages count as unconfirmed, since a cancelled request may have landed.
// If it ends while entries wait to be sent again, they are reported with
// their last failure.
func (p *producer) put(req *request) {
	d := p.d
	ok := make([]drivers.Result, 0, len(req.entries))
	var final []drivers.Result   // failures reported now
	var pending []drivers.Result // failures of req's entries, awaiting a re-send
	for attempt := 0; ; attempt++ {
		if d.limiter != nil {
			waited, err := d.limiter.wait(p.ctx, len(req.entries))
			if err != nil {
				p.report(pending) // known failures; no new attempt left
				return
			}
			if waited {
				d.stats.RateWaits.Add(1)
			}
		}
		d.stats.PutRequests.Add(1)
		out, err := p.client.PutEvents(p.ctx, &eventbridge.PutEventsInput{Entries: req.entries})
		if p.ctx.Err() != nil {
			return
		}
		ok, final = ok[:0], final[:0]
		var again request // entries to send again
		pending = nil
		canRetry := attempt < d.opts.Retries
		fail := func(i int, e error, transient bool) {
			if transient && canRetry {
				again.add(req, i)
				pending = append(pending, drivers.Result{Stamp: req.stamps[i], Err: e})
				return
			}
			final = append(final, drivers.Result{Stamp: req.stamps[i], Err: e})
		}
		if err != nil {
			d.stats.PutErrors.Add(1)
			d.stats.EntriesFailed.Add(int64(len(req.entries)))
			d.log.Debug("eventbridge: PutEvents failed", "producer", p.id, "entries", len(req.entries), "err", err)
			transient := !isPermanent(err)
			for i := range req.stamps {
				fail(i, &EntryError{Err: err}, transient)
			}
		} else {
			d.stats.SDKRetries.Add(int64(sdkRetries(out)))
			var failed int64
			for i, s := range req.stamps {
				var e ebtypes.PutEventsResultEntry
				if i < len(out.Entries) {
					e = out.Entries[i]
				} else {
					e.ErrorCode, e.ErrorMessage = aws.String("MissingResultEntry"), aws.String("PutEvents returned fewer result entries than it was sent")
				}
				if e.ErrorCode == nil && e.EventId != nil {
					ok = append(ok, drivers.Result{Stamp: s})
					continue
				}
				failed++
				code := aws.ToString(e.ErrorCode)
				if code == "" {
					code = "MissingEventId"
				}
				if code == "ThrottlingException" {
					d.stats.Throttled.Add(1)
				}
				fail(i, &EntryError{Code: code, Message: aws.ToString(e.ErrorMessage)}, transientCode(code))
			}
			d.stats.EntriesOK.Add(int64(len(ok)))
			d.stats.EntriesFailed.Add(failed)
		}
		p.report(ok)
		p.report(final)
		if len(again.entries) == 0 {
			return
		}
		d.stats.EntriesRetried.Add(int64(len(again.entries)))
		if !sleep(p.ctx, backoff(d.opts.RetryBackoff, attempt)) {
			p.report(pending)
			return
		}
		req = &again
	}
}

// sdkRetries returns how many extra attempts the SDK's retryer made.
func sdkRetries(out *eventbridge.PutEventsOutput) int {
	ar, ok := retry.GetAttemptResults(out.ResultMetadata)
	if !ok || len(ar.Results) == 0 {
		return 0
	}
	return len(ar.Results) - 1
}

func (r *request) add(from *request, i int) {
	r.entries = append(r.entries, from.entries[i])
	r.stamps = append(r.stamps, from.stamps[i])
}

// transientCode reports whether an entry error code may go away on its own.
func transientCode(code string) bool {
	switch code {
	case "ThrottlingException", "InternalFailure", "InternalException", "ServiceUnavailable",
		"ServiceUnavailableException", "MissingResultEntry", "MissingEventId":
		return true
	}
	return false
}

// backoff is the wait before re-send attempt+1: base doubled per attempt,
// at most maxBackoff.
func backoff(base time.Duration, attempt int) time.Duration {
	if base <= 0 {
		return 0
	}
	f := float64(base) * math.Pow(2, float64(attempt))
	if f > float64(maxBackoff) {
		return maxBackoff
	}
	return time.Duration(f)
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Close sends the request still lingering, waits until every request has
// reported its outcomes, or ctx ends; then it cancels what is still running (those messages stay unconfirmed)
// and drops the producer's connections.
func (p *producer) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	r := p.takeLocked()
	p.mu.Unlock()
	if r != nil {
		_ = p.dispatch(ctx, r, nil) // if ctx ends first, its messages are reported not sent
	}
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("eventbridge: producer %d: outcomes still pending when Close gave up: %w", p.id, ctx.Err())
		p.cancel()
		<-done
	}
	p.cancel()
	p.tr.CloseIdleConnections()
	return err
}

// limiter is a token bucket of PutEvents entries shared by a driver's
// producers. It is safe for concurrent use.
type limiter struct {
	mu     sync.Mutex
	perSec float64
	burst  float64
	tokens float64
	last   time.Time
}

// newLimiter allows perSec entries a second with a burst of 50ms worth, but
// at least one request of batch entries.
func newLimiter(perSec float64, batch int) *limiter {
	burst := max(float64(batch), perSec/20)
	return &limiter{perSec: perSec, burst: burst, tokens: burst, last: time.Now()}
}

// wait takes n tokens, waiting until the bucket has refilled enough; it
// reports whether it had to wait. Tokens are taken before the wait, so
// concurrent callers queue fairly.
func (l *limiter) wait(ctx context.Context, n int) (bool, error) {
	l.mu.Lock()
	now := time.Now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.perSec)
	l.last = now
	l.tokens -= float64(n)
	deficit := -l.tokens
	l.mu.Unlock()
	if deficit <= 0 {
		return false, nil
	}
	d := time.Duration(deficit / l.perSec * float64(time.Second))
	if !sleep(ctx, d) {
		return true, ctx.Err()
	}
	return true, nil
}
