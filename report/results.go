// Package report turns what a run counted into spate's figures and files:
// Results (the schema of results.json, filled from an accounting.Summary),
// threshold evaluation, the claim, comparisons, and writers for the text
// summary, results.json, .hgrm and .hlog files, report.html and JUnit XML.
// It knows nothing of brokers.
package report

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/scenarios"
)

// SchemaVersion is the version of results.json written by this build; see
// report/SCHEMA.md. It changes when a field changes meaning or disappears.
const SchemaVersion = 1

// Rates are per-second means over the traffic duration.
type Rates struct {
	// TargetMean is what the profile scheduled; null when a max phase ran.
	TargetMean   *float64 `json:"target_mean"`
	AchievedMean float64  `json:"achieved_mean"` // received
	SentMean     float64  `json:"sent_mean"`
	AckedMean    float64  `json:"acked_mean"`
}

// ThresholdResult is one evaluated threshold.
type ThresholdResult struct {
	Expr  string   `json:"expr"`
	Value *float64 `json:"value"` // the measured side; null when undefined
	Limit *float64 `json:"limit"` // the other side
	OK    bool     `json:"ok"`
	Error string   `json:"error,omitempty"`
}

// IntervalResult is one interval of the run, for charts over time.
type IntervalResult struct {
	StartS     float64               `json:"start_s"`
	EndS       float64               `json:"end_s"`
	TargetRate *float64              `json:"target_rate"` // mean scheduled rate; null in max phases
	Counts     accounting.Counts     `json:"counts"`
	Backlog    int64                 `json:"backlog"`
	LatencyUS  accounting.LatencySet `json:"latency_us"`
}

// FaultResult is one chaos action as it happened: when it ran, whether it
// worked, and the traffic's figures inside its window and after it.
type FaultResult struct {
	Action string  `json:"action"`
	Target string  `json:"target,omitempty"`
	StartS float64 `json:"start_s"` // offset from the start of the traffic
	EndS   float64 `json:"end_s"`   // when it was reverted; equal to start_s for a point event
	OK     bool    `json:"ok"`
	Error  string  `json:"error,omitempty"`
	// Optional is set for an entry with required: false, whose failure
	// does not fail the run (by default a fault that failed does).
	Optional bool `json:"optional,omitempty"`
	// Details are the action's own facts: injected counts, command output,
	// the broker restarted, ...
	Details map[string]any `json:"details,omitempty"`
	// Window holds e2e latency of messages received inside [start_s, end_s].
	WindowLatencyUS *accounting.LatencySummary `json:"window_latency_us,omitempty"`
	// LostInWindow and DuplicatesInWindow count messages whose send time
	// falls inside the window.
	LostInWindow       int64 `json:"lost_in_window"`
	DuplicatesInWindow int64 `json:"duplicates_in_window"`
	// PeakBacklog is the largest backlog (acked, not yet received) from the
	// fault's start until it recovered.
	PeakBacklog int64 `json:"peak_backlog"`
	// RecoveryS is the time from the fault's end until e2e p99 over a sliding
	// second is back within 1.5× the pre-fault baseline (the 5 s before the
	// fault) and the backlog has drained; null when it did not recover
	// before the run ended.
	RecoveryS *float64 `json:"recovery_s"`
	// Observer marks, in a shard's own account of a distributed run, a
	// fault another shard carried out (an action on the system, which the
	// coordinator runs): this shard only attributed its traffic to the
	// window. Merged results never hold observers.
	Observer bool `json:"observer,omitempty"`
	// Occurrence is the fault's place in the scenario's timeline (every
	// occurrence of every chaos entry, in start order): the same on every
	// shard of a distributed run. Not written to results.json.
	Occurrence int `json:"-"`
}

