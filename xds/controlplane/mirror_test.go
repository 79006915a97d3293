package controlplane_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/xds"
	"github.com/agwproject/agw/xds/xdstest"
)

const wait = 10 * time.Second

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

type mirrorStream = grpc.BidiStreamingClient[agpv1.MirrorRequest, agpv1.MirrorResponse]

func openMirror(t *testing.T, conn *grpc.ClientConn) mirrorStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	st, err := agpv1.NewRegistryClient(conn).Mirror(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func add(topics ...string) []*agpv1.SubscriptionChange {
	var out []*agpv1.SubscriptionChange
	for _, tp := range topics {
		out = append(out, &agpv1.SubscriptionChange{Op: agpv1.SubscriptionChange_OP_ADD, Topic: tp})
	}
	return out
}

// exchange sends req and returns the ack or the stream's error status.
func exchange(t *testing.T, st mirrorStream, req *agpv1.MirrorRequest) (*agpv1.MirrorResponse, error) {
	t.Helper()
	if err := st.Send(req); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return st.Recv()
}

func route(t *testing.T, cp *xdstest.ControlPlane, topic string) *agpv1.TopicRoute {
	t.Helper()
	r, err := cp.Store().Route(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestMirrorMalformedMessageEndsStreamKeepsIndex(t *testing.T) {
	cases := []struct {
		name string
		bad  *agpv1.MirrorRequest
		want string
	}{
		{"sequence not increasing", &agpv1.MirrorRequest{Sequence: 2, Changes: add("t/x")}, "not above"},
		{"sequence zero", &agpv1.MirrorRequest{Sequence: 0, Changes: add("t/x")}, "start at 1"},
		{"bad topic", &agpv1.MirrorRequest{Sequence: 3, Changes: add("bad topic")}, "whitespace"},
		{"empty topic", &agpv1.MirrorRequest{Sequence: 3, Changes: add("")}, "empty"},
		{"wildcard topic", &agpv1.MirrorRequest{Sequence: 3, Changes: add("*")}, "wildcard"},
		{"unknown op", &agpv1.MirrorRequest{Sequence: 3, Changes: []*agpv1.SubscriptionChange{{Op: 7, Topic: "t/x"}}}, "unknown op"},
		{"remove in full", &agpv1.MirrorRequest{Sequence: 3, Full: true, Changes: []*agpv1.SubscriptionChange{{Op: agpv1.SubscriptionChange_OP_REMOVE, Topic: "t/a"}}}, "REMOVE in a full"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := xdstest.Config()
			cfg.GracePeriod = 300 * time.Millisecond
			cp := xdstest.StartControlPlane(t, cfg)
			st := openMirror(t, dial(t, cp.Addr))
			if ack, err := exchange(t, st, &agpv1.MirrorRequest{NodeId: "node-a", PeerAddress: "127.0.0.1:46358", Sequence: 1, Full: true, Changes: add("t/a", "t/b")}); err != nil || ack.GetAckedSequence() != 1 {
				t.Fatalf("full table: ack %v err %v", ack, err)
			}
			if ack, err := exchange(t, st, &agpv1.MirrorRequest{Sequence: 2, Changes: []*agpv1.SubscriptionChange{{Op: agpv1.SubscriptionChange_OP_REMOVE, Topic: "t/b"}, {Op: agpv1.SubscriptionChange_OP_ADD, Topic: "t/c"}}}); err != nil || ack.GetAckedSequence() != 2 {
				t.Fatalf("delta: ack %v err %v", ack, err)
			}
			_, err := exchange(t, st, tc.bad)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want InvalidArgument containing %q", err, tc.want)
			}
			// Nothing sent before is lost: the endpoints are pending withdrawal.
			for _, tp := range []string{"t/a", "t/c"} {
				xdstest.Eventually(t, wait, tp+" pending", func() bool {
					r := route(t, cp, tp)
					return r != nil && len(r.Endpoints) == 1 && r.Endpoints[0].Status == agpv1.RouteEndpoint_STATUS_PENDING_WITHDRAWAL
				})
			}
			if route(t, cp, "t/b") != nil || route(t, cp, "t/x") != nil {
				t.Fatal("removed or rejected topic present in the index")
			}
			// Then the grace period runs out.
			xdstest.Eventually(t, wait, "withdrawn", func() bool { return route(t, cp, "t/a") == nil && route(t, cp, "t/c") == nil })
		})
	}
}

func TestMirrorFirstMessageChecks(t *testing.T) {
	cp := xdstest.StartControlPlane(t, xdstest.Config())
	conn := dial(t, cp.Addr)
	cases := []struct {
		name string
		req  *agpv1.MirrorRequest
		want string
	}{
		{"empty node id", &agpv1.MirrorRequest{PeerAddress: "127.0.0.1:1", Sequence: 1, Full: true}, "node id: empty"},
		{"bad node id", &agpv1.MirrorRequest{NodeId: "Node A", PeerAddress: "127.0.0.1:1", Sequence: 1, Full: true}, "lowercase"},
		{"bad address", &agpv1.MirrorRequest{NodeId: "node-a", PeerAddress: ":46358", Sequence: 1, Full: true}, "empty host"},
		{"not full", &agpv1.MirrorRequest{NodeId: "node-a", PeerAddress: "127.0.0.1:1", Sequence: 1}, "must be full"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := exchange(t, openMirror(t, conn), tc.req)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want InvalidArgument containing %q", err, tc.want)
			}
		})
	}
	if nodes := cp.DebugNodes(); len(nodes) != 0 {
		t.Fatalf("refused streams left nodes behind: %+v", nodes)
	}
}

