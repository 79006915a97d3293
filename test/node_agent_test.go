package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/client"
	"github.com/agwproject/agw/sidecar/sidecartest"
)

// nodeAgent drives test/node/agent.mjs over JSON lines.
type nodeAgent struct {
	t      *testing.T
	stdin  io.Writer
	events chan map[string]any
}

func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found on PATH: install Node.js 20 (make test-deps does): %v", err)
	}
	if _, err := os.Stat(filepath.Join("node_modules", "@grpc", "grpc-js")); err != nil {
		t.Fatalf("test/node_modules missing: run `make test-deps` (npm ci in test/): %v", err)
	}
	return node
}

func startNodeAgent(t *testing.T, sidecarAddr, name string) *nodeAgent {
	t.Helper()
	node := requireNode(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, filepath.Join("node", "agent.mjs"), sidecarAddr, name)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &nodeAgent{t: t, stdin: stdin, events: make(chan map[string]any, 64)}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(a.events)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev map[string]any
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Errorf("node agent printed non-JSON %q", sc.Text())
				continue
			}
			a.events <- ev
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		cancel()
		<-readDone
		_ = cmd.Wait()
	})
	if ev := a.next("ready"); ev == nil {
		t.Fatal("node agent never said ready")
	}
	return a
}

func (a *nodeAgent) send(cmd map[string]any) {
	a.t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := fmt.Fprintf(a.stdin, "%s\n", b); err != nil {
		a.t.Fatalf("write to node agent: %v", err)
	}
}

// next returns the next event of the given kind, failing on timeout.
func (a *nodeAgent) next(kind string) map[string]any {
	a.t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case ev, ok := <-a.events:
			if !ok {
				a.t.Fatalf("node agent exited while waiting for %q", kind)
			}
			if ev["event"] == kind {
				return ev
			}
			if ev["event"] == "end" || ev["event"] == "error" {
				a.t.Fatalf("waiting for %q, got %v", kind, ev)
			}
		case <-timeout:
			a.t.Fatalf("no %q event from the node agent within 15s", kind)
			return nil
		}
	}
}

// TestNodeAgent proves that an agent written in another language needs only
// the .proto and a stock gRPC library: a @grpc/grpc-js agent subscribes and
// publishes through a sidecar, exchanging messages with a Go agent.
func TestNodeAgent(t *testing.T) {
	n := sidecartest.Start(t, sidecartest.Config("node-agent-test"))
	addr := n.AgentAddr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	goAgent, err := client.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { goAgent.Close() })
	if err := goAgent.Subscribe(ctx, "example/go/inbox"); err != nil {
		t.Fatal(err)
	}

	js := startNodeAgent(t, addr, "example/node/agent/1")
	js.send(map[string]any{"op": "subscribe", "name": "example/node/inbox"})
	js.next("ack")

	// Go -> Node.
	ack, err := goAgent.Publish(ctx, &agpv1.Message{
		Header:  &agpv1.Header{Source: "example/go/agent/1", Destination: "example/node/inbox", ContentType: "text/plain"},
		Payload: []byte("hello from Go"),
	})
	if err != nil || ack.GetLocalDeliveries() != 1 {
		t.Fatalf("Go publish: ack %v, err %v", ack, err)
	}
	ev := js.next("delivery")
	if ev["payload"] != "hello from Go" || ev["source"] != "example/go/agent/1" {
		t.Fatalf("node agent delivery: %v", ev)
	}

	// Node -> Go.
	js.send(map[string]any{"op": "publish", "to": "example/go/inbox", "payload": "hello from Node"})
	if ev := js.next("ack"); ev["local"] != float64(1) {
		t.Fatalf("node publish ack: %v", ev)
	}
	select {
	case m := <-goAgent.Deliveries():
		if string(m.GetPayload()) != "hello from Node" || m.GetHeader().GetSource() != "example/node/agent/1" {
			t.Fatalf("Go agent got %v", m)
		}
	case <-ctx.Done():
		t.Fatal("Go agent received nothing from the Node agent")
	}

	// An invalid name is refused with INVALID_ARGUMENT (3), and the stream lives on.
	js.send(map[string]any{"op": "subscribe", "name": "Not A Name"})
	select {
	case ev := <-js.events:
		if ev["event"] != "error" || ev["code"] != float64(3) {
			t.Fatalf("invalid subscribe: got %v, want an error event with code 3", ev)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no answer to the invalid subscribe")
	}
	js.send(map[string]any{"op": "subscribe", "name": "example/node/other"})
	js.next("ack")
}