// Results is what a run found; it is written as results.json.
type Results struct {
	SchemaVersion int       `json:"schema_version"`
	Scenario      string    `json:"scenario"`
	File          string    `json:"file"`
	Description   string    `json:"description,omitempty"`
	Driver        string    `json:"driver"`
	RunID         string    `json:"run_id"`
	StartedAt     time.Time `json:"started_at"`
	DurationS     float64   `json:"duration_s"` // traffic plus drain
	TrafficS      float64   `json:"traffic_s"`  // how long traffic ran
	DrainS        float64   `json:"drain_s"`
	Interrupted   bool      `json:"interrupted"`
	// Error is the runtime error that ended the run early, if any.
	Error     string `json:"error,omitempty"`
	Producers int    `json:"producers"`
	Consumers int    `json:"consumers"`
	// Subscriptions is how many subscriptions the consumers formed, each
	// owed every message (omitted when 1): delivery counts (received,
	// duplicates, lost, reordered, unconfirmed_delivered, aborted reads)
	// are summed over them, and ratios divide by acked × subscriptions.
	Subscriptions int `json:"subscriptions,omitempty"`
	// ProduceOnly is set when the run had no consumers (consumers: 0): it
	// measured publishing alone. The delivery figures (received,
	// duplicates, lost, reordered and the other delivery counts, their
	// ratios, the e2e and service latencies, achieved_rate) are not
	// measured: they are written as 0 or empty and mean nothing, and
	// Metric reports them undefined (scenarios.DeliveryMetric).
	ProduceOnly bool                  `json:"produce_only,omitempty"`
	Counts      accounting.Counts     `json:"counts"`
	LatencyUS   accounting.LatencySet `json:"latency_us"`
	Rate        Rates                 `json:"rate"`
	Thresholds  []ThresholdResult     `json:"thresholds"`
	Verdict     string                `json:"verdict"` // pass or fail
	// Examples names up to MaxExamples messages behind failed checks.
	Examples  []accounting.Example `json:"examples,omitempty"`
	Intervals []IntervalResult     `json:"intervals"`
	// Chaos lists every fault the scenario injected, as it happened, with
	// what it did to the traffic.
	Chaos []FaultResult `json:"chaos"`
	// DriverStats are the driver's own figures (e.g. the memory broker's
	// ground truth of what it dropped and duplicated).
	DriverStats map[string]int64 `json:"driver_stats,omitempty"`
	// FindMax is the capacity search of a find-max phase; absent without one.
	FindMax *FindMaxResult `json:"find_max,omitempty"`
	// Pipeline describes a pipeline run and its own latency; absent
	// without a pipeline.
	Pipeline *PipelineResult `json:"pipeline,omitempty"`
	// Claim states the delivery guarantee the thresholds assert and
	// whether it held; absent when they assert none (Evaluate sets it).
	Claim *Claim `json:"claim,omitempty"`
	// Histograms are the total latency histograms in HdrHistogram's
	// base64 V2-compressed form, so results can be re-evaluated and merged.
	Histograms map[string]string `json:"histograms"`
	// AccountingBytes is the memory the tracker's sets and histograms held.
	AccountingBytes int64 `json:"accounting_bytes"`
	// Shards describes a distributed run's processes; absent for a run in
	// one process.
	Shards *ShardsResult `json:"shards,omitempty"`
	// Incomplete says a distributed run lacks the final account of at
	// least one shard (Shards.Missing): its figures are what the others
	// counted plus what the missing ones reported last, so some are only
	// bounds (Shards.LowerBounds), loss is not claimed, and the verdict is
	// fail.
	Incomplete bool `json:"incomplete,omitempty"`

	hists map[string]*hdr.Histogram
}

// ShardsResult describes the shards of a distributed run.
type ShardsResult struct {
	Count int `json:"count"`
	// StartSkewMS is the spread of the shards' traffic starts, on the
	// coordinator's clock: the latest start − the earliest.
	StartSkewMS float64 `json:"start_skew_ms"`
	// E2EBoundMS bounds the error clocks put on latencies: every e2e
	// latency is measured on one consumer shard's clock corrected by its
	// measured offset, exact to within that shard's uncertainty; this is
	// the largest (service latency: up to twice it).
	E2EBoundMS float64       `json:"e2e_bound_ms"`
	Each       []ShardResult `json:"each"`
	// Missing lists shards whose final account never reached the
	// coordinator (Results.Incomplete), and LowerBounds the counts that
	// are then only lower bounds.
	Missing     []int    `json:"missing,omitempty"`
	LowerBounds []string `json:"lower_bounds,omitempty"`
}

// ShardResult is one shard of a distributed run.
type ShardResult struct {
	Index int    `json:"index"`
	Host  string `json:"host"`
	// Producers and Consumers are how many of each it ran.
	Producers int `json:"producers"`
	Consumers int `json:"consumers"`
	// Its own counts: messages its producers sent and had acked, and first
	// deliveries and duplicates to its consumers (a message delivered to
	// two shards is received by both here, once in the run).
	Sent       int64 `json:"sent"`
	Acked      int64 `json:"acked"`
	Received   int64 `json:"received"`
	Duplicates int64 `json:"duplicates"`
	// ClockOffsetMS is the coordinator's clock − this shard's, measured at
	// the start, and ClockUncertaintyMS how far the truth may lie from it.
	ClockOffsetMS      float64 `json:"clock_offset_ms"`
	ClockUncertaintyMS float64 `json:"clock_uncertainty_ms"`
	// StartMS is when its traffic started, after T0 (coordinator's clock).
	StartMS float64 `json:"start_ms"`
	// Status is complete, or missing: why its final account never came.
	Status string `json:"status"`
}

