package interceptors

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// AccessLogClientUnary logs one line per outgoing unary call: method,
// target, code, duration (debug when OK, info otherwise).
func AccessLogClientUnary(l *slog.Logger) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		start := time.Now()
		err := invoker(ctx, method, req, reply, cc, opts...)
		logClient(ctx, l, method, cc.Target(), start, err)
		return err
	}
}

// AccessLogClientStream logs one line when an outgoing stream is set up
// fails to start; stream ends are the caller's to report.
func AccessLogClientStream(l *slog.Logger) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		start := time.Now()
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			logClient(ctx, l, method, cc.Target(), start, err)
		}
		return cs, err
	}
}

func logClient(ctx context.Context, l *slog.Logger, method, target string, start time.Time, err error) {
	code := status.Code(err)
	lvl := slog.LevelDebug
	if code != codes.OK && code != codes.Canceled {
		lvl = slog.LevelInfo
	}
	if !l.Enabled(ctx, lvl) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", method), slog.String("target", target),
		slog.String("code", code.String()), slog.Duration("duration", time.Since(start)),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", status.Convert(err).Message()))
	}
	l.LogAttrs(ctx, lvl, "grpc client call", attrs...)
}
