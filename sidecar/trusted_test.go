package sidecar_test

import (
	"testing"
	"time"

	"github.com/agwproject/agw/sidecar"
	"github.com/agwproject/agw/sidecar/sidecartest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func dialTrusted(t *testing.T, n *sidecar.Node, opt grpc.DialOption) *sidecartest.Agent {
	t.Helper()
	a, err := sidecartest.Dial(n.AgentAddr().String(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// TestReservedRPCTopics: an ordinary agent can neither subscribe nor
// publish to the RPC layer's reserved names (so it can neither read nor
// forge RPC frames); a connection with the node's trusted credential can,
// and even it cannot use the MLS handshake names.
func TestReservedRPCTopics(t *testing.T) {
	ctx := ctxT(t)
	n := startNode(t, sidecartest.Config("a"))
	other := startNode(t, sidecartest.Config("b"))
	const rpcTopic = sidecar.RPCTopicPrefix + "acme/demo/echo/1"
	const mlsTopic = sidecar.MLSTopicPrefix + "acme/demo/echo"

	agent := sidecartest.DialAgent(t, n.Node)
	for _, tp := range []string{rpcTopic, mlsTopic} {
		if err := agent.Subscribe(ctx, tp); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("agent subscribe %s: %v, want PERMISSION_DENIED", tp, err)
		}
		if _, err := agent.PublishTo(ctx, tp, 1, []byte("forged")); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("agent publish %s: %v, want PERMISSION_DENIED", tp, err)
		}
	}

	trusted := dialTrusted(t, n.Node, n.TrustedAgentDialOption())
	if err := trusted.Subscribe(ctx, rpcTopic); err != nil {
		t.Fatalf("trusted subscribe: %v", err)
	}
	if err := trusted.Subscribe(ctx, mlsTopic); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("trusted subscribe to an MLS name: %v, want PERMISSION_DENIED", err)
	}
	// The refused publish reached no one; a trusted one does.
	if _, err := agent.PublishTo(ctx, rpcTopic, 0, []byte("forged")); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("agent publish: %v", err)
	}
	sender := dialTrusted(t, n.Node, n.TrustedAgentDialOption())
	ack, err := sender.PublishTo(ctx, rpcTopic, 0, []byte("frame"))
	if err != nil || ack.LocalDeliveries != 1 {
		t.Fatalf("trusted publish: %v %v", ack, err)
	}
	m, err := trusted.Next(ctx)
	if err != nil || string(m.GetPayload()) != "frame" {
		t.Fatalf("trusted subscriber got %v %v, want the trusted frame only", m, err)
	}
	if trusted.Pending() != 0 {
		t.Fatal("the trusted subscriber got more than the trusted frame")
	}
	// Ordinary topics still work for both kinds.
	if err := agent.Subscribe(ctx, "acme/demo/news"); err != nil {
		t.Fatal(err)
	}
	if ack, err := sender.PublishTo(ctx, "acme/demo/news", 0, []byte("x")); err != nil || ack.LocalDeliveries != 1 {
		t.Fatalf("trusted publish to an ordinary topic: %v %v", ack, err)
	}

	// Another node's credential is not this node's: the stream is refused.
	forged := dialTrusted(t, n.Node, other.TrustedAgentDialOption())
	if err := forged.Subscribe(ctx, rpcTopic); status.Code(err) != codes.PermissionDenied {
		select {
		case <-forged.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("forged credential: subscribe %v and the stream stays up", err)
		}
		if status.Code(forged.Err()) != codes.PermissionDenied {
			t.Fatalf("forged credential: subscribe %v, stream %v; want PERMISSION_DENIED", err, forged.Err())
		}
	}
}

// TestInProcessAgentAPI: the node's in-memory agent listener serves the
// agent API without a socket; being in process does not by itself grant
// the reserved names, the credential does.
func TestInProcessAgentAPI(t *testing.T) {
	ctx := ctxT(t)
	n := startNode(t, sidecartest.Config("a"))
	const rpcTopic = sidecar.RPCTopicPrefix + "acme/demo/echo/1"
	dial := func(opts ...grpc.DialOption) *sidecartest.Agent {
		a, err := sidecartest.Dial(sidecar.InProcessAgentTarget, append([]grpc.DialOption{n.InProcessAgentDialOption()}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(a.Close)
		return a
	}
	plain := dial()
	if err := plain.Subscribe(ctx, rpcTopic); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("in-process agent without the credential: subscribe %v, want PERMISSION_DENIED", err)
	}
	trusted := dial(n.TrustedAgentDialOption())
	if err := trusted.Subscribe(ctx, rpcTopic); err != nil {
		t.Fatal(err)
	}
	tcp := dialTrusted(t, n.Node, n.TrustedAgentDialOption())
	ack, err := tcp.PublishTo(ctx, rpcTopic, 0, []byte("frame"))
	if err != nil || ack.LocalDeliveries != 1 {
		t.Fatalf("publish to the in-process subscriber: %v %v", ack, err)
	}
	if m, err := trusted.Next(ctx); err != nil || string(m.GetPayload()) != "frame" {
		t.Fatalf("in-process subscriber got %v %v", m, err)
	}
	var inproc int
	for _, c := range n.Connections() {
		if c.Kind == sidecar.KindAgent && c.RemoteAddress == "@agw-in-process-agent-api" {
			inproc++
		}
	}
	if inproc != 2 {
		t.Fatalf("connection table has %d in-process agent entries, want 2: %+v", inproc, n.Connections())
	}
}
