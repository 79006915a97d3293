package rpc

import (
	"context"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	samplev1 "github.com/agwproject/agw/api/sample/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func testLogger() *slog.Logger {
	if os.Getenv("RPC_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// startApp runs an Echo server named name on 127.0.0.1:0.
func startApp(t *testing.T, name string, opts ...grpc.ServerOption) (*samplev1.Server, string) {
	t.Helper()
	s := &samplev1.Server{Name: name}
	srv := grpc.NewServer(opts...)
	s.Register(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return s, ln.Addr().String()
}

func newMesh(t *testing.T, specs []meshSpec, cfg func(*Config), opts ...Option) *mesh {
	t.Helper()
	// Every test runs with frequent probes, so pings cross real calls.
	withProbes := func(c *Config) {
		c.ProbeInterval = 150 * time.Millisecond
		if cfg != nil {
			cfg(c)
		}
	}
	m, err := startMesh(testCtx(t, 20*time.Second), testLogger(), specs, withProbes, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// dialEcho returns an Echo client of layer l's interception listener that
// addresses authority.
func dialEcho(t *testing.T, l *Layer, authority string, opts ...grpc.DialOption) samplev1.EchoClient {
	t.Helper()
	cc := dialConn(t, l, authority, opts...)
	return samplev1.NewEchoClient(cc)
}

func dialConn(t *testing.T, l *Layer, authority string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	o := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	if authority != "" {
		o = append(o, grpc.WithAuthority(authority))
	}
	cc, err := grpc.NewClient(l.Addr().String(), o...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// pair is a caller A and a target B (acme/demo/echo/b1) behind two sidecars.
type pair struct {
	m      *mesh
	a, b   *meshNode
	app    *samplev1.Server
	client samplev1.EchoClient
}

func newPair(t *testing.T, cfg func(*Config), opts ...Option) *pair {
	t.Helper()
	app, addr := startApp(t, "b1")
	m := newMesh(t, []meshSpec{
		{node: "a", agent: "acme/demo/client/a1"},
		{node: "b", agent: "acme/demo/echo/b1", app: addr},
	}, cfg, opts...)
	p := &pair{m: m, a: m.nodes[0], b: m.nodes[1], app: app}
	p.client = dialEcho(t, p.a.layer, "echo.demo")
	return p
}

// eventually polls f until it returns true or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// freeAddr returns a loopback address nothing listens on (any more).
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	a := ln.Addr().String()
	return a, ln.Close()
}

func testCtxCancel(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx, cancel
}
