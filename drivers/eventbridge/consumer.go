package eventbridge

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/stamp"
)

// Consumer tuning.
const (
	// maxHandled bounds the deliveries handed to one Handler call: batches
	// that several receivers got at once are merged up to it.
	maxHandled = 100
	// deleters is the number of concurrent DeleteMessageBatch calls per
	// Consume call.
	deleters = 2
	// flushTimeout bounds the deletes of a consumer stopping cleanly.
	flushTimeout = 10 * time.Second
	// maxPause caps the wait between failed receives.
	maxPause = 2 * time.Second
)

// consumer is one Consumer: receivers long-poll the queue, one goroutine
// calls the Handler, deleters delete what was handled. Several Consume
// calls may run at once, each with its own receivers and Handler; Crash
// stops them all.
type consumer struct {
	d      *Driver
	id     int
	client *sqs.Client
	tr     *http.Transport

	ctx     context.Context // cancelled by Crash and by the driver's Close
	cancel  context.CancelFunc
	crashed atomic.Bool
}

var _ drivers.Crasher = (*consumer)(nil)

// NewConsumer returns consumer id. The queue exists since Open, so every
// event routed to it from now on reaches this consumer or another one.
// The consumer has its own connections (Env.Dial's consumer side).
func (d *Driver) NewConsumer(_ context.Context, id int) (drivers.Consumer, error) {
	if d.isClosed() {
		return nil, ErrClosed
	}
	if id < 0 {
		return nil, fmt.Errorf("eventbridge: consumer id %d is negative", id)
	}
	hc, tr := d.httpClient(drivers.ConsumerSide, d.opts.Receivers+deleters)
	d.track(tr)
	c := &consumer{d: d, id: id, client: d.sqsClient(hc), tr: tr}
	c.ctx, c.cancel = context.WithCancel(d.ctx)
	return c, nil
}

// Crash makes Consume return drivers.ErrCrashed at once: receives and
// deletes in progress are cancelled, deletes not yet made are dropped, and
// the consumer's connections are closed. Messages it received and did not
// delete become visible to other consumers after the visibility timeout.
// Crash is safe to call from any goroutine, including from the Handler,
// and more than once.
func (c *consumer) Crash() {
	if c.crashed.Swap(true) {
		return
	}
	c.d.stats.Crashes.Add(1)
	c.d.log.Info("eventbridge consumer crashed", "consumer", c.id)
	c.cancel()
	c.tr.CloseIdleConnections()
}

