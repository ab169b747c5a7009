package memory

import (
	"fmt"
	"math"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/scenarios"
)

// Limits on options, so a typo cannot make the driver allocate the machine away.
const (
	// MaxStreams is the largest accepted number of streams.
	MaxStreams = 1 << 16
	// DefaultStreams is the number of streams when the scenario names none.
	DefaultStreams = 4
	// DefaultMaxQueued is the number of message copies the broker holds
	// before it rejects sends.
	DefaultMaxQueued = 10_000_000
	// DefaultSeed seeds the fault decisions when the scenario names no seed.
	DefaultSeed = 1
)

// Options configures the in-process broker. The zero value is not ready for
// use: start from DefaultOptions. New (and Kind.Open) treat a zero Streams or
// MaxQueued as its default; every other field is taken as given.
type Options struct {
	Streams   int           // ordered streams (partitions), 1..MaxStreams
	Drop      float64       // fraction of messages acked and never delivered
	Duplicate float64       // fraction of messages delivered twice
	Reorder   float64       // fraction of messages delivered after the next one
	Latency   time.Duration // fixed delivery latency added to every message
	Jitter    time.Duration // extra latency drawn uniformly from [0, Jitter)
	Capacity  float64       // deliveries per second across the broker; 0: unlimited
	MaxQueued int           // message copies held before sends are rejected
	Seed      int64         // seeds each producer's fault decisions
	// DeadLetter routes messages flagged poison (stamp.FlagPoison), which
	// the consumer rejects, to a dead-letter stream that is delivered with
	// Delivery.DeadLetter set; without it they are discarded.
	DeadLetter bool
}

// Abilities implements drivers.AbilityLister: the memory broker's consumers
// reject poison messages, and it serves several subscriptions.
func (o Options) Abilities() []string {
	return []string{drivers.AbilityPoison, drivers.AbilityFanOut}
}

// DefaultOptions returns the options of `driver: memory`: four streams, no
// faults, no latency, unlimited capacity, 10,000,000 queued copies, seed 1.
func DefaultOptions() Options {
	return Options{Streams: DefaultStreams, MaxQueued: DefaultMaxQueued, Seed: DefaultSeed}
}

// validate checks o after zero fields took their defaults.
func (o Options) validate() error {
	switch {
	case o.Streams < 1 || o.Streams > MaxStreams:
		return fmt.Errorf("memory: streams must be within 1..%d, got %d", MaxStreams, o.Streams)
	case !isFraction(o.Drop):
		return fmt.Errorf("memory: drop must be within [0, 1], got %v", o.Drop)
	case !isFraction(o.Duplicate):
		return fmt.Errorf("memory: duplicate must be within [0, 1], got %v", o.Duplicate)
	case !isFraction(o.Reorder):
		return fmt.Errorf("memory: reorder must be within [0, 1], got %v", o.Reorder)
	case o.Latency < 0 || o.Jitter < 0:
		return fmt.Errorf("memory: latency and jitter must not be negative, got %v and %v", o.Latency, o.Jitter)
	case o.Capacity < 0 || math.IsNaN(o.Capacity) || math.IsInf(o.Capacity, 0):
		return fmt.Errorf("memory: capacity must be a positive number of deliveries per second or 0 for unlimited, got %v", o.Capacity)
	case o.MaxQueued < 1:
		return fmt.Errorf("memory: max-queued must be at least 1, got %d", o.MaxQueued)
	}
	return nil
}

func (o *Options) fillDefaults() {
	if o.Streams == 0 {
		o.Streams = DefaultStreams
	}
	if o.MaxQueued == 0 {
		o.MaxQueued = DefaultMaxQueued
	}
}

func isFraction(x float64) bool { return x >= 0 && x <= 1 } // false for NaN

// yamlOptions is the scenario's options block as written.
type yamlOptions struct {
	Streams    int                `yaml:"streams"`
	Drop       float64            `yaml:"drop"`
	Duplicate  float64            `yaml:"duplicate"`
	Reorder    float64            `yaml:"reorder"`
	Latency    scenarios.Duration `yaml:"latency"`
	Jitter     scenarios.Duration `yaml:"jitter"`
	Capacity   *scenarios.Rate    `yaml:"capacity"`
	MaxQueued  int                `yaml:"max-queued"`
	Seed       int64              `yaml:"seed"`
	DeadLetter bool               `yaml:"dead-letter"`
}

// decodeOptions is Kind.Options: it decodes the options block n (nil for
// `driver: memory`) into an Options value, recording every problem on d.
func decodeOptions(d *scenarios.Decoder, n *yaml.Node, field string) any {
	def := DefaultOptions()
	if n == nil {
		return def
	}
	y := yamlOptions{Streams: def.Streams, MaxQueued: def.MaxQueued, Seed: def.Seed}
	d.Decode(n, field, &y)

	// Range checks, on fields that decoded: each mistake is reported once.
	decoded := map[string]bool{}
	for _, p := range d.Problems() {
		decoded[p.Field] = false
	}
	check := func(key string, bad bool, format string, args ...any) {
		f := field + "." + key
		if _, failed := decoded[f]; failed || !bad {
			return
		}
		at := scenarios.Child(n, key)
		if at == nil {
			at = n
		}
		d.Errorf(at, f, format, args...)
	}
	check("streams", y.Streams < 1 || y.Streams > MaxStreams, "must be a whole number from 1 to %d, got %d", MaxStreams, y.Streams)
	check("drop", !isFraction(y.Drop), "must be a fraction from 0 to 1, such as 0.05; got %v", y.Drop)
	check("duplicate", !isFraction(y.Duplicate), "must be a fraction from 0 to 1, such as 0.05; got %v", y.Duplicate)
	check("reorder", !isFraction(y.Reorder), "must be a fraction from 0 to 1, such as 0.05; got %v", y.Reorder)
	check("capacity", y.Capacity != nil && y.Capacity.PerSecond() <= 0, "must be more than 0/s; leave capacity out for no limit")
	check("max-queued", y.MaxQueued < 1, "must be at least 1, got %d", y.MaxQueued)

	o := Options{
		Streams:    y.Streams,
		Drop:       y.Drop,
		Duplicate:  y.Duplicate,
		Reorder:    y.Reorder,
		Latency:    y.Latency.D(),
		Jitter:     y.Jitter.D(),
		MaxQueued:  y.MaxQueued,
		Seed:       y.Seed,
		DeadLetter: y.DeadLetter,
	}
	if y.Capacity != nil {
		o.Capacity = y.Capacity.PerSecond()
	}
	return o
}
