package schedule

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/agwproject/agw/mls/suite"
)

func suite1(t testing.TB) *suite.Suite {
	t.Helper()
	s, err := suite.Get(1)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func secretOf(s *suite.Suite, b byte) []byte { return bytes.Repeat([]byte{b}, s.Nh()) }

func TestAdvanceInputs(t *testing.T) {
	s := suite1(t)
	init, gc := secretOf(s, 1), []byte("group context")
	if _, err := Advance(s, init[1:], nil, nil, gc); !errors.Is(err, ErrSecretLength) {
		t.Errorf("short init_secret: %v, want ErrSecretLength", err)
	}
	if _, err := Advance(s, init, []byte{1}, nil, gc); !errors.Is(err, ErrSecretLength) {
		t.Errorf("short commit_secret: %v, want ErrSecretLength", err)
	}
	if _, err := Advance(s, init, nil, []byte{1}, gc); !errors.Is(err, ErrSecretLength) {
		t.Errorf("short psk_secret: %v, want ErrSecretLength", err)
	}
	a, err := Advance(s, init, nil, nil, gc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Advance(s, init, make([]byte, s.Nh()), make([]byte, s.Nh()), gc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.EpochAuthenticator, b.EpochAuthenticator) {
		t.Error("nil commit/psk secrets differ from all-zero ones")
	}
	c, _ := Advance(s, init, nil, nil, []byte("other context"))
	if bytes.Equal(a.JoinerSecret, c.JoinerSecret) || bytes.Equal(a.EpochSecret, c.EpochSecret) {
		t.Error("group context does not bind the joiner and epoch secrets")
	}
	all := [][]byte{a.SenderDataSecret, a.EncryptionSecret, a.ExporterSecret, a.ExternalSecret,
		a.ConfirmationKey, a.MembershipKey, a.ResumptionPSK, a.EpochAuthenticator, a.InitSecret, a.WelcomeSecret}
	for i := range all {
		for j := i + 1; j < len(all); j++ {
			if bytes.Equal(all[i], all[j]) {
				t.Errorf("secrets %d and %d are equal", i, j)
			}
		}
	}
	if _, err := a.Export("label", nil, 255*s.Nh()+1); !errors.Is(err, ErrLength) {
		t.Errorf("exporter over length: %v, want ErrLength", err)
	}
	k, n := a.WelcomeKeyNonce()
	if len(k) != s.AEADKeySize() || len(n) != s.AEADNonceSize() {
		t.Errorf("welcome key/nonce lengths %d/%d", len(k), len(n))
	}
}

func TestPSKSecret(t *testing.T) {
	s := suite1(t)
	zero, err := PSKSecret(s, nil)
	if err != nil || !bytes.Equal(zero, make([]byte, s.Nh())) {
		t.Errorf("no PSKs: %x, %v; want zeros", zero, err)
	}
	a := PSK{ID: ExternalPSKID([]byte("a"), secretOf(s, 1)), Secret: []byte("k1")}
	b := PSK{ID: ResumptionPSKID(ResumptionUsageApplication, []byte("g"), 7, secretOf(s, 2)), Secret: secretOf(s, 3)}
	ab, _ := PSKSecret(s, []PSK{a, b})
	ba, _ := PSKSecret(s, []PSK{b, a})
	if bytes.Equal(ab, ba) {
		t.Error("PSK order does not matter")
	}
	if _, err := PSKSecret(s, make([]PSK, 0x10000)); !errors.Is(err, ErrLength) {
		t.Errorf("65536 PSKs: %v, want ErrLength", err)
	}
}

func TestPSKIDEncoding(t *testing.T) {
	got := ResumptionPSKID(ResumptionUsageBranch, []byte{0xaa, 0xbb}, 0x0102030405060708, []byte{0xcc})
	want := []byte{2, 3, 2, 0xaa, 0xbb, 1, 2, 3, 4, 5, 6, 7, 8, 1, 0xcc}
	if !bytes.Equal(got, want) {
		t.Errorf("ResumptionPSKID = %x, want %x", got, want)
	}
	got = ExternalPSKID([]byte{9}, nil)
	if want := []byte{1, 1, 9, 0}; !bytes.Equal(got, want) {
		t.Errorf("ExternalPSKID = %x, want %x", got, want)
	}
}

func TestSecretTreeReuse(t *testing.T) {
	s := suite1(t)
	tree, err := NewSecretTree(s, secretOf(s, 5), 4)
	if err != nil {
		t.Fatal(err)
	}
	k0, err := tree.Get(1, Application, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.Get(1, Application, 0); !errors.Is(err, ErrGenerationReused) {
		t.Errorf("second Get of generation 0: %v, want ErrGenerationReused", err)
	}
	// The handshake ratchet is independent.
	h0, err := tree.Get(1, Handshake, 0)
	if err != nil || bytes.Equal(h0.Key, k0.Key) {
		t.Errorf("handshake generation 0: %v (same key as application: %v)", err, bytes.Equal(h0.Key, k0.Key))
	}
	// Out of order within the window.
	k5, err := tree.Get(1, Application, 5)
	if err != nil || k5.Generation != 5 {
		t.Fatalf("Get 5: %v", err)
	}
	for _, g := range []uint32{3, 1, 4, 2} {
		k, err := tree.Get(1, Application, g)
		if err != nil || k.Generation != g {
			t.Fatalf("out-of-order Get %d: %v", g, err)
		}
	}
	for _, g := range []uint32{1, 3, 5} {
		if _, err := tree.Get(1, Application, g); !errors.Is(err, ErrGenerationReused) {
			t.Errorf("replayed generation %d: %v, want ErrGenerationReused", g, err)
		}
	}
	// The sender side: Next continues after the highest generation used.
	n, err := tree.Next(1, Application)
	if err != nil || n.Generation != 6 {
		t.Errorf("Next = generation %d, %v; want 6", n.Generation, err)
	}
	if _, err := tree.Get(1, Application, 6); !errors.Is(err, ErrGenerationReused) {
		t.Errorf("Get of the generation Next used: %v, want ErrGenerationReused", err)
	}
	// Keys are the same whichever way they are reached.
	other, _ := NewSecretTree(s, secretOf(s, 5), 4)
	for g := range uint32(6) {
		k, err := other.Next(1, Application)
		if err != nil || k.Generation != g {
			t.Fatalf("Next %d: %v", g, err)
		}
		if g == 5 && (!bytes.Equal(k.Key, k5.Key) || !bytes.Equal(k.Nonce, k5.Nonce)) {
			t.Error("generation 5 differs between Get and Next")
		}
	}
}

func TestSecretTreeWindowAndJump(t *testing.T) {
	s := suite1(t)
	tree, _ := NewSecretTree(s, secretOf(s, 5), 2, WithWindow(2), WithMaxForwardJump(10))
	if _, err := tree.Get(0, Handshake, 11); !errors.Is(err, ErrGenerationTooFar) {
		t.Errorf("jump of 11: %v, want ErrGenerationTooFar", err)
	}
	if _, err := tree.Get(0, Handshake, 10); err != nil {
		t.Fatalf("jump of 10: %v", err)
	}
	// Window 2: generations 8 and 9 are kept, 7 and older are gone.
	if _, err := tree.Get(0, Handshake, 7); !errors.Is(err, ErrGenerationTooOld) {
		t.Errorf("generation 7: %v, want ErrGenerationTooOld", err)
	}
	if _, err := tree.Get(0, Handshake, 8); err != nil {
		t.Errorf("generation 8: %v", err)
	}
	if _, err := tree.Get(0, Handshake, 12); err != nil {
		t.Fatal(err)
	}
	// 9 fell out of the window when 12 was reached.
	if _, err := tree.Get(0, Handshake, 9); !errors.Is(err, ErrGenerationTooOld) {
		t.Errorf("generation 9 after 12: %v, want ErrGenerationTooOld", err)
	}
	r := tree.ratchets[0][Handshake]
	if len(r.skipped) != 1 { // only 11
		t.Errorf("%d skipped keys kept, want 1", len(r.skipped))
	}

	def, _ := NewSecretTree(s, secretOf(s, 5), 2)
	if _, err := def.Get(1, Application, DefaultMaxForwardJump+1); !errors.Is(err, ErrGenerationTooFar) {
		t.Errorf("default maximum jump: %v, want ErrGenerationTooFar", err)
	}
	if _, err := def.Get(1, Application, DefaultWindow+5); err != nil {
		t.Fatal(err)
	}
	if got := len(def.ratchets[1][Application].skipped); got != DefaultWindow {
		t.Errorf("%d skipped keys kept, want the window of %d", got, DefaultWindow)
	}
	if _, err := def.Get(1, Application, 4); !errors.Is(err, ErrGenerationTooOld) {
		t.Errorf("generation 4: %v, want ErrGenerationTooOld", err)
	}
	if _, err := def.Get(1, Application, 5); err != nil {
		t.Errorf("generation 5 (oldest in window): %v", err)
	}
}

func TestSecretTreeLeafRange(t *testing.T) {
	s := suite1(t)
	if _, err := NewSecretTree(s, secretOf(s, 1), 0); !errors.Is(err, ErrLeafOutOfRange) {
		t.Errorf("0 leaves: %v", err)
	}
	if _, err := NewSecretTree(s, []byte{1}, 4); !errors.Is(err, ErrSecretLength) {
		t.Errorf("short secret: %v", err)
	}
	tree, _ := NewSecretTree(s, secretOf(s, 1), 5)
	for _, leaf := range []uint32{5, 8, 1 << 31, ^uint32(0)} {
		if _, err := tree.Get(leaf, Handshake, 0); !errors.Is(err, ErrLeafOutOfRange) {
			t.Errorf("leaf %d: %v, want ErrLeafOutOfRange", leaf, err)
		}
		if _, err := tree.Next(leaf, Application); !errors.Is(err, ErrLeafOutOfRange) {
			t.Errorf("Next leaf %d: %v, want ErrLeafOutOfRange", leaf, err)
		}
	}
	if _, err := tree.Get(0, RatchetType(2), 0); err == nil {
		t.Error("unknown ratchet type accepted")
	}
	// A 5-leaf tree has the shape of an 8-leaf one.
	full, _ := NewSecretTree(s, secretOf(s, 1), 8)
	a, err1 := tree.Get(4, Handshake, 0)
	b, err2 := full.Get(4, Handshake, 0)
	if err1 != nil || err2 != nil || !bytes.Equal(a.Key, b.Key) {
		t.Errorf("leaf 4 of 5 vs of 8: %v %v", err1, err2)
	}
}

func TestSecretTreeLazyAndCopies(t *testing.T) {
	s := suite1(t)
	enc := secretOf(s, 9)
	tree, _ := NewSecretTree(s, enc, 1024)
	if _, err := tree.Next(300, Application); err != nil {
		t.Fatal(err)
	}
	// Using one leaf derives its path: the root split into 10 levels leaves
	// one sibling secret per level and nothing else.
	if len(tree.nodes) != 10 || len(tree.ratchets) != 1 {
		t.Errorf("after one leaf: %d node secrets and %d ratchets, want 10 and 1", len(tree.nodes), len(tree.ratchets))
	}
	if !bytes.Equal(enc, secretOf(s, 9)) {
		t.Error("the caller's encryption_secret was modified")
	}
	for leaf := range uint32(1024) {
		if _, err := tree.NextGeneration(leaf, Handshake); err != nil {
			t.Fatal(err)
		}
	}
	if len(tree.nodes) != 0 || len(tree.ratchets) != 1024 {
		t.Errorf("after all leaves: %d node secrets, %d ratchets", len(tree.nodes), len(tree.ratchets))
	}
}

func TestSecretTreeConcurrent(t *testing.T) {
	s := suite1(t)
	tree, _ := NewSecretTree(s, secretOf(s, 2), 64)
	ref, _ := NewSecretTree(s, secretOf(s, 2), 64)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for leaf := range uint32(64) {
		wg.Go(func() {
			for g := range uint32(20) {
				if _, err := tree.Get(leaf, Application, g); err != nil {
					errs <- fmt.Errorf("leaf %d gen %d: %w", leaf, g, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for leaf := range uint32(64) {
		a, _ := tree.Next(leaf, Application)
		if _, err := ref.Get(leaf, Application, 19); err != nil {
			t.Fatal(err)
		}
		b, _ := ref.Next(leaf, Application)
		if a.Generation != 20 || !bytes.Equal(a.Key, b.Key) {
			t.Errorf("leaf %d: concurrent use gave different keys", leaf)
		}
	}
}

func TestTranscriptHelpers(t *testing.T) {
	s := suite1(t)
	confirmed := ConfirmedTranscriptHash(s, []byte("interim"), []byte("input"))
	if !bytes.Equal(confirmed, s.Hash([]byte("interiminput"))) {
		t.Error("ConfirmedTranscriptHash is not Hash(interim || input)")
	}
	tag := []byte("tag")
	if got := InterimTranscriptHash(s, confirmed, tag); !bytes.Equal(got, s.Hash(append(bytes.Clone(confirmed), 3, 't', 'a', 'g'))) {
		t.Error("InterimTranscriptHash does not encode the tag as opaque<V>")
	}
}
