package sidecar

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// RPCTopicPrefix is the reserved organisation prefix of the RPC layer's
// frames (sidecar/rpc). Only a trusted in-process agent connection (see
// Node.TrustedAgentDialOption) may subscribe or publish to names under it;
// any other agent gets PERMISSION_DENIED, so an agent can neither read nor
// forge another agent's RPC frames.
const RPCTopicPrefix = "agwrpc."

// trustedAgentKey is the metadata key of the trusted agent credential.
const trustedAgentKey = "agw-trusted-agent"

var rpcPrefix = []byte(RPCTopicPrefix)

// newTrustToken returns 256 random bits in hex: the credential of trusted
// in-process agent connections, known only to this process.
func newTrustToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// trustedCreds sends the node's trust token on the agent API stream.
type trustedCreds struct{ token string }

func (c trustedCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{trustedAgentKey: c.token}, nil
}

// RequireTransportSecurity is false: the agent API is plaintext on
// loopback, and the token never leaves this process's connections to it.
func (trustedCreds) RequireTransportSecurity() bool { return false }

// TrustedAgentDialOption returns the dial option that makes a connection
// to this node's agent API trusted: it may use the reserved RPC topics
// (RPCTopicPrefix). It carries a random per-node credential that only code
// in this process can obtain; use it only for the sidecar's own layers
// (sidecar/rpc), never hand it to an agent.
func (n *Node) TrustedAgentDialOption() grpc.DialOption {
	return grpc.WithPerRPCCredentials(trustedCreds{token: n.trustToken})
}

// agentTrust reports whether the stream in ctx carries the node's trust
// token, compared in constant time. A stream that presents a wrong token
// is refused, so a guess never silently becomes an untrusted connection.
func (n *Node) agentTrust(ctx context.Context) (bool, error) {
	vals := metadata.ValueFromIncomingContext(ctx, trustedAgentKey)
	if len(vals) == 0 {
		return false, nil
	}
	if len(vals) == 1 && n.trustToken != "" && subtle.ConstantTimeCompare([]byte(vals[0]), []byte(n.trustToken)) == 1 {
		return true, nil
	}
	return false, status.Error(codes.PermissionDenied, "the trusted agent credential ("+trustedAgentKey+") is not valid for this sidecar")
}

// reservedFor returns why an agent connection may not use name ("" if it
// may): the MLS handshake names are for no agent at all, the RPC names only
// for trusted connections.
func reservedFor(name string, trusted bool) string {
	switch {
	case strings.HasPrefix(name, MLSTopicPrefix):
		return "organisations starting with " + MLSTopicPrefix + " are reserved for the sidecars' MLS handshakes"
	case !trusted && strings.HasPrefix(name, RPCTopicPrefix):
		return "organisations starting with " + RPCTopicPrefix + " are reserved for the sidecar's RPC layer; make gRPC calls through the interception listener instead"
	}
	return ""
}

// reservedBytes is the fast path's test: whether c may not use dest.
func reservedBytes(dest []byte, trusted bool) bool {
	return bytes.HasPrefix(dest, mlsPrefix) || (!trusted && bytes.HasPrefix(dest, rpcPrefix))
}

// inprocAddr is both ends' address on the in-memory agent listener: a
// unix address, which the interceptors' identity counts as local; the
// agent API has no unix listener, so only this listener yields it.
var inprocAddr = &net.UnixAddr{Name: "@agw-in-process-agent-api", Net: "unix"}

// inprocListener is the agent API's listener for this process's own
// layers: an in-memory pipe, no sockets.
type inprocListener struct{ *bufconn.Listener }

func newInProcListener() inprocListener { return inprocListener{bufconn.Listen(1 << 20)} }

func (l inprocListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return inprocConn{c}, nil
}

func (l inprocListener) Addr() net.Addr { return inprocAddr }

type inprocConn struct{ net.Conn }

func (inprocConn) LocalAddr() net.Addr  { return inprocAddr }
func (inprocConn) RemoteAddr() net.Addr { return inprocAddr }

// InProcessAgentTarget is the dial target that goes with
// InProcessAgentDialOption.
const InProcessAgentTarget = "passthrough:///agw-in-process"

// InProcessAgentDialOption connects to this node's agent API in memory,
// without a socket (for the sidecar's own layers in this process; combine
// with TrustedAgentDialOption), with InProcessAgentTarget as the target.
func (n *Node) InProcessAgentDialOption() grpc.DialOption {
	return grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		c, err := n.inproc.DialContext(ctx)
		if err != nil {
			return nil, err
		}
		return inprocConn{c}, nil
	})
}

// isInProcess reports whether a is the in-memory listener's address.
func isInProcess(a net.Addr) bool { return a == net.Addr(inprocAddr) }
