package sidecar

import (
	"testing"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

const tp = "o/n/s"

func TestForwardLocal(t *testing.T) {
	n := newTestNode(t, testNodeCfg("a"))
	pub, s1, s2 := n.testConn(t), n.testConn(t), n.testConn(t)
	for _, c := range []*agentConn{pub, s1, s2} {
		n.subscribe(c, 1, tp)
	}
	// fanout 0: everyone but the publisher.
	l, r := n.forward(wm(msgTo(tp, 0)), pub, 1)
	if l != 2 || r != 0 || len(deliveries(pub)) != 0 || len(deliveries(s1)) != 1 || len(deliveries(s2)) != 1 {
		t.Fatalf("fanout 0: %d %d", l, r)
	}
	// fanout 1: round robin over the other two.
	for range 4 {
		if l, r := n.forward(wm(msgTo(tp, 1)), pub, 1); l != 1 || r != 0 {
			t.Fatalf("anycast %d %d", l, r)
		}
	}
	if a, b := len(deliveries(s1)), len(deliveries(s2)); a != 2 || b != 2 || len(deliveries(pub)) != 0 {
		t.Fatalf("anycast split %d/%d", a, b)
	}
	// fanout 5 with two candidates: both.
	if l, _ := n.forward(wm(msgTo(tp, 5)), pub, 1); l != 2 {
		t.Fatalf("fanout 5: %d", l)
	}
	deliveries(s1)
	deliveries(s2)
	// Slow consumer: s1's queue full; s2 still gets every message.
	for range cap(s1.q) {
		s1.q <- outItem{resp: ackResp(0)}
	}
	if l, _ := n.forward(wm(msgTo(tp, 0)), pub, 1); l != 1 {
		t.Fatalf("with slow consumer: %d", l)
	}
	if len(deliveries(s2)) != 1 || n.dropCount(DropSlowConsumer) != 1 || s1.drops.Load() != 1 {
		t.Fatal("slow consumer not isolated / counted")
	}
	// No subscribers.
	if l, r := n.forward(wm(msgTo("o/n/none", 0)), pub, 1); l != 0 || r != 0 || n.dropCount(DropNoSubscribers) != 1 {
		t.Fatal("no subscribers")
	}
}

func TestForwardRemote(t *testing.T) {
	routes := routeMap{tp: {ep("a"), ep("b"), ep("c"),
		{NodeId: "d", Status: agpv1.RouteEndpoint_STATUS_PENDING_WITHDRAWAL}, {NodeId: "bad id!"}}}
	n := newTestNode(t, testNodeCfg("a"), WithRouteSource(routes))
	pub := n.testConn(t)
	// Known only by id: down until linked.
	if l, r := n.forward(wm(msgTo(tp, 0)), pub, 1); l != 0 || r != 0 || n.dropCount(DropPeerDown) != 2 {
		t.Fatalf("unlinked peers used: %d %d", l, r)
	}
	n.peerIfKnown("b").setStatus(StatusUp)
	n.peerIfKnown("c").setStatus(StatusUp)
	l, r := n.forward(wm(msgTo(tp, 0)), pub, 1)
	if l != 0 || r != 2 {
		t.Fatalf("fanout 0: %d %d, want 0 local, 2 remote (self, pending and invalid skipped)", l, r)
	}
	b, c := n.peerIfKnown("b"), n.peerIfKnown("c")
	if len(b.q) != 1 || len(c.q) != 1 || n.peerIfKnown("d") != nil {
		t.Fatal("peer queues")
	}
	// Anycast alternates over remotes.
	for range 4 {
		if _, r := n.forward(wm(msgTo(tp, 1)), pub, 1); r != 1 {
			t.Fatal("anycast remote")
		}
	}
	if len(b.q) != 3 || len(c.q) != 3 {
		t.Fatalf("round robin b=%d c=%d", len(b.q), len(c.q))
	}
	// A local subscriber comes first.
	s := n.testConn(t)
	n.subscribe(s, 1, tp)
	if l, r := n.forward(wm(msgTo(tp, 1)), pub, 1); l != 1 || r != 0 {
		t.Fatalf("local first: %d %d", l, r)
	}
	if l, r := n.forward(wm(msgTo(tp, 2)), pub, 1); l != 1 || r != 1 {
		t.Fatalf("fanout 2: %d %d", l, r)
	}
	n.unsubscribe(s, 2, tp)
	// b down: anycast goes to c; multicast counts peer_down.
	b.setStatus(StatusDown)
	for range 3 {
		if _, r := n.forward(wm(msgTo(tp, 1)), pub, 1); r != 1 {
			t.Fatal("anycast with b down")
		}
	}
	if len(b.q) != 3 && len(b.q) != 4 {
		t.Fatalf("b got messages while down: %d", len(b.q))
	}
	before := n.dropCount(DropPeerDown)
	if _, r := n.forward(wm(msgTo(tp, 0)), pub, 1); r != 1 || n.dropCount(DropPeerDown) != before+1 {
		t.Fatal("multicast with b down")
	}
	c.setStatus(StatusDown)
	if _, r := n.forward(wm(msgTo(tp, 1)), pub, 1); r != 0 || n.dropCount(DropPeerDown) != before+2 {
		t.Fatal("anycast with all down")
	}
	c.setStatus(StatusUp)
	// Full peer queue: bounded wait then peer_queue_full.
	for len(c.q) < cap(c.q) {
		c.q <- peerItem{}
	}
	if _, r := n.forward(wm(msgTo(tp, 0)), pub, 1); r != 0 || n.dropCount(DropPeerQueueFull) != 1 {
		t.Fatal("peer queue full")
	}
	// Too large for the peer.
	for len(c.q) > 0 {
		<-c.q
	}
	c.maxMsg.Store(5)
	if _, r := n.forward(wm(msgTo(tp, 0)), pub, 1); r != 0 || n.dropCount(DropTooLarge) != 1 {
		t.Fatal("too large")
	}
}

func TestHandlePeerMessage(t *testing.T) {
	n := newTestNode(t, testNodeCfg("a"))
	p := n.peerFor("b", "", false)
	s1, s2 := n.testConn(t), n.testConn(t)
	n.subscribe(s1, 1, tp)
	n.subscribe(s2, 1, tp)
	m := msgTo(tp, 0)
	m.Header.HopLimit = 0
	n.handlePeerMessage(p, encode(m))
	if n.dropCount(DropHopLimit) != 1 || len(deliveries(s1)) != 0 {
		t.Fatal("hop limit 0 not dropped")
	}
	m = msgTo(tp, 1)
	m.Header.HopLimit = 2
	m.Header.Metadata = map[string]string{"traceparent": "00-x"}
	n.handlePeerMessage(p, encode(m))
	got := append(deliveries(s1), deliveries(s2)...)
	if len(got) != 1 {
		t.Fatalf("anycast from peer delivered %d times", len(got))
	}
	want := proto.Clone(m).(*agpv1.Message)
	want.Header.HopLimit = 1
	if !proto.Equal(got[0], want) {
		t.Fatalf("delivered %v, want %v (hop limit decremented, rest unchanged)", got[0], want)
	}
	n.handlePeerMessage(p, encode(&agpv1.Message{}))
	n.handlePeerMessage(p, encode(&agpv1.Message{Header: &agpv1.Header{Destination: tp, Source: "bad", HopLimit: 3}}))
	n.handlePeerMessage(p, []byte{0x0a, 0x05, 0x01})
	if n.dropCount(DropMalformed) != 3 {
		t.Fatalf("malformed counted %v", n.dropCount(DropMalformed))
	}
	if p.msgsIn.Load() != 5 {
		t.Fatalf("peer msgs in %d", p.msgsIn.Load())
	}
	// No local subscriber: dropped before any encoding.
	m = msgTo("o/n/none", 0)
	n.handlePeerMessage(p, encode(m))
	if n.dropCount(DropNoSubscribers) != 1 {
		t.Fatal("no subscribers")
	}
}

func TestPublishFillsDefaults(t *testing.T) {
	n := newTestNode(t, testNodeCfg("a"))
	c, sub := n.testConn(t), n.testConn(t)
	n.subscribe(sub, 0, tp)
	m := &agpv1.Message{Header: &agpv1.Header{Destination: tp, ContentType: "text/plain"}, Payload: []byte("hi")}
	resp := n.publishBytes(c, 7, encode(m), 1)
	ack := resp.GetAck()
	if ack == nil || ack.RequestId != 7 || ack.MessageId == "" || ack.LocalDeliveries != 1 {
		t.Fatalf("resp %v", resp)
	}
	got := deliveries(sub)
	if len(got) != 1 || got[0].Header.MessageId != ack.MessageId || got[0].Header.HopLimit != 8 ||
		got[0].Header.ContentType != "text/plain" || string(got[0].Payload) != "hi" {
		t.Fatalf("delivered %v", got)
	}
	id2 := n.publish(c, 8, &agpv1.Message{Header: &agpv1.Header{Destination: tp}}, 1).GetAck().MessageId
	if id2 == ack.MessageId || id2 == "" {
		t.Fatal("message ids repeat")
	}
	deliveries(sub)
	keep := &agpv1.Message{Header: &agpv1.Header{Destination: tp, MessageId: "mine", HopLimit: 3}}
	if got := n.publish(c, 9, keep, 1).GetAck(); got.MessageId != "mine" {
		t.Fatalf("publisher's id not kept: %v", got)
	}
	if d := deliveries(sub); len(d) != 1 || d[0].Header.HopLimit != 3 {
		t.Fatalf("publisher's hop limit not kept: %v", d)
	}
	// Unknown fields of the message travel on.
	withUnknown := append(encode(m), 0xf8, 0x01, 0x2a) // field 31, varint 42
	n.publishBytes(c, 10, withUnknown, 1)
	if d := deliveries(sub); len(d) != 1 || string(d[0].ProtoReflect().GetUnknown()) != "\xf8\x01\x2a" {
		t.Fatalf("unknown field lost: %v", d)
	}
	if e := n.publishBytes(c, 11, []byte{0x0a, 0x09}, 1).GetError(); e == nil || codes.Code(e.Code) != codes.InvalidArgument {
		t.Fatalf("malformed message: %v", e)
	}
	if e := n.subscribe(c, 10, "x").GetError(); e == nil || codes.Code(e.Code) != codes.InvalidArgument || e.RequestId != 10 {
		t.Fatalf("invalid subscribe: %v", e)
	}
	cfg := testNodeCfg("b")
	cfg.MaxSubscriptionsPerConn = 1
	n2 := newTestNode(t, cfg)
	c2 := n2.testConn(t)
	n2.subscribe(c2, 1, "o/n/a")
	if e := n2.subscribe(c2, 2, "o/n/b").GetError(); e == nil || codes.Code(e.Code) != codes.ResourceExhausted {
		t.Fatalf("subscription limit: %v", e)
	}
}

func TestHandleAgentBytes(t *testing.T) {
	n := newTestNode(t, testNodeCfg("a"))
	c := n.testConn(t)
	ctx := ctxTest(t)
	answer := func(b []byte) *agpv1.AgentResponse {
		t.Helper()
		if err := n.handleAgentBytes(ctx, c, b); err != nil {
			t.Fatal(err)
		}
		return (<-c.q).resp
	}
	if a := answer(encode(&agpv1.AgentRequest{RequestId: 3, Kind: &agpv1.AgentRequest_Subscribe{Subscribe: &agpv1.Subscribe{Name: tp}}})); a.GetAck().GetRequestId() != 3 {
		t.Fatalf("subscribe: %v", a)
	}
	pub := encode(&agpv1.AgentRequest{RequestId: 4, Kind: &agpv1.AgentRequest_Publish{Publish: &agpv1.Publish{Message: msgTo(tp, 0)}}})
	if a := answer(pub); a.GetAck().GetRequestId() != 4 || a.GetAck().GetMessageId() == "" {
		t.Fatalf("publish: %v", a)
	}
	// A later kind field wins (oneof semantics): publish then subscribe.
	both := append(append([]byte{}, pub...), encode(&agpv1.AgentRequest{RequestId: 5, Kind: &agpv1.AgentRequest_Unsubscribe{Unsubscribe: &agpv1.Unsubscribe{Name: tp}}})...)
	if a := answer(both); a.GetAck().GetRequestId() != 5 || a.GetAck().GetMessageId() != "" {
		t.Fatalf("oneof last wins: %v", a)
	}
	if a := answer([]byte{0x08, 0x09, 0x22, 0x05}); codes.Code(a.GetError().GetCode()) != codes.InvalidArgument {
		t.Fatalf("truncated: %v", a)
	}
}

func TestAttachRules(t *testing.T) {
	newLink := func(p *peer, dialer string, outbound bool) *peerLink {
		return &peerLink{p: p, dialer: dialer, outbound: outbound, done: make(chan struct{}), goodbye: make(chan struct{}), writerDone: make(chan struct{})}
	}
	hs := &agpv1.Handshake{ProtocolVersion: 1, MaxMessageBytes: 1000}
	closed := func(l *peerLink) bool {
		select {
		case <-l.done:
			return true
		default:
			return false
		}
	}
	// Node "a" (lower than "b").
	n := newTestNode(t, testNodeCfg("a"))
	p := n.peerFor("b", "", false)
	in1 := newLink(p, "b", false)
	if err := n.attach(p, in1, hs, ""); err != nil || p.Status() != StatusUp || p.maxMsg.Load() != 1000 {
		t.Fatal(err)
	}
	if err := n.attach(p, newLink(p, "b", false), hs, ""); err == nil || !err.(*linkRejectError).duplicate {
		t.Fatalf("second link from b: %v", err)
	}
	out := newLink(p, "a", true)
	if err := n.attach(p, out, hs, ""); err != nil || !closed(in1) || p.currentLink() != out {
		t.Fatalf("a's own dial must replace b's: %v", err)
	}
	n.detach(p, in1) // late detach of the replaced link changes nothing
	if p.currentLink() != out || p.Status() != StatusUp {
		t.Fatal("stale detach")
	}
	if err := n.attach(p, newLink(p, "b", false), hs, ""); err == nil || err.(*linkRejectError).kept != "a" {
		t.Fatalf("b's dial must lose: %v", err)
	}
	n.detach(p, out)
	if p.currentLink() != nil || p.Status() != StatusDown {
		t.Fatal("detach")
	}
	// Node "c" (higher than "b"): b's inbound link beats c's own dial.
	n2 := newTestNode(t, testNodeCfg("c"))
	p2 := n2.peerFor("b", "", false)
	own := newLink(p2, "c", true)
	if err := n2.attach(p2, own, hs, ""); err != nil {
		t.Fatal(err)
	}
	in := newLink(p2, "b", false)
	if err := n2.attach(p2, in, hs, ""); err != nil || !closed(own) || p2.currentLink() != in {
		t.Fatalf("b's dial must replace c's: %v", err)
	}
	if err := n2.attach(p2, newLink(p2, "c", true), hs, ""); err == nil {
		t.Fatal("c's second dial accepted")
	}
}

func TestCheckHandshake(t *testing.T) {
	n := newTestNode(t, testNodeCfg("a"))
	for _, tc := range []struct {
		hs   *agpv1.Handshake
		code codes.Code
	}{
		{nil, codes.InvalidArgument},
		{&agpv1.Handshake{NodeId: "b", ProtocolVersion: 2}, codes.FailedPrecondition},
		{&agpv1.Handshake{NodeId: "", ProtocolVersion: 1}, codes.InvalidArgument},
		{&agpv1.Handshake{NodeId: "a", ProtocolVersion: 1}, codes.AlreadyExists},
		{&agpv1.Handshake{NodeId: "b", ProtocolVersion: 1}, codes.OK},
	} {
		err := n.checkHandshake(tc.hs)
		if got := codeOf(err); got != tc.code {
			t.Errorf("checkHandshake(%v) = %v, want %s", tc.hs, err, tc.code)
		}
	}
}

func TestEncodeAck(t *testing.T) {
	for _, a := range []*agpv1.Ack{
		{},
		{RequestId: 1},
		{RequestId: 1 << 62, MessageId: "a-0123-zz", LocalDeliveries: 3, RemoteDeliveries: 1 << 31},
		{MessageId: "é", RemoteDeliveries: 2},
	} {
		in := &agpv1.AgentResponse{Kind: &agpv1.AgentResponse_Ack{Ack: a}}
		bufs, err := wireCodec{}.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var out agpv1.AgentResponse
		if err := proto.Unmarshal(bufs.Materialize(), &out); err != nil || !proto.Equal(&out, in) {
			t.Fatalf("ack %v -> %v (%v)", in, &out, err)
		}
	}
}

func TestPublishFastAndSlowPathsAgree(t *testing.T) {
	n := newTestNode(t, testNodeCfg("a"))
	c, sub := n.testConn(t), n.testConn(t)
	n.subscribe(sub, 0, tp)
	for _, m := range []*agpv1.Message{
		{Header: &agpv1.Header{Destination: tp}, Payload: []byte("p")},
		{Header: &agpv1.Header{Destination: tp, Source: "o/n/src/1", MessageId: "m-1", HopLimit: 3, Fanout: 1,
			Metadata: map[string]string{"traceparent": "00-abc"}, ContentType: "application/json"}, Payload: make([]byte, 3000)},
	} {
		b := encode(m)
		fast := n.publishBytes(c, 1, b, 1).GetAck()
		df := deliveries(sub)
		slow := n.publishBytesSlow(c, 2, b, 1).GetAck()
		ds := deliveries(sub)
		if fast == nil || slow == nil || len(df) != 1 || len(ds) != 1 {
			t.Fatalf("fast %v slow %v deliveries %d/%d", fast, slow, len(df), len(ds))
		}
		if m.Header.MessageId == "" {
			// Fresh ids differ; compare the rest.
			if fast.MessageId == "" || df[0].Header.MessageId != fast.MessageId || ds[0].Header.MessageId != slow.MessageId {
				t.Fatalf("ids: ack %q/%q, delivered %q/%q", fast.MessageId, slow.MessageId, df[0].Header.MessageId, ds[0].Header.MessageId)
			}
			df[0].Header.MessageId, ds[0].Header.MessageId = "", ""
		}
		if !proto.Equal(df[0], ds[0]) {
			t.Fatalf("fast path delivered %v, slow path %v", df[0], ds[0])
		}
		want := proto.Clone(m).(*agpv1.Message)
		want.Header.MessageId = df[0].Header.MessageId
		if want.Header.HopLimit == 0 {
			want.Header.HopLimit = 8
		}
		if !proto.Equal(df[0], want) {
			t.Fatalf("delivered %v, want %v", df[0], want)
		}
	}
}
