package rpc

import (
	"context"
	"strings"
	"testing"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	samplev1 "github.com/agwproject/agw/api/sample/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func probing(c *Config) { c.ProbeInterval = 100 * time.Millisecond }

func setDrop(l *Layer, f func(*agpv1.RpcFrame) bool) { l.dropOut.Store(&f) }

// The target's last frame (its trailers) is lost: the caller's ping finds
// the call unknown there and fails it, instead of waiting forever.
func TestProbeLostLastFrame(t *testing.T) {
	p := newPair(t, probing)
	setDrop(p.b.layer, func(f *agpv1.RpcFrame) bool { return f.GetTrailers() != nil })
	ctx := testCtx(t, 10*time.Second)
	start := time.Now()
	s, err := p.client.Count(ctx, &samplev1.CountRequest{N: 3, IntervalMillis: 30})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		if _, err = s.Recv(); err != nil {
			break
		}
		n++
	}
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "unknown at acme/demo/echo/b1") {
		t.Fatalf("after %d messages: %v, want UNAVAILABLE: unknown at the target", n, err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("took %s", took)
	}
}

// The target answers nothing after its accept: the caller gives up after
// an unanswered ping.
func TestProbeSilentTarget(t *testing.T) {
	p := newPair(t, probing)
	setDrop(p.b.layer, func(f *agpv1.RpcFrame) bool { return f.GetAccept() == nil })
	ctx := testCtx(t, 10*time.Second)
	_, err := p.client.Say(ctx, &samplev1.SayRequest{Text: "x", DelayMillis: 100})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "stopped answering") {
		t.Fatalf("got %v, want UNAVAILABLE: stopped answering", err)
	}
}

// The caller's cancel is lost: the target's ping finds the call unknown at
// the caller, and the app's handler is cancelled.
func TestProbeLostCancel(t *testing.T) {
	p := newPair(t, probing)
	setDrop(p.a.layer, func(f *agpv1.RpcFrame) bool { return f.GetCancel() != nil })
	ctx, cancel := context.WithCancel(testCtx(t, 10*time.Second))
	s, err := p.client.Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&samplev1.SayRequest{Text: "slow", DelayMillis: 20000}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the call at the target", func() bool {
		p.b.layer.mu.Lock()
		defer p.b.layer.mu.Unlock()
		return len(p.b.layer.in) == 1
	})
	cancel()
	eventually(t, 5*time.Second, "the target to observe the cancellation", func() bool { return p.app.Cancelled.Load() == 1 })
}

// A long quiet call is kept alive by the pings.
func TestProbeKeepsQuietCall(t *testing.T) {
	p := newPair(t, probing)
	ctx := testCtx(t, 10*time.Second)
	r, err := p.client.Say(ctx, &samplev1.SayRequest{Text: "x", DelayMillis: 700})
	if err != nil || r.GetText() != "x" {
		t.Fatalf("quiet call: %v %v", r, err)
	}
}

// A multicast member that goes silent after its accept is given up on
// after an unanswered ping; the others' answers still arrive.
func TestProbeSilentMulticastMember(t *testing.T) {
	var specs []meshSpec
	specs = append(specs, meshSpec{node: "a", agent: "acme/demo/client/a1"})
	for _, n := range []string{"r1", "r2"} {
		_, addr := startApp(t, n)
		specs = append(specs, meshSpec{node: n, agent: "acme/demo/worker/" + n, app: addr})
	}
	m := newMesh(t, specs, probing)
	setDrop(m.nodes[2].layer, func(f *agpv1.RpcFrame) bool { return f.GetAccept() == nil })
	cc := dialConn(t, m.nodes[0].layer, "")
	ctx := testCtx(t, 10*time.Second)
	out, _, tr, err := multicastSay(ctx, t, cc, "acme/demo/worker", &samplev1.SayRequest{Text: "x", DelayMillis: 100})
	if err != nil || len(out) != 1 || out[0].GetFrom() != "r1" {
		t.Fatalf("got %d answers, %v", len(out), err)
	}
	found := false
	for _, st := range tr.Get(MDResponderStatus) {
		found = found || strings.HasPrefix(st, "acme/demo/worker/r2 14 ")
	}
	if !found {
		t.Fatalf("statuses %q: want r2 UNAVAILABLE", tr.Get(MDResponderStatus))
	}
}
