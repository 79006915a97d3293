package rpc

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
)

// Option configures a Layer.
type Option func(*options)

type options struct {
	logger     *slog.Logger
	registerer prometheus.Registerer
	tp         trace.TracerProvider
	prop       propagation.TextMapPropagator
	srvOpts    []grpc.ServerOption
	appOpts    []grpc.DialOption
	agentOpts  []grpc.DialOption
	tracing    bool // WithTracerProvider was given
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithRegisterer sets where metrics are registered (default: a fresh
// registry per Layer).
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.registerer = r } }

// WithTracerProvider turns on tracing with tp: a server span per
// intercepted call, a client span per replayed call, and the trace context
// carried in the AGP message metadata between sidecars (default: no
// tracing).
func WithTracerProvider(tp trace.TracerProvider) Option { return func(o *options) { o.tp = tp } }

// WithPropagator sets the trace context propagator (default W3C trace
// context and baggage).
func WithPropagator(p propagation.TextMapPropagator) Option { return func(o *options) { o.prop = p } }

// WithInterceptServerOptions adds gRPC server options (such as more
// interceptors, which run inside the default chain) to the interception
// listener.
func WithInterceptServerOptions(opts ...grpc.ServerOption) Option {
	return func(o *options) { o.srvOpts = append(o.srvOpts, opts...) }
}

// WithAppDialOptions adds gRPC dial options for the connection to the app.
func WithAppDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.appOpts = append(o.appOpts, opts...) }
}

// WithAgentDialOptions adds gRPC dial options for the connection to the
// sidecar's agent API. New needs the node's trusted credential
// (sidecar.Node.TrustedAgentDialOption) here: only a trusted connection
// may use the reserved RPC topics. NewForNode adds it itself.
func WithAgentDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.agentOpts = append(o.agentOpts, opts...) }
}

func (o *options) fill() {
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.registerer == nil {
		o.registerer = prometheus.NewRegistry()
	}
	o.tracing = o.tp != nil
	if o.tp == nil {
		o.tp = noop.NewTracerProvider()
	}
	if o.prop == nil {
		o.prop = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	}
}
