package rpc

import (
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
)

type metrics struct {
	calls    *prometheus.CounterVec // role, code
	inflight *prometheus.GaugeVec   // role
	frames   *prometheus.CounterVec // direction
	dropped  *prometheus.CounterVec // reason

	framesIn, framesOut prometheus.Counter
	inflightCaller      prometheus.Gauge
	inflightCallee      prometheus.Gauge
	okCaller, okCallee  prometheus.Counter
}

// call counts a finished call of role ("caller" or "callee").
func (m *metrics) call(role string, code codes.Code) {
	if code == codes.OK {
		if role == "caller" {
			m.okCaller.Inc()
		} else {
			m.okCallee.Inc()
		}
		return
	}
	m.calls.WithLabelValues(role, code.String()).Inc()
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
	m.inflightCaller, m.inflightCallee = m.inflight.WithLabelValues("caller"), m.inflight.WithLabelValues("callee")
	m.okCaller = m.calls.WithLabelValues("caller", codes.OK.String())
	m.okCallee = m.calls.WithLabelValues("callee", codes.OK.String())
	for _, c := range []prometheus.Collector{m.calls, m.inflight, m.frames, m.dropped} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
