package e2ee

import (
	"testing"
	"time"
)

// A member's repeated epoch requests (a restored member asks every
// RetryInterval until the commit reaches it) get one rotation per
// EpochWait, not one each.
func TestEpochRequestsRotateOnce(t *testing.T) {
	f := newFixture(t)
	a, b := f.manager("node-a"), f.manager("node-b")
	ctx := ctxT(t)
	ct, err := a.SealPeer(ctx, "node-b", nil, []byte("set up"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(ctx, "node-a", nil, ct); err != nil {
		t.Fatal(err)
	}
	g0, _ := groupOf(a, "node-b")
	for range 5 {
		if err := a.onEpochRequest(ctx, "node-b", ""); err != nil {
			t.Fatal(err)
		}
	}
	if g, _ := groupOf(a, "node-b"); g.Epoch != g0.Epoch+1 {
		t.Fatalf("epoch %d after 5 quick requests, want %d", g.Epoch, g0.Epoch+1)
	}
	eventually(t, "node-b at the new epoch", func() bool {
		g, _ := groupOf(b, "node-a")
		return g.Epoch == g0.Epoch+1
	})
	time.Sleep(f.cfg.EpochWait)
	if err := a.onEpochRequest(ctx, "node-b", ""); err != nil {
		t.Fatal(err)
	}
	if g, _ := groupOf(a, "node-b"); g.Epoch != g0.Epoch+2 {
		t.Fatalf("epoch %d after a request past EpochWait, want %d", g.Epoch, g0.Epoch+2)
	}
	// A message sealed by b at its (now current) epoch opens.
	eventually(t, "node-b at the second epoch", func() bool {
		g, _ := groupOf(b, "node-a")
		return g.Epoch == g0.Epoch+2
	})
	ct, err = b.SealPeer(ctx, "node-a", nil, []byte("fresh"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.Open(ctx, "node-b", nil, ct); err != nil || string(got) != "fresh" {
		t.Fatalf("open: %q %v", got, err)
	}
}
