// Package e2ee terminates MLS (RFC 9420) in the sidecar: every payload that
// leaves the pod is sealed in an MLS PrivateMessage for a group of sidecars.
//
// A Manager holds this sidecar's groups:
//
//   - point-to-point sessions: the first time this sidecar sends to a remote
//     node, the two set up a two-member group and reuse it. The node with the
//     lower id is the committer: the other sends it a KeyPackage (asked for
//     by a hello when the lower node starts), it answers with the Welcome, so
//     simultaneous starts converge on one group.
//   - channels: a multicast topic is one group whose members are the sidecars
//     that publish or subscribe to it. The committer is the member with the
//     lowest node id (the creator, until a lower node joins); a joining
//     sidecar sends a KeyPackage to the topic's participants (Roster); the
//     committer commits the Add, sends the commit to the other members and the
//     Welcome to the joiner. A member that left is removed by a commit; a
//     committer that left the roster is removed by the next lowest member
//     (its deterministic successor). Committers invite the roster's
//     participants that are not members; of two groups for one topic the one
//     with the lower committer wins and the other's members rejoin it.
//
// Handshake messages (hello, KeyPackage, Welcome, commit, invite, epoch
// request) travel in a small envelope (see Envelope) over a Transport that
// the integrator implements on the pub/sub fabric (reserved topics under
// TopicPrefix, "agwmls."); the Transport only carries bytes between nodes
// and says which node a message came from.
//
// Identity: the MLS credential is an X.509 credential holding the sidecar's
// SVID chain (internal/identity); the leaf certificate's key is the MLS
// signature key, so ECDSA P-256 SVIDs go with cipher suite 2. Every member's
// credential is checked by identity.Validator.ValidateMLSCredential (trust
// bundle, validity, deny list) before it is admitted, and each leaf carries
// the member's node id in a private leaf extension (ExtensionNodeID).
//
// Data path: PreparePeer and PrepareChannel make a group ready (they may
// wait for a join); SealNow encrypts application data (for the sidecar, a
// batch of whole AGP messages) as an MLS PrivateMessage whose
// authenticated_data is the SHA-256 of the routing header, so the routing
// header stays outside the ciphertext and is authenticated; it never waits,
// so the sidecar's peer writers can call it. SealPeer and SealChannel do
// both steps. Open checks the
// group, the sender's node id, the routing header digest, the epoch and
// the generation. Every refusal is a security event: counted by reason
// (agw_mls_security_events_total) and logged with the field
// security_event. There is no switch that turns MLS off. Application
// messages are padded to a multiple of Config.PaddingBlock.
//
// A Group of the mls package is not safe for concurrent use: each group here
// has its own mutex.
package e2ee