// Consume receives from the queue and calls h with batches of deliveries,
// one call at a time, deleting each batch after h returns. It returns nil
// once ctx is done (after deleting what was handled, for at most 10s),
// drivers.ErrCrashed after Crash, ErrClosed when the driver closes, and an
// error when receiving fails for good (the queue is gone, permissions).
// Messages received but not yet handed to h when it stops are left to the
// visibility timeout.
func (c *consumer) Consume(ctx context.Context, h drivers.Handler) error {
	d := c.d
	if c.crashed.Load() {
		return drivers.ErrCrashed
	}
	if d.isClosed() {
		return ErrClosed
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	unlink := context.AfterFunc(c.ctx, stop)
	defer unlink()

	// Deletes stop on a crash or when the driver closes, not when ctx ends,
	// so a clean stop deletes what it handled.
	dctx, dcancel := context.WithCancel(c.ctx)
	defer dcancel()
	deletes := make(chan []sqstypes.Message, 4*d.opts.Receivers)
	var delWG sync.WaitGroup
	for range deleters {
		delWG.Add(1)
		if !d.goroutine(func() { defer delWG.Done(); c.deleter(dctx, deletes) }) {
			delWG.Done()
		}
	}

	batches := make(chan []sqstypes.Message, d.opts.Receivers)
	fatal := make(chan error, d.opts.Receivers)
	var recvWG sync.WaitGroup
	for range d.opts.Receivers {
		recvWG.Add(1)
		if !d.goroutine(func() { defer recvWG.Done(); c.receive(rctx, batches, fatal) }) {
			recvWG.Done()
		}
	}

	var failure error
	p := newParser(maxHandled + 10)
	var msgs []sqstypes.Message
loop:
	for {
		select {
		case <-rctx.Done():
			break loop
		case failure = <-fatal:
			break loop
		case got := <-batches:
			msgs = append(msgs[:0], got...)
		more: // merge batches that are already waiting
			for len(msgs) < maxHandled {
				select {
				case got := <-batches:
					msgs = append(msgs, got...)
				default:
					break more
				}
			}
		}
		batch := p.parse(msgs, &d.stats)
		if len(batch) > 0 {
			h(batch)
		}
		if c.crashed.Load() {
			d.stats.Abandoned.Add(int64(len(msgs)))
			break
		}
		for i := 0; i < len(msgs); i += 10 {
			chunk := append([]sqstypes.Message(nil), msgs[i:min(i+10, len(msgs))]...)
			select {
			case deletes <- chunk:
			case <-dctx.Done():
				break loop
			}
		}
	}
	stop()
	recvWG.Wait()
	if c.crashed.Load() {
	drain:
		for {
			select {
			case got := <-batches:
				d.stats.Abandoned.Add(int64(len(got)))
			default:
				break drain
			}
		}
	}
	close(deletes)
	if !c.crashed.Load() {
		t := time.AfterFunc(flushTimeout, dcancel)
		defer t.Stop()
	}
	delWG.Wait()

	switch {
	case c.crashed.Load():
		return drivers.ErrCrashed
	case failure != nil:
		return failure
	case d.ctx.Err() != nil:
		return ErrClosed
	}
	return nil
}

// receive long-polls the queue and passes what it gets to batches until
// ctx ends. Errors that will not pass go to fatal; others are retried after
// a pause that doubles up to maxPause.
func (c *consumer) receive(ctx context.Context, batches chan<- []sqstypes.Message, fatal chan<- error) {
	d := c.d
	in := &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(d.queueURL),
		MaxNumberOfMessages:         10,
		WaitTimeSeconds:             int32(d.opts.Wait / time.Second),
		VisibilityTimeout:           int32(d.opts.VisibilityTimeout / time.Second),
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
	}
	var pause time.Duration
	for ctx.Err() == nil {
		out, err := c.client.ReceiveMessage(ctx, in)
		if ctx.Err() != nil {
			if err == nil && len(out.Messages) > 0 && c.crashed.Load() {
				d.stats.Abandoned.Add(int64(len(out.Messages)))
			}
			return
		}
		if err != nil {
			d.stats.ReceiveErrors.Add(1)
			if isPermanent(err) {
				fatal <- fmt.Errorf("eventbridge: consumer %d: receiving from queue %s: %w", c.id, d.queueURL, err)
				return
			}
			if pause == 0 {
				d.log.Warn("eventbridge: receive failed; retrying", "consumer", c.id, "err", err)
			}
			pause = min(max(2*pause, 50*time.Millisecond), maxPause)
			sleep(ctx, pause)
			continue
		}
		if pause > 0 {
			d.log.Info("eventbridge: receiving again", "consumer", c.id)
			pause = 0
		}
		d.stats.Receives.Add(1)
		if len(out.Messages) == 0 {
			continue
		}
		d.stats.Received.Add(int64(len(out.Messages)))
		select {
		case batches <- out.Messages:
		case <-ctx.Done():
			if c.crashed.Load() {
				d.stats.Abandoned.Add(int64(len(out.Messages)))
			}
			return
		}
	}
}

// deleter deletes handled messages, 10 per request, until deletes is
// closed and empty or ctx ends (then what is left is abandoned).
func (c *consumer) deleter(ctx context.Context, deletes <-chan []sqstypes.Message) {
	d := c.d
	entries := make([]sqstypes.DeleteMessageBatchRequestEntry, 0, 10)
	for chunk := range deletes {
		if ctx.Err() != nil {
			d.stats.Abandoned.Add(int64(len(chunk)))
			continue
		}
		entries = entries[:0]
		for i, m := range chunk {
			entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
		d.stats.Deletes.Add(1)
		out, err := c.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(d.queueURL), Entries: entries})
		switch {
		case ctx.Err() != nil:
			d.stats.Abandoned.Add(int64(len(chunk)))
		case err != nil:
			d.stats.DeleteFailed.Add(int64(len(chunk)))
			d.log.Warn("eventbridge: deleting received messages failed; they will be delivered again", "consumer", c.id, "messages", len(chunk), "err", err)
		default:
			d.stats.Deleted.Add(int64(len(out.Successful)))
			if n := len(out.Failed); n > 0 {
				d.stats.DeleteFailed.Add(int64(n))
				f := out.Failed[0]
				d.log.Warn("eventbridge: some deletes failed; those messages will be delivered again", "consumer", c.id,
					"failed", n, "code", aws.ToString(f.Code), "message", aws.ToString(f.Message))
			}
		}
	}
}

