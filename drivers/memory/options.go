package memory

import (
	"fmt"
	"math"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

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
	return []string{scenarios.AbilityPoison, scenarios.AbilityFanOut}
}

// DefaultOptions returns the options of `driver: memory`: four streams, no
// faults, no latency, unlimited capacity, 10,000,000 queued copies, seed 1.
func DefaultOptions() Options {
	return Options{Streams: DefaultStreams, MaxQueued: DefaultMaxQueued, Seed: DefaultSeed}
}

// options is the memory driver's options, declared once: the scenario
// block is decoded, Go callers' options checked and the docs' tables
// (scenarios/README.md, the package doc) written from these rows.
//
//go:generate go test -run TestOptionsDocs -update-docs .
var options = scenarios.OptionsTable[Options]{
	Defaults: DefaultOptions,
	Opts: []scenarios.Opt[Options]{
		scenarios.IntOpt("streams", func(o *Options) *int { return &o.Streams }, 1, MaxStreams,
			"ordered streams, like Kafka partitions; reordering is checked per stream"),
		scenarios.RatioOpt("drop", func(o *Options) *float64 { return &o.Drop }, "fraction of messages acked but never delivered"),
		scenarios.RatioOpt("duplicate", func(o *Options) *float64 { return &o.Duplicate }, "fraction of messages delivered twice"),
		scenarios.RatioOpt("reorder", func(o *Options) *float64 { return &o.Reorder },
			"fraction of messages delivered after the next message of the same producer on the same stream"),
		scenarios.DurOpt("latency", func(o *Options) *time.Duration { return &o.Latency }, 0, 0, "fixed delivery latency"),
		scenarios.DurOpt("jitter", func(o *Options) *time.Duration { return &o.Jitter }, 0, 0, "extra latency drawn uniformly from [0, jitter)"),
		scenarios.CustomOpt("capacity", "rate", "most deliveries per second across the broker; beyond it a backlog builds", decodeCapacity,
			func(o *Options) string {
				if o.Capacity < 0 || math.IsNaN(o.Capacity) || math.IsInf(o.Capacity, 0) {
					return fmt.Sprintf("must be a positive number of deliveries per second or 0 for unlimited, got %v", o.Capacity)
				}
				return ""
			}, nil).WithDefault("unlimited"),
		scenarios.IntOpt("max-queued", func(o *Options) *int { return &o.MaxQueued }, 1, 0, "message copies held before a send is rejected"),
		scenarios.Int64Opt("seed", func(o *Options) *int64 { return &o.Seed }, "seeds the fault decisions"),
		scenarios.BoolOpt("dead-letter", func(o *Options) *bool { return &o.DeadLetter },
			"poison messages (chaos `poison`) the consumers reject go to a dead-letter stream spate reads (`dead_lettered`), instead of being discarded (lost)"),
	},
}

// decodeCapacity reads capacity: a rate above 0/s.
func decodeCapacity(d *scenarios.Decoder, n *yaml.Node, field string, o *Options) {
	var r scenarios.Rate
	if !d.Decode(n, field, &r) {
		return
	}
	if r.PerSecond() <= 0 {
		d.Errorf(n, field, "must be more than 0/s; leave capacity out for no limit")
		return
	}
	o.Capacity = r.PerSecond()
}

// validate checks o after zero fields took their defaults.
func (o Options) validate() error {
	if problems := options.Check(&o); len(problems) > 0 {
		return fmt.Errorf("memory: %s", strings.Join(problems, "; "))
	}
	return nil
}

// fillDefaults gives zero fields their defaults.
func (o *Options) fillDefaults() { options.FillZero(o) }

// decodeOptions is Kind.Options: it decodes the options block n (nil for
// `driver: memory`) into an Options value, recording every problem on d.
func decodeOptions(d *scenarios.Decoder, n *yaml.Node, field string) any {
	return options.Decode(d, n, field)
}
