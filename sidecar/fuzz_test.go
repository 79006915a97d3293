package sidecar

import (
	"context"
	"errors"
	"testing"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func codeOf(err error) any { return status.Code(err) }

// FuzzAgentRequest decodes an AgentRequest from bytes and handles it as if
// a local agent had sent it; nothing may panic and every request gets one
// answer.
func FuzzAgentRequest(f *testing.F) {
	seeds := []*agpv1.AgentRequest{
		{RequestId: 1, Kind: &agpv1.AgentRequest_Subscribe{Subscribe: &agpv1.Subscribe{Name: tp}}},
		{RequestId: 2, Kind: &agpv1.AgentRequest_Publish{Publish: &agpv1.Publish{Message: msgTo(tp, 0)}}},
		{RequestId: 3, Kind: &agpv1.AgentRequest_Publish{Publish: &agpv1.Publish{Message: msgTo(tp, 1)}}},
		{RequestId: 4, Kind: &agpv1.AgentRequest_Unsubscribe{Unsubscribe: &agpv1.Unsubscribe{Name: tp}}},
		{RequestId: 5, Kind: &agpv1.AgentRequest_Publish{Publish: &agpv1.Publish{}}},
		{RequestId: 6},
	}
	for _, s := range seeds {
		b, _ := proto.Marshal(s)
		f.Add(b)
	}
	f.Add([]byte{0xff, 0x01})
	n := newTestNode(f, testNodeCfg("a"), WithRouteSource(routeMap{tp: {ep("b")}}))
	c := n.testConn(f)
	other := n.testConn(f)
	n.subscribe(other, 0, tp)
	f.Fuzz(func(t *testing.T, data []byte) {
		var req agpv1.AgentRequest
		if proto.Unmarshal(data, &req) != nil {
			req.RequestId = 0 // unknown; the answer may carry what was scanned
		}
		if err := n.handleAgentBytes(context.Background(), c, data); err != nil {
			t.Fatalf("stream-level error for a single request: %v", err)
		}
		// The publisher never receives its own messages, so c's queue holds
		// exactly the answer to req.
		if k := len(c.q); k != 1 {
			t.Fatalf("%d items queued for one request, want 1 answer", k)
		}
		ans := (<-c.q).resp
		if id := ans.GetAck().GetRequestId() + ans.GetError().GetRequestId(); req.RequestId != 0 && id != req.RequestId {
			t.Fatalf("answer %v does not echo request id %d", ans, req.RequestId)
		}
		deliveries(other)
		if p := n.peerIfKnown("b"); p != nil {
			for len(p.q) > 0 {
				<-p.q
			}
		}
	})
}

// FuzzPeerFrame decodes a PeerFrame from bytes and handles it as if a peer
// had sent it.
func FuzzPeerFrame(f *testing.F) {
	seeds := []*agpv1.PeerFrame{
		{Kind: &agpv1.PeerFrame_Message{Message: msgTo(tp, 0)}},
		{Kind: &agpv1.PeerFrame_Message{Message: &agpv1.Message{}}},
		{Kind: &agpv1.PeerFrame_Handshake{Handshake: &agpv1.Handshake{NodeId: "b", ProtocolVersion: 1}}},
		{Kind: &agpv1.PeerFrame_Goodbye{Goodbye: &agpv1.Goodbye{Reason: "x"}}},
		{Kind: &agpv1.PeerFrame_Batch{Batch: &agpv1.Batch{Messages: []*agpv1.Message{msgTo(tp, 0), msgTo(tp, 1), {}}}}},
		{},
	}
	for _, s := range seeds {
		b, _ := proto.Marshal(s)
		f.Add(b)
	}
	n := newTestNode(f, testNodeCfg("a"))
	p := n.peerFor("b", "", false)
	l := &peerLink{p: p, dialer: "b", done: make(chan struct{}), goodbye: make(chan struct{}), writerDone: make(chan struct{})}
	sub := n.testConn(f)
	n.subscribe(sub, 0, tp)
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = n.handlePeerBytes(l, data)
		for _, m := range deliveries(sub) {
			if m.Header == nil || m.Header.Destination != tp {
				t.Fatalf("delivered %v to a subscriber of %s", m, tp)
			}
		}
	})
}

