package e2ee

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agwproject/agw/internal/identity"
)

func TestRotationAfterMessages(t *testing.T) {
	f := newFixture(t)
	rot := func(c *Config) { c.RotateMessages = 3 }
	a, b := f.manager("a", rot), f.manager("b", rot)
	ctx := ctxT(t)
	mustSeal(t, a, "b")
	g0, _ := groupOf(a, "b")
	for i := 0; i < 3; i++ {
		ct := mustSeal(t, a, "b")
		if _, err := b.Open(ctx, "a", nil, ct); err != nil {
			t.Fatal(err)
		}
	}
	g1, _ := groupOf(a, "b")
	if g1.Epoch <= g0.Epoch {
		t.Fatalf("no rotation: epoch %d -> %d", g0.Epoch, g1.Epoch)
	}
	// b (not the committer) asks for one after its own messages.
	for i := 0; i < 3; i++ {
		ct, err := b.SealPeer(ctx, "a", nil, []byte("m"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Open(ctx, "b", nil, ct); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "rotation asked by b", func() bool { g, _ := groupOf(b, "a"); return g.Epoch > g1.Epoch })
}

func TestRotationInterval(t *testing.T) {
	f := newFixture(t)
	rot := func(c *Config) { c.RotateInterval = time.Second }
	a, b := f.manager("a", rot), f.manager("b", rot)
	mustSeal(t, a, "b")
	g0, _ := groupOf(a, "b")
	eventually(t, "periodic rotation", func() bool {
		ga, _ := groupOf(a, "b")
		gb, _ := groupOf(b, "a")
		return ga.Epoch > g0.Epoch && gb.Epoch == ga.Epoch && ga.LastRotation.After(g0.LastRotation)
	})
	ct := mustSeal(t, a, "b")
	if _, err := b.Open(ctxT(t), "a", nil, ct); err != nil {
		t.Fatal(err)
	}
}

func TestDenyListRemovesMember(t *testing.T) {
	f := newFixture(t)
	nodes := []string{"n1", "n2", "n3"}
	f.roster.set(topic, nodes...)
	srcA := f.source(f.ca, "n1")
	a := f.managerWith("n1", srcA)
	b, c := f.manager("n2"), f.manager("n3")
	joinAll(t, a, b, c)
	converged(t, nodes, a, b, c)
	deny, err := identity.NewDenyList("spiffe://example.org/ns/agents/sa/n3")
	if err != nil {
		t.Fatal(err)
	}
	if err := srcA.SetDenyList(deny); err != nil {
		t.Fatal(err)
	}
	converged(t, []string{"n1", "n2"}, a, b)
	eventually(t, "n3 out of the group", func() bool { return !contains(c, topic, "n1") })
	broadcast(t, a, "without n3", b)
	// n3 tries to rejoin: refused by its credential.
	eventually(t, "rejoin refused", func() bool { return events(a, EventCredential) > 0 })
	if contains(a, topic, "n3") {
		t.Fatal("denied member readmitted")
	}
}

func contains(m *Manager, name, node string) bool {
	g, ok := groupOf(m, name)
	if !ok {
		return false
	}
	for _, n := range memberNodes(g) {
		if n == node {
			return true
		}
	}
	return false
}

func TestCertificateRotationRenewsLeaves(t *testing.T) {
	f := newFixture(t)
	nodes := []string{"n1", "n2"}
	f.roster.set(topic, nodes...)
	srcB := f.source(f.ca, "n2")
	a := f.manager("n1")
	b := f.managerWith("n2", srcB)
	joinAll(t, a, b)
	converged(t, nodes, a, b)
	mustSeal(t, a, "n2")
	p0, _ := groupOf(a, "n2")
	svid, err := f.ca.Issue(identity.MustParseID("spiffe://example.org/ns/agents/sa/n2"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := srcB.Rotate(svid, nil); err != nil {
		t.Fatal(err)
	}
	newLeaf := svid.Certificates[0].Raw
	hasNew := func(m *Manager, gr func() *group) bool {
		g := gr()
		if g == nil {
			return false
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, mem := range g.g.Members() {
			if len(mem.Credential.Certificates) > 0 && bytes.Equal(mem.Credential.Certificates[0], newLeaf) {
				return true
			}
		}
		return false
	}
	eventually(t, "channel leaf renewed", func() bool {
		return hasNew(a, func() *group { a.mu.Lock(); defer a.mu.Unlock(); return a.byTopic[topic] })
	})
	eventually(t, "session renewed", func() bool {
		return hasNew(a, func() *group { a.mu.Lock(); defer a.mu.Unlock(); return a.byPeer["n2"] })
	})
	converged(t, nodes, a, b)
	broadcast(t, b, "with the new key", a)
	// The session is updated in place (same group, a later epoch).
	eventually(t, "b's session in the new epoch", func() bool {
		g, _ := groupOf(b, "n1")
		return g.GroupID == p0.GroupID && g.Epoch > p0.Epoch
	})
	ct, err := b.SealPeer(ctxT(t), "n1", nil, []byte("p2p new key"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.Open(ctxT(t), "n2", nil, ct); err != nil || string(got) != "p2p new key" {
		t.Fatalf("%q %v", got, err)
	}
}

func TestDebugHandler(t *testing.T) {
	f := newFixture(t)
	a, _ := f.manager("a"), f.manager("b")
	mustSeal(t, a, "b")
	rec := httptest.NewRecorder()
	a.DebugHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/groups", nil))
	if rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	var out struct {
		Node   string      `json:"node_id"`
		Groups []GroupInfo `json:"groups"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.Node != "a" || len(out.Groups) != 1 || out.Groups[0].Committer != "a" || len(out.Groups[0].Members) != 2 || out.Groups[0].Kind != "p2p" {
		t.Fatalf("%s", rec.Body.String())
	}
	if strings.Contains(strings.ToLower(rec.Body.String()), "secret") || strings.Contains(rec.Body.String(), "BEGIN") {
		t.Fatal("secret material in the dump")
	}
	rec = httptest.NewRecorder()
	a.DebugHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/debug/groups", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatal(rec.Code)
	}
}

func TestCertificateRotationOfCommitter(t *testing.T) {
	f := newFixture(t)
	nodes := []string{"n1", "n2", "n3"}
	f.roster.set(topic, nodes...)
	srcA := f.source(f.ca, "n1")
	a := f.managerWith("n1", srcA)
	b, c := f.manager("n2"), f.manager("n3")
	joinAll(t, a, b, c)
	converged(t, nodes, a, b, c)
	svid, err := f.ca.Issue(identity.MustParseID("spiffe://example.org/ns/agents/sa/n1"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := srcA.Rotate(svid, nil); err != nil {
		t.Fatal(err)
	}
	newLeaf := svid.Certificates[0].Raw
	eventually(t, "committer's leaf renewed at n3", func() bool {
		c.mu.Lock()
		gr := c.byTopic[topic]
		c.mu.Unlock()
		if gr == nil {
			return false
		}
		gr.mu.Lock()
		defer gr.mu.Unlock()
		for _, mem := range gr.g.Members() {
			if bytes.Equal(mem.Credential.Certificates[0], newLeaf) {
				return true
			}
		}
		return false
	})
	g := converged(t, nodes, a, b, c)
	if g.Committer != "n1" {
		t.Fatalf("committer %q", g.Committer)
	}
	broadcast(t, a, "from the renewed committer", b, c)
	// And n1 still commits: a new member is admitted.
	f.roster.set(topic, "n1", "n2", "n3", "n4")
	d := f.manager("n4")
	joinAll(t, d)
	converged(t, []string{"n1", "n2", "n3", "n4"}, a, b, c, d)
}
