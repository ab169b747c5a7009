package shards

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// ErrIncompatible is wrapped by Merge's errors about the set of artifacts
// itself (missing, duplicated, or of different runs or scenarios): the
// input is wrong, not the run.
var ErrIncompatible = errors.New("the shard artifacts do not make one run")

// Merge returns the run's results from its shards' artifacts, one per
// shard: what one process would have counted from the same sends,
// outcomes and deliveries (accounting.Merge), with the thresholds judged
// on it. Shard 0's artifact, the coordinator's, must be among them: it
// holds the run's own observations (the backlog over time). Artifacts the
// coordinator made from the last reports of shards that never sent theirs
// (Meta.Partial) make the results incomplete.
func Merge(arts []*Artifact) (*report.Results, error) {
	if err := checkSet(arts); err != nil {
		return nil, err
	}
	sort.Slice(arts, func(i, j int) bool { return arts[i].Meta.Index < arts[j].Meta.Index })
	coord := arts[0]
	obs := coord.Run
	if obs == nil {
		return nil, fmt.Errorf("%w: shard 0's artifact holds no run observations (is it the coordinator's?)", ErrIncompatible)
	}
	states := make([]*accounting.State, len(arts))
	for i, a := range arts {
		states[i] = a.State
	}
	tr, err := accounting.Merge(states...)
	if err != nil {
		return nil, err
	}
	sum := tr.Summary()

	base := coord.Results
	res := &report.Results{
		SchemaVersion: report.SchemaVersion,
		Scenario:      base.Scenario,
		File:          base.File,
		Description:   base.Description,
		Driver:        base.Driver,
		RunID:         base.RunID,
		StartedAt:     time.Unix(0, coord.Meta.T0).UTC(),
		Producers:     base.Producers,
		Consumers:     base.Consumers,
		Subscriptions: base.Subscriptions,
		ProduceOnly:   base.ProduceOnly,
		Chaos:         []report.FaultResult{},
	}
	var errs []string
	var atEnd accounting.Counts
	for _, a := range arts {
		r := a.Results
		res.Counts.Unsent += r.Counts.Unsent
		res.TrafficS = max(res.TrafficS, r.TrafficS)
		res.DurationS = max(res.DurationS, r.DurationS)
		res.Interrupted = res.Interrupted || r.Interrupted
		if r.Error != "" {
			errs = append(errs, fmt.Sprintf("shard %d: %s", a.Meta.Index, r.Error))
		}
		atEnd.Sent += a.Meta.AtTrafficEnd.Sent
		atEnd.Acked += a.Meta.AtTrafficEnd.Acked
		atEnd.Received += a.Meta.AtTrafficEnd.Received
		for k, v := range r.DriverStats {
			if res.DriverStats == nil {
				res.DriverStats = map[string]int64{}
			}
			res.DriverStats[k] += v
		}
	}
	if err := res.SetSummary(sum); err != nil {
		return nil, err
	}
	res.Counts.Unsent = 0
	for _, a := range arts {
		res.Counts.Unsent += a.Results.Counts.Unsent
	}
	res.DrainS = res.DurationS - res.TrafficS
	res.Error = strings.Join(errs, "; ")
	if secs := res.TrafficS; secs > 0 {
		// The target is the run's on every shard (one profile): what it
		// scheduled over the longest traffic, over that traffic.
		var scheduled float64
		for _, a := range arts {
			if t := a.Results.Rate.TargetMean; t != nil {
				scheduled = max(scheduled, *t*a.Results.TrafficS)
			}
		}
		if base.Rate.TargetMean != nil {
			target := scheduled / secs
			res.Rate.TargetMean = &target
		}
		received := obs.ReceivedAtTrafficEnd
		if received == 0 {
			received = atEnd.Received
		}
		res.Rate.AchievedMean = float64(received) / secs / float64(res.Subs())
		res.Rate.SentMean = float64(atEnd.Sent) / secs
		res.Rate.AckedMean = float64(atEnd.Acked) / secs
	}
	if res.Intervals, err = mergeIntervals(arts, obs); err != nil {
		return nil, err
	}
	if res.Chaos, err = mergeFaults(arts, tr); err != nil {
		return nil, err
	}
	res.Shards = shardsResult(arts)
	if len(res.Shards.Missing) > 0 {
		res.Incomplete = true
		res.Shards.LowerBounds = lowerBounds
		// Loss is not claimed, so no message is named as lost.
		res.Examples = slices.DeleteFunc(res.Examples, func(e accounting.Example) bool { return e.Kind == accounting.ExampleLost })
	}
	ts, err := thresholds(base)
	if err != nil {
		return nil, err
	}
	res.Evaluate(ts)
	if res.Error != "" || res.Interrupted || res.Incomplete {
		res.Verdict = report.Fail
	}
	return res, nil
}

// lowerBounds are the counts of an incomplete run that a missing shard
// may have added to after its last report.
var lowerBounds = []string{"sent", "acked", "failed", "received", "duplicates", "unconfirmed_delivered", "reordered", "redelivered", "dead_lettered"}

