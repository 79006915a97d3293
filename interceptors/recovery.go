package interceptors

import (
	"context"
	"log/slog"
	"runtime/debug"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// PanicCounter is told about every recovered panic (a metric).
type PanicCounter interface{ Panicked(method string) }

// RecoveryUnary turns a panic in a unary handler into codes.Internal and
// logs the stack; the server keeps serving.
func RecoveryUnary(l *slog.Logger, c PanicCounter) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = recovered(l, c, info.FullMethod, r)
			}
		}()
		return h(ctx, req)
	}
}

// RecoveryStream is RecoveryUnary for streaming handlers.
func RecoveryStream(l *slog.Logger, c PanicCounter) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = recovered(l, c, info.FullMethod, r)
			}
		}()
		return h(srv, ss)
	}
}

func recovered(l *slog.Logger, c PanicCounter, method string, r any) error {
	l.Error("panic in gRPC handler", "method", method, "panic", r, "stack", string(debug.Stack()))
	if c != nil {
		c.Panicked(method)
	}
	return status.Errorf(codes.Internal, "internal error in %s", method)
}
