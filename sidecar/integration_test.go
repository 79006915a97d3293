package sidecar_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/sidecar"
	"github.com/agwproject/agw/sidecar/sidecartest"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

const topic = "acme/prod/search"

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func peerInfo(n *sidecar.Node, node string) (sidecar.ConnInfo, bool) {
	for _, c := range n.Connections() {
		if c.Kind == sidecar.KindPeer && c.NodeID == node {
			return c, true
		}
	}
	return sidecar.ConnInfo{}, false
}

func peerStatus(n *sidecar.Node, node string) sidecar.ConnStatus {
	c, _ := peerInfo(n, node)
	return c.Status
}

type testNode struct {
	*sidecar.Node
	reg *prometheus.Registry
}

func (n testNode) drops(reason string) float64 {
	return gather(n.reg, "agw_sidecar_drops_total", "reason", reason)
}

// gather returns the value of the metric family name with label=value.
func gather(reg *prometheus.Registry, name, label, value string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					if c := m.GetCounter(); c != nil {
						return c.GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}

func startNode(t *testing.T, cfg sidecar.Config) testNode {
	reg := prometheus.NewRegistry()
	return testNode{sidecartest.Start(t, cfg, sidecar.WithRegisterer(reg)), reg}
}

// mesh starts nodes with the given ids, each statically peered with the
// earlier ones (inbound links serve the other direction), with routes
// topic -> every other node listed in routes[topic].
func mesh(t *testing.T, ids []string, routes map[string][]string, tweak func(*sidecar.Config)) []testNode {
	t.Helper()
	var nodes []testNode
	var peers []string
	for _, id := range ids {
		cfg := sidecartest.Config(id)
		cfg.StaticPeers = append([]string(nil), peers...)
		for tp, targets := range routes {
			for _, to := range targets {
				if to != id {
					cfg.StaticRoutes = append(cfg.StaticRoutes, tp+"="+to)
				}
			}
		}
		if tweak != nil {
			tweak(&cfg)
		}
		n := startNode(t, cfg)
		peers = append(peers, id+"="+n.PeerAddr().String())
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		for _, id := range ids {
			if id == n.NodeID() {
				continue
			}
			eventually(t, 5*time.Second, fmt.Sprintf("%s linked to %s", n.NodeID(), id), func() bool {
				return peerStatus(n.Node, id) == sidecar.StatusUp
			})
		}
	}
	return nodes
}

func subscribe(t *testing.T, ctx context.Context, n testNode, name string) *sidecartest.Agent {
	t.Helper()
	a := sidecartest.DialAgent(t, n.Node)
	if err := a.Subscribe(ctx, name); err != nil {
		t.Fatalf("subscribe on %s: %v", n.NodeID(), err)
	}
	return a
}

// expectNone checks that a receives nothing within a short while.
func expectNone(t *testing.T, a *sidecartest.Agent, who string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if m, err := a.Next(ctx); err == nil {
		t.Fatalf("%s got unexpected message %v", who, m)
	}
}

func TestTwoNodesPublish(t *testing.T) {
	ctx := ctxT(t)
	nodes := mesh(t, []string{"a", "b"}, map[string][]string{topic: {"b"}}, nil)
	sub := subscribe(t, ctx, nodes[1], topic)
	pub := sidecartest.DialAgent(t, nodes[0].Node)
	ack, err := pub.PublishTo(ctx, topic, 0, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if ack.RemoteDeliveries != 1 || ack.LocalDeliveries != 0 || ack.MessageId == "" {
		t.Fatalf("ack = %v", ack)
	}
	m, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Payload) != "hello" || m.Header.MessageId != ack.MessageId {
		t.Fatalf("got %v", m)
	}
	if m.Header.HopLimit != 7 {
		t.Fatalf("hop limit %d, want default 8 decremented to 7", m.Header.HopLimit)
	}
}

func TestThreeNodeFanout(t *testing.T) {
	ctx := ctxT(t)
	nodes := mesh(t, []string{"a", "b", "c"}, map[string][]string{topic: {"a", "b", "c"}}, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]
	subA := subscribe(t, ctx, a, topic)
	subB := subscribe(t, ctx, b, topic)
	subC := subscribe(t, ctx, c, topic)
	pub := sidecartest.DialAgent(t, a.Node)

	t.Run("multicast all", func(t *testing.T) {
		ack, err := pub.PublishTo(ctx, topic, 0, []byte("all"))
		if err != nil {
			t.Fatal(err)
		}
		if ack.LocalDeliveries != 1 || ack.RemoteDeliveries != 2 {
			t.Fatalf("ack %v, want 1 local + 2 remote", ack)
		}
		for name, s := range map[string]*sidecartest.Agent{"a": subA, "b": subB, "c": subC} {
			m, err := s.Next(ctx)
			if err != nil || string(m.Payload) != "all" {
				t.Fatalf("%s: %v %v", name, m, err)
			}
			// one-hop rule: b and c must not relay to each other.
			expectNone(t, s, name)
		}
	})

	t.Run("anycast local first", func(t *testing.T) {
		for i := range 5 {
			ack, err := pub.PublishTo(ctx, topic, 1, []byte{byte(i)})
			if err != nil {
				t.Fatal(err)
			}
			if ack.LocalDeliveries != 1 || ack.RemoteDeliveries != 0 {
				t.Fatalf("ack %v, want the local subscriber", ack)
			}
			if _, err := subA.Next(ctx); err != nil {
				t.Fatal(err)
			}
		}
		expectNone(t, subB, "b")
		expectNone(t, subC, "c")
	})

	t.Run("fanout 2", func(t *testing.T) {
		ack, err := pub.PublishTo(ctx, topic, 2, []byte("two"))
		if err != nil {
			t.Fatal(err)
		}
		if ack.LocalDeliveries != 1 || ack.RemoteDeliveries != 1 {
			t.Fatalf("ack %v, want 1 local + 1 remote", ack)
		}
		if _, err := subA.Next(ctx); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "one remote delivery", func() bool { return subB.Pending()+subC.Pending() >= 1 })
		time.Sleep(100 * time.Millisecond) // room for a wrong second delivery to show
		if got := subB.Pending() + subC.Pending(); got != 1 {
			t.Fatalf("%d remote subscribers got the fanout-2 message, want 1", got)
		}
		for _, s := range []*sidecartest.Agent{subB, subC} {
			for s.Pending() > 0 {
				_, _ = s.Next(ctx)
			}
		}
	})

	t.Run("anycast round robin over remotes", func(t *testing.T) {
		if err := subA.Unsubscribe(ctx, topic); err != nil {
			t.Fatal(err)
		}
		const n = 10
		for i := range n {
			ack, err := pub.PublishTo(ctx, topic, 1, []byte{byte(i)})
			if err != nil {
				t.Fatal(err)
			}
			if ack.LocalDeliveries != 0 || ack.RemoteDeliveries != 1 {
				t.Fatalf("ack %v, want one remote", ack)
			}
		}
		eventually(t, 5*time.Second, "10 anycast messages delivered", func() bool {
			return subB.Pending()+subC.Pending() == n
		})
		if subB.Pending() != n/2 || subC.Pending() != n/2 {
			t.Fatalf("round robin split b=%d c=%d, want %d each", subB.Pending(), subC.Pending(), n/2)
		}
		for range subB.Pending() {
			_, _ = subB.Next(ctx)
		}
		for range subC.Pending() {
			_, _ = subC.Next(ctx)
		}
		expectNone(t, subA, "a after unsubscribe")
	})

	t.Run("own publish excluded", func(t *testing.T) {
		self := subscribe(t, ctx, a, "acme/prod/self")
		ack, err := self.PublishTo(ctx, "acme/prod/self", 0, []byte("me"))
		if err != nil {
			t.Fatal(err)
		}
		if ack.LocalDeliveries != 0 {
			t.Fatalf("ack %v: publisher got its own message", ack)
		}
		expectNone(t, self, "publisher")
	})

	t.Run("subscription dump", func(t *testing.T) {
		var found bool
		for _, s := range a.Subscriptions() {
			if s.Topic == topic {
				found = true
				if len(s.Remote) != 2 || s.Remote[0].NodeID != "b" || s.Remote[1].NodeID != "c" || s.Remote[0].Status != sidecar.SubActive {
					t.Fatalf("remote subscribers %+v", s.Remote)
				}
			}
		}
		if !found {
			t.Fatalf("topic %s missing from %+v", topic, a.Subscriptions())
		}
	})
}

