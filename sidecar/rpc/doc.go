// Package rpc carries ordinary gRPC calls between agents over the AGP
// pub/sub fabric ("AGP services: RPC over pub/sub" in DESIGN.md).
//
// A Layer runs next to a sidecar node and is one more local agent of that
// node, trusted to use the reserved RPC topics: NewForNode attaches to a
// node in this process in memory (sidecar.Node.AttachLocal: publishing is
// a function call, deliveries arrive undecoded, no gRPC in between); New
// is a client of the node's agent API over gRPC, for a node in another
// process (with the node's trusted credential). It offers:
//
//   - the interception listener (default 127.0.0.1:46359): the local agent
//     makes any gRPC call there, for any service and method, without the
//     sidecar knowing its schema (raw bytes codec). The target is the
//     `agw-target` metadata key, else the call's authority: a key of the
//     authority map (AGW_AUTHORITY_MAP), a full AGP name, or
//     "service.namespace[.anything]" in this agent's organisation.
//   - the replay side: calls that arrive for this sidecar's agent
//     (AGW_AGENT_NAME) are replayed to the agent's own gRPC server
//     (AGW_APP_ADDR), and its answers carried back.
//
// # Wire
//
// Each step of a call is an agpv1.RpcFrame, the payload of one AGP message
// with content type ContentType. Frames go to reserved RPC topics: the RPC
// topic of the AGP name org/namespace/service[/instance] is
// "agwrpc.org/namespace/service[/instance]" (see Topic). Every organisation
// that starts with "agwrpc." (sidecar.RPCTopicPrefix) is reserved for RPC:
// the sidecar refuses an agent's subscribe or publish to such names with
// PERMISSION_DENIED and lets only the Layer use them (its in-memory
// attachment, or a connection that presents the node's in-process
// credential, Node.TrustedAgentDialOption);
// a Layer ignores messages on them that are not well-formed frames. A Layer subscribes to the RPC topic of its agent's
// instance name (replies and the frames of calls it serves), to that of its
// service name (anycast and multicast opens) when it replays to an app, and
// to the RPC topics of the channels in AGW_RPC_CHANNELS (multicast opens).
//
// # A call
//
// The caller's sidecar publishes an open frame (method, metadata, remaining
// timeout, reply topic, and, when the client sent them at once, the first
// request message and half-close) to the target's RPC topic with fanout 1:
// anycast picks one instance. That instance's sidecar answers at once with
// an accept naming its own instance topic, and every further caller frame
// goes there, so the call stays on it. Headers, messages, trailers (code,
// message, details, metadata) follow. Either side may cancel. Each
// direction numbers its frames so a lost frame fails the call rather than
// corrupting it, and each direction has a message window: the receiver
// grants credits as its gRPC peer consumes messages, so one large stream
// cannot fill the shared queues and starve other calls.
//
// A call with metadata "agw-fanout: 0" is multicast: the open goes to every
// member of the target (every instance of a service, or every Layer that
// lists the channel in AGW_RPC_CHANNELS); the caller receives every
// member's response messages as they arrive, as one stream, and the
// trailers say, in message order, who sent each (agw-responder) and how
// each member's call ended (agw-responder-status). The call completes when
// every member that received it has answered, or when the deadline ends.
//
// # Cost
//
// A unary call is one frame each way: the open carries the request and
// the half-close, the answer carries the accept, headers, message and
// trailers. Per call the layer starts no timer (one shared sweeper runs
// the accept timeouts, accept-alone and probes of all calls), runs its
// goroutines on reused workers, and reads a unary answer in line.
//
// # Limits
//
// The fabric may drop a message (a full queue, a replaced peer link). A
// lost frame followed by others fails its call with UNAVAILABLE. A side
// that hears nothing on a call for AGW_RPC_PROBE_INTERVAL pings the other;
// a call unknown there (its last frame was lost, or its sidecar restarted)
// is answered with a cancel, and an unanswered ping fails the call with
// UNAVAILABLE, so no call waits forever. Between sidecars, frames are
// protected as much as the fabric protects any message (mutual TLS, and
// MLS with a PeerCrypter); on the node, no agent can read or forge them
// (see Wire).
package rpc
