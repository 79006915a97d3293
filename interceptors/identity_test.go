package interceptors

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/url"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

func TestIdentityOf(t *testing.T) {
	u, _ := url.Parse("spiffe://acme/ns/prod/sa/writer")
	cert := &x509.Certificate{URIs: []*url.URL{u}, DNSNames: []string{"writer.prod"}, Subject: pkix.Name{CommonName: "writer"}}
	tlsInfo := credentials.TLSInfo{State: tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}}}
	for _, tc := range []struct {
		name string
		p    *peer.Peer
		want Identity
	}{
		{"nil", nil, Identity{}},
		{"loopback", &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5}}, Identity{Local: true, Addr: "127.0.0.1:5"}},
		{"ipv6 loopback", &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv6loopback, Port: 5}}, Identity{Local: true, Addr: "[::1]:5"}},
		{"unix", &peer.Peer{Addr: &net.UnixAddr{Name: "/s", Net: "unix"}}, Identity{Local: true, Addr: "/s"}},
		{"remote", &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 5}}, Identity{Addr: "10.0.0.7:5"}},
		{"remote with cert", &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 5}, AuthInfo: tlsInfo},
			Identity{Addr: "10.0.0.7:5", Subject: "spiffe://acme/ns/prod/sa/writer"}},
		{"unverified cert", &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 5},
			AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}}},
			Identity{Addr: "10.0.0.7:5"}},
	} {
		if got := IdentityOf(tc.p); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
	cert.URIs = nil
	if got := certSubject(cert); got != "writer.prod" {
		t.Errorf("DNS SAN: %q", got)
	}
	cert.DNSNames = nil
	if got := certSubject(cert); got != "writer" {
		t.Errorf("CN: %q", got)
	}
}

func TestIdentityLocalOnly(t *testing.T) {
	h := func(ctx context.Context, _ any) (any, error) {
		id, ok := IdentityFromContext(ctx)
		if !ok {
			t.Error("no identity in the handler's context")
		}
		return id, nil
	}
	info := &grpc.UnaryServerInfo{FullMethod: "/x.Y/Z"}
	remote := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 5}})
	if _, err := IdentityUnary(true)(remote, nil, info, h); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("remote caller on a local-only listener: %v", err)
	}
	got, err := IdentityUnary(false)(remote, nil, info, h)
	if err != nil || got.(Identity).Addr != "10.0.0.7:5" || got.(Identity).Local {
		t.Fatalf("remote allowed: %v %v", got, err)
	}
	local := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5}})
	got, err = IdentityUnary(true)(local, nil, info, h)
	if err != nil || !got.(Identity).Local {
		t.Fatalf("local: %v %v", got, err)
	}
}
