package sidecar

import (
	"log/slog"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/internal/identity"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
)

// RouteSource tells the node which remote nodes have subscribers for a topic.
type RouteSource interface {
	// Endpoints returns the remote nodes subscribed to topic (the node's own
	// id may appear: the sidecar ignores it). Called on the hot path: must be
	// cheap and safe for concurrent use; the returned slice must not be
	// modified by either side.
	Endpoints(topic string) []*agpv1.RouteEndpoint
	// Watch declares that the local agent publishes to topic, so an
	// on-demand source starts fetching its route. Cheap and idempotent.
	Watch(topic string)
}

// SubscriptionSink learns local subscription changes: called when a topic
// gains its first local subscriber (added) or loses its last (removed), in
// order, from the node. Must not block for long. The calls are made with
// the subscription table locked (that is what keeps them in order), so a
// sink must not call back into the Node.
type SubscriptionSink interface {
	TopicAdded(topic string)
	TopicRemoved(topic string)
}

// Option configures a Node.
type Option func(*options)

type options struct {
	logger      *slog.Logger
	registerer  prometheus.Registerer
	routes      RouteSource
	sink        SubscriptionSink
	agentOpts   []grpc.ServerOption
	peerOpts    []grpc.ServerOption
	peerDialOps []grpc.DialOption
	crypter     PeerCrypter
	identity    *identity.Source
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithRegisterer sets where metrics are registered (default: a fresh
// registry per Node). If r is also a prometheus.Gatherer, /metrics serves
// it; otherwise /metrics serves prometheus.DefaultGatherer.
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.registerer = r } }

// WithRouteSource sets the route source (default: the static routes from
// Config).
func WithRouteSource(r RouteSource) Option { return func(o *options) { o.routes = r } }

// WithSubscriptionSink sets the sink for local subscription changes.
func WithSubscriptionSink(s SubscriptionSink) Option { return func(o *options) { o.sink = s } }

// WithAgentServerOptions adds gRPC server options (e.g. interceptor chains)
// to the agent listener.
func WithAgentServerOptions(opts ...grpc.ServerOption) Option {
	return func(o *options) { o.agentOpts = append(o.agentOpts, opts...) }
}

// WithPeerServerOptions adds gRPC server options to the peer listener.
func WithPeerServerOptions(opts ...grpc.ServerOption) Option {
	return func(o *options) { o.peerOpts = append(o.peerOpts, opts...) }
}

// WithPeerDialOptions adds gRPC dial options to peer links.
func WithPeerDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.peerDialOps = append(o.peerDialOps, opts...) }
}

// WithIdentitySource sets the node's identity (an in-memory source for the
// demo and tests, or one the caller shares with the MLS layer) instead of
// loading Config.Identity. Peer links then use mutual TLS with it. The
// caller keeps ownership: it runs the source's reload loop, if any, and
// closes it after the node.
func WithIdentitySource(src *identity.Source) Option {
	return func(o *options) { o.identity = src }
}
