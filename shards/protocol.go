// Package shards runs one scenario as several cooperating processes, the
// shards of a distributed run, and merges what they counted into one
// result as exact as a single process's.
//
// Shard i of n runs the scenario's producers and consumers whose id mod n
// is i (engine.Distribution), so the union of the shards' schedules is the
// single-process schedule. Shard 0 is the coordinator: it serves a small
// HTTP/JSON API on the coordinator address, where the other shards
// register, measure their clock's offset from its clock (NTP-style: four
// timestamps per exchange, the exchange with the shortest round trip
// kept), report they are ready and learn the start time T0 that every
// shard's schedule counts from, and report every interval: their running
// counts, the histograms of the interval just closed, and the pages of
// their sequence sets written since the last report. From those the
// coordinator knows the run's backlog exactly (a message acked on one
// shard is often received on another), prints the run's progress, and
// ends the drain for everyone. At the end each shard hands over its
// artifact (its accounting.State and what else the merge needs), and the
// coordinator merges them (Merge), as spate merge does offline.
//
// The coordinator alone provisions the system under test (the others open
// their drivers attached: drivers.Env.Attach) and carries out faults on
// the system (chaos.Once); faults on producers and consumers are carried
// out by the shards that run them. A shard that stops reporting makes the
// run incomplete; a shard that loses the coordinator stops its traffic,
// reverts its faults, writes its artifact and fails.
package shards

import (
	"encoding/json"
	"time"

	"github.com/spate-dev/spate/accounting"
)

// The coordinator's endpoints, all POST with JSON bodies.
const (
	pathRegister = "/v1/register" // registerRequest → registerResponse
	pathClock    = "/v1/clock"    // clockRequest → clockResponse
	pathOpen     = "/v1/open"     // memberRequest → openResponse, once the system is provisioned
	pathReady    = "/v1/ready"    // readyRequest → startResponse, once T0 is set
	pathSync     = "/v1/sync"     // syncRequest → syncResponse
	pathFinal    = "/v1/final"    // finalRequest → finalResponse
)

// ProtocolVersion is sent at registration; shards of different versions
// do not run together.
const ProtocolVersion = 1

// registerRequest is a shard's first message.
type registerRequest struct {
	Version int    `json:"version"`
	Index   int    `json:"index"`
	Count   int    `json:"count"`
	Digest  string `json:"digest"` // of the scenario file: every shard runs the same
	Host    string `json:"host"`
	// Nonce names this process (incarnation) of the shard: a shard that
	// registers again with another before the run starts replaces the
	// earlier one; after the start it is refused.
	Nonce uint64 `json:"nonce"`
}

type registerResponse struct {
	RunID uint64 `json:"run_id"`
}

// memberRequest names the sender in later messages.
type memberRequest struct {
	Index int    `json:"index"`
	Nonce uint64 `json:"nonce"`
}

type clockRequest struct {
	memberRequest
	Sent int64 `json:"sent"` // the shard's clock when it sent this (t1)
}

type clockResponse struct {
	Received int64 `json:"received"` // the coordinator's clock on arrival (t2)
	Replied  int64 `json:"replied"`  // and when it replied (t3)
}

type openResponse struct{}

type readyRequest struct {
	memberRequest
	// The shard's clock offset from the coordinator's (coordinator −
	// shard) and its uncertainty (half the best exchange's round trip).
	OffsetNS      int64 `json:"offset_ns"`
	UncertaintyNS int64 `json:"uncertainty_ns"`
}

type startResponse struct {
	T0 int64 `json:"t0"` // Unix ns on the coordinator's clock
}

// syncRequest is a shard's report while the run goes.
type syncRequest struct {
	memberRequest
	Live     accounting.Counts `json:"live"`
	InFlight int64             `json:"in_flight"`
	// StartedNS is the run clock when this shard's traffic started.
	StartedNS int64 `json:"started_ns,omitempty"`
	// Ended: the shard's traffic has ended; Closed: its producers are
	// closed, every outcome reported.
	Ended  bool `json:"ended,omitempty"`
	Closed bool `json:"closed,omitempty"`
	// Stop: the shard stops the run (interrupted, or failed: Error).
	Stop  string `json:"stop,omitempty"`
	Error string `json:"error,omitempty"`
	// Deltas are the shard's accounting.Deltas since its last report
	// the coordinator acknowledged, as accounting.State.WriteTo writes them.
	Deltas    [][]byte         `json:"deltas,omitempty"`
	Intervals []intervalReport `json:"intervals,omitempty"`
}

// intervalReport is one report interval of one shard.
type intervalReport struct {
	Index   int               `json:"index"` // the interval's place from T0
	Start   time.Duration     `json:"start"`
	End     time.Duration     `json:"end"`
	Counts  accounting.Counts `json:"counts"`
	Backlog int64             `json:"backlog"` // the shard's own view
	// Histograms of the interval's latencies, by kind, in HdrHistogram's
	// V2 compressed encoding.
	Histograms map[string][]byte `json:"histograms"`
}

type syncResponse struct {
	Backlog int64  `json:"backlog"`        // the run's
	Stop    string `json:"stop,omitempty"` // non-empty: stop the run's traffic, why
	Drained bool   `json:"drained,omitempty"`
}

// finalRequest hands a shard's artifact to the coordinator: shard.json's
// content and the accounting state's bytes.
type finalRequest struct {
	memberRequest
	Artifact json.RawMessage `json:"artifact"`
	State    []byte          `json:"state"`
}

type finalResponse struct{}

// pendingResponse answers a long poll whose wait is not over yet: ask
// again.
type pendingResponse struct {
	Pending bool `json:"pending"`
}

// errorResponse is the body of a refused request (status 4xx or 5xx).
type errorResponse struct {
	Error string `json:"error"`
	// Fatal: the shard cannot take part in this run (wrong scenario,
	// index taken, run already started); else it may retry.
	Fatal bool `json:"fatal,omitempty"`
}
