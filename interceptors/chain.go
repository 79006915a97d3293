package interceptors

import (
	"log/slog"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// ServerChain returns the interceptor chain of an agw gRPC listener, outermost
// first: metrics, access log, recovery. Recovery sits innermost so that a
// panicking handler is seen by the metrics and the log as the INTERNAL
// status it becomes. m may be nil to leave metrics out.
func ServerChain(l *slog.Logger, m *Metrics) []grpc.ServerOption {
	return buildServer(ChainConfig{Logger: l, Metrics: m}, false, false)
}

// ChainConfig holds what the explicit chains are built from. Zero fields
// leave their interceptor out (Logger nil: discard).
type ChainConfig struct {
	Logger  *slog.Logger
	Metrics *Metrics
	Limits  Limits
	// TracerProvider turns on OpenTelemetry tracing (otelgrpc stats
	// handlers) with Propagator (default W3C trace context and baggage).
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
	// LocalOnly makes the identity interceptor refuse callers that are not
	// on this host.
	LocalOnly bool
}

// AgentChain is the agent listener's chain, outermost first: tracing,
// metrics, access log, identity, limits, recovery.
func AgentChain(c ChainConfig) []grpc.ServerOption { return buildServer(c, true, true) }

// InterceptChain is the interception listener's chain (the same order as
// AgentChain); its caller is the local agent.
func InterceptChain(c ChainConfig) []grpc.ServerOption { return buildServer(c, true, true) }

// PeerChain is the peer listener's chain: identity from the verified peer
// certificate (never local-only), then as AgentChain.
func PeerChain(c ChainConfig) []grpc.ServerOption {
	c.LocalOnly = false
	return buildServer(c, true, true)
}

// ClientChain is the chain of every outgoing connection: tracing and a
// client access log.
func ClientChain(c ChainConfig) []grpc.DialOption {
	l := c.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	opts := []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(AccessLogClientUnary(l)),
		grpc.WithChainStreamInterceptor(AccessLogClientStream(l)),
	}
	if c.TracerProvider != nil {
		opts = append(opts, TracingClient(c.TracerProvider, c.Propagator))
	}
	return opts
}

func buildServer(c ChainConfig, withIdentity, withLimits bool) []grpc.ServerOption {
	l := c.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	var unary []grpc.UnaryServerInterceptor
	var stream []grpc.StreamServerInterceptor
	var pc PanicCounter
	if c.Metrics != nil {
		unary = append(unary, c.Metrics.MetricsUnary())
		stream = append(stream, c.Metrics.MetricsStream())
		pc = c.Metrics
	}
	unary = append(unary, AccessLogUnary(l))
	stream = append(stream, AccessLogStream(l))
	if withIdentity {
		unary = append(unary, IdentityUnary(c.LocalOnly))
		stream = append(stream, IdentityStream(c.LocalOnly))
	}
	var opts []grpc.ServerOption
	if withLimits {
		if c.Limits.MaxConcurrent > 0 || c.Limits.Rate > 0 {
			lm := NewLimiter(c.Limits)
			unary = append(unary, lm.Unary())
			stream = append(stream, lm.Stream())
		}
		opts = append(opts, c.Limits.ServerOptions()...)
	}
	unary = append(unary, RecoveryUnary(l, pc))
	stream = append(stream, RecoveryStream(l, pc))
	if c.TracerProvider != nil {
		opts = append(opts, TracingServer(c.TracerProvider, c.Propagator))
	}
	return append(opts,
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	)
}
