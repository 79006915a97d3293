package sidecar

import (
	"context"
	"fmt"
	"strings"

	"github.com/agwproject/agw/internal/identity"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// setupIdentity gives the node its peer credentials: mutual TLS 1.3 from
// the identity source (the WithIdentitySource option, else one loaded from
// cfg.Identity, which the node then owns: Run follows its files and
// shutdown closes it), or plaintext when there is no identity.
//
// Both sides of a link verify the other's chain against the current trust
// bundle, its SPIFFE id against the allowed trust domains and the deny list
// (identity.Source.ServerTLSConfig, ClientTLSConfig); a rotated
// certificate or bundle applies to the next handshake without a restart.
func (n *Node) setupIdentity() error {
	src := n.opts.identity
	if src == nil && n.cfg.Identity.Enabled() {
		var err error
		src, err = identity.NewSource(n.cfg.Identity,
			identity.WithLogger(n.opts.logger.With("component", "identity")),
			identity.WithRegisterer(n.opts.registerer))
		if err != nil {
			return fmt.Errorf("sidecar identity: %w", err)
		}
		n.ownedIdentity = true
	}
	if src == nil {
		if n.cfg.PeerNodeBinding != BindingNone {
			return fmt.Errorf("AGW_PEER_NODE_BINDING=%s needs an identity: set AGW_IDENTITY_DIR (or AGW_IDENTITY_CERT_FILE, AGW_IDENTITY_KEY_FILE and AGW_IDENTITY_BUNDLE_FILE), or use %s", n.cfg.PeerNodeBinding, BindingNone)
		}
		n.serverCreds = insecure.NewCredentials()
		n.clientCreds = insecure.NewCredentials()
		return nil
	}
	n.identity = src
	n.serverCreds = credentials.NewTLS(src.ServerTLSConfig())
	n.clientCreds = credentials.NewTLS(src.ClientTLSConfig())
	return nil
}

// runIdentity follows the owned source's files until the node stops.
func (n *Node) runIdentity() {
	if n.ownedIdentity {
		n.wg.Go(func() {
			if err := n.identity.Run(n.ctx); err != nil {
				n.log.Error("identity reload loop stopped", "err", err)
			}
		})
	}
}

// closeIdentity closes the owned source (after the reload loop ended).
func (n *Node) closeIdentity() {
	if n.ownedIdentity {
		_ = n.identity.Close()
	}
}

// Identity returns the node's identity source, or nil when peer links are
// plaintext. The MLS layer takes its credential from it.
func (n *Node) Identity() *identity.Source { return n.identity }

// peerIdentity returns the verified SPIFFE id of the remote end of a peer
// link (the zero ID for a plaintext link) from its stream's context (on
// either side: gRPC puts the transport's peer in both).
func (n *Node) peerIdentity(ctx context.Context) (identity.ID, error) {
	if n.identity == nil {
		return identity.ID{}, nil
	}
	pr, ok := grpcpeer.FromContext(ctx)
	if !ok {
		return identity.ID{}, status.Error(codes.Unauthenticated, "peer link without a TLS peer")
	}
	id, err := identity.PeerIDFromPeer(pr)
	if err != nil {
		return identity.ID{}, status.Errorf(codes.Unauthenticated, "peer link: %v", err)
	}
	return id, nil
}

// authorizeNodeID checks that a peer with SPIFFE id id may claim nodeID
// (Config.PeerNodeBinding). With BindingNone any identity the bundle
// accepts may claim any node id.
func (n *Node) authorizeNodeID(nodeID string, id identity.ID) error {
	if n.cfg.PeerNodeBinding != BindingNamespace || n.identity == nil {
		return nil
	}
	ns, _, ok := id.Workload()
	if !ok {
		return status.Errorf(codes.PermissionDenied,
			"peer %s claims node id %q, but AGW_PEER_NODE_BINDING=namespace needs a SPIFFE id of the form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>", id, nodeID)
	}
	if !strings.HasPrefix(nodeID, ns+".") || len(nodeID) == len(ns)+1 {
		return status.Errorf(codes.PermissionDenied,
			"peer %s (namespace %s) claims node id %q; with AGW_PEER_NODE_BINDING=namespace it may only claim %s.<name>", id, ns, nodeID, ns)
	}
	return nil
}

// checkPeerIdentity returns the SPIFFE id of a link's remote end (its
// stream's context) as the connection table records it, after checking
// that it may claim nodeID.
func (n *Node) checkPeerIdentity(ctx context.Context, nodeID string) (string, error) {
	id, err := n.peerIdentity(ctx)
	if err != nil {
		return "", err
	}
	if err := n.authorizeNodeID(nodeID, id); err != nil {
		return "", err
	}
	return id.String(), nil
}

// identityString names the node's own SPIFFE id for logs ("" without one).
func (n *Node) identityString() string {
	if n.identity == nil {
		return ""
	}
	return n.identity.Current().ID().String()
}
