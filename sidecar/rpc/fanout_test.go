package rpc

import (
	"context"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	samplev1 "github.com/agwproject/agw/api/sample/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestAnycastSpreadsAndSticks(t *testing.T) {
	_, b1 := startApp(t, "b1")
	_, b2 := startApp(t, "b2")
	m := newMesh(t, []meshSpec{
		{node: "a", agent: "acme/demo/client/a1"},
		{node: "b1", agent: "acme/demo/echo/b1", app: b1},
		{node: "b2", agent: "acme/demo/echo/b2", app: b2},
	}, nil)
	c := dialEcho(t, m.nodes[0].layer, "echo.demo")
	ctx := testCtx(t, 10*time.Second)
	got := map[string]int{}
	for range 20 {
		r, err := c.Say(ctx, &samplev1.SayRequest{Text: "x"})
		if err != nil {
			t.Fatal(err)
		}
		got[r.GetFrom()]++
	}
	if got["b1"] < 5 || got["b2"] < 5 {
		t.Fatalf("calls spread %v, want both instances used", got)
	}
	// A streaming call stays on the instance that took it.
	for range 4 {
		s, err := c.Chat(ctx)
		if err != nil {
			t.Fatal(err)
		}
		from := ""
		for i := range 10 {
			if err := s.Send(&samplev1.SayRequest{Text: strconv.Itoa(i)}); err != nil {
				t.Fatal(err)
			}
			r, err := s.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if from == "" {
				from = r.GetFrom()
			} else if r.GetFrom() != from {
				t.Fatalf("the call moved from %s to %s", from, r.GetFrom())
			}
		}
		_ = s.CloseSend()
		if _, err := s.Recv(); err != io.EOF {
			t.Fatal(err)
		}
	}
	// An instance name reaches that instance only.
	for range 4 {
		r, err := dialEcho(t, m.nodes[0].layer, "acme/demo/echo/b2").Say(ctx, &samplev1.SayRequest{Text: "x"})
		if err != nil || r.GetFrom() != "b2" {
			t.Fatalf("instance call: %v %v", r, err)
		}
	}
}

// multicastSay calls Say on every member of target and returns the answers.
func multicastSay(ctx context.Context, t *testing.T, cc *grpc.ClientConn, target string, req *samplev1.SayRequest) ([]*samplev1.SayResponse, metadata.MD, metadata.MD, error) {
	t.Helper()
	ctx = metadata.AppendToOutgoingContext(ctx, MDTarget, target, MDFanout, "all")
	s, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, samplev1.Echo_Say_FullMethodName)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := s.SendMsg(req); err != nil {
		return nil, nil, nil, err
	}
	if err := s.CloseSend(); err != nil {
		return nil, nil, nil, err
	}
	var out []*samplev1.SayResponse
	for {
		r := &samplev1.SayResponse{}
		if err := s.RecvMsg(r); err == io.EOF {
			break
		} else if err != nil {
			return out, nil, nil, err
		}
		out = append(out, r)
	}
	hdr, _ := s.Header()
	return out, hdr, s.Trailer(), nil
}

func TestMulticastThreeResponders(t *testing.T) {
	var specs []meshSpec
	specs = append(specs, meshSpec{node: "a", agent: "acme/demo/client/a1"})
	for _, n := range []string{"r1", "r2", "r3"} {
		_, addr := startApp(t, n)
		specs = append(specs, meshSpec{node: n, agent: "acme/demo/worker/" + n, app: addr, channels: []string{"acme/demo/team"}})
	}
	m := newMesh(t, specs, nil)
	cc := dialConn(t, m.nodes[0].layer, "")
	ctx := testCtx(t, 10*time.Second)
	for _, target := range []string{"acme/demo/worker", "acme/demo/team"} {
		out, hdr, tr, err := multicastSay(ctx, t, cc, target, &samplev1.SayRequest{Text: "all hands"})
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		var from []string
		for _, r := range out {
			if r.GetText() != "all hands" {
				t.Fatalf("answer %+v", r)
			}
			from = append(from, r.GetFrom())
		}
		slices.Sort(from)
		if !slices.Equal(from, []string{"r1", "r2", "r3"}) {
			t.Fatalf("%s: answers from %v, want r1 r2 r3", target, from)
		}
		if got := hdr.Get(MDExpected); len(got) != 1 || got[0] != "3" {
			t.Errorf("%s expected = %v", MDExpected, got)
		}
		resp := tr.Get(MDResponder)
		if len(resp) != 3 {
			t.Fatalf("%s = %v", MDResponder, resp)
		}
		for i, r := range out {
			if resp[i] != "acme/demo/worker/"+r.GetFrom() {
				t.Errorf("message %d from %s, trailer says %s", i, r.GetFrom(), resp[i])
			}
		}
		if st := tr.Get(MDResponderStatus); len(st) != 3 || !strings.HasSuffix(st[0], " 0 ") {
			t.Errorf("%s = %q", MDResponderStatus, st)
		}
	}

	// One member fails: the others still answer, and the trailers say who failed.
	out, _, tr, err := multicastSay(ctx, t, cc, "acme/demo/worker", &samplev1.SayRequest{Text: "x", FailCode: int32(codes.Aborted)})
	if err != nil || len(out) != 0 {
		t.Fatalf("all failing: %d answers, %v", len(out), err)
	}
	if st := tr.Get(MDResponderStatus); len(st) != 3 || !strings.Contains(st[0], " 10 ") {
		t.Fatalf("statuses %q", st)
	}

	// A quiet multicast call outlasts several probe intervals: the caller
	// answers its members' pings.
	out, _, _, err = multicastSay(ctx, t, cc, "acme/demo/worker", &samplev1.SayRequest{Text: "x", DelayMillis: 600})
	if err != nil || len(out) != 3 {
		t.Fatalf("quiet multicast: %d answers, %v", len(out), err)
	}

	// The deadline ends a multicast call.
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, _, _, err = multicastSay(dctx, t, cc, "acme/demo/worker", &samplev1.SayRequest{Text: "x", DelayMillis: 5000})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("slow members: %v, want DEADLINE_EXCEEDED", err)
	}

	// Nobody subscribes.
	_, _, _, err = multicastSay(ctx, t, cc, "acme/demo/nobody", &samplev1.SayRequest{Text: "x"})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "acme/demo/nobody") {
		t.Fatalf("no members: %v", err)
	}
}
