package rpc

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	samplev1 "github.com/agwproject/agw/api/sample/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestUnary(t *testing.T) {
	p := newPair(t, nil)
	ctx := testCtx(t, 10*time.Second)
	for i := range 5 {
		var hdr, tr metadata.MD
		ctx := metadata.AppendToOutgoingContext(ctx, "x-echo", "v1")
		r, err := p.client.Say(ctx, &samplev1.SayRequest{Text: "hello"}, grpc.Header(&hdr), grpc.Trailer(&tr))
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if r.GetText() != "hello" || r.GetFrom() != "b1" {
			t.Fatalf("got %+v", r)
		}
		if got := hdr.Get("x-echo"); len(got) != 1 || got[0] != "v1" {
			t.Errorf("header x-echo = %v", got)
		}
		if got := hdr.Get(MDResponder); len(got) != 1 || got[0] != "acme/demo/echo/b1" {
			t.Errorf("header %s = %v", MDResponder, got)
		}
		if got := hdr.Get("x-caller"); len(got) != 1 || got[0] != "acme/demo/client/a1" {
			t.Errorf("the app saw caller %v, want acme/demo/client/a1", got)
		}
		if got := tr.Get("x-echo-trailer"); len(got) != 1 || got[0] != "v1" {
			t.Errorf("trailer x-echo-trailer = %v", got)
		}
	}
}

func TestServerStreaming(t *testing.T) {
	p := newPair(t, nil)
	ctx := testCtx(t, 10*time.Second)
	const n = 500 // many windows' worth
	s, err := p.client.Count(ctx, &samplev1.CountRequest{N: n})
	if err != nil {
		t.Fatal(err)
	}
	for i := int32(1); i <= n; i++ {
		r, err := s.Recv()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if r.GetI() != i {
			t.Fatalf("message %d has i=%d", i, r.GetI())
		}
	}
	if _, err := s.Recv(); err != io.EOF {
		t.Fatalf("after the last message: %v, want EOF", err)
	}
}

func TestClientStreaming(t *testing.T) {
	p := newPair(t, nil)
	ctx := testCtx(t, 10*time.Second)
	s, err := p.client.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 200 {
		w := strings.Repeat("x", i%7+1)
		want = append(want, w)
		if err := s.Send(&samplev1.SayRequest{Text: w}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	r, err := s.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	if r.GetText() != strings.Join(want, " ") {
		t.Fatalf("got %q", r.GetText())
	}
}

func TestBidiStreaming(t *testing.T) {
	p := newPair(t, nil)
	ctx := testCtx(t, 10*time.Second)
	s, err := p.client.Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Lock step: each answer before the next request.
	for i := range 20 {
		text := strings.Repeat("y", i+1)
		if err := s.Send(&samplev1.SayRequest{Text: text}); err != nil {
			t.Fatal(err)
		}
		r, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if r.GetText() != "re: "+text {
			t.Fatalf("got %q", r.GetText())
		}
	}
	// Then a burst beyond the window.
	go func() {
		for i := range 300 {
			if s.Send(&samplev1.SayRequest{Text: "burst"}) != nil {
				return
			}
			_ = i
		}
		_ = s.CloseSend()
	}()
	got := 0
	for {
		_, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got++
	}
	if got != 300 {
		t.Fatalf("burst: %d answers, want 300", got)
	}
}

func TestStatusDetails(t *testing.T) {
	p := newPair(t, nil)
	ctx := testCtx(t, 10*time.Second)
	_, err := p.client.Say(ctx, &samplev1.SayRequest{Text: "nope", FailCode: int32(codes.FailedPrecondition)})
	st := status.Convert(err)
	if st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "failing as asked: nope") {
		t.Fatalf("got %v", err)
	}
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		if e, ok := d.(*errdetails.ErrorInfo); ok {
			info = e
		}
	}
	if info == nil || info.GetReason() != "ASKED" || info.GetMetadata()["text"] != "nope" {
		t.Fatalf("details = %v", st.Details())
	}
}

// A layer in another process reaches its sidecar over the agent API (New
// with the trusted credential): unary and streaming calls work the same.
func TestLayerOverAgentStream(t *testing.T) {
	_, addr := startApp(t, "b1")
	m := newMesh(t, []meshSpec{
		{node: "a", agent: "acme/demo/client/a1", overGRPC: true},
		{node: "b", agent: "acme/demo/echo/b1", app: addr, overGRPC: true},
	}, nil)
	c := dialEcho(t, m.nodes[0].layer, "echo.demo")
	ctx := testCtx(t, 10*time.Second)
	for i := range 3 {
		r, err := c.Say(ctx, &samplev1.SayRequest{Text: "hello"})
		if err != nil || r.GetText() != "hello" || r.GetFrom() != "b1" {
			t.Fatalf("call %d: %v %v", i, r, err)
		}
	}
	s, err := c.Count(ctx, &samplev1.CountRequest{N: 100})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		if _, err := s.Recv(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 100 {
		t.Fatalf("%d messages, want 100", n)
	}
	// Without the credential the layer cannot use the reserved topics.
	lc := DefaultConfig()
	lc.InterceptListen, lc.AgentName = "127.0.0.1:0", "acme/demo/client/a2"
	l, err := New(lc, m.nodes[0].node.AgentAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	err = l.Run(ctx)
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) || se.GRPCStatus().Code() != codes.PermissionDenied {
		t.Fatalf("untrusted layer: %v, want PERMISSION_DENIED", err)
	}
}
