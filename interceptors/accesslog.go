package interceptors

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// AccessLogUnary logs one line per unary call: method, code, duration, peer.
// Successful calls are logged at debug level, failures at info.
func AccessLogUnary(l *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := h(ctx, req)
		logCall(ctx, l, info.FullMethod, start, err)
		return resp, err
	}
}

// AccessLogStream logs one line per stream when it ends.
func AccessLogStream(l *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		start := time.Now()
		err := h(srv, ss)
		logCall(ss.Context(), l, info.FullMethod, start, err)
		return err
	}
}

func logCall(ctx context.Context, l *slog.Logger, method string, start time.Time, err error) {
	code := status.Code(err)
	lvl := slog.LevelDebug
	if code != codes.OK && code != codes.Canceled {
		lvl = slog.LevelInfo
	}
	if !l.Enabled(ctx, lvl) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("code", code.String()),
		slog.Duration("duration", time.Since(start)),
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		attrs = append(attrs, slog.String("peer", p.Addr.String()))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", status.Convert(err).Message()))
	}
	l.LogAttrs(ctx, lvl, "grpc call", attrs...)
}
