package rpc

import (
	"testing"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func testLayer(t *testing.T) *Layer {
	t.Helper()
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return &Layer{m: m}
}

func newTestOutCall(l *Layer) *outCall {
	return &outCall{l: l, id: "ab", target: "acme/demo/echo",
		inbox: newInbox(4), abort: make(chan error, 1),
		accepted: make(chan struct{}), upWin: newWindow(0)}
}

// A gap in the target's frame numbers fails the call instead of
// delivering a corrupted stream; frames from another sender are ignored;
// a target that overruns its window fails the call.
func TestOutCallFrameChecks(t *testing.T) {
	l := testLayer(t)
	c := newTestOutCall(l)
	c.deliver(&agpv1.RpcFrame{CallId: "ab", Seq: 1, Reply: true, Sender: "acme/demo/echo/1",
		Accept: &agpv1.RpcAccept{Topic: "agwrpc.acme/demo/echo/1", InitialWindow: 3}})
	if !isClosed(c.accepted) || c.topic != "agwrpc.acme/demo/echo/1" || !c.upWin.tryAcquire() {
		t.Fatal("accept not applied")
	}
	c.deliver(&agpv1.RpcFrame{CallId: "ab", Seq: 2, Reply: true, Sender: "acme/demo/echo/2", Messages: [][]byte{{1}}})
	if c.inbox.pop() != nil {
		t.Fatal("a frame from another instance was taken")
	}
	c.deliver(&agpv1.RpcFrame{CallId: "ab", Seq: 2, Reply: true, Sender: "acme/demo/echo/1", Messages: [][]byte{{1}}})
	if c.inbox.pop() == nil || c.inbox.pop() != nil {
		t.Fatal("in-order frame not taken")
	}
	c.deliver(&agpv1.RpcFrame{CallId: "ab", Seq: 4, Reply: true, Sender: "acme/demo/echo/1", Messages: [][]byte{{1}}})
	select {
	case err := <-c.abort:
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("gap: %v", err)
		}
	default:
		t.Fatal("a gap in frame numbers went unnoticed")
	}

	c = newTestOutCall(l)
	for i := uint64(1); i <= 5; i++ {
		c.deliver(&agpv1.RpcFrame{CallId: "ab", Seq: i, Reply: true, Sender: "x/y/z/1", Messages: [][]byte{{1}}})
	}
	select {
	case err := <-c.abort:
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("overrun: %v", err)
		}
	default:
		t.Fatal("an overrun went unnoticed")
	}
}

func TestWindow(t *testing.T) {
	w := newWindow(1)
	if !w.tryAcquire() || w.tryAcquire() {
		t.Fatal("one credit")
	}
	ctx, cancel := testCtxCancel(t)
	done := make(chan error, 1)
	go func() { done <- w.acquire(ctx) }()
	w.add(1)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	go func() { done <- w.acquire(ctx) }()
	cancel()
	if err := <-done; err == nil {
		t.Fatal("acquire without credit returned nil after cancel")
	}
	g := granter{size: 8}
	var granted []int
	for range 10 {
		if n := g.take(); n > 0 {
			granted = append(granted, n)
		}
	}
	if len(granted) != 2 || granted[0] != 4 || granted[1] != 4 {
		t.Fatalf("grants %v, want [4 4]", granted)
	}
}
