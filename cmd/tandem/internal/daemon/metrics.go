package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the daemon's Prometheus series, on a registry of its own (no global state). Labels carry pair
// names and op names, never file names, so the optional TCP endpoint exposes no paths.
type metrics struct {
	reg     *prometheus.Registry
	passes  *prometheus.CounterVec
	actions *prometheus.CounterVec
	bytes   *prometheus.CounterVec
	errors  *prometheus.CounterVec
	passDur *prometheus.HistogramVec
}

func newMetrics(d *Daemon) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_passes_total",
			Help: "Sync passes by pair and result (ok, problems, error, cancelled)."}, []string{"pair", "result"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_actions_total",
			Help: "Finished actions by pair and op."}, []string{"pair", "op"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_transfer_bytes_total",
			Help: "Bytes of finished transfers by pair and direction (up, down)."}, []string{"pair", "direction"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_errors_total",
			Help: "Failed passes, safety stops and login failures by pair."}, []string{"pair"}),
		passDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tandem_pass_duration_seconds",
			Help:    "Duration of sync passes.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900}}, []string{"pair"}),
	}
	m.reg.MustRegister(m.passes, m.actions, m.bytes, m.errors, m.passDur, &stateCollector{d: d},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

var pairsDesc = prometheus.NewDesc("tandem_pairs", "Pairs by state.", []string{"state"}, nil)

// stateCollector counts pairs by state at scrape time.
type stateCollector struct{ d *Daemon }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- pairsDesc }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	n := map[string]int{}
	for _, s := range []string{StateStarting, StateIdle, StateDegraded, StateScanning, StateSyncing, StatePaused, StateError,
		StateLoginRequired} {
		n[s] = 0
	}
	for _, p := range c.d.snapshot() {
		n[p.State]++
	}
	for s, k := range n {
		ch <- prometheus.MustNewConstMetric(pairsDesc, prometheus.GaugeValue, float64(k), s)
	}
}
