package rpc

import (
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"

	"github.com/agwproject/agw/interceptors"
)

// serverOptions builds the interception listener: any method through the
// raw codec, behind the interception chain.
func (l *Layer) serverOptions() []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.UnknownServiceHandler(l.handle),
		grpc.ForceServerCodecV2(rawCodec{}),
		grpc.MaxRecvMsgSize(l.cfg.MaxMessageBytes),
		grpc.MaxSendMsgSize(l.cfg.MaxMessageBytes),
		grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(l.o.tp), otelgrpc.WithPropagators(l.o.prop))),
	}
	opts = append(opts, interceptors.ServerChain(l.log, interceptors.NewMetrics(l.o.registerer, "intercept"))...)
	return append(opts, l.o.srvOpts...)
}
