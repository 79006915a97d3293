package e2ee

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

const testStateKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

func TestStateRestartResumes(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	withState := func(c *Config) { c.StateDir, c.StateKey = dir, testStateKey }
	srcB := f.source(f.ca, "b")
	a := f.manager("a")
	b := f.managerWith("b", srcB, withState)
	ctx := ctxT(t)
	f.roster.set(topic, "a", "b")
	joinAll(t, a, b)
	converged(t, []string{"a", "b"}, a, b)
	ct, err := b.SealPeer(ctx, "a", nil, []byte("secret payload"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Open(ctx, "b", nil, ct); err != nil {
		t.Fatal(err)
	}
	fromA := mustSeal(t, a, "b")
	if _, err := b.Open(ctx, "a", nil, fromA); err != nil {
		t.Fatal(err)
	}
	before, _ := groupOf(b, "a")
	files, _ := filepath.Glob(filepath.Join(dir, "*"+stateSuffix))
	if len(files) != 2 {
		t.Fatalf("%d state files", len(files))
	}
	for _, fn := range files {
		data, _ := os.ReadFile(fn)
		if bytes.Contains(data, []byte("node-")) || bytes.Contains(data, []byte(topic)) || bytes.Contains(data, []byte("spiffe://")) {
			t.Fatal("state file not encrypted")
		}
	}
	_ = b.Close()

	// Restart: same state dir, same identity.
	b2 := f.managerWith("b", srcB, withState)
	after, ok := groupOf(b2, "a")
	if !ok || after.GroupID != before.GroupID {
		t.Fatalf("session not restored: %+v", b2.Groups())
	}
	if _, ok := groupOf(b2, topic); !ok {
		t.Fatal("channel not restored")
	}
	// A replay of a message consumed before the restart (after the last
	// save) is refused.
	if _, err := b2.Open(ctx, "a", nil, fromA); err == nil {
		t.Fatal("replay across the restart accepted")
	}
	// Sending needs a fresh epoch, which the committer provides.
	ct, err = b2.SealPeer(ctx, "a", nil, []byte("after restart"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.Open(ctx, "b", nil, ct); err != nil || string(got) != "after restart" {
		t.Fatalf("after restart: %q %v", got, err)
	}
	ct, err = b2.SealChannel(ctx, topic, nil, nil, []byte("channel after restart"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.Open(ctx, "b", nil, ct); err != nil || string(got) != "channel after restart" {
		t.Fatalf("channel after restart: %q %v", got, err)
	}
	if w := testutil.ToFloat64(b2.met.welcomes); w != 0 {
		t.Fatalf("restarted sidecar rejoined (%v welcomes)", w)
	}
	g, _ := groupOf(b2, "a")
	if g.GroupID != before.GroupID || g.Epoch <= before.Epoch {
		t.Fatalf("group after restart %+v, before %+v", g, before)
	}
}

func mustSeal(t *testing.T, m *Manager, peer string) []byte {
	t.Helper()
	ct, err := m.SealPeer(ctxT(t), peer, nil, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func TestStateWrongKeyRejoins(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	srcB := f.source(f.ca, "b")
	a := f.manager("a")
	b := f.managerWith("b", srcB, func(c *Config) { c.StateDir, c.StateKey = dir, testStateKey })
	mustSeal(t, b, "a")
	_ = b.Close()
	other := strings.Repeat("ab", 32)
	b2 := f.managerWith("b", srcB, func(c *Config) { c.StateDir, c.StateKey = dir, other })
	if len(b2.Groups()) != 0 {
		t.Fatal("state opened with another key")
	}
	// It sets up a new session.
	ct := mustSeal(t, b2, "a")
	if got, err := a.Open(ctxT(t), "b", nil, ct); err != nil || string(got) != "x" {
		t.Fatalf("%q %v", got, err)
	}
}

func TestStateSealOpen(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	ct, err := sealState(key, "f1", []byte("state"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := openState(key, "f1", ct); err != nil || string(pt) != "state" {
		t.Fatalf("%q %v", pt, err)
	}
	if _, err := openState(key, "f2", ct); err == nil {
		t.Fatal("file swap not detected")
	}
	ct[len(ct)-1] ^= 1
	if _, err := openState(key, "f1", ct); err == nil {
		t.Fatal("tampering not detected")
	}
	if _, err := openState(key, "f1", ct[:5]); err == nil {
		t.Fatal("short file accepted")
	}
}