// rawPeer opens a Peer.Link to n and sends hs.
func rawPeer(t *testing.T, n *sidecar.Node, hs *agpv1.Handshake) (grpc.BidiStreamingClient[agpv1.PeerFrame, agpv1.PeerFrame], error) {
	t.Helper()
	cc, err := grpc.NewClient(n.PeerAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	st, err := agpv1.NewPeerClient(cc).Link(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&agpv1.PeerFrame{Kind: &agpv1.PeerFrame_Handshake{Handshake: hs}}); err != nil {
		t.Fatal(err)
	}
	f, err := st.Recv()
	if err != nil {
		return st, err
	}
	if f.GetHandshake().GetNodeId() != n.NodeID() {
		t.Fatalf("answer %v", f)
	}
	return st, nil
}

func hs(node string, version uint32) *agpv1.Handshake {
	return &agpv1.Handshake{NodeId: node, ProtocolVersion: version, MaxMessageBytes: 1 << 20}
}

func TestPeerHandshakeRejections(t *testing.T) {
	nodes := mesh(t, []string{"a", "b"}, nil, nil)
	a := nodes[0]
	for _, tc := range []struct {
		name string
		hs   *agpv1.Handshake
		code codes.Code
		msg  string
	}{
		{"version mismatch", hs("z", 2), codes.FailedPrecondition, "protocol version mismatch"},
		{"duplicate node id", hs("b", 1), codes.AlreadyExists, "duplicate node id"},
		{"own node id", hs("a", 1), codes.AlreadyExists, "own id"},
		{"bad node id", hs("bad id!", 1), codes.InvalidArgument, "node id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rawPeer(t, a.Node, tc.hs)
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %s containing %q", err, tc.code, tc.msg)
			}
		})
	}
	// The real link is unaffected.
	if peerStatus(a.Node, "b") != sidecar.StatusUp {
		t.Fatal("link to b disturbed")
	}
}

