package schedule

import (
	"bytes"
	"errors"
	"testing"

	"github.com/agwproject/agw/mls/suite"
)

func TestSecretTreeStateRoundTrip(t *testing.T) {
	for _, leaves := range []uint32{1, 5, 8, 1024} {
		s := suite1(t)
		tree, _ := NewSecretTree(s, secretOf(s, 4), leaves, WithWindow(50), WithMaxForwardJump(500))
		ref, _ := NewSecretTree(s, secretOf(s, 4), leaves, WithWindow(50), WithMaxForwardJump(500))
		// Use some leaves, with gaps in the generations.
		used := []uint32{0}
		if leaves > 1 {
			used = append(used, leaves/2, leaves-1)
		}
		for _, l := range used {
			if _, err := tree.Get(l, Application, 10); err != nil {
				t.Fatal(err)
			}
			if _, err := tree.Next(l, Handshake); err != nil {
				t.Fatal(err)
			}
		}
		enc, err := tree.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back, err := UnmarshalSecretTree(s, enc)
		if err != nil {
			t.Fatalf("%d leaves: %v", leaves, err)
		}
		again, _ := back.MarshalBinary()
		if !bytes.Equal(enc, again) {
			t.Errorf("%d leaves: re-encoding differs", leaves)
		}
		for _, l := range used {
			if _, err := back.Get(l, Application, 10); !errors.Is(err, ErrGenerationReused) {
				t.Errorf("restored tree reused generation 10: %v", err)
			}
			k, err := back.Get(l, Application, 3)
			want, _ := ref.Get(l, Application, 3)
			if err != nil || !bytes.Equal(k.Key, want.Key) {
				t.Errorf("restored kept key differs: %v", err)
			}
		}
		for l := range min(leaves, 40) {
			a, err1 := back.Get(l, Handshake, 1)
			b, err2 := ref.Get(l, Handshake, 1)
			if err1 != nil || err2 != nil || !bytes.Equal(a.Key, b.Key) || !bytes.Equal(a.Nonce, b.Nonce) {
				t.Fatalf("%d leaves: leaf %d differs after restore: %v %v", leaves, l, err1, err2)
			}
		}
	}
}

func TestSecretTreeStateRejects(t *testing.T) {
	s := suite1(t)
	tree, _ := NewSecretTree(s, secretOf(s, 4), 8)
	if _, err := tree.Get(3, Application, 2); err != nil {
		t.Fatal(err)
	}
	enc, _ := tree.MarshalBinary()
	s2, _ := suite.Get(2)
	if _, err := UnmarshalSecretTree(s2, enc); !errors.Is(err, ErrState) {
		t.Errorf("other suite: %v", err)
	}
	for i := range enc {
		if _, err := UnmarshalSecretTree(s, enc[:i]); !errors.Is(err, ErrState) {
			t.Fatalf("truncated at %d: %v", i, err)
		}
	}
	if _, err := UnmarshalSecretTree(s, append(bytes.Clone(enc), 0)); !errors.Is(err, ErrState) {
		t.Errorf("trailing byte: %v", err)
	}
	// A state that drops a node secret leaves some leaves uncovered.
	empty, _ := NewSecretTree(s, secretOf(s, 4), 8)
	delete(empty.nodes, empty.root)
	bad, _ := empty.MarshalBinary()
	if _, err := UnmarshalSecretTree(s, bad); !errors.Is(err, ErrState) {
		t.Errorf("uncovered leaves: %v", err)
	}
	// A stored secret above a leaf that has ratchets.
	dup, _ := NewSecretTree(s, secretOf(s, 4), 8)
	dup.Get(0, Handshake, 0)
	dup.nodes[dup.root] = secretOf(s, 1)
	bad, _ = dup.MarshalBinary()
	if _, err := UnmarshalSecretTree(s, bad); !errors.Is(err, ErrState) {
		t.Errorf("doubly covered leaves: %v", err)
	}
}

func FuzzUnmarshalSecretTree(f *testing.F) {
	s, _ := suite.Get(1)
	for _, leaves := range []uint32{1, 3, 8} {
		tree, _ := NewSecretTree(s, secretOf(s, 4), leaves)
		tree.Get(leaves-1, Application, 3)
		enc, _ := tree.MarshalBinary()
		f.Add(enc)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tree, err := UnmarshalSecretTree(s, data)
		if err != nil {
			if !errors.Is(err, ErrState) {
				t.Fatalf("error does not wrap ErrState: %v", err)
			}
			return
		}
		enc, err := tree.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back, err := UnmarshalSecretTree(s, enc)
		if err != nil {
			t.Fatalf("re-decoding a valid state: %v", err)
		}
		if enc2, _ := back.MarshalBinary(); !bytes.Equal(enc, enc2) {
			t.Fatal("state encoding not stable")
		}
		// Every leaf is usable.
		for l := range min(tree.Leaves(), 64) {
			_, _ = tree.Next(l, Handshake)
		}
	})
}
