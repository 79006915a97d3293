// Package client is the sidecar's side of the control plane: a mirror client
// that streams the node's local subscription table to Registry.Mirror (full
// table on every connect, then sequenced deltas), and a delta ADS client that
// fetches agp.v1.TopicRoute resources on demand (Watch) or all of them
// (wildcard mode), validates them (NACKing bad ones and keeping the last good
// route), and serves them lock-free through Endpoints.
//
// *Client implements the sidecar's RouteSource (Endpoints, Watch) and
// SubscriptionSink (TopicAdded, TopicRemoved) without importing the sidecar.
// When the control plane is unreachable the client keeps its last good routes
// and reconnects with jittered, bounded exponential backoff, resubscribing
// with the versions it holds (initial_resource_versions).
package client
