package interceptors

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Limits bounds what callers may ask of a listener. Zero values mean no
// limit.
type Limits struct {
	// MaxMessageBytes bounds one received or sent message
	// (RESOURCE_EXHAUSTED from gRPC itself).
	MaxMessageBytes int
	// MaxConcurrent bounds the calls (unary and streams) in progress.
	MaxConcurrent int
	// Rate bounds new calls per second, with bursts of Burst (at least 1).
	Rate  float64
	Burst int
}

// ServerOptions returns the message size options of l.
func (l Limits) ServerOptions() []grpc.ServerOption {
	if l.MaxMessageBytes <= 0 {
		return nil
	}
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(l.MaxMessageBytes), grpc.MaxSendMsgSize(l.MaxMessageBytes)}
}

// Limiter enforces the concurrency and rate limits: a call over either gets
// RESOURCE_EXHAUSTED at once (no queueing).
type Limiter struct {
	max      int64
	inflight atomic.Int64

	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

// NewLimiter returns a Limiter for l.
func NewLimiter(l Limits) *Limiter {
	b := float64(l.Burst)
	if b < 1 {
		b = 1
	}
	return &Limiter{max: int64(l.MaxConcurrent), rate: l.Rate, burst: b, tokens: b, now: time.Now}
}

// allowRate takes a token from the bucket.
func (lm *Limiter) allowRate() bool {
	if lm.rate <= 0 {
		return true
	}
	lm.mu.Lock()
	defer lm.mu.Unlock()
	now := lm.now()
	if !lm.last.IsZero() {
		lm.tokens += now.Sub(lm.last).Seconds() * lm.rate
		if lm.tokens > lm.burst {
			lm.tokens = lm.burst
		}
	}
	lm.last = now
	if lm.tokens < 1 {
		return false
	}
	lm.tokens--
	return true
}

// enter admits a call or says why not; leave must follow an admission.
func (lm *Limiter) enter(method string) error {
	if !lm.allowRate() {
		return status.Errorf(codes.ResourceExhausted, "%s: more than %g calls per second; slow down", method, lm.rate)
	}
	if lm.max > 0 {
		if n := lm.inflight.Add(1); n > lm.max {
			lm.inflight.Add(-1)
			return status.Errorf(codes.ResourceExhausted, "%s: %d calls already in progress, the limit", method, lm.max)
		}
	}
	return nil
}

func (lm *Limiter) leave() {
	if lm.max > 0 {
		lm.inflight.Add(-1)
	}
}

// Unary enforces the limits on unary calls.
func (lm *Limiter) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if err := lm.enter(info.FullMethod); err != nil {
			return nil, err
		}
		defer lm.leave()
		return h(ctx, req)
	}
}

// Stream enforces the limits on streams.
func (lm *Limiter) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if err := lm.enter(info.FullMethod); err != nil {
			return err
		}
		defer lm.leave()
		return h(srv, ss)
	}
}
