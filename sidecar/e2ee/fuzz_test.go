package e2ee

import (
	"bytes"
	"context"
	"testing"
)

func FuzzEnvelope(f *testing.F) {
	for _, e := range []Envelope{{Kind: KindHello}, {Kind: KindKeyPackage, Name: "org/ns/t", Body: []byte{1, 2, 3}}, {Kind: KindLeave, Name: "x"}} {
		b, _ := e.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{1, 9, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Envelope
		if err := e.UnmarshalBinary(b); err != nil {
			return
		}
		out, err := e.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded envelope does not encode: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatal("round trip differs")
		}
	})
}

func FuzzPeekPrivate(f *testing.F) {
	f.Add([]byte{0, 1, 0, 2, 3, 'a', 'b', 'c', 0, 0, 0, 0, 0, 0, 0, 7})
	f.Add([]byte{0, 1, 0, 2, 0x40, 0x03, 'a', 'b', 'c', 0, 0, 0, 0, 0, 0, 0, 7})
	f.Add([]byte{0, 1, 0, 2, 0xc0})
	f.Fuzz(func(t *testing.T, b []byte) {
		gid, _, err := peekPrivate(b)
		if err == nil && len(gid) > len(b) {
			t.Fatal("group id longer than the message")
		}
	})
}

// HandleHandshake and Open never panic on arbitrary input.
func FuzzHandleHandshake(f *testing.F) {
	f.Add([]byte{1, 2, 0, 0, 0, 0, 0, 3, 1, 2, 3}, []byte{0, 1, 0, 2, 1, 'g', 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, hs, ct []byte) {
		x := newFixture(t)
		x.cfg.EpochWait = 0
		m, err := New(x.cfg, "n1", x.source(x.ca, "n1"), endpoint{x.hub, "n1"})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		_ = m.HandleHandshake(context.Background(), "n2", hs)
		_, _ = m.Open(context.Background(), "n2", nil, ct)
	})
}

// FuzzBundle: decodeBundle never panics, and what it decodes encodes back
// to its input.
func FuzzBundle(f *testing.F) {
	f.Add(encodeBundle([][]byte{{1, 2, 3}, {4}}))
	f.Add(encodeBundle([][]byte{{9}}))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 9, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := decodeBundle(b)
		if err != nil {
			return
		}
		if len(msgs) == 0 || len(msgs) > maxBundle {
			t.Fatalf("%d messages", len(msgs))
		}
		if !bytes.Equal(encodeBundle(msgs), b) {
			t.Fatal("round trip differs")
		}
	})
}