// parser turns SQS messages into deliveries. It reuses its buffers, so a
// batch is valid until the next parse. It is not safe for concurrent use.
type parser struct {
	stamps [][stamp.Size]byte
	batch  []drivers.Delivery
}

func newParser(n int) *parser {
	return &parser{stamps: make([][stamp.Size]byte, n), batch: make([]drivers.Delivery, 0, n)}
}

// parse returns the deliveries of msgs: one per message with a spate
// stamp, one with a nil Stamp (counted malformed by the tracker) per
// message without; late probe events are dropped.
func (p *parser) parse(msgs []sqstypes.Message, s *stats) []drivers.Delivery {
	if len(msgs) > len(p.stamps) {
		p.stamps = make([][stamp.Size]byte, len(msgs))
	}
	p.batch = p.batch[:0]
	for i := range msgs {
		m := &msgs[i]
		dl := drivers.Delivery{Stream: drivers.Unordered}
		if n, err := strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)]); err == nil && n > 1 {
			dl.Redelivered = true
			s.Redelivered.Add(1)
		}
		switch kind := StampOf(aws.ToString(m.Body), &p.stamps[i]); kind {
		case StampFound:
			dl.Stamp = p.stamps[i][:]
		case StampProbe:
			s.Probes.Add(1)
			continue
		default:
			s.Unparsable.Add(1)
		}
		p.batch = append(p.batch, dl)
	}
	return p.batch
}

// StampKind says what StampOf found in a message body.
type StampKind int

const (
	StampMissing StampKind = iota // no spate stamp: not an event spate sent
	StampFound                    // a stamp, copied out
	StampProbe                    // a probe event of spate's Open check
)

// stampKey opens the stamp's field in a body.
const stampKey = `"spate":"`

var probeB64 = []byte(notStamp)

// StampOf finds the stamp in an SQS message body holding an EventBridge
// event and copies it to dst. The body may be the full envelope, as AWS
// writes it (with "resources") or as kumo does (with "event-bus-name"
// instead), or only the detail (a target with InputPath $.detail). A fast
// scan for the "spate" field is tried first and checked by the stamp's
// magic, copying only the field's 64 bytes; anything else goes through
// encoding/json, which copies the body.
func StampOf(body string, dst *[stamp.Size]byte) StampKind {
	if i := strings.Index(body, stampKey); i >= 0 {
		rest := body[i+len(stampKey):]
		if len(rest) > stampB64 && rest[stampB64] == '"' {
			var field [stampB64]byte
			copy(field[:], rest)
			if k := decodeStamp(field[:], dst); k != StampMissing {
				return k
			}
		}
	}
	var env struct {
		Detail *struct {
			Spate *string `json:"spate"`
		} `json:"detail"`
		Spate *string `json:"spate"`
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		return StampMissing
	}
	field := env.Spate
	if env.Detail != nil && env.Detail.Spate != nil {
		field = env.Detail.Spate
	}
	if field == nil {
		return StampMissing
	}
	return decodeStamp([]byte(*field), dst)
}

func decodeStamp(b64 []byte, dst *[stamp.Size]byte) StampKind {
	if bytes.Equal(b64, probeB64) {
		return StampProbe
	}
	if base64.StdEncoding.DecodedLen(len(b64)) != stamp.Size {
		return StampMissing
	}
	n, err := base64.StdEncoding.Decode(dst[:], b64)
	if err != nil || n != stamp.Size {
		return StampMissing
	}
	if _, _, _, _, _, ok := stamp.Fields(dst[:]); !ok {
		return StampMissing
	}
	return StampFound
}