// PipelineResult describes a pipeline run: spate produced to Input, a
// processor wrote to Output, spate consumed Output.
type PipelineResult struct {
	Input  string `json:"input"`  // the input's driver kind
	Output string `json:"output"` // the output's driver kind
	// Processor is builtin or external; Mode and Instances are the
	// built-in processor's.
	Processor string `json:"processor"`
	Mode      string `json:"mode,omitempty"`
	Instances int    `json:"instances,omitempty"`
	// LatencyUS is the pipeline latency: each message's first delivery on
	// the output − its confirmation on the input (for a transactional
	// input, its commit), the time the pipeline itself added. Untimed
	// counts first deliveries that arrived before their confirmation was
	// reported, which have none.
	LatencyUS accounting.LatencySummary `json:"latency_us"`
	Untimed   int64                     `json:"untimed"`
}

// Verdicts.
const (
	Pass = "pass"
	Fail = "fail"
)

// SetSummary copies the tracker's final account into r.
func (r *Results) SetSummary(s accounting.Summary) error {
	unsent := r.Counts.Unsent
	r.Counts = s.Counts
	r.Counts.Unsent = unsent
	r.LatencyUS = s.Latency
	r.Examples = s.Examples
	r.AccountingBytes = s.StateBytes
	if r.Pipeline != nil && s.Pipeline != nil {
		r.Pipeline.LatencyUS, r.Pipeline.Untimed = *s.Pipeline, s.PipelineUntimed
	}
	r.hists = s.Histograms
	r.Histograms = map[string]string{}
	for k, h := range s.Histograms {
		b, err := h.Encode(hdr.V2CompressedEncodingCookieBase) // base64 already
		if err != nil {
			return fmt.Errorf("encode %s histogram: %w", k, err)
		}
		r.Histograms[k] = string(b)
	}
	return nil
}

// Histogram returns the total histogram of a latency kind, decoding it from
// the stored form when r was read from a file.
func (r *Results) Histogram(kind string) (*hdr.Histogram, error) {
	if h, ok := r.hists[kind]; ok {
		return h, nil
	}
	enc, ok := r.Histograms[kind]
	if !ok {
		return nil, fmt.Errorf("results hold no %s histogram", kind)
	}
	if !strings.HasPrefix(enc, "HIST") {
		// Written before the encoding was fixed: base64 of the base64 form.
		b, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return nil, fmt.Errorf("%s histogram: %w", kind, err)
		}
		enc = string(b)
	}
	h, err := hdr.Decode([]byte(enc))
	if err != nil {
		return nil, fmt.Errorf("%s histogram: %w", kind, err)
	}
	if r.hists == nil {
		r.hists = map[string]*hdr.Histogram{}
	}
	r.hists[kind] = h
	return h, nil
}

