package rpc

import (
	"bytes"
	"testing"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// appendMessage encodes what proto.Marshal of the same Message decodes to.
func TestAppendMessage(t *testing.T) {
	for i, f := range seedFrames() {
		for _, h := range []msgHeader{
			{source: "acme/demo/client/a1", destination: "agwrpc.acme/demo/echo", fanout: 1},
			{source: "acme/demo/client/a1", destination: "agwrpc.acme/demo/echo", metadata: map[string]string{"traceparent": "00-x", "baggage": ""}},
			{destination: "agwrpc.acme/demo/echo"},
		} {
			b, err := appendMessage([]byte("prefix"), &h, f)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, []byte("prefix")) {
				t.Fatal("appendMessage did not append")
			}
			var m agpv1.Message
			if err := proto.Unmarshal(b[len("prefix"):], &m); err != nil {
				t.Fatalf("seed %d: %v", i, err)
			}
			want := &agpv1.Message{Header: &agpv1.Header{Source: h.source, Destination: h.destination, Fanout: h.fanout,
				ContentType: ContentType, Metadata: h.metadata}}
			got := proto.Clone(&m).(*agpv1.Message)
			got.Payload = nil
			if !proto.Equal(got, want) {
				t.Fatalf("seed %d: header %v, want %v", i, got, want)
			}
			var gf agpv1.RpcFrame
			if err := proto.Unmarshal(m.GetPayload(), &gf); err != nil || !proto.Equal(&gf, f) {
				t.Fatalf("seed %d: payload does not decode to the frame: %v", i, err)
			}
			d, ok := parseDelivery(b[len("prefix"):])
			if !ok || string(d.dest) != h.destination || string(d.source) != h.source ||
				string(d.ctype) != ContentType || !bytes.Equal(d.payload, m.GetPayload()) {
				t.Fatalf("seed %d: parseDelivery %+v %v", i, d, ok)
			}
		}
	}
}

// FuzzParseDelivery: parseDelivery never panics and, on every message
// that protobuf decodes with one header, reads the same fields.
func FuzzParseDelivery(f *testing.F) {
	for _, fr := range seedFrames() {
		b, err := appendMessage(nil, &msgHeader{source: "a/b/c", destination: "agwrpc.a/b/c", metadata: map[string]string{"k": "v"}}, fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00})
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, ok := parseDelivery(b)
		var m agpv1.Message
		if err := proto.Unmarshal(b, &m); err != nil || !ok {
			return // the dispatcher's DecodeFrame and checks refuse what follows
		}
		if headers := countField(b, 1); headers != 1 {
			return // merged headers: the node always sends one
		}
		h := m.GetHeader()
		if string(d.dest) != h.GetDestination() || string(d.source) != h.GetSource() ||
			string(d.ctype) != h.GetContentType() || !bytes.Equal(d.payload, m.GetPayload()) {
			t.Fatalf("parseDelivery %+v, protobuf %v", d, &m)
		}
	})
}

// countField counts the occurrences of field num in an encoding that
// protobuf accepted.
func countField(b []byte, num protowire.Number) int {
	n := 0
	for len(b) > 0 {
		fn, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return -1
		}
		m := protowire.ConsumeFieldValue(fn, typ, b[l:])
		if m < 0 {
			return -1
		}
		if fn == num {
			n++
		}
		b = b[l+m:]
	}
	return n
}
