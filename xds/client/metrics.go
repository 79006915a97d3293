package client

import "github.com/prometheus/client_golang/prometheus"

type clientMetrics struct {
	connected  *prometheus.GaugeVec
	reconnects *prometheus.CounterVec
	updates    prometheus.Counter
	nacks      prometheus.Counter
	routes     prometheus.Gauge

	droppedTopics prometheus.Counter
}

func newClientMetrics(reg prometheus.Registerer) (*clientMetrics, error) {
	m := &clientMetrics{
		connected:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "agw_xds_client_connected", Help: "1 while the stream to the control plane is up."}, []string{"stream"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agw_xds_client_reconnects_total", Help: "Streams to the control plane that ended and were retried."}, []string{"stream"}),
		updates:    prometheus.NewCounter(prometheus.CounterOpts{Name: "agw_xds_client_updates_total", Help: "xDS responses ACKed."}),
		nacks:      prometheus.NewCounter(prometheus.CounterOpts{Name: "agw_xds_client_nacks_total", Help: "xDS responses NACKed."}),
		routes:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "agw_xds_client_routes", Help: "Topics with a route held."}),

		droppedTopics: prometheus.NewCounter(prometheus.CounterOpts{Name: "agw_xds_client_topics_not_mirrored_total", Help: "Local subscription changes not mirrored because the topic is not a valid xDS resource name."}),
	}
	for _, col := range []prometheus.Collector{m.connected, m.reconnects, m.updates, m.nacks, m.routes, m.droppedTopics} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return m, nil
}
