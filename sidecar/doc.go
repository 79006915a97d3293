// Package sidecar is the AGP gateway node that runs next to every agent.
//
// A Node serves three listeners: the agent API (agpv1.Gateway, loopback only
// by default), the peer data plane (agpv1.Peer) and an admin HTTP server
// (health, readiness, Prometheus metrics, table dumps).
//
// Peer identity: with an identity (Config.Identity, AGW_IDENTITY_*, or
// WithIdentitySource) peer links are mutual TLS 1.3 between X.509 SVIDs of
// one trust bundle (internal/identity): both ends validate the other's
// chain, SPIFFE id, trust domain and the deny list, rotated files apply to
// new links without a restart, and the connection table records each
// link's verified SPIFFE id. Without one, peer links are plaintext. By
// default any identity the bundle accepts may claim any node id in its
// handshake; Config.PeerNodeBinding "namespace" (Kubernetes, where node ids
// are <namespace>.<pod>) lets spiffe://<td>/ns/<ns>/sa/<sa> claim only
// <ns>.<name>.
//
// It keeps the two tables of the AGP draft: the connection table (one entry
// per local agent stream and per peer node) and the subscription table
// (topic -> local subscriber connections; remote subscriber nodes come from
// the RouteSource).
//
// Forwarding rules:
//
//   - Topics match exactly: a Publish to org/ns/svc reaches the subscribers of
//     org/ns/svc, not those of org/ns/svc/instance.
//   - A Publish from a local agent goes to local subscribers first and then to
//     the peer nodes that RouteSource.Endpoints names for the topic. A peer
//     node counts as one target; the receiving node applies the message's
//     fanout again to its own local subscribers.
//   - fanout 0 = every target; fanout 1 = anycast (one local subscriber, round
//     robin, else one remote node, round robin); fanout N > 1 = up to N targets,
//     local ones first.
//   - The publisher's own connection never receives its own publish, even if
//     it subscribes to the topic.
//   - A message that arrived from a peer is delivered locally only (one hop
//     between sidecars, so no loops). Its hop limit is checked and
//     decremented by the receiving node: hop_limit 0 on arrival is dropped
//     (reason hop_limit). A Publish with hop_limit 0 gets DefaultHopLimit.
//   - Every send queue is bounded (QueueSize). A local subscriber whose queue
//     is full loses the message (reason slow_consumer); a full peer queue
//     blocks the publisher for at most PeerQueueWait and then drops (reason
//     peer_queue_full). Either way the Ack counts only the targets that
//     actually took the message. A peer that is down is not used; messages
//     that only it could take are dropped (reason peer_down).
//
// Errors: a bad request gets an AgentResponse.Error with a google.rpc code
// and the request's id (invalid name, missing header, unknown kind, hop
// limit above 255 -> INVALID_ARGUMENT; message above MaxMessageBytes or too
// many subscriptions -> RESOURCE_EXHAUSTED; shutting down -> UNAVAILABLE)
// and the stream goes on. A frame larger than MaxMessageBytes plus 16 KiB
// is refused by gRPC itself and ends that stream with RESOURCE_EXHAUSTED.
// Subscribe and Unsubscribe are idempotent.
//
// Peer links: a link is one Peer.Link stream used in both directions,
// opened by whichever side needs it first (static peers at start, nodes
// named by routes on first use). The dialler sends a Handshake (node id,
// protocol version 1, advertised address, max message bytes) and the other
// side answers with its own. A version mismatch is refused with
// FAILED_PRECONDITION; a second link from a node id that is already linked,
// or a peer claiming this node's id, with ALREADY_EXISTS. When both sides
// dial each other, the link dialled by the lower node id is kept. Lost links
// are redialled with exponential backoff and jitter (ReconnectMin to
// ReconnectMax); a shutting-down node sends Goodbye first. A node that
// sets Handshake.batch_frames accepts PeerFrame.batch: the link's writer
// then sends the messages already queued when it wakes (up to 64, within
// the remote's max message bytes) in one frame, never waiting for more;
// to a peer that does not set it, every message goes in its own frame.
//
// Data plane: messages travel in wire form. A message is never decoded: its
// header fields are read and checked in place, the fields the node sets
// (hop_limit, message_id) are appended to the header, and the resulting
// bytes, in a pooled buffer, are sent to every target wrapped in a Delivery
// or PeerFrame, so multicast costs one encoding whatever the fanout. The
// listeners use a pass-through gRPC codec for this; on the wire everything
// is ordinary protobuf.
package sidecar
