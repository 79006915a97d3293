package e2ee

import (
	"bytes"
	"errors"
	"sync"
	"testing"
)

func TestSessionSealOpen(t *testing.T) {
	f := newFixture(t)
	a, b := f.manager("node-a"), f.manager("node-b")
	ctx := ctxT(t)
	routing := []byte("routing header a->b")
	for i, pt := range []string{"hello b", "second", ""} {
		ct, err := a.SealPeer(ctx, "node-b", routing, []byte(pt))
		if err != nil {
			t.Fatalf("seal %d: %v", i, err)
		}
		if bytes.Contains(ct, []byte("hello b")) {
			t.Fatal("ciphertext holds the plaintext")
		}
		got, err := b.Open(ctx, "node-a", routing, ct)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if string(got) != pt {
			t.Fatalf("open %d = %q, want %q", i, got, pt)
		}
	}
	// And back, in the same session.
	ct, err := b.SealPeer(ctx, "node-a", nil, []byte("reply"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.Open(ctx, "node-b", nil, ct); err != nil || string(got) != "reply" {
		t.Fatalf("reply: %q %v", got, err)
	}
	ga, _ := groupOf(a, "node-b")
	gb, _ := groupOf(b, "node-a")
	if ga.GroupID == "" || ga.GroupID != gb.GroupID || ga.Committer != "node-a" || gb.Committer != "node-a" {
		t.Fatalf("groups differ: %+v %+v", ga, gb)
	}
	if n := memberNodes(ga); len(n) != 2 || n[0] != "node-a" || n[1] != "node-b" {
		t.Fatalf("members %v", n)
	}
	if ga.Members[0].Identity != "spiffe://example.org/ns/agents/sa/node-a" {
		t.Fatalf("identity %q", ga.Members[0].Identity)
	}
}

// Both sides start at once: one group, not two.
func TestSessionSimultaneousStart(t *testing.T) {
	f := newFixture(t)
	a, b := f.manager("a"), f.manager("b")
	ctx := ctxT(t)
	var wg sync.WaitGroup
	var cta, ctb []byte
	var ea, eb error
	wg.Add(2)
	go func() { defer wg.Done(); cta, ea = a.SealPeer(ctx, "b", nil, []byte("from a")) }()
	go func() { defer wg.Done(); ctb, eb = b.SealPeer(ctx, "a", nil, []byte("from b")) }()
	wg.Wait()
	if ea != nil || eb != nil {
		t.Fatal(ea, eb)
	}
	if got, err := b.Open(ctx, "a", nil, cta); err != nil || string(got) != "from a" {
		t.Fatalf("b opens: %q %v", got, err)
	}
	if got, err := a.Open(ctx, "b", nil, ctb); err != nil || string(got) != "from b" {
		t.Fatalf("a opens: %q %v", got, err)
	}
	// One session in the end: a hello that crossed the session's Welcome
	// may make the pair renew it once (the replaced group stays openable,
	// as the opens above show), but they settle on one group.
	eventually(t, "one session on both sides", func() bool {
		ga, gb := a.Groups(), b.Groups()
		return len(ga) == 1 && len(gb) == 1 && ga[0].GroupID == gb[0].GroupID
	})
}

func TestOpenRefusals(t *testing.T) {
	f := newFixture(t)
	a, b := f.manager("a"), f.manager("b")
	ctx := ctxT(t)
	routing := []byte("hdr")
	ct, err := a.SealPeer(ctx, "b", routing, []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(ct)
	tampered[len(tampered)-3] ^= 1
	cases := []struct {
		name, reason, from string
		routing, ct        []byte
	}{
		{"tampered", EventDecrypt, "a", routing, tampered},
		{"routing header", EventRoutingHeader, "a", []byte("other hdr"), ct},
		{"malformed", EventMalformed, "a", routing, []byte{1, 2, 3}},
	}
	for _, c := range cases {
		before := events(b, c.reason)
		if _, err := b.Open(ctx, c.from, c.routing, c.ct); !errors.Is(err, ErrRefused) {
			t.Fatalf("%s: err %v", c.name, err)
		}
		if events(b, c.reason) != before+1 {
			t.Fatalf("%s: %s not counted", c.name, c.reason)
		}
	}
	// A routing-header refusal consumed the generation: the genuine
	// message is now a replay.
	if _, err := b.Open(ctx, "a", routing, ct); !errors.Is(err, ErrRefused) || events(b, EventReplay) != 1 {
		t.Fatalf("replay: %v (%v)", err, events(b, EventReplay))
	}
	// Delivery goes on.
	ct2, err := a.SealPeer(ctx, "b", routing, []byte("next"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(ctx, "c", routing, ct2); !errors.Is(err, ErrRefused) || events(b, EventWrongSender) != 1 {
		t.Fatalf("wrong sender: %v", err)
	}
	ct3, _ := a.SealPeer(ctx, "b", routing, []byte("third"))
	if got, err := b.Open(ctx, "a", routing, ct3); err != nil || string(got) != "third" {
		t.Fatalf("after refusals: %q %v", got, err)
	}
}

func TestPadding(t *testing.T) {
	f := newFixture(t)
	a, _ := f.manager("a"), f.manager("b")
	ctx := ctxT(t)
	c1, err := a.SealPeer(ctx, "b", nil, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := a.SealPeer(ctx, "b", nil, bytes.Repeat([]byte("y"), 200))
	c3, _ := a.SealPeer(ctx, "b", nil, bytes.Repeat([]byte("z"), 300))
	// ECDSA signatures (inside the ciphertext) vary by a few bytes.
	if d := len(c1) - len(c2); d < -3 || d > 3 {
		t.Fatalf("1 and 200 bytes give %d and %d bytes of ciphertext", len(c1), len(c2))
	}
	if len(c3) < len(c2)+256-6 {
		t.Fatalf("300 bytes not in the next block: %d <= %d", len(c3), len(c2))
	}
}
