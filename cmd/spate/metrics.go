package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spate-dev/spate/accounting"
	"github.com/spate-dev/spate/engine"
)

// Prometheus metrics served by `spate run --metrics-addr` while a run goes.
// Every metric has the constant label scenario; examples/grafana has a
// dashboard over them. Counters and gauges change at the end of each
// report interval (1 s by default).
//
//	spate_run_info{run_id, driver}                    1
//	spate_sent_total, spate_acked_total, spate_received_total,
//	spate_duplicates_total, spate_failed_total,
//	spate_reordered_total, spate_aborted_total,
//	spate_aborted_reads_total                         counters (messages)
//	spate_backlog_messages                            gauge: acked, not yet received
//	spate_in_flight_messages                          gauge: sent, outcome not yet reported
//	spate_target_rate_messages_per_second             gauge: the profile's rate now
//	spate_elapsed_seconds, spate_traffic_duration_seconds, spate_draining
//	spate_active_faults                               gauge: chaos actions in effect
//	spate_fault_active{fault}                         1 for each fault in effect
//	spate_latency_seconds{kind}                       histogram of e2e, service, publish
type liveMetrics struct {
	mu       sync.Mutex
	progress engine.Progress
	have     bool
	lat      map[string]*cumHist

	info, sent, acked, received, dups, failed, reordered, aborted, abortedReads, backlog, inflight, target,
	elapsed, total, draining, faults, fault, latency *prometheus.Desc
}

// latencyBuckets are the upper bounds of spate_latency_seconds, in seconds.
var latencyBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
	0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
}

// cumHist is a cumulative Prometheus histogram fed with HDR interval
// histograms.
type cumHist struct {
	count   uint64
	sum     float64 // seconds
	buckets []uint64
}

func (c *cumHist) add(h *hdr.Histogram) {
	if h.TotalCount() == 0 {
		return
	}
	c.count += uint64(h.TotalCount())
	c.sum += h.Mean() * float64(h.TotalCount()) / 1e6
	for _, b := range h.Distribution() {
		if b.Count == 0 {
			continue
		}
		// A bucket's values are within its equivalent range; its midpoint
		// decides the Prometheus bucket, as HDR's own mean does.
		secs := float64(b.From+(b.To-b.From+1)/2) / 1e6
		for i, le := range latencyBuckets {
			if secs <= le {
				c.buckets[i] += uint64(b.Count)
			}
		}
	}
}

func newLiveMetrics(scenario, runID, driver string) *liveMetrics {
	cl := prometheus.Labels{"scenario": scenario}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, cl)
	}
	m := &liveMetrics{
		info:      prometheus.NewDesc("spate_run_info", "The run in progress: its id and driver.", nil, prometheus.Labels{"scenario": scenario, "run_id": runID, "driver": driver}),
		sent:      d("spate_sent_total", "Messages handed to the driver."),
		acked:     d("spate_acked_total", "Messages confirmed by the system under test."),
		received:  d("spate_received_total", "Distinct messages received (first deliveries)."),
		dups:      d("spate_duplicates_total", "Deliveries after the first of the same message."),
		failed:    d("spate_failed_total", "Failure outcomes reported by the driver."),
		reordered: d("spate_reordered_total", "First deliveries behind a higher sequence number of the same producer and stream."),
		aborted:   d("spate_aborted_total", "Messages whose transaction was aborted."),
		abortedReads: d("spate_aborted_reads_total",
			"Messages of aborted transactions delivered to consumers that read only committed data (isolation violations)."),
		backlog:  d("spate_backlog_messages", "Messages acked and not yet received."),
		inflight: d("spate_in_flight_messages", "Messages sent whose outcome is not yet reported."),
		target:   d("spate_target_rate_messages_per_second", "The traffic profile's scheduled rate now (0 in max and pause phases)."),
		elapsed:  d("spate_elapsed_seconds", "Time since the traffic started."),
		total:    d("spate_traffic_duration_seconds", "How long the traffic profile runs."),
		draining: d("spate_draining", "1 while the run drains after the traffic."),
		faults:   d("spate_active_faults", "Chaos actions in effect."),
		fault:    d("spate_fault_active", "1 for each chaos action in effect.", "fault"),
		latency:  d("spate_latency_seconds", "Latency of messages: e2e (receive - intended send), service (receive - send), publish (confirmation - send).", "kind"),
		lat:      map[string]*cumHist{},
	}
	for _, k := range []string{accounting.E2E, accounting.Service, accounting.Publish} {
		m.lat[k] = &cumHist{buckets: make([]uint64, len(latencyBuckets))}
	}
	return m
}

// observe takes an interval's histogram (engine.WithIntervalHistograms).
func (m *liveMetrics) observe(kind string, h *hdr.Histogram) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.lat[kind]; ok {
		c.add(h)
	}
}

// update takes the progress at the end of an interval.
func (m *liveMetrics) update(p engine.Progress) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.progress, m.have = p, true
}

// Describe implements prometheus.Collector.
func (m *liveMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.info, m.sent, m.acked, m.received, m.dups, m.failed, m.reordered, m.aborted, m.abortedReads, m.backlog,
		m.inflight, m.target, m.elapsed, m.total, m.draining, m.faults, m.fault, m.latency} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *liveMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.progress
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(m.info, 1)
	counter(m.sent, p.Live.Sent)
	counter(m.acked, p.Live.Acked)
	counter(m.received, p.Live.Received)
	counter(m.dups, p.Live.Duplicates)
	counter(m.failed, p.Live.Failed)
	counter(m.reordered, p.Live.Reordered)
	counter(m.aborted, p.Live.Aborted)
	counter(m.abortedReads, p.Live.AbortedReads)
	gauge(m.backlog, float64(p.Interval.Backlog))
	gauge(m.inflight, float64(p.InFlight))
	gauge(m.target, p.TargetRate)
	gauge(m.elapsed, p.Elapsed.Seconds())
	gauge(m.total, p.Total.Seconds())
	draining := 0.0
	if p.Draining {
		draining = 1
	}
	gauge(m.draining, draining)
	gauge(m.faults, float64(len(p.ActiveFaults)))
	seen := map[string]bool{}
	for _, f := range p.ActiveFaults {
		if !seen[f] {
			seen[f] = true
			gauge(m.fault, 1, f)
		}
	}
	for _, k := range []string{accounting.E2E, accounting.Service, accounting.Publish} {
		c := m.lat[k]
		b := make(map[float64]uint64, len(latencyBuckets))
		for i, le := range latencyBuckets {
			b[le] = c.buckets[i]
		}
		ch <- prometheus.MustNewConstHistogram(m.latency, c.count, c.sum, b, k)
	}
}

// metricsServer serves the metrics on an address until closed.
type metricsServer struct {
	srv  *http.Server
	addr string
	done chan error
}

// serveMetrics listens on addr and serves m at /metrics.
func serveMetrics(addr string, m *liveMetrics) (*metricsServer, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(m); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "spate: metrics at /metrics")
	})
	s := &metricsServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		addr: ln.Addr().String(),
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// close stops the server, letting scrapes in progress finish for a moment.
func (s *metricsServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// checkListenAddr checks a HOST:PORT to listen on before anything runs:
// the port a number from 0 (any free one) to 65535, the host empty, an IP
// address or a name.
func checkListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want HOST:PORT, e.g. 127.0.0.1:9464: %v", err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port %q is not a number from 0 (any free port) to 65535", port)
	}
	if host != "" && net.ParseIP(host) == nil && strings.ContainsAny(host, " /\\%") {
		return fmt.Errorf("host %q is not an IP address or a host name", host)
	}
	return nil
}
