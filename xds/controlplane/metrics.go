package controlplane

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	connectedNodes  prometheus.Gauge
	xdsStreams      prometheus.Gauge
	routes          prometheus.Gauge
	pushes          prometheus.Counter
	acks            prometheus.Counter
	nacks           prometheus.Counter
	mirrorMessages  prometheus.Counter
	mirrorRejected  *prometheus.CounterVec
	withdrawals     prometheus.Counter
	convergence     prometheus.Histogram
	indexUpdateTime prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connectedNodes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "agw_cp_connected_nodes", Help: "Nodes with an open subscription mirror stream."}),
		xdsStreams:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "agw_cp_xds_streams", Help: "Open delta ADS streams."}),
		routes:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "agw_cp_routes", Help: "Topics with at least one subscriber node."}),
		pushes:         prometheus.NewCounter(prometheus.CounterOpts{Name: "agw_cp_xds_pushes_total", Help: "Delta xDS responses sent."}),
		acks:           prometheus.NewCounter(prometheus.CounterOpts{Name: "agw_cp_xds_acks_total", Help: "Delta xDS responses acknowledged."}),
		nacks:          prometheus.NewCounter(prometheus.CounterOpts{Name: "agw_cp_xds_nacks_total", Help: "Delta xDS responses rejected by a client."}),
		mirrorMessages: prometheus.NewCounter(prometheus.CounterOpts{Name: "agw_cp_mirror_messages_total", Help: "Subscription mirror messages applied."}),
		mirrorRejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agw_cp_mirror_rejected_total", Help: "Subscription mirror streams refused or ended for bad input, by reason."}, []string{"reason"}),
		withdrawals:    prometheus.NewCounter(prometheus.CounterOpts{Name: "agw_cp_withdrawals_total", Help: "Nodes withdrawn after their grace period."}),
		convergence: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "agw_cp_convergence_seconds",
			Help:    "Time from a mirror change applied to the index until an interested node ACKs the resulting route version.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		indexUpdateTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "agw_cp_index_update_seconds",
			Help:    "Time to apply one mirror message to the index and the xDS cache.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 4, 10),
		}),
	}
	for _, c := range []prometheus.Collector{m.connectedNodes, m.xdsStreams, m.routes, m.pushes, m.acks, m.nacks, m.mirrorMessages, m.mirrorRejected, m.withdrawals, m.convergence, m.indexUpdateTime} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
