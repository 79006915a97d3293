package sidecar_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/sidecar"
	"github.com/agwproject/agw/sidecar/sidecartest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// localRecorder collects what a LocalAgent delivers.
type localRecorder struct {
	mu   sync.Mutex
	msgs []*agpv1.Message
	gate chan struct{} // when set, each delivery waits for a token
}

func (r *localRecorder) deliver(b []byte) {
	if r.gate != nil {
		<-r.gate
	}
	m := &agpv1.Message{}
	if err := proto.Unmarshal(b, m); err != nil {
		panic(err)
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

func (r *localRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func (r *localRecorder) get(i int) *agpv1.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msgs[i]
}

func attach(t *testing.T, n *sidecar.Node, name string, r *localRecorder, opts ...sidecar.LocalOption) *sidecar.LocalAgent {
	t.Helper()
	a, err := n.AttachLocal(name, r.deliver, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func localConn(n *sidecar.Node, id uint64) (sidecar.ConnInfo, bool) {
	for _, c := range n.Connections() {
		if c.ID == id {
			return c, true
		}
	}
	return sidecar.ConnInfo{}, false
}

func encodeMsg(t *testing.T, m *agpv1.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A local attachment is a trusted local agent: it publishes to and
// receives from the reserved RPC names, between attachments and with
// ordinary agents, never the MLS ones; it is in the connection table with
// its counters.
func TestLocalAgentPubSub(t *testing.T) {
	ctx := ctxT(t)
	n := startNode(t, sidecartest.Config("a"))
	const rpcTopic = sidecar.RPCTopicPrefix + "acme/demo/echo/1"
	var ra, rb localRecorder
	a := attach(t, n.Node, "a", &ra)
	b := attach(t, n.Node, "b", &rb)
	if err := b.Subscribe(rpcTopic); err != nil {
		t.Fatalf("subscribe to an RPC name: %v", err)
	}
	if err := b.Subscribe(sidecar.MLSTopicPrefix + "acme/demo/echo"); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("subscribe to an MLS name: %v, want PERMISSION_DENIED", err)
	}
	if err := b.Subscribe("not a name"); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("subscribe to a bad name: %v, want INVALID_ARGUMENT", err)
	}
	ack, err := a.PublishMessage(&agpv1.Message{Header: &agpv1.Header{Destination: rpcTopic, Source: "acme/demo/client/1"}, Payload: []byte("frame")})
	if err != nil || ack.GetLocalDeliveries() != 1 || ack.GetMessageId() == "" {
		t.Fatalf("publish: %v %v", ack, err)
	}
	eventually(t, 5*time.Second, "delivery", func() bool { return rb.count() == 1 })
	got := rb.get(0)
	if string(got.GetPayload()) != "frame" || got.GetHeader().GetDestination() != rpcTopic || got.GetHeader().GetHopLimit() == 0 {
		t.Fatalf("delivered %v", got)
	}
	if ra.count() != 0 {
		t.Fatal("the publisher got its own message")
	}
	// Publish refusals are status errors.
	if _, err := a.Publish(encodeMsg(t, &agpv1.Message{Header: &agpv1.Header{Destination: sidecar.MLSTopicPrefix + "x/y/z"}})); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("publish to an MLS name: %v", err)
	}
	if _, err := a.Publish([]byte{0xff}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("publish of garbage: %v", err)
	}
	if _, err := a.Publish(nil); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("publish without header: %v", err)
	}

	// An ordinary agent reaches an attachment on an ordinary topic, and
	// an attachment reaches the agent.
	agent := sidecartest.DialAgent(t, n.Node)
	if err := agent.Subscribe(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(topic); err != nil {
		t.Fatal(err)
	}
	if ack, err := agent.PublishTo(ctx, topic, 0, []byte("from agent")); err != nil || ack.LocalDeliveries != 1 {
		t.Fatalf("agent publish: %v %v", ack, err)
	}
	eventually(t, 5*time.Second, "agent's message", func() bool { return rb.count() == 2 })
	if ack, err := a.PublishMessage(&agpv1.Message{Header: &agpv1.Header{Destination: topic}, Payload: []byte("from local")}); err != nil || ack.GetLocalDeliveries() != 2 {
		t.Fatalf("local publish: %v %v", ack, err)
	}
	m, err := agent.Next(ctx)
	if err != nil || string(m.GetPayload()) != "from local" {
		t.Fatalf("agent got %v %v", m, err)
	}

	ci, ok := localConn(n.Node, b.ID())
	if !ok || ci.Kind != sidecar.KindAgent || ci.Status != sidecar.StatusUp || ci.Subscriptions != 2 ||
		ci.Counters.MsgsOut != 3 || ci.RemoteAddress != "in-process:b" {
		t.Fatalf("connection table entry %+v", ci)
	}
	if err := b.Unsubscribe(topic); err != nil {
		t.Fatal(err)
	}
	if ack, err := a.PublishMessage(&agpv1.Message{Header: &agpv1.Header{Destination: topic}}); err != nil || ack.GetLocalDeliveries() != 1 {
		t.Fatalf("after unsubscribe: %v %v", ack, err)
	}
}

// Close withdraws the subscriptions and leaves the connection table; later
// calls fail with ErrLocalClosed.
func TestLocalAgentClose(t *testing.T) {
	n := startNode(t, sidecartest.Config("a"))
	var r localRecorder
	a := attach(t, n.Node, "a", &r)
	pub := attach(t, n.Node, "pub", &localRecorder{})
	if err := a.Subscribe(topic); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if _, ok := localConn(n.Node, a.ID()); ok {
		t.Fatal("still in the connection table")
	}
	if ack, err := pub.PublishMessage(&agpv1.Message{Header: &agpv1.Header{Destination: topic}}); err != nil || ack.GetLocalDeliveries() != 0 {
		t.Fatalf("publish to the closed attachment's topic: %v %v", ack, err)
	}
	if err := a.Subscribe(topic); !errors.Is(err, sidecar.ErrLocalClosed) {
		t.Fatalf("subscribe after close: %v", err)
	}
	if _, err := a.PublishMessage(&agpv1.Message{Header: &agpv1.Header{Destination: topic}}); !errors.Is(err, sidecar.ErrLocalClosed) {
		t.Fatalf("publish after close: %v", err)
	}
	_ = a.Close() // idempotent
	if _, err := n.AttachLocal("x", nil); err == nil {
		t.Fatal("attached without a delivery function")
	}
}

// A full delivery queue drops messages (slow_consumer), as for an agent.
func TestLocalAgentSlowConsumer(t *testing.T) {
	n := startNode(t, sidecartest.Config("a"))
	r := &localRecorder{gate: make(chan struct{})}
	a := attach(t, n.Node, "slow", r, sidecar.WithLocalQueueSize(2))
	t.Cleanup(func() { close(r.gate) }) // runs before the attachment's Close
	pub := attach(t, n.Node, "pub", &localRecorder{})
	if err := a.Subscribe(topic); err != nil {
		t.Fatal(err)
	}
	took := 0
	for range 10 {
		ack, err := pub.PublishMessage(&agpv1.Message{Header: &agpv1.Header{Destination: topic}})
		if err != nil {
			t.Fatal(err)
		}
		took += int(ack.GetLocalDeliveries())
	}
	// One delivery waits at the gate, two in the queue.
	if took > 3 || took < 2 {
		t.Fatalf("%d of 10 taken with a queue of 2", took)
	}
	if d := n.drops("slow_consumer"); d < 7 {
		t.Fatalf("slow_consumer drops %v", d)
	}
	if _, err := n.AttachLocal("q", func([]byte) {}, sidecar.WithLocalQueueSize(0)); err == nil {
		t.Fatal("queue size 0 accepted")
	}
}

// An attachment is detached when its node stops; a node that is not
// running refuses to attach.
func TestLocalAgentNodeStops(t *testing.T) {
	cfg := sidecartest.Config("a")
	n, err := sidecar.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.AttachLocal("early", func([]byte) {}); status.Code(err) != codes.Unavailable {
		t.Fatalf("attach before Run: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	select {
	case <-n.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	a, err := n.AttachLocal("l", func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Subscribe(topic); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-a.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("attachment not detached when the node stopped")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := a.Subscribe(topic); !errors.Is(err, sidecar.ErrLocalClosed) {
		t.Fatalf("subscribe after the node stopped: %v", err)
	}
	if _, err := n.AttachLocal("late", func([]byte) {}); status.Code(err) != codes.Unavailable {
		t.Fatalf("attach after stop: %v", err)
	}
	_ = a.Close()
}

// PublishNoAck delivers as Publish does and still reports refusals.
func TestLocalAgentPublishNoAck(t *testing.T) {
	n := startNode(t, sidecartest.Config("a"))
	var r localRecorder
	sub := attach(t, n.Node, "sub", &r)
	pub := attach(t, n.Node, "pub", &localRecorder{})
	if err := sub.Subscribe(topic); err != nil {
		t.Fatal(err)
	}
	if err := pub.PublishNoAck(encodeMsg(t, &agpv1.Message{Header: &agpv1.Header{Destination: topic}, Payload: []byte("x")})); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "delivery", func() bool { return r.count() == 1 })
	if string(r.get(0).GetPayload()) != "x" {
		t.Fatalf("delivered %v", r.get(0))
	}
	if err := pub.PublishNoAck(encodeMsg(t, &agpv1.Message{Header: &agpv1.Header{Destination: sidecar.MLSTopicPrefix + "x/y/z"}})); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("no-ack publish to an MLS name: %v", err)
	}
}

// With direct delivery the delivery function runs in line: a local
// publish has been delivered when Publish returns; Done closes on detach.
func TestLocalAgentDirectDelivery(t *testing.T) {
	n := startNode(t, sidecartest.Config("a"))
	var r localRecorder
	a := attach(t, n.Node, "direct", &r, sidecar.WithDirectDelivery())
	pub := attach(t, n.Node, "pub", &localRecorder{})
	if err := a.Subscribe(topic); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		ack, err := pub.PublishMessage(&agpv1.Message{Header: &agpv1.Header{Destination: topic}, Payload: []byte{byte(i)}})
		if err != nil || ack.GetLocalDeliveries() != 1 {
			t.Fatalf("publish %d: %v %v", i, ack, err)
		}
		if r.count() != i+1 {
			t.Fatalf("after publish %d: %d delivered, want %d in line", i, r.count(), i+1)
		}
	}
	ci, ok := localConn(n.Node, a.ID())
	if !ok || ci.Counters.MsgsOut != 3 || ci.QueueSize != 0 {
		t.Fatalf("connection table entry %+v", ci)
	}
	select {
	case <-a.Done():
		t.Fatal("Done closed while attached")
	default:
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	<-a.Done()
	if ack, err := pub.PublishMessage(&agpv1.Message{Header: &agpv1.Header{Destination: topic}}); err != nil || ack.GetLocalDeliveries() != 0 || r.count() != 3 {
		t.Fatalf("after close: %v %v, %d delivered", ack, err, r.count())
	}
}
