package interceptors

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// Metrics counts handled calls by method and code, their duration, and
// recovered panics.
type Metrics struct {
	handled  *prometheus.CounterVec
	duration *prometheus.HistogramVec
	panics   *prometheus.CounterVec
}

// NewMetrics registers the server metrics on reg (with the given listener
// name as a constant label, so several listeners can share one registry).
func NewMetrics(reg prometheus.Registerer, listener string) *Metrics {
	cl := prometheus.Labels{"listener": listener}
	m := &Metrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agw_grpc_server_handled_total", Help: "RPCs completed, by method and status code.", ConstLabels: cl,
		}, []string{"grpc_method", "grpc_code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "agw_grpc_server_handling_seconds", Help: "RPC duration until the handler returns.", ConstLabels: cl,
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"grpc_method"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agw_grpc_server_panics_total", Help: "Panics recovered in handlers.", ConstLabels: cl,
		}, []string{"grpc_method"}),
	}
	reg.MustRegister(m.handled, m.duration, m.panics)
	return m
}

// Panicked implements PanicCounter.
func (m *Metrics) Panicked(method string) { m.panics.WithLabelValues(method).Inc() }

func (m *Metrics) observe(method string, start time.Time, err error) {
	m.handled.WithLabelValues(method, status.Code(err).String()).Inc()
	m.duration.WithLabelValues(method).Observe(time.Since(start).Seconds())
}

// MetricsUnary records unary calls.
func (m *Metrics) MetricsUnary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := h(ctx, req)
		m.observe(info.FullMethod, start, err)
		return resp, err
	}
}

// MetricsStream records streaming calls when they end.
func (m *Metrics) MetricsStream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		start := time.Now()
		err := h(srv, ss)
		m.observe(info.FullMethod, start, err)
		return err
	}
}
