package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	samplev1 "github.com/agwproject/agw/api/sample/v1"
	"github.com/agwproject/agw/sidecar"
	"github.com/agwproject/agw/sidecar/rpc"
	"github.com/agwproject/agw/sidecar/sidecartest"
	"google.golang.org/grpc"
)

// rpcPair is a caller's sidecar A and a target's sidecar B, each with its
// RPC layer, and the target's Echo app behind B.
type rpcPair struct {
	a, b       *sidecar.Node
	la, lb     *rpc.Layer
	app        *samplev1.Server
	callerName string
}

func mustTopic(t *testing.T, name string) string {
	t.Helper()
	tp, err := rpc.Topic(name)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func startLayer(t *testing.T, n *sidecar.Node, agent, app string) *rpc.Layer {
	t.Helper()
	cfg := rpc.DefaultConfig()
	cfg.InterceptListen = "127.0.0.1:0"
	cfg.AgentName = agent
	cfg.AppAddr = app
	cfg.ShutdownTimeout = 2 * time.Second
	l, err := rpc.NewForNode(cfg, n)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("rpc layer %s: %v", agent, err)
		}
	})
	select {
	case <-l.Ready():
	case err := <-done:
		t.Fatalf("rpc layer %s did not start: %v", agent, err)
	case <-time.After(15 * time.Second):
		t.Fatalf("rpc layer %s not ready after 15s", agent)
	}
	return l
}

func startRPCPair(t *testing.T) *rpcPair {
	t.Helper()
	const caller, target = "acme/demo/client/a1", "acme/demo/echo/b1"
	app := &samplev1.Server{Name: "b1"}
	srv := grpc.NewServer()
	app.Register(srv)
	appAddr := serveLoopback(t, srv)

	cb := sidecartest.Config("b")
	cb.StaticRoutes = []string{mustTopic(t, caller) + "=a"}
	b := sidecartest.Start(t, cb)
	ca := sidecartest.Config("a")
	ca.StaticPeers = []string{"b=" + b.PeerAddr().String()}
	ca.StaticRoutes = []string{mustTopic(t, target) + "=b", mustTopic(t, "acme/demo/echo") + "=b"}
	a := sidecartest.Start(t, ca)
	p := &rpcPair{a: a, b: b, app: app, callerName: caller}
	p.lb = startLayer(t, b, target, appAddr)
	p.la = startLayer(t, a, caller, "")
	deadline := time.Now().Add(10 * time.Second)
	for !peerUp(a, "b") || !peerUp(b, "a") {
		if time.Now().After(deadline) {
			t.Fatal("peer link a-b not up after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return p
}

func peerUp(n *sidecar.Node, id string) bool {
	for _, c := range n.Connections() {
		if c.Kind == sidecar.KindPeer && c.NodeID == id && c.Status == sidecar.StatusUp {
			return true
		}
	}
	return false
}

// TestNodeRPCClient: an ordinary @grpc/grpc-js client, pointed at sidecar
// A's interception listener with the authority echo.demo, calls the Go Echo
// app behind sidecar B: a unary call with metadata both ways, a
// server-streaming call, and a failing call whose status and details come
// back intact.
func TestNodeRPCClient(t *testing.T) {
	node := requireNode(t)
	p := startRPCPair(t)
	const n = 25
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("node", "rpc_client.mjs"), p.la.Addr().String(), "echo.demo", "25")
	cmd.Stderr = os.Stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("node rpc client: %v; output:\n%s", err, outb)
	}
	steps := map[string]map[string]any{}
	sc := bufio.NewScanner(bytes.NewReader(outb))
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("node rpc client printed non-JSON %q", sc.Text())
		}
		steps[ev["step"].(string)] = ev
	}
	if _, ok := steps["done"]; !ok {
		t.Fatalf("node rpc client did not finish: %s", outb)
	}

	say := steps["say"]
	if say["text"] != "hello from Node" || say["from"] != "b1" {
		t.Fatalf("unary answer %v", say)
	}
	if say["x_echo"] != "from-node" || say["x_echo_trailer"] != "from-node" {
		t.Fatalf("unary metadata lost on the way: header %v, trailer %v", say["x_echo"], say["x_echo_trailer"])
	}
	if say["responder"] != "acme/demo/echo/b1" {
		t.Fatalf("agw-responder header %v, want the target instance", say["responder"])
	}

	cnt := steps["count"]
	items, _ := cnt["items"].([]any)
	var got []int
	for _, it := range items {
		got = append(got, int(it.(float64)))
	}
	want := make([]int, n)
	for i := range want {
		want[i] = i + 1
	}
	if !slices.Equal(got, want) {
		t.Fatalf("server stream items %v, want 1..%d in order", got, n)
	}

	fail := steps["fail"]
	if fail["code"] != float64(9) || fail["details"] != "failing as asked: please fail" {
		t.Fatalf("failing call: %v, want FAILED_PRECONDITION (9) with the app's message", fail)
	}
	if fail["status_details"] != float64(1) {
		t.Fatalf("failing call lost its status details: %v", fail)
	}
	if c := p.app.Calls.Load(); c != 3 {
		t.Fatalf("app handled %d calls, want 3", c)
	}
}

// TestNodeAgentRPCTopicsDenied: an agent in another language cannot read or
// forge RPC frames: the sidecar refuses its subscribe and publish to the
// reserved agwrpc. names with PERMISSION_DENIED (7).
func TestNodeAgentRPCTopicsDenied(t *testing.T) {
	p := startRPCPair(t)
	js := startNodeAgent(t, p.b.AgentAddr().String(), "acme/demo/spy/1")
	js.send(map[string]any{"op": "subscribe", "name": mustTopic(t, "acme/demo/echo/b1")})
	if ev := js.next("error"); ev["code"] != float64(7) {
		t.Fatalf("subscribe to an RPC topic: %v, want code 7", ev)
	}
	js.send(map[string]any{"op": "publish", "to": mustTopic(t, "acme/demo/echo"), "payload": "forged frame"})
	if ev := js.next("error"); ev["code"] != float64(7) {
		t.Fatalf("publish to an RPC topic: %v, want code 7", ev)
	}
	if c := p.app.Calls.Load(); c != 0 {
		t.Fatalf("a forged frame reached the app (%d calls)", c)
	}
}

// serveLoopback serves srv on 127.0.0.1:0 until the test ends.
func serveLoopback(t *testing.T, srv *grpc.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return ln.Addr().String()
}
