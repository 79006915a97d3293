//go:build !agwsidecar

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	samplev1 "github.com/agwproject/agw/api/sample/v1"
	"github.com/agwproject/agw/internal/logging"
	"github.com/agwproject/agw/sidecar/rpc"
)

// demoRPC shows ordinary gRPC calls (the sample Echo service: unary Say,
// server-streaming Count) from agent A on pod-a to agents on pod-b and
// pod-c, carried between the sidecars as AGP messages. It expects runDemo's
// sidecars pod-a, pod-b and pod-c to be running.
func demoRPC(ctx context.Context, d *demo) error {
	d.section("RPC: ordinary gRPC calls between agents, carried by the sidecars")
	const (
		planner = "acme/research/planner/1"
		writer  = "acme/research/writer"
	)
	pods := []struct{ pod, agent, app string }{
		{"pod-a", planner, ""},
		{"pod-b", writer + "/1", "writer-1"},
		{"pod-c", writer + "/2", "writer-2"},
	}
	layers := map[string]*rpc.Layer{}
	for _, p := range pods {
		cfg := rpc.DefaultConfig()
		cfg.InterceptListen = "127.0.0.1:0"
		cfg.AgentName = p.agent
		if p.app != "" {
			addr, err := d.startEchoApp(p.app)
			if err != nil {
				return err
			}
			cfg.AppAddr = addr
			d.say("    %s (%s) serves sample.v1.Echo on %s (AGW_APP_ADDR of its sidecar)", p.agent, p.pod, addr)
		}
		l, err := rpc.NewForNode(cfg, d.sidecars[p.pod].node, rpc.WithLogger(logging.Component(d.log, p.pod+"-rpc")))
		if err != nil {
			return err
		}
		d.background(p.pod+"-rpc", l.Run)
		if err := waitReady(ctx, l.Ready(), "rpc layer of "+p.pod); err != nil {
			return err
		}
		layers[p.pod] = l
	}
	d.say("    each sidecar's RPC layer subscribes to its agent's reserved RPC topics (agwrpc.<name>);")
	d.say("    the control plane routes them like any topic")
	// No route is awaited here: the first frame of a call to a new target
	// starts the on-demand route fetch, and the layer retries it until the
	// route arrives (AGW_RPC_ROUTE_WAIT).
	intercept := layers["pod-a"].Addr().String()
	cc, err := grpc.NewClient(intercept, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority("writer.research"))
	if err != nil {
		return err
	}
	defer cc.Close()
	echo := samplev1.NewEchoClient(cc)
	d.say("    planner/1 dials its own sidecar's interception listener %s with authority writer.research", intercept)

	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var hdr metadata.MD
	start := time.Now()
	r, err := echo.Say(cctx, &samplev1.SayRequest{Text: "draft the summary"}, grpc.Header(&hdr))
	if err != nil {
		return fmt.Errorf("unary call through the sidecars: %w", err)
	}
	d.say("    unary   Say(%q) -> %q from %s (responder %s, %s, the first call also fetches the routes on demand and opens the peer link)", "draft the summary", r.GetText(), r.GetFrom(),
		strings.Join(hdr.Get(rpc.MDResponder), ","), time.Since(start).Round(10*time.Microsecond))
	start = time.Now()
	start = time.Now()
	if r, err = echo.Say(cctx, &samplev1.SayRequest{Text: "and the outline"}); err != nil {
		return fmt.Errorf("unary call through the sidecars: %w", err)
	}
	d.say("    unary   Say(%q) -> %q from %s (%s; anycast picks one writer per call)", "and the outline", r.GetText(), r.GetFrom(), time.Since(start).Round(10*time.Microsecond))

	ictx := metadata.AppendToOutgoingContext(cctx, rpc.MDTarget, writer+"/1")
	s, err := echo.Count(ictx, &samplev1.CountRequest{N: 5, IntervalMillis: 20})
	if err != nil {
		return fmt.Errorf("streaming call through the sidecars: %w", err)
	}
	var got []string
	from := ""
	for {
		m, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("streaming call through the sidecars: %w", err)
		}
		got = append(got, fmt.Sprint(m.GetI()))
		from = m.GetFrom()
	}
	d.say("    stream  Count(5) to instance %s/1 (metadata %s) -> %s from %s", writer, rpc.MDTarget, strings.Join(got, " "), from)

	mctx := metadata.AppendToOutgoingContext(cctx, rpc.MDFanout, "all")
	ms, err := cc.NewStream(mctx, &grpc.StreamDesc{ServerStreams: true}, samplev1.Echo_Say_FullMethodName)
	if err != nil {
		return err
	}
	if err := ms.SendMsg(&samplev1.SayRequest{Text: "status?"}); err != nil {
		return err
	}
	if err := ms.CloseSend(); err != nil {
		return err
	}
	var answers []string
	for {
		var a samplev1.SayResponse
		if err := ms.RecvMsg(&a); err == io.EOF {
			break
		} else if err != nil {
			return fmt.Errorf("multicast call: %w", err)
		}
		answers = append(answers, a.GetFrom())
	}
	d.say("    multicast Say with %s: all -> answers from %s (trailer %s: %s)", rpc.MDFanout,
		strings.Join(answers, ", "), rpc.MDResponder, strings.Join(ms.Trailer().Get(rpc.MDResponder), ", "))
	return nil
}

// startEchoApp runs a sample Echo server named name on loopback until the
// demo ends and returns its address.
func (d *demo) startEchoApp(name string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := grpc.NewServer()
	(&samplev1.Server{Name: name}).Register(srv)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	d.stops = append(d.stops, func() { srv.Stop(); <-done })
	return ln.Addr().String(), nil
}
