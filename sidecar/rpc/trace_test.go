package rpc

import (
	"context"
	"strings"
	"testing"
	"time"

	samplev1 "github.com/agwproject/agw/api/sample/v1"
	"github.com/agwproject/agw/interceptors"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// One trace spans agent A's client, sidecar A, sidecar B and agent B's
// server: the context crosses the mesh in the AGP message metadata.
func TestTraceSpansBothSidecars(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	app, addr := startApp(t, "b1", interceptors.TracingServer(tp, nil))
	_ = app
	m := newMesh(t, []meshSpec{
		{node: "a", agent: "acme/demo/client/a1"},
		{node: "b", agent: "acme/demo/echo/b1", app: addr},
	}, nil, WithTracerProvider(tp))
	c := dialEcho(t, m.nodes[0].layer, "echo.demo", interceptors.TracingClient(tp, nil))
	ctx := testCtx(t, 10*time.Second)
	if _, err := c.Say(ctx, &samplev1.SayRequest{Text: "traced"}); err != nil {
		t.Fatal(err)
	}
	var spans []sdktrace.ReadOnlySpan
	eventually(t, 5*time.Second, "four ended spans", func() bool {
		spans = sr.Ended()
		return len(spans) >= 4
	})
	if len(spans) != 4 {
		t.Fatalf("%d spans, want 4", len(spans))
	}
	byParent := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	var root sdktrace.ReadOnlySpan
	tid := spans[0].SpanContext().TraceID()
	for _, s := range spans {
		if s.SpanContext().TraceID() != tid {
			t.Fatalf("span %s is in trace %s, want %s", s.Name(), s.SpanContext().TraceID(), tid)
		}
		if !s.Parent().IsValid() {
			root = s
			continue
		}
		byParent[s.Parent().SpanID()] = s
	}
	if root == nil || root.SpanKind() != trace.SpanKindClient {
		t.Fatal("no client root span (agent A)")
	}
	// Walk root -> sidecar A (server) -> sidecar B (client) -> agent B (server).
	want := []trace.SpanKind{trace.SpanKindServer, trace.SpanKindClient, trace.SpanKindServer}
	cur := root
	for i, k := range want {
		next, ok := byParent[cur.SpanContext().SpanID()]
		if !ok {
			t.Fatalf("hop %d: no child of %s (%s)", i+1, cur.Name(), cur.SpanKind())
		}
		if next.SpanKind() != k || next.Name() != "sample.v1.Echo/Say" {
			t.Fatalf("hop %d: %s %s, want %s sample.v1.Echo/Say", i+1, next.SpanKind(), next.Name(), k)
		}
		cur = next
	}
}

// Without a tracer provider the sidecars make no spans but still carry the
// agent's trace context: agent B's server sees agent A's traceparent.
func TestTraceContextCarriedWithoutTracing(t *testing.T) {
	seen := make(chan string, 1)
	capture := grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		v := metadata.ValueFromIncomingContext(ctx, "traceparent")
		select {
		case seen <- strings.Join(v, ","):
		default:
		}
		return h(ctx, req)
	})
	_, addr := startApp(t, "b1", capture)
	m := newMesh(t, []meshSpec{
		{node: "a", agent: "acme/demo/client/a1"},
		{node: "b", agent: "acme/demo/echo/b1", app: addr},
	}, nil)
	c := dialEcho(t, m.nodes[0].layer, "echo.demo")
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := metadata.AppendToOutgoingContext(testCtx(t, 10*time.Second), "traceparent", tp)
	if _, err := c.Say(ctx, &samplev1.SayRequest{Text: "traced"}); err != nil {
		t.Fatal(err)
	}
	if got := <-seen; got != tp {
		t.Fatalf("app saw traceparent %q, want %q", got, tp)
	}
	// And none is invented for a call without one.
	if _, err := c.Say(testCtx(t, 10*time.Second), &samplev1.SayRequest{Text: "plain"}); err != nil {
		t.Fatal(err)
	}
	if got := <-seen; got != "" {
		t.Fatalf("app saw traceparent %q on an untraced call", got)
	}
}
