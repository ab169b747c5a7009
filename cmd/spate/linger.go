package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/spate-dev/spate/shards"
)

// lingering is `spate run --linger`: after the run, the process that
// wrote the report (the coordinator, or a run in one process) keeps
// serving the report directory on the coordinator's address for a while,
// so that it can be fetched from a pod whose disk goes with it (spate
// fetch-report, through kubectl port-forward). A zero lingering does
// nothing.
type lingering struct {
	d     time.Duration
	addr  string // the coordinator's address
	own   bool   // a run in one process: it listens itself
	files *shards.ReportFiles
	keep  chan struct{}
}

// newLingering is the lingering of this process: none on a shard other
// than the coordinator (every pod of a Job has the same flags), or
// without --linger.
func newLingering(plan shardPlan, d time.Duration) *lingering {
	if d <= 0 || plan.index != 0 || plan.listen == "" {
		return &lingering{}
	}
	return &lingering{d: d, addr: plan.listen, own: plan.count <= 1, files: shards.NewReportFiles(), keep: make(chan struct{})}
}

// handler is what the coordinator serves besides its API, and the
// channel that keeps it serving after the run (nil, nil: nothing).
func (l *lingering) handler() (http.Handler, <-chan struct{}) {
	if l.files == nil || l.own {
		return nil, nil
	}
	return l.files, l.keep
}

// serve publishes dir and waits until the lingering time is over, a
// fetcher said it is done, or ctx ends (Ctrl-C, SIGTERM).
func (l *lingering) serve(ctx context.Context, w io.Writer, dir string) {
	if l.files == nil || ctx.Err() != nil {
		return
	}
	if err := l.files.Publish(dir); err != nil {
		fmt.Fprintf(w, "spate: --linger: %v\n", err)
		return
	}
	addr := l.addr
	if l.own {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			fmt.Fprintf(w, "spate: --linger: cannot serve the report on %s: %v\n", l.addr, err)
			return
		}
		srv := &http.Server{Handler: l.files, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		addr = ln.Addr().String()
	}
	fmt.Fprintf(w, "results: %s\n", filepath.Join(dir, "results.json"))
	fmt.Fprintf(w, "serving the report on %s for %s: spate fetch-report %s (Ctrl-C or fetch-report --done ends it)\n", addr, l.d, addr)
	t := time.NewTimer(l.d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-l.files.Done():
		fmt.Fprintln(w, "the report was fetched")
	case <-ctx.Done():
		fmt.Fprintln(w, "stopped serving the report: interrupted")
	}
}

// close ends the serving.
func (l *lingering) close() {
	if l.files == nil {
		return
	}
	close(l.keep)
	l.files.Close()
}
