package identity

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// Authorizer decides whether a validated peer may use a connection (for
// example: the dialled node must be the one the route names). A non-nil
// error aborts the handshake; it is reported wrapped in ErrUnauthorized.
type Authorizer func(ID) error

// AuthorizeID accepts only the given ids.
func AuthorizeID(ids ...ID) Authorizer {
	ids = slices.Clone(ids)
	return func(id ID) error {
		if slices.Contains(ids, id) {
			return nil
		}
		return fmt.Errorf("peer %s is not the expected %v", id, ids)
	}
}

// ServerTLSConfig returns a TLS 1.3 server configuration that presents the
// source's current certificate (rotations apply to the next handshake),
// requires a client certificate and accepts it only if the Validator
// accepts it for client use (and every authorizer agrees). Use it for the
// peer listener: credentials.NewTLS(src.ServerTLSConfig()).
func (s *Source) ServerTLSConfig(authz ...Authorizer) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.Current().TLSCertificate(), nil
		},
		// The chain is verified in VerifyConnection against the current
		// bundle, which a static ClientCAs pool could not follow.
		ClientAuth: tls.RequireAnyClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return s.verifyPeer(cs, UsageClient, authz)
		},
	}
}

// ClientTLSConfig returns a TLS 1.3 client configuration that presents the
// source's current certificate and accepts the server only if the
// Validator accepts it for server use (and every authorizer agrees). Host
// names are not checked: SPIFFE identities are in the URI SAN, and
// VerifyConnection does the whole chain verification against the current
// bundle.
func (s *Source) ClientTLSConfig(authz ...Authorizer) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return s.Current().TLSCertificate(), nil
		},
		// Not insecure: VerifyConnection verifies the chain against the
		// trust bundle and checks the SPIFFE id instead of a host name.
		InsecureSkipVerify: true, //nolint:gosec
		VerifyConnection: func(cs tls.ConnectionState) error {
			return s.verifyPeer(cs, UsageServer, authz)
		},
	}
}

func (s *Source) verifyPeer(cs tls.ConnectionState, usage Usage, authz []Authorizer) error {
	if len(cs.PeerCertificates) == 0 {
		err := fmt.Errorf("%w: peer sent no certificate", ErrMalformed)
		s.v.record(ID{}, nil, usage, err)
		return err
	}
	id, err := s.v.Validate(cs.PeerCertificates, usage, s.opts.now())
	if err != nil {
		return err
	}
	for _, a := range authz {
		if a == nil {
			continue
		}
		if err := a(id); err != nil {
			err = fmt.Errorf("%w: %w", ErrUnauthorized, err)
			s.v.recordUnauthorized(id, err)
			return err
		}
	}
	return nil
}

// PeerIDFromConnectionState returns the SPIFFE id of the peer of a
// completed handshake. The id is verified only for connections whose
// configuration came from ServerTLSConfig or ClientTLSConfig (their
// handshakes fail otherwise).
func PeerIDFromConnectionState(cs tls.ConnectionState) (ID, error) {
	if !cs.HandshakeComplete {
		return ID{}, errors.New("identity: TLS handshake not complete")
	}
	if len(cs.PeerCertificates) == 0 {
		return ID{}, fmt.Errorf("%w: peer sent no certificate", ErrNoSPIFFEID)
	}
	return IDFromCertificate(cs.PeerCertificates[0])
}

// PeerIDFromPeer returns the SPIFFE id of a gRPC peer whose connection uses
// TLS credentials built from this package's configurations.
func PeerIDFromPeer(p *peer.Peer) (ID, error) {
	if p == nil || p.AuthInfo == nil {
		return ID{}, fmt.Errorf("%w: connection without TLS", ErrNoSPIFFEID)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return ID{}, fmt.Errorf("%w: connection authenticated by %s, not TLS", ErrNoSPIFFEID, p.AuthInfo.AuthType())
	}
	return PeerIDFromConnectionState(info.State)
}

// PeerIDFromContext returns the SPIFFE id of the gRPC peer of a server
// handler's or stream's context.
func PeerIDFromContext(ctx context.Context) (ID, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return ID{}, fmt.Errorf("%w: no gRPC peer in context", ErrNoSPIFFEID)
	}
	return PeerIDFromPeer(p)
}
