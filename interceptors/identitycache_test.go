package interceptors

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
)

func TestIdentityCache(t *testing.T) {
	c := newIdentityCache()
	a := &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}}
	first := c.get(a)
	if *first != (Identity{Local: true, Addr: "127.0.0.1:1"}) {
		t.Fatalf("first: %+v", *first)
	}
	if again := c.get(a); again != first {
		t.Fatal("the same connection's peer was not served from the cache")
	}
	// A different peer (a new connection), even with an equal address, is
	// derived anew; many more peers than slots all stay correct.
	var peers []*peer.Peer
	for i := range 4 * identityCacheSlots {
		peers = append(peers, &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(10, 0, byte(i>>8), byte(i)), Port: 7}})
	}
	for round := range 2 {
		for i, p := range peers {
			want := fmt.Sprintf("10.0.%d.%d:7", byte(i>>8), byte(i))
			if got := c.get(p); got.Addr != want || got.Local {
				t.Fatalf("round %d peer %d: %+v, want %s", round, i, *got, want)
			}
		}
	}
	if got := c.get(nil); *got != (Identity{}) {
		t.Fatalf("nil peer: %+v", *got)
	}
	b := &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}}
	if got := c.get(b); got == first || *got != *first {
		t.Fatalf("an equal peer of another connection: %p %+v (first %p)", got, *got, first)
	}
}

func TestIdentityCacheConcurrent(t *testing.T) {
	c := newIdentityCache()
	peers := make([]*peer.Peer, 3*identityCacheSlots)
	for i := range peers {
		peers[i] = &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(10, 1, byte(i>>8), byte(i)), Port: 9}}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for n := range 2000 {
				i := (n*7 + g) % len(peers)
				want := fmt.Sprintf("10.1.%d.%d:9", byte(i>>8), byte(i))
				if got := c.get(peers[i]); got.Addr != want {
					t.Errorf("peer %d: %q, want %q", i, got.Addr, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// The interceptor serves the identity of a connection's peer from its
// cache: every call on that connection sees the same value.
func TestIdentityUnaryCached(t *testing.T) {
	var seen []Identity
	h := func(ctx context.Context, _ any) (any, error) {
		id, ok := IdentityFromContext(ctx)
		if !ok {
			t.Error("no identity")
		}
		seen = append(seen, id)
		return nil, nil
	}
	in := IdentityUnary(false)
	conn := &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 9), Port: 4}}
	other := &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5}}
	info := &grpc.UnaryServerInfo{FullMethod: "/x.Y/Z"}
	for _, p := range []*peer.Peer{conn, other, conn} {
		if _, err := in(peer.NewContext(context.Background(), p), nil, info, h); err != nil {
			t.Fatal(err)
		}
	}
	want := []Identity{{Addr: "10.0.0.9:4"}, {Local: true, Addr: "127.0.0.1:5"}, {Addr: "10.0.0.9:4"}}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("got %+v, want %+v", seen, want)
	}
	if _, ok := IdentityFromContext(context.Background()); ok {
		t.Fatal("identity in a bare context")
	}
}

func BenchmarkIdentityUnary(b *testing.B) {
	in := IdentityUnary(true)
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}})
	info := &grpc.UnaryServerInfo{FullMethod: "/x.Y/Z"}
	h := func(context.Context, any) (any, error) { return nil, nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := in(ctx, nil, info, h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIdentityOf is the derivation the cache saves on every call.
func BenchmarkIdentityOf(b *testing.B) {
	p := &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}}
	b.ReportAllocs()
	for b.Loop() {
		if id := IdentityOf(p); !id.Local {
			b.Fatal("not local")
		}
	}
}