func TestPeerMessageRules(t *testing.T) {
	ctx := ctxT(t)
	// b routes topic to c, but messages from peers are delivered locally only.
	nodes := mesh(t, []string{"b", "c"}, map[string][]string{topic: {"c"}}, nil)
	b, c := nodes[0], nodes[1]
	subB := subscribe(t, ctx, b, topic)
	subC := subscribe(t, ctx, c, topic)
	st, err := rawPeer(t, b.Node, hs("x", 1))
	if err != nil {
		t.Fatal(err)
	}
	send := func(hop uint32, payload string) {
		t.Helper()
		err := st.Send(&agpv1.PeerFrame{Kind: &agpv1.PeerFrame_Message{Message: &agpv1.Message{
			Header: &agpv1.Header{Destination: topic, HopLimit: hop, MessageId: payload}, Payload: []byte(payload)}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	send(0, "hop0")
	eventually(t, 5*time.Second, "hop_limit drop counted", func() bool { return b.drops(sidecar.DropHopLimit) == 1 })
	send(1, "hop1")
	m, err := subB.Next(ctx)
	if err != nil || string(m.Payload) != "hop1" || m.Header.HopLimit != 0 {
		t.Fatalf("got %v %v, want hop1 with hop limit 0", m, err)
	}
	expectNone(t, subB, "b after hop1")
	expectNone(t, subC, "c (one-hop rule)")
	// Malformed messages are dropped, the link stays.
	if err := st.Send(&agpv1.PeerFrame{Kind: &agpv1.PeerFrame_Message{Message: &agpv1.Message{Header: &agpv1.Header{Destination: "Not A Name", HopLimit: 3}}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "malformed drop counted", func() bool { return b.drops(sidecar.DropMalformed) == 1 })
	send(2, "after")
	if m, err := subB.Next(ctx); err != nil || string(m.Payload) != "after" {
		t.Fatalf("got %v %v", m, err)
	}
	if info, _ := peerInfo(b.Node, "x"); info.Counters.MsgsIn != 4 || info.Direction != "inbound" {
		t.Fatalf("peer x info %+v", info)
	}
	// Goodbye marks the peer draining; closing marks it down.
	if err := st.Send(&agpv1.PeerFrame{Kind: &agpv1.PeerFrame_Goodbye{Goodbye: &agpv1.Goodbye{Reason: "test"}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "x draining", func() bool { return peerStatus(b.Node, "x") == sidecar.StatusDraining })
	_ = st.CloseSend()
	eventually(t, 5*time.Second, "x down", func() bool { return peerStatus(b.Node, "x") == sidecar.StatusDown })
}

func TestAgentErrors(t *testing.T) {
	ctx := ctxT(t)
	cfg := sidecartest.Config("a")
	cfg.MaxMessageBytes = 64 << 10
	n := startNode(t, cfg)
	other := subscribe(t, ctx, n, topic)
	a := sidecartest.DialAgent(t, n.Node)

	for _, tc := range []struct {
		name string
		req  *agpv1.AgentRequest
		code codes.Code
		msg  string
	}{
		{"invalid subscribe name", &agpv1.AgentRequest{Kind: &agpv1.AgentRequest_Subscribe{Subscribe: &agpv1.Subscribe{Name: "Acme/x"}}}, codes.InvalidArgument, "invalid AGP name"},
		{"invalid destination", &agpv1.AgentRequest{Kind: &agpv1.AgentRequest_Publish{Publish: &agpv1.Publish{Message: &agpv1.Message{Header: &agpv1.Header{Destination: "a/b"}}}}}, codes.InvalidArgument, "destination"},
		{"invalid source", &agpv1.AgentRequest{Kind: &agpv1.AgentRequest_Publish{Publish: &agpv1.Publish{Message: &agpv1.Message{Header: &agpv1.Header{Destination: topic, Source: "x"}}}}}, codes.InvalidArgument, "source"},
		{"missing header", &agpv1.AgentRequest{Kind: &agpv1.AgentRequest_Publish{Publish: &agpv1.Publish{}}}, codes.InvalidArgument, "header"},
		{"hop limit too high", &agpv1.AgentRequest{Kind: &agpv1.AgentRequest_Publish{Publish: &agpv1.Publish{Message: &agpv1.Message{Header: &agpv1.Header{Destination: topic, HopLimit: 1000}}}}}, codes.InvalidArgument, "hop_limit"},
		{"unknown kind", &agpv1.AgentRequest{}, codes.InvalidArgument, "no known kind"},
		{"message above limit", &agpv1.AgentRequest{Kind: &agpv1.AgentRequest_Publish{Publish: &agpv1.Publish{Message: &agpv1.Message{Header: &agpv1.Header{Destination: topic}, Payload: make([]byte, 64<<10+100)}}}}, codes.ResourceExhausted, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Do(ctx, tc.req)
			if err == nil || status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %s containing %q", err, tc.code, tc.msg)
			}
		})
	}
	// The stream still works after per-request errors.
	ack, err := a.PublishTo(ctx, topic, 0, []byte("ok"))
	if err != nil || ack.LocalDeliveries != 1 {
		t.Fatalf("publish after errors: %v %v", ack, err)
	}
	if _, err := other.Next(ctx); err != nil {
		t.Fatal(err)
	}

	// An oversized frame ends that stream with RESOURCE_EXHAUSTED only.
	big := sidecartest.DialAgent(t, n.Node)
	_, err = big.PublishTo(ctx, topic, 0, make([]byte, 1<<20))
	if status.Code(err) != codes.ResourceExhausted {
		<-big.Done()
		if status.Code(big.Err()) != codes.ResourceExhausted {
			t.Fatalf("oversized publish: %v / stream %v, want RESOURCE_EXHAUSTED", err, big.Err())
		}
	}
	ack, err = a.PublishTo(ctx, topic, 0, []byte("still ok"))
	if err != nil || ack.LocalDeliveries != 1 {
		t.Fatalf("other connection disturbed: %v %v", ack, err)
	}
}

// rawAgent opens an agent stream that never reads, with a small receive
// window so the sidecar's queue for it fills.
func rawAgent(t *testing.T, n *sidecar.Node) grpc.BidiStreamingClient[agpv1.AgentRequest, agpv1.AgentResponse] {
	cc, err := grpc.NewClient(n.AgentAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := agpv1.NewGatewayClient(cc).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestSlowConsumer(t *testing.T) {
	ctx := ctxT(t)
	cfg := sidecartest.Config("a")
	cfg.QueueSize = 16
	n := startNode(t, cfg)
	good := subscribe(t, ctx, n, topic)
	slow := rawAgent(t, n.Node)
	if err := slow.Send(&agpv1.AgentRequest{RequestId: 1, Kind: &agpv1.AgentRequest_Subscribe{Subscribe: &agpv1.Subscribe{Name: topic}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "two subscribers", func() bool {
		s := n.Subscriptions()
		return len(s) == 1 && len(s[0].Local) == 2
	})
	pub := sidecartest.DialAgent(t, n.Node)
	const total = 400
	payload := bytes.Repeat([]byte("x"), 4096)
	for i := range total {
		ack, err := pub.PublishTo(ctx, topic, 0, payload)
		if err != nil {
			t.Fatal(err)
		}
		// The good subscriber keeps up and gets every message.
		if _, err := good.Next(ctx); err != nil {
			t.Fatalf("good subscriber got %d of %d: %v", i, total, err)
		}
		if ack.LocalDeliveries == 0 {
			t.Fatalf("message %d reached no one", i)
		}
	}
	if d := n.drops(sidecar.DropSlowConsumer); d == 0 {
		t.Fatal("no slow_consumer drops counted")
	}
	var slowInfo sidecar.ConnInfo
	for _, c := range n.Connections() {
		if c.Kind == sidecar.KindAgent && c.Counters.Drops > 0 {
			slowInfo = c
		}
	}
	if slowInfo.QueueDepth > cfg.QueueSize || slowInfo.Counters.Drops == 0 {
		t.Fatalf("slow consumer entry %+v", slowInfo)
	}
}

func TestPeerRestartReconnects(t *testing.T) {
	ctx := ctxT(t)
	cfgB := sidecartest.Config("b")
	b1 := startNode(t, cfgB)
	bAddr := b1.PeerAddr().String()
	cfgA := sidecartest.Config("a")
	cfgA.StaticPeers = []string{"b=" + bAddr}
	cfgA.StaticRoutes = []string{topic + "=b"}
	a := startNode(t, cfgA)
	eventually(t, 5*time.Second, "a linked to b", func() bool { return peerStatus(a.Node, "b") == sidecar.StatusUp })
	sub := subscribe(t, ctx, b1, topic)
	pub := sidecartest.DialAgent(t, a.Node)
	if ack, err := pub.PublishTo(ctx, topic, 0, []byte("1")); err != nil || ack.RemoteDeliveries != 1 {
		t.Fatalf("%v %v", ack, err)
	}
	if _, err := sub.Next(ctx); err != nil {
		t.Fatal(err)
	}
	sub.Close()
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "b down at a", func() bool { return peerStatus(a.Node, "b") == sidecar.StatusDown })
	ack, err := pub.PublishTo(ctx, topic, 0, []byte("lost"))
	if err != nil || ack.RemoteDeliveries != 0 {
		t.Fatalf("publish while b down: %v %v", ack, err)
	}
	if a.drops(sidecar.DropPeerDown) < 1 {
		t.Fatal("peer_down drop not counted")
	}
	// b comes back on the same address.
	cfgB.PeerListen = bAddr
	b2 := startNode(t, cfgB)
	eventually(t, 5*time.Second, "a relinked to b", func() bool { return peerStatus(a.Node, "b") == sidecar.StatusUp })
	sub2 := subscribe(t, ctx, b2, topic)
	if ack, err := pub.PublishTo(ctx, topic, 0, []byte("2")); err != nil || ack.RemoteDeliveries != 1 {
		t.Fatalf("%v %v", ack, err)
	}
	if m, err := sub2.Next(ctx); err != nil || string(m.Payload) != "2" {
		t.Fatalf("%v %v", m, err)
	}
}

// routeTable is a RouteSource for tests.
type routeTable map[string][]*agpv1.RouteEndpoint

func (r routeTable) Endpoints(topic string) []*agpv1.RouteEndpoint { return r[topic] }
func (r routeTable) Watch(string)                                  {}

func TestLazyDial(t *testing.T) {
	ctx := ctxT(t)
	// a knows b only from a route: the first publish dials b, and the
	// message queued while connecting is delivered.
	cfgB := sidecartest.Config("b")
	cfgB.StaticRoutes = []string{"acme/prod/back=a"} // no address: only the inbound link reaches a
	b := startNode(t, cfgB)
	sub := subscribe(t, ctx, b, topic)
	routes := routeTable{topic: {{NodeId: "b", Address: b.PeerAddr().String(), Status: agpv1.RouteEndpoint_STATUS_ACTIVE}}}
	regA := prometheus.NewRegistry()
	a := testNode{sidecartest.Start(t, sidecartest.Config("a"), sidecar.WithRegisterer(regA), sidecar.WithRouteSource(routes)), regA}
	if _, ok := peerInfo(a.Node, "b"); ok {
		t.Fatal("a linked to b before any publish")
	}
	pub := sidecartest.DialAgent(t, a.Node)
	if ack, err := pub.PublishTo(ctx, topic, 0, []byte("first")); err != nil || ack.RemoteDeliveries != 1 {
		t.Fatalf("%v %v", ack, err)
	}
	if m, err := sub.Next(ctx); err != nil || string(m.Payload) != "first" {
		t.Fatalf("%v %v", m, err)
	}
	ia, _ := peerInfo(a.Node, "b")
	ib, _ := peerInfo(b.Node, "a")
	if ia.Direction != "outbound" || ib.Direction != "inbound" || ib.Status != sidecar.StatusUp {
		t.Fatalf("a->b %+v, b->a %+v", ia, ib)
	}
	// The dialled link carries traffic the other way too.
	subA := subscribe(t, ctx, a, "acme/prod/back")
	pubB := sidecartest.DialAgent(t, b.Node)
	if ack, err := pubB.PublishTo(ctx, "acme/prod/back", 0, []byte("back")); err != nil || ack.RemoteDeliveries != 1 {
		t.Fatalf("%v %v", ack, err)
	}
	if m, err := subA.Next(ctx); err != nil || string(m.Payload) != "back" {
		t.Fatalf("%v %v", m, err)
	}
}

func TestAdminHTTP(t *testing.T) {
	ctx := ctxT(t)
	n := startNode(t, sidecartest.Config("a"))
	_ = subscribe(t, ctx, n, topic)
	n.HandleAdmin("/debug/extra", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("extra")) }))
	base := "http://" + n.AdminAddr().String()
	get := func(path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for path, want := range map[string]string{
		"/healthz":             "ok",
		"/readyz":              "ready",
		"/metrics":             `agw_sidecar_connections{kind="agent",status="up"} 1`,
		"/debug/connections":   `"kind": "agent"`,
		"/debug/subscriptions": `"topic": "acme/prod/search"`,
		"/debug/extra":         "extra",
	} {
		code, body := get(path)
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d %q, want 200 containing %q", path, code, body, want)
		}
	}
}

func TestShutdownGoodbye(t *testing.T) {
	nodes := mesh(t, []string{"a", "b"}, nil, func(c *sidecar.Config) { c.ReconnectMin = time.Second; c.ReconnectMax = 2 * time.Second })
	a, b := nodes[0], nodes[1]
	if !b.IsReady() {
		t.Fatal("b not ready")
	}
	done := make(chan struct{})
	go func() { _ = b.Close(); close(done) }()
	eventually(t, 5*time.Second, "a sees b leave", func() bool {
		s := peerStatus(a.Node, "b")
		return s == sidecar.StatusDraining || s == sidecar.StatusDown
	})
	<-done
	if b.IsReady() {
		t.Fatal("b still ready after Close")
	}
	_ = b.Close() // idempotent
	eventually(t, 5*time.Second, "b down at a", func() bool { return peerStatus(a.Node, "b") == sidecar.StatusDown })
}

func TestDrainIsBoundedAndUnready(t *testing.T) {
	ctx := ctxT(t)
	cfg := sidecartest.Config("a")
	cfg.QueueSize = 4
	cfg.ShutdownTimeout = 700 * time.Millisecond
	n, err := sidecar.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- n.Run(context.Background()) }()
	<-n.Ready()
	// A subscriber that never reads keeps a non-empty queue, so the drain
	// runs until ShutdownTimeout.
	slow := rawAgent(t, n)
	if err := slow.Send(&agpv1.AgentRequest{RequestId: 1, Kind: &agpv1.AgentRequest_Subscribe{Subscribe: &agpv1.Subscribe{Name: topic}}}); err != nil {
		t.Fatal(err)
	}
	pub := sidecartest.DialAgent(t, n)
	eventually(t, 5*time.Second, "slow subscriber's queue non-empty", func() bool {
		if _, err := pub.PublishTo(ctx, topic, 0, make([]byte, 32<<10)); err != nil {
			t.Fatal(err)
		}
		for _, c := range n.Connections() {
			if c.QueueDepth > 0 {
				return true
			}
		}
		return false
	})
	readyz := func() int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.AdminAddr().String()+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := readyz(); code != http.StatusOK {
		t.Fatalf("readyz = %d before shutdown", code)
	}
	start := time.Now()
	closed := make(chan struct{})
	go func() { _ = n.Close(); close(closed) }()
	eventually(t, 5*time.Second, "readyz 503 while draining", func() bool { return readyz() == http.StatusServiceUnavailable })
	// Publishes are refused while draining.
	if _, err := pub.PublishTo(ctx, topic, 0, nil); status.Code(err) != codes.Unavailable {
		t.Fatalf("publish while draining: %v, want UNAVAILABLE", err)
	}
	<-closed
	if took := time.Since(start); took < 500*time.Millisecond || took > 5*time.Second {
		t.Fatalf("shutdown took %s, want about ShutdownTimeout (700ms)", took)
	}
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
}

func TestIdleLearntPeerDropped(t *testing.T) {
	ctx := ctxT(t)
	b := startNode(t, sidecartest.Config("b"))
	sub := subscribe(t, ctx, b, topic)
	routes := routeTable{topic: {{NodeId: "b", Address: b.PeerAddr().String(), Status: agpv1.RouteEndpoint_STATUS_ACTIVE}}}
	cfgA := sidecartest.Config("a")
	cfgA.PeerIdleTimeout = time.Second
	a := testNode{sidecartest.Start(t, cfgA, sidecar.WithRouteSource(routes)), nil}
	pub := sidecartest.DialAgent(t, a.Node)
	if ack, err := pub.PublishTo(ctx, topic, 0, []byte("x")); err != nil || ack.RemoteDeliveries != 1 {
		t.Fatalf("%v %v", ack, err)
	}
	if _, err := sub.Next(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "idle learnt peer dropped by a", func() bool {
		_, ok := peerInfo(a.Node, "b")
		return !ok
	})
	eventually(t, 5*time.Second, "b sees the link end", func() bool { return peerStatus(b.Node, "a") == sidecar.StatusDown })
	// Used again, it is dialled again.
	if ack, err := pub.PublishTo(ctx, topic, 0, []byte("y")); err != nil || ack.RemoteDeliveries != 1 {
		t.Fatalf("%v %v", ack, err)
	}
	if m, err := sub.Next(ctx); err != nil || string(m.Payload) != "y" {
		t.Fatalf("%v %v", m, err)
	}
}
