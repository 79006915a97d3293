package schedule

import (
	"bytes"
	"errors"
	"testing"
)

// keysOf returns the application keys of generations 0..n-1 of a leaf, as
// a sender derives them.
func keysOf(t *testing.T, tree *SecretTree, leaf, n uint32) []Key {
	t.Helper()
	out := make([]Key, n)
	for i := range out {
		k, err := tree.Next(leaf, Application)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = k
	}
	return out
}

func stateOf(t *testing.T, tree *SecretTree) []byte {
	t.Helper()
	b, err := tree.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Peek leaves the tree as it was; Consume then uses the key up.
func TestPeekConsume(t *testing.T) {
	s := suite1(t)
	send, _ := NewSecretTree(s, secretOf(s, 6), 4)
	want := keysOf(t, send, 2, 40)
	recv, _ := NewSecretTree(s, secretOf(s, 6), 4, WithWindow(8), WithMaxForwardJump(30))
	if _, err := recv.Peek(2, Application, 0); err != nil { // derives the leaf's ratchets
		t.Fatal(err)
	}
	before := stateOf(t, recv)
	for _, g := range []uint32{0, 29, 17, 29} {
		k, err := recv.Peek(2, Application, g)
		if err != nil || k.Generation != g || !bytes.Equal(k.Key, want[g].Key) || !bytes.Equal(k.Nonce, want[g].Nonce) {
			t.Fatalf("Peek %d: generation %d, %v (key matches: %v)", g, k.Generation, err, bytes.Equal(k.Key, want[g].Key))
		}
	}
	if !bytes.Equal(before, stateOf(t, recv)) {
		t.Fatal("Peek changed the tree")
	}
	if _, err := recv.Peek(2, Application, 31); !errors.Is(err, ErrGenerationTooFar) {
		t.Errorf("Peek beyond the forward jump: %v, want ErrGenerationTooFar", err)
	}
	if _, err := recv.Peek(4, Application, 0); !errors.Is(err, ErrLeafOutOfRange) {
		t.Errorf("Peek of leaf 4 of 4: %v, want ErrLeafOutOfRange", err)
	}

	// Consume moves the ratchet to 21 and keeps generations 12..19.
	if err := recv.Consume(2, Application, 20); err != nil {
		t.Fatal(err)
	}
	if n, _ := recv.NextGeneration(2, Application); n != 21 {
		t.Errorf("ratchet at %d after consuming 20, want 21", n)
	}
	if n := recv.Kept(2, Application); n != 8 {
		t.Errorf("%d keys kept, want the window of 8", n)
	}
	for _, g := range []uint32{20, 11, 0} {
		if _, err := recv.Peek(2, Application, g); err == nil {
			t.Errorf("Peek of generation %d after consuming 20 succeeded", g)
		}
	}
	if _, err := recv.Peek(2, Application, 20); !errors.Is(err, ErrGenerationReused) {
		t.Errorf("Peek of the consumed generation: %v, want ErrGenerationReused", err)
	}
	if _, err := recv.Peek(2, Application, 11); !errors.Is(err, ErrGenerationTooOld) {
		t.Errorf("Peek behind the window: %v, want ErrGenerationTooOld", err)
	}
	// A kept key: Peek returns a copy, Consume deletes it.
	k, err := recv.Peek(2, Application, 12)
	if err != nil || !bytes.Equal(k.Key, want[12].Key) {
		t.Fatalf("kept key 12: %v", err)
	}
	clear(k.Key)
	if k2, err := recv.Peek(2, Application, 12); err != nil || !bytes.Equal(k2.Key, want[12].Key) {
		t.Fatalf("clearing a peeked key changed the kept one: %v", err)
	}
	if err := recv.Consume(2, Application, 12); err != nil {
		t.Fatal(err)
	}
	if err := recv.Consume(2, Application, 12); !errors.Is(err, ErrGenerationReused) {
		t.Errorf("second Consume: %v, want ErrGenerationReused", err)
	}
	if n := recv.Kept(2, Application); n != 7 {
		t.Errorf("%d keys kept, want 7", n)
	}
	// The sender side and Get agree with what was peeked.
	if k, err := recv.Get(2, Application, 21); err != nil || !bytes.Equal(k.Key, want[21].Key) {
		t.Errorf("Get 21 after Consume: %v", err)
	}
	// A restored tree continues where the saved one was.
	back, err := UnmarshalSecretTree(s, stateOf(t, recv))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := back.Peek(2, Application, 19); err != nil || !bytes.Equal(k.Key, want[19].Key) {
		t.Errorf("kept key after restore: %v", err)
	}
	if err := back.Consume(2, Application, 21); !errors.Is(err, ErrGenerationReused) {
		t.Errorf("used generation after restore: %v, want ErrGenerationReused", err)
	}
}

// Consume of a generation never peeked behaves as Get.
func TestConsumeWithoutPeek(t *testing.T) {
	s := suite1(t)
	a, _ := NewSecretTree(s, secretOf(s, 7), 3)
	b, _ := NewSecretTree(s, secretOf(s, 7), 3)
	for _, g := range []uint32{3, 0, 9} {
		if _, err := a.Get(1, Handshake, g); err != nil {
			t.Fatal(err)
		}
		if err := b.Consume(1, Handshake, g); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(stateOf(t, a), stateOf(t, b)) {
		t.Error("Consume and Get leave different states")
	}
}