// FuzzWireMessage checks the wire-form path against the protobuf library:
// whatever decodes as a Message splits and re-encodes to an equal Message,
// and the delivery and peer frames carry exactly it.
func FuzzWireMessage(f *testing.F) {
	for _, m := range []*agpv1.Message{
		msgTo(tp, 0),
		{Header: &agpv1.Header{Destination: tp, Metadata: map[string]string{"a": "b"}}, Payload: []byte("x")},
		{Payload: []byte("no header")},
		{},
	} {
		f.Add(encode(m))
	}
	f.Add([]byte{0x0a, 0x02, 0x20, 0x05, 0x0a, 0x02, 0x18, 0x03, 0x12, 0x01, 0x41})
	f.Add([]byte{0x08, 0x01}) // field 1 as a varint: unknown
	f.Fuzz(func(t *testing.T, data []byte) {
		var m agpv1.Message
		errP := proto.Unmarshal(data, &m)
		hdr, rest, errS := splitMessage(data)
		if errP != nil {
			if errS == nil && hdr != nil {
				// A header that decodes with broken other fields would be
				// forwarded and break the receivers' decoders.
				t.Fatalf("protobuf rejects %x (%v) but splitMessage accepts it", data, errP)
			}
			return
		}
		if errS != nil {
			t.Fatalf("protobuf decodes %x but splitMessage fails: %v", data, errS)
		}
		if hdr == nil {
			if m.Header != nil {
				t.Fatalf("header lost from %x", data)
			}
			hdr = &agpv1.Header{}
			m.Header = &agpv1.Header{}
		}
		w, err := buildWmsg(hdr, rest)
		if err != nil {
			t.Fatal(err)
		}
		var got agpv1.Message
		if err := proto.Unmarshal(w.body, &got); err != nil || !proto.Equal(&got, &m) {
			t.Fatalf("re-encoded %x -> %v (%v), want %v", data, &got, err, &m)
		}
		if d := decodeDelivery(w); !proto.Equal(d, &m) {
			t.Fatalf("delivery frame carries %v, want %v", d, &m)
		}
		pb, _ := wireCodec{}.Marshal((*peerMsgFrame)(w))
		var pf agpv1.PeerFrame
		if err := proto.Unmarshal(pb.Materialize(), &pf); err != nil || !proto.Equal(pf.GetMessage(), &m) {
			t.Fatalf("peer frame carries %v (%v), want %v", pf.GetMessage(), err, &m)
		}
	})
}

// FuzzPeerView checks msgView, which forwards peer messages without
// decoding them, against the protobuf library: it accepts exactly what
// proto.Unmarshal accepts, reads the same header fields, and the message it
// builds decodes to the original with only hop_limit changed.
func FuzzPeerView(f *testing.F) {
	for _, m := range []*agpv1.Message{
		msgTo(tp, 0),
		{Header: &agpv1.Header{Destination: tp, Source: "o/n/x", Fanout: 3, HopLimit: 200, Metadata: map[string]string{"a": "b", "": ""}}, Payload: []byte("x")},
		{Payload: []byte("no header")},
		{},
	} {
		f.Add(encode(m))
	}
	f.Add([]byte{0x0a, 0x02, 0x20, 0x05, 0x0a, 0x02, 0x18, 0x03, 0x12, 0x01, 0x41})
	f.Add([]byte{0x0a, 0x03, 0x12, 0x01, 0xff})             // invalid UTF-8 destination
	f.Add([]byte{0x0a, 0x05, 0x32, 0x03, 0x0a, 0x01, 0xff}) // invalid UTF-8 metadata key
	f.Fuzz(func(t *testing.T, data []byte) {
		var m agpv1.Message
		errP := proto.Unmarshal(data, &m)
		var v msgView
		errV := v.parse(data)
		if errors.Is(errV, errFragmented) {
			return
		}
		if (errP == nil) != (errV == nil) {
			t.Fatalf("proto.Unmarshal: %v, msgView: %v, for %x", errP, errV, data)
		}
		if errP != nil {
			return
		}
		h := m.GetHeader()
		if (v.nh > 0) != (h != nil) || string(v.dest) != h.GetDestination() || string(v.src) != h.GetSource() ||
			v.fanout != h.GetFanout() || v.hop != h.GetHopLimit() {
			t.Fatalf("view %+v disagrees with header %v", v, h)
		}
		if h == nil {
			return
		}
		w := v.build(v.hop / 2)
		var got agpv1.Message
		if err := proto.Unmarshal(w.body, &got); err != nil {
			t.Fatalf("built message does not decode: %v", err)
		}
		m.Header.HopLimit = v.hop / 2
		if !proto.Equal(&got, &m) {
			t.Fatalf("built %v, want %v", &got, &m)
		}
		if d := decodeDelivery(w); !proto.Equal(d, &m) {
			t.Fatalf("delivery %v, want %v", d, &m)
		}
		if string(v.id) != h.GetMessageId() {
			t.Fatalf("view id %q, header %q", v.id, h.GetMessageId())
		}
		// The publish path: keep hop_limit, set a message id.
		w = v.buildWith(0, false, "n-1")
		got.Reset()
		if err := proto.Unmarshal(w.body, &got); err != nil {
			t.Fatalf("built message does not decode: %v", err)
		}
		m.Header.HopLimit = v.hop
		m.Header.MessageId = "n-1"
		if !proto.Equal(&got, &m) {
			t.Fatalf("built %v, want %v", &got, &m)
		}
	})
}
