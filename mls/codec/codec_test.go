package codec

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func vectorsDir(t testing.TB) string {
	if d := os.Getenv("AGW_MLS_VECTORS"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "shared", "mls-test-vectors")
}

func TestDeserializationVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(vectorsDir(t), "deserialization.json"))
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	var cases []struct {
		Header string `json:"vlbytes_header"`
		Length int    `json:"length"`
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		hdr, _ := hex.DecodeString(c.Header)
		n, used, err := ReadVarint(hdr)
		if err != nil || n != c.Length || used != len(hdr) {
			t.Errorf("decode %s: got %d (%d bytes, %v), want %d", c.Header, n, used, err, c.Length)
		}
		enc, err := AppendVarint(nil, c.Length)
		if err != nil || !bytes.Equal(enc, hdr) {
			t.Errorf("encode %d: got %x, want %s", c.Length, enc, c.Header)
		}
	}
	t.Logf("deserialization.json: %d passed, 0 skipped", len(cases))
}

func TestVarintRejects(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"c0", ErrVarintPrefix},
		{"4001", ErrNonMinimal},
		{"80000001", ErrNonMinimal},
		{"40", ErrShort},
		{"800000", ErrShort},
		{"", ErrShort},
	} {
		b, _ := hex.DecodeString(tc.in)
		if _, _, err := ReadVarint(b); !errors.Is(err, tc.want) {
			t.Errorf("%q: got %v, want %v", tc.in, err, tc.want)
		}
	}
	if _, err := AppendVarint(nil, MaxVarint+1); !errors.Is(err, ErrTooLong) {
		t.Errorf("over-long: %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	w := NewWriter(0)
	w.U8(1)
	w.U16(0x0203)
	w.U32(0x04050607)
	w.U64(0x08090a0b0c0d0e0f)
	w.Opaque(bytes.Repeat([]byte{0xaa}, 100))
	w.Vector(func(w *Writer) {
		for i := 0; i < 3; i++ {
			w.Opaque([]byte{byte(i)})
		}
	})
	w.Optional(true, func(w *Writer) { w.U16(7) })
	w.Optional(false, nil)
	enc, err := w.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	r := NewReader(enc)
	if r.U8() != 1 || r.U16() != 0x0203 || r.U32() != 0x04050607 || r.U64() != 0x08090a0b0c0d0e0f {
		t.Fatal("fixed-width mismatch")
	}
	if got := r.Opaque(); !bytes.Equal(got, bytes.Repeat([]byte{0xaa}, 100)) {
		t.Fatalf("opaque: %x", got)
	}
	var elems [][]byte
	r.Elements(func(r *Reader) { elems = append(elems, r.Opaque()) })
	if len(elems) != 3 || elems[2][0] != 2 {
		t.Fatalf("elements: %v", elems)
	}
	var v uint16
	if !r.Optional(func(r *Reader) { v = r.U16() }) || v != 7 {
		t.Fatal("optional present")
	}
	if r.Optional(func(r *Reader) { t.Fatal("absent optional read") }) {
		t.Fatal("optional absent")
	}
	if err := r.Finish(); err != nil {
		t.Fatal(err)
	}
}

func TestReaderErrors(t *testing.T) {
	r := NewReader([]byte{0x05, 1, 2})
	r.Opaque()
	if !errors.Is(r.Err(), ErrShort) {
		t.Fatalf("short opaque: %v", r.Err())
	}
	r = NewReader([]byte{1, 2})
	r.U8()
	if !errors.Is(r.Finish(), ErrTrailing) {
		t.Fatal("trailing not reported")
	}
	r = NewReader([]byte{2})
	r.Bool()
	if !errors.Is(r.Err(), ErrInvalid) {
		t.Fatal("bad bool accepted")
	}
	// An element that overruns its vector is an error, not a read of the outer input.
	r = NewReader([]byte{0x01, 0x00, 0xff})
	r.Elements(func(r *Reader) { r.U16() })
	if !errors.Is(r.Err(), ErrShort) {
		t.Fatalf("overrun: %v", r.Err())
	}
}

func FuzzReadVarint(f *testing.F) {
	f.Add([]byte{0x40, 0x40})
	f.Add([]byte{0xbf, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, used, err := ReadVarint(b)
		if err != nil {
			return
		}
		enc, err := AppendVarint(nil, n)
		if err != nil || !bytes.Equal(enc, b[:used]) {
			t.Fatalf("re-encode %d: %x vs %x", n, enc, b[:used])
		}
	})
}

func FuzzReader(f *testing.F) {
	f.Add([]byte{0x03, 0x01, 0x01, 0x00, 0x01, 0x05})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(b)
		r.Elements(func(r *Reader) { r.Opaque() })
		r.Optional(func(r *Reader) { r.U32() })
		_ = r.Finish()
	})
}
