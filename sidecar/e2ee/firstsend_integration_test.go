package e2ee

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/internal/identity"
	"github.com/agwproject/agw/sidecar"
	"github.com/agwproject/agw/sidecar/sidecartest"
)

// switchRoutes is a sidecar.RouteSource whose routes the test sets, like
// routes pushed by the control plane: the node learns a peer's address only
// from them.
type switchRoutes struct {
	mu  sync.Mutex
	eps map[string][]*agpv1.RouteEndpoint
}

func (s *switchRoutes) Endpoints(topic string) []*agpv1.RouteEndpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eps[topic]
}

func (s *switchRoutes) Watch(string) {}

func (s *switchRoutes) set(topic string, nodes ...*meshNode) {
	var eps []*agpv1.RouteEndpoint
	for _, n := range nodes {
		eps = append(eps, &agpv1.RouteEndpoint{NodeId: n.id, Address: n.node.PeerAddr().String()})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eps == nil {
		s.eps = map[string][]*agpv1.RouteEndpoint{}
	}
	s.eps[topic] = eps
}

// startRouted starts sidecars without static peers or routes: each learns
// routes (and peer addresses) only from its switchRoutes, and its Manager's
// roster is a RouteRoster over them, as in `agw sidecar` with a control
// plane.
func startRouted(t *testing.T, ids ...string) ([]*meshNode, []*switchRoutes) {
	t.Helper()
	ca, err := identity.NewCA("example.org")
	if err != nil {
		t.Fatal(err)
	}
	var out []*meshNode
	var routes []*switchRoutes
	for _, id := range ids {
		src, err := ca.MemorySource(identity.MustParseID("spiffe://example.org/ns/agents/sa/"+id), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = src.Close() })
		cfg := DefaultConfig()
		cfg.RetryInterval, cfg.EpochWait, cfg.JoinTimeout = 50*time.Millisecond, 2*time.Second, 5*time.Second
		rs := &switchRoutes{}
		opts := []Option{WithRoster(&RouteRoster{Endpoints: rs.Endpoints})}
		nopts := []sidecar.Option{sidecar.WithRouteSource(rs)}
		if os.Getenv("E2EE_TEST_LOG") != "" {
			l := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
			opts = append(opts, WithLogger(l.With("node", id)))
			nopts = append(nopts, sidecar.WithLogger(l.With("node", id)))
		}
		mgr, err := New(cfg, id, src, nil, opts...)
		if err != nil {
			t.Fatal(err)
		}
		n := sidecartest.Start(t, sidecartest.Config(id), append(nopts, sidecar.WithPeerCrypter(mgr), sidecar.WithSubscriptionSink(mgr))...)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = mgr.Run(ctx) }()
		t.Cleanup(func() { cancel(); _ = mgr.Close(); <-done })
		out = append(out, &meshNode{id: id, node: n, mgr: mgr})
		routes = append(routes, rs)
	}
	return out, routes
}

// TestFirstMulticastWhenRouteAppears is the `agw demo` race: subscribers on
// b and c each hold a channel of their own (they have no route for the
// topic), and a publishes with fanout 0 the moment its route to b and c
// appears, before any peer link exists. The acknowledged message must reach
// both; so must a message to a new subscriber on a new topic right after
// its route appears (multicast and anycast).
func TestFirstMulticastWhenRouteAppears(t *testing.T) {
	mesh, routes := startRouted(t, "a", "b", "c")
	ctx := ctxT(t)
	pub := sidecartest.DialAgent(t, mesh[0].node)
	subB := sidecartest.DialAgent(t, mesh[1].node)
	subC := sidecartest.DialAgent(t, mesh[2].node)
	for _, ag := range []*sidecartest.Agent{subB, subC} {
		if err := ag.Subscribe(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "b and c hold a channel", func() bool {
		_, okB := groupOf(mesh[1].mgr, topic)
		_, okC := groupOf(mesh[2].mgr, topic)
		return okB && okC
	})
	receive := func(ag *sidecartest.Agent, who, want string) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		m, err := ag.Next(rctx)
		if err != nil {
			for _, mn := range mesh {
				t.Logf("%s: groups %+v security %v", mn.id, mn.mgr.Groups(), dumpEvents(mn.mgr))
			}
			t.Fatalf("%s received nothing: %v", who, err)
		}
		if string(m.Payload) != want {
			t.Fatalf("%s received %q, want %q", who, m.Payload, want)
		}
	}

	routes[0].set(topic, mesh[1], mesh[2])
	ack, err := pub.PublishTo(ctx, topic, 0, []byte("first"))
	if err != nil {
		t.Fatal(err)
	}
	if ack.RemoteDeliveries != 2 {
		t.Fatalf("remote deliveries %d, want 2", ack.RemoteDeliveries)
	}
	receive(subB, "b", "first")
	receive(subC, "c", "first")
	for i := range 3 { // and the channel goes on working
		msg := fmt.Sprintf("next %d", i)
		if _, err := pub.PublishTo(ctx, topic, 0, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		receive(subB, "b", msg)
		receive(subC, "c", msg)
	}

	// A later subscriber on a new topic, routed to right away (the demo's
	// step [6]); the peer link exists by now.
	const later = "org/ns/alerts"
	if err := subC.Subscribe(ctx, later); err != nil {
		t.Fatal(err)
	}
	routes[0].set(later, mesh[2])
	if _, err := pub.PublishTo(ctx, later, 0, []byte("alert")); err != nil {
		t.Fatal(err)
	}
	receive(subC, "c (later topic)", "alert")

	// Anycast to a new topic: the point-to-point session with b.
	const svc = "org/ns/service"
	if err := subB.Subscribe(ctx, svc); err != nil {
		t.Fatal(err)
	}
	routes[0].set(svc, mesh[1])
	if ack, err := pub.PublishTo(ctx, svc, 1, []byte("job")); err != nil || ack.RemoteDeliveries != 1 {
		t.Fatalf("anycast: %v %v", ack, err)
	}
	receive(subB, "b (anycast)", "job")
}
