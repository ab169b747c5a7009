package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/report"
	"github.com/spate-dev/spate/scenarios"
)

// SweepEvent tells a Sweep's caller about a point: before it runs
// (Results and Err nil, Done false) and after (Done true).
type SweepEvent struct {
	Point   scenarios.SweepPoint
	Total   int
	Dir     string // the point's report directory
	Done    bool
	Results *report.Results // nil when the point could not run
	Err     error
}

// Sweep runs the points of sw one after another, each as Run runs a
// scenario (opts apply to every point), and writes each point's report
// into dir/points/SLUG (in the formats its scenario names; .hlog interval
// logs as it runs) and the sweep's table into dir: sweep.json, sweep.csv
// and sweep.html, rewritten after every point so a long sweep can be
// watched and an interrupted one keeps what it measured. each, if not
// nil, is called before and after every point.
//
// A point that fails at runtime is recorded and the sweep goes on; the
// error returned then names the points that failed. Cancelling ctx
// interrupts the point running (its report is written, marked
// interrupted) and skips the rest; the error is then ctx's.
func Sweep(ctx context.Context, sw *scenarios.Sweep, dir string, each func(SweepEvent), opts ...Option) (*report.SweepResults, error) {
	caller := config{kinds: map[string]drivers.Kind{}}
	for _, o := range opts {
		o(&caller)
	}
	sr := &report.SweepResults{
		SchemaVersion: report.SweepSchemaVersion, Name: sw.Name, Description: sw.Description,
		File: sw.File, Scenario: sw.Scenario, StartedAt: time.Now().UTC(), Planned: len(sw.Points),
		Points: []report.SweepRow{},
	}
	for _, a := range sw.Axes {
		sr.Axes = append(sr.Axes, report.SweepAxis{Path: a.Path, Values: a.Values})
	}
	if len(sw.Axes) > 0 {
		sr.Along = sw.Axes[sw.Along].Path
	}
	if _, err := report.WriteSweepDir(dir, sr); err != nil {
		return sr, fmt.Errorf("writing the sweep table: %w", err)
	}
	var failed []string
	for _, p := range sw.Points {
		if ctx.Err() != nil {
			break
		}
		rel := filepath.Join("points", p.Slug)
		pdir := filepath.Join(dir, rel)
		ev := SweepEvent{Point: p, Total: len(sw.Points), Dir: pdir}
		if each != nil {
			each(ev)
		}
		res, err := runPoint(ctx, p.Scenario, pdir, caller.hists, opts)
		row := report.NewSweepRow(p.Index, p.Values, sw.Line(p), rel, res, err)
		if res != nil && slices.Contains(formatsOf(p.Scenario), scenarios.FormatHTML) {
			row.HTML = filepath.Join(rel, "report.html")
		}
		sr.Points = append(sr.Points, row)
		if err != nil {
			failed = append(failed, fmt.Sprintf("point %d (%s): %v", p.Index, p.Name, err))
		}
		if _, werr := report.WriteSweepDir(dir, sr); werr != nil {
			return sr, fmt.Errorf("writing the sweep table: %w", werr)
		}
		ev.Done, ev.Results, ev.Err = true, res, err
		if each != nil {
			each(ev)
		}
	}
	if err := ctx.Err(); err != nil {
		return sr, err
	}
	if len(failed) > 0 {
		return sr, fmt.Errorf("%d of %d points failed at runtime: %s", len(failed), len(sw.Points), errors.Join(toErrors(failed)...))
	}
	return sr, nil
}

func toErrors(msgs []string) []error {
	out := make([]error, len(msgs))
	for i, m := range msgs {
		out[i] = errors.New(m)
	}
	return out
}

func formatsOf(sc *scenarios.Scenario) []string {
	if len(sc.Report.Formats) == 0 {
		return scenarios.Formats
	}
	return sc.Report.Formats
}

// runPoint runs one point and writes its report directory.
func runPoint(ctx context.Context, sc *scenarios.Scenario, dir string, hists func(string, time.Time, time.Time, *hdr.Histogram), opts []Option) (*report.Results, error) {
	formats := formatsOf(sc)
	var logs *report.IntervalLogs
	if slices.Contains(formats, scenarios.FormatHlog) {
		var err error
		if logs, err = report.OpenIntervalLogs(dir); err != nil {
			return nil, fmt.Errorf("writing report: %w", err)
		}
		defer logs.Close()
	}
	opts = append(slices.Clone(opts), WithIntervalHistograms(func(kind string, start, end time.Time, h *hdr.Histogram) {
		if hists != nil {
			hists(kind, start, end, h)
		}
		if logs != nil {
			_ = logs.Write(kind, start, end, h)
		}
	}))
	res, runErr := Run(ctx, sc, opts...)
	if logs != nil {
		if err := logs.Close(); err != nil && runErr == nil {
			runErr = fmt.Errorf("writing interval logs: %w", err)
		}
	}
	if res == nil {
		return nil, runErr
	}
	if _, err := report.WriteDir(dir, res, formats); err != nil && runErr == nil {
		runErr = fmt.Errorf("writing report: %w", err)
	}
	return res, runErr
}