// checkSet checks that arts are one artifact per shard of one run.
func checkSet(arts []*Artifact) error {
	if len(arts) == 0 {
		return fmt.Errorf("%w: no artifacts", ErrIncompatible)
	}
	first := arts[0].Meta
	seen := map[int]bool{}
	for _, a := range arts {
		m := a.Meta
		switch {
		case m.RunID != first.RunID:
			return fmt.Errorf("%w: shard %d is of run %s, shard %d of run %s", ErrIncompatible, first.Index, first.RunID, m.Index, m.RunID)
		case m.Digest != first.Digest:
			return fmt.Errorf("%w: shards %d and %d ran different scenario files", ErrIncompatible, first.Index, m.Index)
		case m.Count != first.Count:
			return fmt.Errorf("%w: shard %d was one of %d, shard %d one of %d", ErrIncompatible, first.Index, first.Count, m.Index, m.Count)
		case m.Index < 0 || m.Index >= m.Count:
			return fmt.Errorf("%w: shard index %d of %d", ErrIncompatible, m.Index, m.Count)
		case seen[m.Index]:
			return fmt.Errorf("%w: shard %d is given twice", ErrIncompatible, m.Index)
		}
		seen[m.Index] = true
	}
	var missing []string
	for i := range first.Count {
		if !seen[i] {
			missing = append(missing, fmt.Sprint(i))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: shard %s of %d missing", ErrIncompatible, strings.Join(missing, ", "), first.Count)
	}
	return nil
}

// mergeIntervals adds the shards' intervals of each index: counts add,
// histograms add (so the percentiles are the run's), and the backlog is
// the run's as the coordinator knew it.
func mergeIntervals(arts []*Artifact, obs *Observations) ([]report.IntervalResult, error) {
	type merged struct {
		iv    report.IntervalResult
		hists map[string]*hdr.Histogram
	}
	byIndex := map[int]*merged{}
	for _, a := range arts {
		for _, ir := range a.Intervals {
			m := byIndex[ir.Index]
			if m == nil {
				m = &merged{iv: report.IntervalResult{StartS: ir.Start.Seconds(), EndS: ir.End.Seconds()}, hists: map[string]*hdr.Histogram{}}
				byIndex[ir.Index] = m
			}
			m.iv.StartS = min(m.iv.StartS, ir.Start.Seconds())
			m.iv.EndS = max(m.iv.EndS, ir.End.Seconds())
			m.iv.Counts = addCounts(m.iv.Counts, ir.Counts)
			for kind, b := range ir.Histograms {
				h, err := hdr.Decode(b)
				if err != nil {
					return nil, fmt.Errorf("shard %d interval %d: %s histogram: %w", a.Meta.Index, ir.Index, kind, err)
				}
				if m.hists[kind] == nil {
					m.hists[kind] = accounting.NewHistogram()
				}
				m.hists[kind].Merge(h)
			}
		}
	}
	// Target rates are the run's on every shard (one profile).
	targets := map[int]*float64{}
	for _, a := range arts {
		for i, ir := range a.Results.Intervals {
			if _, ok := targets[i]; !ok {
				targets[i] = ir.TargetRate
			}
		}
	}
	out := make([]report.IntervalResult, 0, len(byIndex))
	for _, i := range slices.Sorted(maps.Keys(byIndex)) {
		m := byIndex[i]
		iv := m.iv
		iv.TargetRate = targets[i]
		iv.Backlog = obs.Backlog[i]
		get := func(kind string) accounting.LatencySummary {
			if h := m.hists[kind]; h != nil {
				return accounting.Summarize(h)
			}
			return accounting.LatencySummary{}
		}
		iv.LatencyUS = accounting.LatencySet{E2E: get(accounting.E2E), Service: get(accounting.Service), Publish: get(accounting.Publish)}
		out = append(out, iv)
	}
	return out, nil
}

func addCounts(a, b accounting.Counts) accounting.Counts {
	return accounting.Counts{
		Sent: a.Sent + b.Sent, Acked: a.Acked + b.Acked, Failed: a.Failed + b.Failed,
		Received: a.Received + b.Received, Duplicates: a.Duplicates + b.Duplicates,
		Reordered: a.Reordered + b.Reordered, Redelivered: a.Redelivered + b.Redelivered,
		DeadLettered: a.DeadLettered + b.DeadLettered, Aborted: a.Aborted + b.Aborted,
		AbortedReads: a.AbortedReads + b.AbortedReads, AbortedVisible: a.AbortedVisible + b.AbortedVisible,
		Foreign: a.Foreign + b.Foreign, Malformed: a.Malformed + b.Malformed,
		Clamped: a.Clamped + b.Clamped, Negative: a.Negative + b.Negative,
	}
}

// mergeFaults makes one result per fault of the timeline from the
// shards' accounts of it: the shards that carried it out say whether it
// worked, when it started and ended and what it did (their counts add);
// its window's figures are the merged tracker's; its peak backlog and
// recovery are the worst any shard saw.
func mergeFaults(arts []*Artifact, tr *accounting.Tracker) ([]report.FaultResult, error) {
	byIndex := map[int][]report.FaultResult{}
	for _, a := range arts {
		for _, f := range a.Faults {
			byIndex[f.Index] = append(byIndex[f.Index], f.FaultResult)
		}
	}
	spans := tr.Spans()
	out := []report.FaultResult{}
	for _, i := range slices.Sorted(maps.Keys(byIndex)) {
		views := byIndex[i]
		var carried []report.FaultResult
		for _, v := range views {
			if !v.Observer {
				carried = append(carried, v)
			}
		}
		if len(carried) == 0 {
			carried = views // the coordinator never got to it: what the others saw
		}
		f := carried[0]
		f.Observer = false
		f.Details = nil
		var errs []string
		for j, c := range carried {
			if j > 0 {
				f.StartS = min(f.StartS, c.StartS)
				f.EndS = max(f.EndS, c.EndS)
				f.OK = f.OK && c.OK
			}
			if c.Error != "" {
				errs = append(errs, c.Error)
			}
			f.Details = mergeDetails(f.Details, c.Details)
		}
		f.Error = strings.Join(errs, "; ")
		f.RecoveryS = nil
		recovered := true
		for _, v := range views {
			f.PeakBacklog = max(f.PeakBacklog, v.PeakBacklog)
			if v.RecoveryS == nil {
				recovered = false
			} else if f.RecoveryS == nil || *v.RecoveryS > *f.RecoveryS {
				r := *v.RecoveryS
				f.RecoveryS = &r
			}
		}
		if !recovered {
			f.RecoveryS = nil
		}
		f.WindowLatencyUS, f.LostInWindow, f.DuplicatesInWindow = nil, 0, 0
		if w := spans[i]; w != nil {
			fig := tr.Figures(w)
			if fig.E2E.Count > 0 {
				lat := fig.E2E
				f.WindowLatencyUS = &lat
			}
			f.LostInWindow, f.DuplicatesInWindow = fig.Lost, fig.Duplicates
		}
		out = append(out, f)
	}
	return out, nil
}

// mergeDetails combines what shards say of one fault: numbers (how many
// consumers it crashed, messages it injected) add up; other values are
// kept from the first shard, or listed when shards differ.
func mergeDetails(into, from map[string]any) map[string]any {
	if len(from) == 0 {
		return into
	}
	if into == nil {
		return maps.Clone(from)
	}
	for k, v := range from {
		old, ok := into[k]
		switch {
		case !ok:
			into[k] = v
		case isNumber(old) && isNumber(v):
			into[k] = toFloat(old) + toFloat(v)
		case fmt.Sprint(old) != fmt.Sprint(v):
			into[k] = fmt.Sprintf("%v; %v", old, v)
		}
	}
	return into
}

func isNumber(v any) bool {
	switch v.(type) {
	case int, int64, float64:
		return true
	}
	return false
}

func toFloat(v any) float64 {
	switch n := v.(type) {
	case int:
		return float64(n)
	case int64:
		return float64(n)
	case float64:
		return n
	}
	return 0
}

// shardsResult describes each shard, the start skew and the clock bound.
func shardsResult(arts []*Artifact) *report.ShardsResult {
	sr := &report.ShardsResult{Count: arts[0].Meta.Count}
	var first, last int64
	for i, a := range arts {
		m := a.Meta
		each := report.ShardResult{
			Index: m.Index, Host: m.Host, Producers: len(m.Producers), Consumers: len(m.Consumers),
			Sent: a.State.Live.Sent, Acked: a.State.Live.Acked, Received: a.State.Live.Received, Duplicates: a.State.Live.Duplicates,
			ClockOffsetMS: float64(m.OffsetNS) / 1e6, ClockUncertaintyMS: float64(m.UncertaintyNS) / 1e6,
			StartMS: float64(m.Started-m.T0) / 1e6, Status: "complete",
		}
		if m.Partial != "" {
			each.Status = "missing: " + m.Partial
			sr.Missing = append(sr.Missing, m.Index)
		}
		if len(m.Consumers) > 0 {
			sr.E2EBoundMS = max(sr.E2EBoundMS, each.ClockUncertaintyMS)
		}
		if m.Started != 0 {
			if i == 0 || m.Started < first || first == 0 {
				first = m.Started
			}
			last = max(last, m.Started)
		}
		sr.Each = append(sr.Each, each)
	}
	if first != 0 {
		sr.StartSkewMS = float64(last-first) / 1e6
	}
	return sr
}

// thresholds parses the scenario's thresholds back from a shard's results.
func thresholds(r *report.Results) ([]scenarios.Threshold, error) {
	var out []scenarios.Threshold
	for _, t := range r.Thresholds {
		th, err := scenarios.ParseThreshold(t.Expr)
		if err != nil {
			return nil, fmt.Errorf("threshold %q: %w", t.Expr, err)
		}
		out = append(out, th)
	}
	return out, nil
}
