package rpc

import (
	"bytes"
	"testing"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"google.golang.org/protobuf/proto"
)

func seedFrames() []*agpv1.RpcFrame {
	return []*agpv1.RpcFrame{
		{CallId: "0123456789abcdef", Seq: 1, Sender: "acme/demo/client/a1", Open: &agpv1.RpcOpen{
			Method: "/sample.v1.Echo/Say", ReplyTo: "agwrpc.acme/demo/client/a1", Caller: "acme/demo/client/a1",
			TimeoutNanos: 1e9, InitialWindow: 32,
			Metadata: &agpv1.RpcMetadata{Entries: []*agpv1.RpcMetadataEntry{{Key: "x-a", Values: [][]byte{[]byte("v")}}}},
		}, Messages: [][]byte{{1, 2, 3}}, HalfClose: true},
		{CallId: "ab", Seq: 2, Reply: true, Sender: "acme/demo/echo/b1", Accept: &agpv1.RpcAccept{Responder: "acme/demo/echo/b1", Topic: "agwrpc.acme/demo/echo/b1", InitialWindow: 8}},
		{CallId: "ab", Seq: 3, Reply: true, Headers: &agpv1.RpcMetadata{}, Messages: [][]byte{nil, {0}}, Trailers: &agpv1.RpcTrailers{Code: 5, Message: "x", Details: [][]byte{{1}}}},
		{CallId: "ab", Seq: 4, Cancel: &agpv1.RpcCancel{Code: 1, Reason: "bye"}, Window: 16},
	}
}

func TestDecodeFrameChecks(t *testing.T) {
	for i, f := range seedFrames() {
		b, err := EncodeFrame(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeFrame(b)
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		if !proto.Equal(got, f) {
			t.Fatalf("seed %d: round trip differs", i)
		}
	}
	for name, f := range map[string]*agpv1.RpcFrame{
		"no call id":      {Seq: 1},
		"upper hex":       {CallId: "AB", Seq: 1},
		"long call id":    {CallId: string(bytes.Repeat([]byte("a"), 65)), Seq: 1},
		"seq 0":           {CallId: "ab"},
		"bad method":      {CallId: "ab", Seq: 1, Open: &agpv1.RpcOpen{Method: "Say", ReplyTo: "x"}},
		"no reply_to":     {CallId: "ab", Seq: 1, Open: &agpv1.RpcOpen{Method: "/a/b"}},
		"negative time":   {CallId: "ab", Seq: 1, Open: &agpv1.RpcOpen{Method: "/a/b", ReplyTo: "x", TimeoutNanos: -1}},
		"open on reply":   {CallId: "ab", Seq: 1, Reply: true, Open: &agpv1.RpcOpen{Method: "/a/b", ReplyTo: "x"}},
		"accept no reply": {CallId: "ab", Seq: 1, Accept: &agpv1.RpcAccept{Topic: "t"}},
		"huge window":     {CallId: "ab", Seq: 1, Window: 1 << 30},
	} {
		b, _ := EncodeFrame(f)
		if _, err := DecodeFrame(b); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	if _, err := DecodeFrame([]byte{0xff, 0xff}); err == nil {
		t.Error("garbage decoded")
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, fr := range seedFrames() {
		b, _ := EncodeFrame(fr)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 'a', 'b', 0x10, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeFrame(b)
		if err != nil {
			return
		}
		// A frame that decodes re-encodes to one that decodes the same.
		b2, err := EncodeFrame(fr)
		if err != nil {
			t.Fatal(err)
		}
		fr2, err := DecodeFrame(b2)
		if err != nil {
			t.Fatalf("re-encoded frame rejected: %v", err)
		}
		if !proto.Equal(fr, fr2) {
			t.Fatal("round trip differs")
		}
		// Metadata conversion never panics and keeps only sendable keys.
		for _, md := range []*agpv1.RpcMetadata{fr.GetOpen().GetMetadata(), fr.GetHeaders(), fr.GetTrailers().GetMetadata()} {
			for k, vs := range fromWire(md) {
				if dropKey(k) || !validKey(k) {
					t.Fatalf("key %q kept", k)
				}
				for _, v := range vs {
					if len(k) < 4 || k[len(k)-4:] != "-bin" {
						if !validValue([]byte(v)) {
							t.Fatalf("value %q kept", v)
						}
					}
				}
			}
		}
		_ = trailerStatus(&agpv1.RpcTrailers{Code: fr.GetTrailers().GetCode(), Message: fr.GetTrailers().GetMessage(), Details: fr.GetTrailers().GetDetails()})
	})
}
