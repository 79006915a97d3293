package interceptors

import (
	"log/slog"

	"google.golang.org/grpc"
)

// ServerChain returns the interceptor chain of an agw gRPC listener, outermost
// first: recovery (so a panic anywhere below becomes INTERNAL), metrics,
// access log. m may be nil to leave metrics out.
func ServerChain(l *slog.Logger, m *Metrics) []grpc.ServerOption {
	unary := []grpc.UnaryServerInterceptor{RecoveryUnary(l, m)}
	stream := []grpc.StreamServerInterceptor{RecoveryStream(l, m)}
	if m != nil {
		unary = append(unary, m.MetricsUnary())
		stream = append(stream, m.MetricsStream())
	}
	unary = append(unary, AccessLogUnary(l))
	stream = append(stream, AccessLogStream(l))
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}
}