// Metric returns the value of a threshold metric (see scenarios.LookupMetric),
// latencies in microseconds. ok is false when the metric is undefined for
// this run: target_rate when a max phase ran, any statistic of a latency
// with no values (publish when the driver sends without confirmations,
// e2e when nothing was received), a ratio whose denominator is zero (no
// message acked, received or sent), headroom without a find-max phase,
// without a peak or when the search sustained no rate, pipeline latency
// outside a pipeline run, and every delivery figure of a produce-only run
// (ProduceOnly). err is set for a name that is not a metric or a histogram
// that cannot be decoded.
func (r *Results) Metric(name string) (v float64, ok bool, err error) {
	c := r.Counts
	if r.Incomplete && slices.Contains(lossMetrics, name) {
		return 0, false, nil // see incompleteReason
	}
	if r.ProduceOnly && scenarios.DeliveryMetric(name) {
		if _, known := scenarios.LookupMetric(name); known {
			return 0, false, nil // nothing was received
		}
	}
	if kind, stat, found := strings.Cut(name, "."); found && stat != "ratio" {
		if !slices.Contains(scenarios.LatencyKinds, kind) {
			return 0, false, fmt.Errorf("unknown metric %q", name)
		}
		p, isPercentile := scenarios.Percentile(stat)
		if !isPercentile && !slices.Contains(scenarios.LatencyStats, stat) {
			return 0, false, fmt.Errorf("unknown statistic %q", name)
		}
		if kind == accounting.Pipeline && r.hists[kind] == nil && r.Histograms[kind] == "" {
			return 0, false, nil // not a pipeline run
		}
		h, err := r.Histogram(kind)
		if err != nil {
			return 0, false, err
		}
		return histValue(h, stat, p)
	}
	ratio := func(n, d int64) (float64, bool, error) {
		if d == 0 {
			return 0, false, nil
		}
		return float64(n) / float64(d), true, nil
	}
	switch name {
	case "sent":
		return float64(c.Sent), true, nil
	case "acked":
		return float64(c.Acked), true, nil
	case "failed":
		return float64(c.Failed), true, nil
	case "unconfirmed":
		return float64(c.Unconfirmed), true, nil
	case "unsent":
		return float64(c.Unsent), true, nil
	case "received":
		return float64(c.Received), true, nil
	case "duplicates":
		return float64(c.Duplicates), true, nil
	case "lost", "loss":
		return float64(c.Lost), true, nil
	case "unconfirmed_delivered":
		return float64(c.UnconfirmedDelivered), true, nil
	case "reordered":
		return float64(c.Reordered), true, nil
	case "redelivered":
		return float64(c.Redelivered), true, nil
	case "dead_lettered":
		return float64(c.DeadLettered), true, nil
	case "aborted":
		return float64(c.Aborted), true, nil
	case "aborted_reads":
		return float64(c.AbortedReads), true, nil
	case "aborted_visible":
		return float64(c.AbortedVisible), true, nil
	case "foreign":
		return float64(c.Foreign), true, nil
	case "malformed":
		return float64(c.Malformed), true, nil
	case "lost.ratio", "loss.ratio":
		return ratio(c.Lost, c.Acked*int64(r.Subs()))
	case "duplicates.ratio":
		return ratio(c.Duplicates, c.Received)
	case "reordered.ratio":
		return ratio(c.Reordered, c.Received)
	case "failed.ratio":
		return ratio(c.Failed, c.Sent)
	case "unconfirmed_delivered.ratio":
		return ratio(c.UnconfirmedDelivered, c.Received)
	case "target_rate":
		if r.Rate.TargetMean == nil {
			return 0, false, nil
		}
		return *r.Rate.TargetMean, true, nil
	case "achieved_rate":
		return r.Rate.AchievedMean, true, nil
	case "sent_rate":
		return r.Rate.SentMean, true, nil
	case "acked_rate":
		return r.Rate.AckedMean, true, nil
	case "headroom":
		if r.FindMax == nil || r.FindMax.Headroom == nil {
			return 0, false, nil
		}
		return *r.FindMax.Headroom, true, nil
	}
	return 0, false, fmt.Errorf("unknown metric %q", name)
}

// histMetric returns statistic stat of a latency histogram for the metric
// name (KIND.STAT), undefined when the histogram is empty.
func histMetric(h *hdr.Histogram, name, stat string) (float64, bool, error) {
	p, isPercentile := scenarios.Percentile(stat)
	if !isPercentile && !slices.Contains(scenarios.LatencyStats, stat) {
		return 0, false, fmt.Errorf("unknown statistic %q", name)
	}
	return histValue(h, stat, p)
}

func histValue(h *hdr.Histogram, stat string, p float64) (float64, bool, error) {
	if h.TotalCount() == 0 {
		return 0, false, nil
	}
	switch stat {
	case "min":
		return float64(h.Min()), true, nil
	case "mean":
		return h.Mean(), true, nil
	case "max":
		return float64(h.Max()), true, nil
	}
	return float64(h.ValueAtQuantile(p)), true, nil
}

// Evaluate applies thresholds to r, filling r.Thresholds and r.Verdict. A
// threshold whose metric is undefined fails, with the reason.
func (r *Results) Evaluate(ts []scenarios.Threshold) {
	var ok bool
	r.Thresholds, ok = evaluate(ts, r.Metric)
	r.Verdict = Pass
	if !ok {
		r.Verdict = Fail
	}
	r.Claim = nil
	if !r.ProduceOnly { // a delivery guarantee needs deliveries
		r.Claim = r.claim(ts)
	}
	for i, t := range ts {
		tr := &r.Thresholds[i]
		switch ms := t.Metrics(); {
		case tr.Error != undefined:
		case slices.Contains(ms, "headroom"):
			tr.Error = r.headroomReason()
		case r.Incomplete && slices.ContainsFunc(ms, func(m string) bool { return slices.Contains(lossMetrics, m) }):
			tr.Error = incompleteReason
		case r.ProduceOnly && slices.ContainsFunc(ms, scenarios.DeliveryMetric):
			tr.Error = NotMeasured
		}
	}
}

