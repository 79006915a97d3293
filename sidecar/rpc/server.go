package rpc

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/agwproject/agw/interceptors"
)

// chainConfig is the interceptor configuration shared by the interception
// listener and the app client.
//
// Without a tracer provider (WithTracerProvider) the chains have no
// tracing stats handlers; the layer still carries the agent's trace
// context (traceMD, replayContext), so traces of agents that trace
// themselves stay whole.
func (l *Layer) chainConfig() interceptors.ChainConfig {
	var tp trace.TracerProvider
	if l.o.tracing {
		tp = l.o.tp
	}
	return interceptors.ChainConfig{
		Logger: l.log,
		Limits: interceptors.Limits{
			MaxMessageBytes: l.cfg.MaxMessageBytes,
			MaxConcurrent:   l.cfg.MaxConcurrentCalls,
			Rate:            l.cfg.RateLimit,
			Burst:           l.cfg.RateBurst,
		},
		TracerProvider: tp,
		Propagator:     l.o.prop,
		LocalOnly:      true,
	}
}

// interceptMetrics registers the interception listener's call metrics (an
// error, not a panic, if reg already has them).
func interceptMetrics(reg prometheus.Registerer) (m *interceptors.Metrics, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("rpc metrics: %v", r)
		}
	}()
	return interceptors.NewMetrics(reg, "intercept"), nil
}

// serverOptions builds the interception listener: any method through the
// raw codec, behind interceptors.InterceptChain (tracing, metrics, access
// log, identity: local callers only, limits, recovery).
func (l *Layer) serverOptions() []grpc.ServerOption {
	c := l.chainConfig()
	c.Metrics = l.im
	opts := []grpc.ServerOption{
		grpc.UnknownServiceHandler(l.handle),
		grpc.ForceServerCodecV2(rawCodec{}),
		grpc.InitialWindowSize(loopbackWindow), grpc.InitialConnWindowSize(loopbackConnWindow),
		// Calls run on reused goroutines, whose stacks have grown already
		// (a fresh goroutine per call grows its stack in every call).
		grpc.NumStreamWorkers(streamWorkers),
	}
	opts = append(opts, interceptors.InterceptChain(c)...)
	return append(opts, l.o.srvOpts...)
}

// streamWorkers is the interception listener's pool of call goroutines;
// calls beyond it get goroutines of their own.
const streamWorkers = 64

// Every connection of the layer is on loopback (the agent, the app, the
// sidecar's agent API): fixed HTTP/2 windows instead of grpc's
// bandwidth-delay estimation, whose pings would otherwise follow the data
// of every call (measured: a PING frame and its ack per call on each link).
const (
	loopbackWindow     = 1 << 20
	loopbackConnWindow = 16 << 20
)

// appDialOptions builds the client of the agent's own gRPC server.
func (l *Layer) appDialOptions() []grpc.DialOption {
	opts := []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(l.cfg.MaxMessageBytes), grpc.MaxCallSendMsgSize(l.cfg.MaxMessageBytes)),
		grpc.WithInitialWindowSize(loopbackWindow), grpc.WithInitialConnWindowSize(loopbackConnWindow),
	}
	opts = append(opts, interceptors.ClientChain(l.chainConfig())...)
	return append(opts, l.o.appOpts...)
}
