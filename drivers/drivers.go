// Package drivers is the contract between spate's engine and the systems it
// tests. A Kind decodes its options and opens a Driver; a Driver makes
// Producers and Consumers. Producers report each message's outcome through an
// AckFunc; Consumers hand batches of Deliveries to a Handler. Optional
// abilities (restart a broker, crash a consumer, ...) are extra small
// interfaces found by type assertion, so the engine and chaos never import a
// concrete driver.
//
// drivers/drivertest holds the conformance suite every driver must pass.
package drivers

import (
	"context"
	"errors"
	"log/slog"

	"github.com/spate-dev/spate/drivers/stamp"
	"github.com/spate-dev/spate/scenarios"
)

// Message is one message to send.
type Message struct {
	// Stamp is the decoded form of Body[:stamp.Size], for drivers that carry
	// the stamp elsewhere (record headers) and for reporting outcomes.
	Stamp stamp.Stamp
	// Key is the record key or routing key; nil when the scenario uses none.
	Key []byte
	// Head is the encoded stamp, stamp.Size bytes. It is never modified
	// after Send, so drivers may keep it for as long as they need.
	Head []byte
	// Tail is the filler that follows the stamp: Size() is the scenario's
	// message size. Tails are read-only and shared between messages, so a
	// driver that sends the stamp apart from the payload (a record header)
	// sends the tail without copying it.
	Tail []byte
}

// Size is the message's size in bytes: the stamp and the filler.
func (m *Message) Size() int { return len(m.Head) + len(m.Tail) }

// AppendBody appends the whole payload, the stamp then the filler, to b, for
// drivers that carry the stamp inside the payload.
func (m *Message) AppendBody(b []byte) []byte {
	return append(append(b, m.Head...), m.Tail...)
}

// Result is the outcome of one sent message.
type Result struct {
	Stamp stamp.Stamp
	// Err is nil when the system confirmed the message (Kafka ack, publisher
	// confirm, PutEvents success; with transactions: its transaction
	// committed), ErrUnconfirmed when the driver sends without
	// confirmations, ErrAborted when the message's transaction was aborted,
	// and any other error when the send failed or its outcome is unknown.
	Err error
}

// ErrUnconfirmed is the outcome of a fire-and-forget send: the message left,
// and nothing will ever say whether it arrived.
var ErrUnconfirmed = errors.New("sent without confirmation")

// ErrAborted is the outcome of a message written in a transaction that was
// aborted, for certain: the producer aborted it (on purpose or after a
// failed write), or never asked to commit it. A consumer that reads only
// committed data must never see such a message (an aborted read). A
// transaction whose commit may or may not have happened (the commit request
// failed in flight) is not aborted: its messages fail with the commit's
// error. Drivers report a committed transaction's messages as confirmed
// (Err nil) only once the commit is confirmed, so publish latency is the
// time from send to commit.
var ErrAborted = errors.New("transaction aborted")

// AckFunc receives outcomes. Drivers call it exactly once per message handed
// to Send, from any goroutine, with one or several results at a time; it does
// not retain the slice. It is safe for concurrent use and returns quickly.
type AckFunc func(results []Result)

// Producer sends messages. A Producer is used by one goroutine at a time.
type Producer interface {
	// Send hands msgs to the system and returns without waiting for their
	// confirmation; it may block while the client applies backpressure.
	// Per-message failures are reported through the AckFunc; an error from
	// Send means the producer is unusable and ends the run. Send may keep
	// each message's Key and Body until its outcome is reported, but not msgs.
	Send(ctx context.Context, msgs []Message) error
	// Close waits until the outcome of every sent message has been reported
	// or ctx is done, then releases the producer. Messages whose outcome was
	// never reported are counted as unconfirmed.
	Close(ctx context.Context) error
}

// Unordered is the Stream of a delivery from a system that promises no order
// (an SQS standard queue); reordering is not counted for it.
const Unordered int32 = -1

// Delivery is one message received.
type Delivery struct {
	// Stamp holds at least the encoded stamp; it may alias the driver's
	// buffers and is valid only during the Handler call.
	Stamp []byte
	// Stream is the ordered stream the message came from, as a small
	// non-negative number (a Kafka partition, a RabbitMQ queue), or Unordered.
	// Order is checked per producer within a stream.
	Stream int32
	// Redelivered is the broker's own flag that it delivered this before.
	Redelivered bool
	// DeadLetter marks a delivery read from the dead-letter queue or topic:
	// the message was rejected by a consumer and routed there, so it counts
	// as dead-lettered rather than lost.
	DeadLetter bool
	// HasOffset says Offset is known. Offset is optional: it is the
	// message's position in its Stream (a Kafka offset), so a violation
	// can be found in the log. A zero Offset is a real position (a
	// partition's first record), hence the flag rather than a sentinel:
	// drivers that know no offset leave both zero.
	HasOffset bool
	Offset    int64
}

// Handler receives deliveries. It is called from one goroutine at a time per
// Consumer and does not retain the slice; the driver acknowledges or commits
// the batch to the broker after it returns.
type Handler func(batch []Delivery)

// Consumer receives messages.
type Consumer interface {
	// Consume calls h with batches of deliveries until ctx is done, then
	// returns nil, or returns an error when the consumer fails or its
	// driver was closed.
	Consume(ctx context.Context, h Handler) error
}

// Driver makes producers and consumers for one system under test. Its
// methods are safe for concurrent use.
type Driver interface {
	// NewProducer returns producer id, which reports outcomes to ack.
	NewProducer(ctx context.Context, id int, ack AckFunc) (Producer, error)
	// NewConsumer returns consumer id. When it returns, the consumer is
	// subscribed: every message sent afterwards will be delivered to it or
	// to its group.
	NewConsumer(ctx context.Context, id int) (Consumer, error)
	// Close releases everything the driver started (embedded brokers,
	// connections) and removes what it provisioned. Calling it again does
	// nothing.
	Close(ctx context.Context) error
}

// Env is what a driver learns about the run it serves.
type Env struct {
	RunID     uint64
	Scenario  string // the scenario's name
	Producers int
	Consumers int
	// Subscriptions is how many subscriptions the consumers form (0 or 1:
	// one, the consumers compete). Only drivers listing scenarios.AbilityFanOut are
	// opened with more.
	Subscriptions int
	Log           *slog.Logger // never nil
	// Dial, when not nil, opens every connection to the system under test.
	Dial DialFunc
	// Attach says another process of a distributed run (its coordinator)
	// has provisioned the system under test and will remove what it
	// provisioned: open without creating or deleting anything (topics,
	// queues, rules), and without setting up what the coordinator set up
	// (consumer groups' start offsets); fail when it is missing.
	Attach bool
}

// SubscriptionOf returns the subscription consumer id belongs to: id mod
// Subscriptions, or 0 when there is one.
func (e Env) SubscriptionOf(id int) int {
	if e.Subscriptions <= 1 {
		return 0
	}
	return id % e.Subscriptions
}

// Kind is a driver as the scenario names it.
type Kind struct {
	Name string
	// Options decodes and validates the scenario's options block for this
	// driver; its result is handed to Open.
	Options scenarios.OptionsFunc
	// Open connects to (or starts) the system under test. options is what
	// Options returned, or nil for the driver's defaults.
	Open func(ctx context.Context, options any, env Env) (Driver, error)
}

// StatsReporter is an optional ability: a driver that keeps its own figures
// (a broker's ground truth, client retries) returns them for results.json.
type StatsReporter interface {
	Stats() map[string]int64
}
