package identity

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestGRPCPeerID runs gRPC over the source's mTLS configurations and reads
// the client's SPIFFE id in a server interceptor.
func TestGRPCPeerID(t *testing.T) {
	ca := newCA(t, "example.org")
	srvSrc := memSource(t, ca, idA)
	cliSrc := memSource(t, ca, idB)
	var mu sync.Mutex
	var seen []string
	gs := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(srvSrc.ServerTLSConfig())),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			id, err := PeerIDFromContext(ctx)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			seen = append(seen, id.String())
			mu.Unlock()
			return h(ctx, req)
		}),
	)
	healthpb.RegisterHealthServer(gs, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = gs.Serve(ln) }()
	t.Cleanup(func() { gs.Stop(); <-served })

	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cliSrc.ClientTLSConfig(AuthorizeID(MustParseID(idA))))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("Check: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != idB {
		t.Errorf("server saw %v; want [%s]", seen, idB)
	}
	if _, err := PeerIDFromContext(context.Background()); err == nil {
		t.Error("PeerIDFromContext without a peer succeeded")
	}
}
