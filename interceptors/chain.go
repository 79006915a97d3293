package interceptors

import (
	"log/slog"

	"google.golang.org/grpc"
)

// ServerChain returns the interceptor chain of an agw gRPC listener, outermost
// first: metrics, access log, recovery. Recovery sits innermost so that a
// panicking handler is seen by the metrics and the log as the INTERNAL
// status it becomes. m may be nil to leave metrics out.
func ServerChain(l *slog.Logger, m *Metrics) []grpc.ServerOption {
	var unary []grpc.UnaryServerInterceptor
	var stream []grpc.StreamServerInterceptor
	var pc PanicCounter
	if m != nil {
		unary = append(unary, m.MetricsUnary())
		stream = append(stream, m.MetricsStream())
		pc = m
	}
	unary = append(unary, AccessLogUnary(l), RecoveryUnary(l, pc))
	stream = append(stream, AccessLogStream(l), RecoveryStream(l, pc))
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}
}
