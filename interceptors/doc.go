// Package interceptors holds the gRPC interceptor chains that every server
// and client of agw uses: caller identity (peer certificate or local
// connection), limits (message size, concurrent calls, rate), Prometheus
// metrics, OpenTelemetry tracing (otelgrpc stats handlers), a structured
// access log and panic recovery into an INTERNAL status. One file per
// interceptor; chain.go assembles the explicit chains for each listener
// (AgentChain, InterceptChain, PeerChain) and for clients (ClientChain).
package interceptors