// lostText formats a count of lost messages, or says it is not claimed in
// an incomplete run.
func (r *Results) lostText(n int64) string {
	if r.Incomplete {
		return "n/c"
	}
	return GroupInt(n)
}

// lossMetrics are the metrics an incomplete distributed run cannot state:
// a missing shard's consumers may have received what the others did not.
var lossMetrics = []string{"lost", "loss", "lost.ratio", "loss.ratio"}

// incompleteReason is why loss is undefined in an incomplete run.
const incompleteReason = "not claimed: the run is incomplete (a shard's final account is missing, and its consumers may have received what the others did not)"

// undefined is the error of a threshold whose metric has no value.
const undefined = "undefined for this run"

// NotMeasured is what the report writers show for a delivery figure of a
// produce-only run (Results.ProduceOnly), and the error of a threshold on
// one.
const NotMeasured = "not measured (no consumers)"

// evaluate applies thresholds with metric values from metric, and reports
// whether all held. A threshold whose metric is undefined fails.
func evaluate(ts []scenarios.Threshold, metric func(string) (float64, bool, error)) ([]ThresholdResult, bool) {
	out := make([]ThresholdResult, 0, len(ts))
	all := true
	operand := func(o scenarios.Operand) (float64, bool, error) {
		if o.Metric == "" {
			return o.Coef, true, nil
		}
		v, ok, err := metric(o.Metric)
		return o.Coef * v, ok, err
	}
	for _, t := range ts {
		tr := ThresholdResult{Expr: t.Expr}
		left, lok, lerr := operand(t.Left)
		right, rok, rerr := operand(t.Right)
		switch {
		case lerr != nil || rerr != nil:
			tr.Error = fmt.Sprint(firstErr(lerr, rerr))
		case !lok || !rok:
			tr.Error = undefined
		default:
			tr.OK = t.Holds(left, right)
			measured, limit := left, right
			if t.Left.Metric == "" {
				measured, limit = right, left
			}
			tr.Value, tr.Limit = &measured, &limit
		}
		if !tr.OK {
			all = false
		}
		out = append(out, tr)
	}
	return out, all
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// ReadResults reads a results.json file. It is the one way spate reads
// results (spate report, report --compare, and merging shards should use
// it too): bounded in size, and with errors that say where the file went
// wrong.
func ReadResults(path string) (*Results, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := DecodeResults(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// MaxResultsBytes bounds a results.json spate reads: a run's intervals,
// faults and examples are themselves bounded (scenarios' limits), and a
// larger file is not one spate wrote.
const MaxResultsBytes = 512 << 20

// DecodeResults reads results.json from rd, checking its schema version.
// A file that is not JSON, or not results, is an error that says so and
// where (line:col), not the decoder's bare message.
func DecodeResults(rd io.Reader) (*Results, error) {
	data, err := io.ReadAll(io.LimitReader(rd, MaxResultsBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxResultsBytes {
		return nil, fmt.Errorf("larger than %d MiB: not a results.json written by spate run", MaxResultsBytes>>20)
	}
	var r Results
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("not a results.json written by spate run: %s", jsonProblem(data, err))
	}
	switch {
	case r.SchemaVersion == 0:
		return nil, errors.New("not a results.json written by spate run: it has no schema_version")
	case r.SchemaVersion != SchemaVersion:
		return nil, fmt.Errorf("schema_version %d, this build reads %d", r.SchemaVersion, SchemaVersion)
	}
	return &r, nil
}

// jsonProblem describes a JSON decoding error with its line and column.
func jsonProblem(data []byte, err error) string {
	var off int64 = -1
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		off = max(syn.Offset-1, 0) // the offending byte is the last one read
	case errors.As(err, &typ):
		off = typ.Offset
		field := typ.Field
		if field == "" {
			field = "the document"
		}
		err = fmt.Errorf("%s is %s, want %s", field, typ.Value, typ.Type)
	}
	if off < 0 || off > int64(len(data)) {
		return err.Error()
	}
	line, col := 1, 1
	for _, b := range data[:off] {
		if b == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("line %d, column %d: %v", line, col, err)
}

// Subs returns the number of subscriptions, each owed every acked message:
// Subscriptions, or 1 when it is not set.
func (r *Results) Subs() int { return max(r.Subscriptions, 1) }