func TestMirrorDuplicateNodeRefused(t *testing.T) {
	cp := xdstest.StartControlPlane(t, xdstest.Config())
	conn := dial(t, cp.Addr)
	first := openMirror(t, conn)
	if _, err := exchange(t, first, &agpv1.MirrorRequest{NodeId: "node-a", PeerAddress: "127.0.0.1:1", Sequence: 1, Full: true, Changes: add("t/a")}); err != nil {
		t.Fatal(err)
	}
	_, err := exchange(t, openMirror(t, dial(t, cp.Addr)), &agpv1.MirrorRequest{NodeId: "node-a", PeerAddress: "127.0.0.2:1", Sequence: 1, Full: true, Changes: add("t/evil")})
	if status.Code(err) != codes.AlreadyExists || !strings.Contains(err.Error(), "already connected") {
		t.Fatalf("got %v, want AlreadyExists", err)
	}
	if r := route(t, cp, "t/evil"); r != nil {
		t.Fatal("refused node's table reached the index")
	}
	if r := route(t, cp, "t/a"); r == nil || r.Endpoints[0].Address != "127.0.0.1:1" {
		t.Fatalf("first node's route changed: %v", r)
	}
	// The first stream still works, and the refusal is counted.
	if ack, err := exchange(t, first, &agpv1.MirrorRequest{Sequence: 2, Changes: add("t/b")}); err != nil || ack.GetAckedSequence() != 2 {
		t.Fatalf("first stream after refusal: %v %v", ack, err)
	}
	body := get(t, cp.AdminURL+"/metrics")
	if !strings.Contains(body, `agw_cp_mirror_rejected_total{reason="duplicate_node"} 1`) {
		t.Fatalf("duplicate not counted:\n%s", grepLines(body, "agw_cp_mirror"))
	}
}

