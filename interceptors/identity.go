package interceptors

import (
	"context"
	"crypto/x509"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Identity says who is calling: a process on this host (a loopback or unix
// connection) and/or the subject of a verified peer certificate.
type Identity struct {
	// Local is true for a loopback or unix-socket connection.
	Local bool
	// Subject is the verified client certificate's first URI SAN (such as
	// a SPIFFE id), else its first DNS SAN, else its common name; empty
	// without a verified certificate.
	Subject string
	// Addr is the remote address.
	Addr string
}

type identityKey struct{}

// IdentityFromContext returns the caller identity the identity interceptor
// stored.
func IdentityFromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(*Identity)
	if !ok || id == nil {
		return Identity{}, false
	}
	return *id, true
}

// IdentityOf derives the identity of the peer p.
func IdentityOf(p *peer.Peer) Identity {
	var id Identity
	if p == nil {
		return id
	}
	if p.Addr != nil {
		id.Addr = p.Addr.String()
		switch a := p.Addr.(type) {
		case *net.TCPAddr:
			id.Local = a.IP.IsLoopback()
		case *net.UnixAddr:
			id.Local = true
		default:
			if host, _, err := net.SplitHostPort(a.String()); err == nil {
				ip := net.ParseIP(host)
				id.Local = ip != nil && ip.IsLoopback()
			}
		}
	}
	if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 && len(ti.State.VerifiedChains[0]) > 0 {
		id.Subject = certSubject(ti.State.VerifiedChains[0][0])
	}
	return id
}

func certSubject(c *x509.Certificate) string {
	if len(c.URIs) > 0 {
		return c.URIs[0].String()
	}
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0]
	}
	return c.Subject.CommonName
}

// identify stores the caller's identity in ctx; with localOnly it refuses
// callers that are not on this host.
func identify(ctx context.Context, c *identityCache, localOnly bool) (context.Context, error) {
	p, _ := peer.FromContext(ctx)
	id := c.get(p)
	if localOnly && !id.Local {
		return ctx, status.Errorf(codes.PermissionDenied, "this listener accepts local callers only (got %s)", id.Addr)
	}
	return context.WithValue(ctx, identityKey{}, id), nil
}

// IdentityUnary records the caller identity (IdentityFromContext); with
// localOnly it refuses remote callers with PERMISSION_DENIED. The identity
// of a connection is derived once (see identityCache).
func IdentityUnary(localOnly bool) grpc.UnaryServerInterceptor {
	c := newIdentityCache()
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		ctx, err := identify(ctx, c, localOnly)
		if err != nil {
			return nil, err
		}
		return h(ctx, req)
	}
}

// IdentityStream is IdentityUnary for streams.
func IdentityStream(localOnly bool) grpc.StreamServerInterceptor {
	c := newIdentityCache()
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		ctx, err := identify(ss.Context(), c, localOnly)
		if err != nil {
			return err
		}
		return h(srv, &ctxStream{ServerStream: ss, ctx: ctx})
	}
}

// ctxStream is a ServerStream with a replaced context.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }
