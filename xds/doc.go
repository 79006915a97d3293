// Package xds holds what the control plane and the sidecar's xDS client share:
// the TopicRoute resource type URL, validation of node ids, topics, addresses
// and routes, and the helpers that compute a node's identity from its
// environment.
//
// Subpackages:
//   - xds/controlplane: the subscription mirror server (Registry.Mirror), the
//     route index and its store, the delta ADS server (go-control-plane) and
//     the admin HTTP endpoints.
//   - xds/client: the sidecar's mirror client and delta ADS client; it
//     implements the sidecar's RouteSource and SubscriptionSink contracts.
//   - xds/xdstest: test helpers (a control plane on 127.0.0.1:0).
//   - xds/xdsbench: the convergence benchmark harness.
//
// Import rule: xds and its subpackages import api and internal only.
package xds

// TypeURL is the xDS type URL of the TopicRoute resource: one resource per
// topic, named by the topic.
const TypeURL = "type.googleapis.com/agp.v1.TopicRoute"

// WildcardName is the xDS resource name that subscribes to every resource of
// a type. It is never a valid topic.
const WildcardName = "*"
