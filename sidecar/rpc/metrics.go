package rpc

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	calls    *prometheus.CounterVec // role, code
	inflight *prometheus.GaugeVec   // role
	frames   *prometheus.CounterVec // direction
	dropped  *prometheus.CounterVec // reason

	framesIn, framesOut prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agw_rpc_calls_total", Help: "RPC calls carried over AGP, by role (caller, callee) and status code.",
		}, []string{"role", "grpc_code"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "agw_rpc_calls_in_flight", Help: "RPC calls in flight, by role.",
		}, []string{"role"}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agw_rpc_frames_total", Help: "RPC frames sent and received, by direction.",
		}, []string{"direction"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agw_rpc_frames_dropped_total", Help: "RPC frames ignored, by reason.",
		}, []string{"reason"}),
	}
	m.framesIn, m.framesOut = m.frames.WithLabelValues("in"), m.frames.WithLabelValues("out")
	for _, c := range []prometheus.Collector{m.calls, m.inflight, m.frames, m.dropped} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
