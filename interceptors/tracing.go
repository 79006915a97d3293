package interceptors

import (
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// DefaultPropagator is W3C trace context and baggage.
func DefaultPropagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// TracingServer returns the OpenTelemetry stats handler for a server: one
// span per call, continuing the caller's trace context from the metadata.
func TracingServer(tp trace.TracerProvider, p propagation.TextMapPropagator) grpc.ServerOption {
	if p == nil {
		p = DefaultPropagator()
	}
	return grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(p)))
}

// TracingClient returns the OpenTelemetry stats handler for a client: one
// span per call, its context sent in the metadata.
func TracingClient(tp trace.TracerProvider, p propagation.TextMapPropagator) grpc.DialOption {
	if p == nil {
		p = DefaultPropagator()
	}
	return grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(p)))
}