func TestADSRefusesBadNodeIDAndSotW(t *testing.T) {
	cp := xdstest.StartControlPlane(t, xdstest.Config())
	ads := discovery.NewAggregatedDiscoveryServiceClient(dial(t, cp.Addr))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for _, id := range []string{"", "UPPER", "-lead"} {
		st, err := ads.DeltaAggregatedResources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(&discovery.DeltaDiscoveryRequest{Node: &core.Node{Id: id}, TypeUrl: xds.TypeURL}); err != nil {
			t.Fatal(err)
		}
		_, err = st.Recv()
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "node.id") {
			t.Fatalf("node id %q: got %v, want InvalidArgument about node.id", id, err)
		}
	}
	st, err := ads.DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Send(&discovery.DeltaDiscoveryRequest{Node: &core.Node{Id: "node-a"}, TypeUrl: "type.googleapis.com/envoy.config.cluster.v3.Cluster"})
	if _, err := st.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("foreign type URL: got %v, want InvalidArgument", err)
	}
	st, err = ads.DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Send(&discovery.DeltaDiscoveryRequest{Node: &core.Node{Id: "node-a"}, TypeUrl: xds.TypeURL, ResourceNamesSubscribe: []string{"ok/topic", "bad topic"}})
	if _, err := st.Recv(); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "resource_names_subscribe") {
		t.Fatalf("bad resource name: got %v, want InvalidArgument", err)
	}
	sotw, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sotw.Recv(); status.Code(err) != codes.Unimplemented {
		t.Fatalf("state of the world: got %v, want Unimplemented", err)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestMirrorTopicLimit(t *testing.T) {
	cfg := xdstest.Config()
	cfg.MaxTopicsPerNode = 2
	cp := xdstest.StartControlPlane(t, cfg)
	st := openMirror(t, dial(t, cp.Addr))
	if _, err := exchange(t, st, &agpv1.MirrorRequest{NodeId: "node-a", PeerAddress: "127.0.0.1:1", Sequence: 1, Full: true, Changes: add("t/a", "t/b")}); err != nil {
		t.Fatal(err)
	}
	// Re-adding a held topic is fine; a third one is not.
	if _, err := exchange(t, st, &agpv1.MirrorRequest{Sequence: 2, Changes: add("t/a")}); err != nil {
		t.Fatal(err)
	}
	_, err := exchange(t, st, &agpv1.MirrorRequest{Sequence: 3, Changes: add("t/c")})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "AGW_CP_MAX_TOPICS_PER_NODE") {
		t.Fatalf("got %v, want ResourceExhausted naming the setting", err)
	}
	if route(t, cp, "t/a") == nil || route(t, cp, "t/c") != nil {
		t.Fatal("index changed by a refused message")
	}
	// A full table over the limit is refused at once.
	_, err = exchange(t, openMirror(t, dial(t, cp.Addr)), &agpv1.MirrorRequest{NodeId: "node-b", PeerAddress: "127.0.0.1:2", Sequence: 1, Full: true, Changes: add("t/a", "t/b", "t/c")})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("full table over the limit: %v", err)
	}
}

// TestMirrorShutdownEndsIdleStream: a mirror stream waiting for the next
// message (the handler blocked in Recv) is ended at shutdown, well before
// the graceful-stop bound (gRPC reports the cancelled Recv as Canceled), and
// the node's routes are not withdrawn by the shutdown itself.
func TestMirrorShutdownEndsIdleStream(t *testing.T) {
	cfg := xdstest.Config()
	cfg.ShutdownTimeout = 20 * time.Second
	cp := xdstest.StartControlPlane(t, cfg)
	st := openMirror(t, dial(t, cp.Addr))
	if _, err := exchange(t, st, &agpv1.MirrorRequest{NodeId: "node-a", PeerAddress: "127.0.0.1:7001", Sequence: 1, Full: true, Changes: add("t/x")}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cp.Stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("shutdown took %s: the idle mirror stream held the graceful stop", took)
	}
	if _, err := st.Recv(); status.Code(err) != codes.Canceled && status.Code(err) != codes.Unavailable {
		t.Fatalf("stream ended with %v, want Canceled or Unavailable", err)
	}
	if r := route(t, cp, "t/x"); r == nil || r.GetEndpoints()[0].GetStatus() != agpv1.RouteEndpoint_STATUS_ACTIVE {
		t.Fatalf("route after shutdown %v, want still ACTIVE (nothing withdrawn at shutdown)", r)
	}
}

// TestMirrorStreamsOpenAndCloseRepeatedly: a node that reconnects again and
// again gets its lease back each time (each handler returns when its
// stream is cancelled by the client).
func TestMirrorStreamsOpenAndCloseRepeatedly(t *testing.T) {
	cp := xdstest.StartControlPlane(t, xdstest.Config())
	conn := dial(t, cp.Addr)
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		st, err := agpv1.NewRegistryClient(conn).Mirror(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(&agpv1.MirrorRequest{NodeId: "node-r", PeerAddress: "127.0.0.1:7002", Sequence: uint64(i + 1), Full: true, Changes: add("t/r")}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		cancel()
		// The lease is released when the handler returns; the next round
		// may only connect after that (a duplicate is refused).
		xdstest.Eventually(t, wait, "lease released", func() bool {
			for _, n := range cp.DebugNodes() {
				if n.NodeID == "node-r" {
					return n.Mirror != "connected"
				}
			}
			return true
		})
	}
}
