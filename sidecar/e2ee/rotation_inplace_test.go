package e2ee

import (
	"bytes"
	"crypto/x509"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/agwproject/agw/internal/identity"
	"github.com/agwproject/agw/mls/wire"
)

// leafView is what a member sees of one node's leaf in one group.
type leafView struct {
	gid   string
	epoch uint64
	index uint32
	cert  []byte
	key   []byte
}

// leafOfNode returns m's view of node's leaf in its group named name.
func leafOfNode(m *Manager, name, node string) (leafView, bool) {
	m.mu.Lock()
	gr := m.byTopic[name]
	if gr == nil {
		gr = m.byPeer[name]
	}
	m.mu.Unlock()
	if gr == nil {
		return leafView{}, false
	}
	gr.mu.Lock()
	defer gr.mu.Unlock()
	for _, mem := range gr.g.Members() {
		if int(mem.Index) < len(gr.nodes) && gr.nodes[mem.Index] == node {
			return leafView{gid: gr.gid, epoch: gr.g.Epoch(), index: mem.Index, cert: mem.Credential.Certificates[0], key: mem.SignatureKey}, true
		}
	}
	return leafView{}, false
}

type counts struct{ welcomes, rejoins float64 }

// settledCounts returns the Welcome and rejoin counts once they stayed the
// same for 20 polls (a committer counts its Welcome after the joiner may
// already use the group).
func settledCounts(t *testing.T, ms ...*Manager) counts {
	t.Helper()
	var c counts
	same := 0
	eventually(t, "settled counts", func() bool {
		if n := countsOf(ms...); n == c {
			same++
		} else {
			c, same = n, 0
		}
		return same >= 20
	})
	return c
}

func countsOf(ms ...*Manager) counts {
	var c counts
	for _, m := range ms {
		c.welcomes += testutil.ToFloat64(m.met.welcomes)
		c.rejoins += testutil.ToFloat64(m.met.rejoins)
	}
	return c
}

// TestCertificateRotationInPlace: a rotated certificate (same SPIFFE id,
// new key) updates the sidecar's leaf in place in every group: the same
// leaf index, one epoch more per group, no Welcome, no rejoin. n2 is a
// member of the channel (committer n1) and of the session with n1
// (committer n1), and the committer of the session with n3: it updates
// its leaf by proposal in the first two and by its own commit in the
// third. Then n1, committer of the channel, rotates too.
func TestCertificateRotationInPlace(t *testing.T) {
	f := newFixture(t)
	nodes := []string{"n1", "n2", "n3"}
	f.roster.set(topic, nodes...)
	srcA, srcB := f.source(f.ca, "n1"), f.source(f.ca, "n2")
	a, b := f.managerWith("n1", srcA), f.managerWith("n2", srcB)
	c := f.manager("n3")
	joinAll(t, a, b, c)
	converged(t, nodes, a, b, c)
	mustSeal(t, a, "n2")
	mustSeal(t, c, "n2")
	all := []*Manager{a, b, c}
	// Every group n2 is in, as seen by each of its members.
	type view struct {
		m    *Manager
		name string
	}
	groupsOfB := []view{{a, topic}, {b, topic}, {c, topic}, {a, "n2"}, {b, "n1"}, {c, "n2"}, {b, "n3"}}

	rotate := func(src *identity.Source, node string) *x509.Certificate {
		t.Helper()
		svid, err := f.ca.Issue(identity.MustParseID("spiffe://example.org/ns/agents/sa/"+node), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Rotate(svid, nil); err != nil {
			t.Fatal(err)
		}
		return svid.Certificates[0]
	}
	// check rotates node's certificate and checks the in-place update in
	// every group of vs.
	check := func(src *identity.Source, node string, vs []view) {
		t.Helper()
		before := map[view]leafView{}
		for _, v := range vs {
			l, ok := leafOfNode(v.m, v.name, node)
			if !ok {
				t.Fatalf("%s has no leaf of %s in %s", v.m.node, node, v.name)
			}
			before[v] = l
		}
		c0 := settledCounts(t, all...)
		newCert := rotate(src, node)
		eventually(t, node+"'s new certificate in every group", func() bool {
			for _, v := range vs {
				if l, ok := leafOfNode(v.m, v.name, node); !ok || !bytes.Equal(l.cert, newCert.Raw) {
					return false
				}
			}
			return true
		})
		converged(t, nodes, all...)
		for _, v := range vs {
			l, _ := leafOfNode(v.m, v.name, node)
			old := before[v]
			if l.gid != old.gid || l.index != old.index || l.epoch != old.epoch+1 {
				t.Errorf("%s's view of %s in %s: group changed %v, leaf %d -> %d, epoch %d -> %d",
					v.m.node, node, v.name, l.gid != old.gid, old.index, l.index, old.epoch, l.epoch)
			}
			if bytes.Equal(l.key, old.key) {
				t.Errorf("%s's view of %s in %s: the signature key did not change", v.m.node, node, v.name)
			}
		}
		if c1 := countsOf(all...); c1 != c0 {
			t.Errorf("welcomes/rejoins %+v -> %+v: not in place", c0, c1)
		}
		for _, m := range all {
			if n := events(m, EventCredential) + events(m, EventForgedCommit); n != 0 {
				t.Errorf("%s: security events %v", m.node, dumpEvents(m))
			}
		}
	}

	check(srcB, "n2", groupsOfB)
	// Messages flow with the new key, in every direction.
	broadcast(t, b, "from n2 renewed", a, c)
	broadcast(t, a, "to n2 renewed", b, c)
	for _, p := range [][2]*Manager{{b, a}, {a, b}, {b, c}, {c, b}} {
		ct, err := p[0].SealPeer(ctxT(t), p[1].node, nil, []byte("p2p"))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := p[1].Open(ctxT(t), p[0].node, nil, ct); err != nil || string(got) != "p2p" {
			t.Fatalf("%s -> %s: %q %v", p[0].node, p[1].node, got, err)
		}
	}

	// The committer of the channel and of its sessions rotates.
	check(srcA, "n1", []view{{a, topic}, {b, topic}, {c, topic}, {a, "n2"}, {b, "n1"}})
	if g := converged(t, nodes, all...); g.Committer != "n1" {
		t.Fatalf("committer %q", g.Committer)
	}
	broadcast(t, a, "from n1 renewed", b, c)
	broadcast(t, c, "to n1 renewed", a, b)
}

// A certificate naming another SPIFFE id cannot succeed the old one: the
// successor check refuses it, and the sidecar falls back to replacing its
// leaf (its new credential is then validated as a new member's).
func TestCredentialSuccessorSameSPIFFE(t *testing.T) {
	f := newFixture(t)
	m := f.manager("n1")
	certOf := func(id string) wire.Credential {
		svid, err := f.ca.Issue(identity.MustParseID(id), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return wire.Credential{Type: wire.CredentialTypeX509, Certificates: [][]byte{svid.Certificates[0].Raw}}
	}
	a1, a2 := certOf("spiffe://example.org/ns/agents/sa/a"), certOf("spiffe://example.org/ns/agents/sa/a")
	other := certOf("spiffe://example.org/ns/agents/sa/b")
	if err := m.credentialSuccessor(a1, a2); err != nil {
		t.Fatalf("same SPIFFE id refused: %v", err)
	}
	if err := m.credentialSuccessor(a1, other); err == nil {
		t.Fatal("another SPIFFE id accepted as a successor")
	}
	if err := m.credentialSuccessor(wire.Credential{Type: wire.CredentialTypeBasic, Identity: []byte("a")}, a2); err == nil {
		t.Fatal("a credential without SPIFFE id accepted as a predecessor")
	}
	if events(m, EventCredential) != 2 {
		t.Fatalf("security events %v", dumpEvents(m))
	}
}

// fallbackCheck rotates node's certificate to one of SPIFFE id sid and
// waits until every member of the channel sees it, through a replaced
// leaf: a Welcome more, and the other members' groups agree.
func fallbackCheck(t *testing.T, f *fixture, src *identity.Source, sid string, nodes []string, all ...*Manager) {
	t.Helper()
	svid, err := f.ca.Issue(identity.MustParseID(sid), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c0 := settledCounts(t, all...)
	if err := src.Rotate(svid, nil); err != nil {
		t.Fatal(err)
	}
	node := src.Current().ID().String()
	eventually(t, "new certificate in the channel at every member", func() bool {
		for _, m := range all {
			found := false
			for _, n := range nodes {
				if l, ok := leafOfNode(m, topic, n); ok && bytes.Equal(l.cert, svid.Certificates[0].Raw) {
					found = true
				}
			}
			if !found {
				return false
			}
		}
		return true
	})
	converged(t, nodes, all...)
	if c1 := countsOf(all...); c1.welcomes <= c0.welcomes {
		t.Fatalf("%s: no Welcome: the leaf was not replaced (%+v -> %+v)", node, c0, c1)
	}
}

// A certificate with another SPIFFE id is not a successor: the sidecar
// replaces its leaf (Remove+Add by the committer) instead.
func TestCertificateRotationNewSPIFFEReplacesLeaf(t *testing.T) {
	f := newFixture(t)
	nodes := []string{"n1", "n2", "n3"}
	f.roster.set(topic, nodes...)
	srcB := f.source(f.ca, "n2")
	a, c := f.manager("n1"), f.manager("n3")
	b := f.managerWith("n2", srcB)
	joinAll(t, a, b, c)
	converged(t, nodes, a, b, c)
	fallbackCheck(t, f, srcB, "spiffe://example.org/ns/agents/sa/n2-renamed", nodes, a, b, c)
	broadcast(t, b, "after the replacement", a, c)
	broadcast(t, a, "to the replaced leaf", b, c)
}

// An Update proposal that never reaches the committer: after JoinTimeout
// the member replaces its leaf instead.
func TestLostUpdateProposalReplacesLeaf(t *testing.T) {
	f := newFixture(t)
	f.cfg.JoinTimeout = time.Second
	nodes := []string{"n1", "n2"}
	f.roster.set(topic, nodes...)
	srcB := f.source(f.ca, "n2")
	a, b := f.manager("n1"), f.managerWith("n2", srcB)
	joinAll(t, a, b)
	converged(t, nodes, a, b)
	f.hub.mu.Lock()
	f.hub.dropFn = func(from, to string, e Envelope) bool { return e.Kind == KindUpdate }
	f.hub.mu.Unlock()
	fallbackCheck(t, f, srcB, "spiffe://example.org/ns/agents/sa/n2", nodes, a, b)
	broadcast(t, b, "after the replacement", a)
}

// The committer and a member rotate at once (their commit and proposal
// may cross): both leaves are updated in place, without a Welcome.
func TestSimultaneousRotationInPlace(t *testing.T) {
	f := newFixture(t)
	nodes := []string{"n1", "n2", "n3"}
	f.roster.set(topic, nodes...)
	srcA, srcB := f.source(f.ca, "n1"), f.source(f.ca, "n2")
	a, b := f.managerWith("n1", srcA), f.managerWith("n2", srcB)
	c := f.manager("n3")
	joinAll(t, a, b, c)
	converged(t, nodes, a, b, c)
	mustSeal(t, b, "n1")
	c0 := settledCounts(t, a, b, c)
	certs := map[string][]byte{}
	for node, src := range map[string]*identity.Source{"n1": srcA, "n2": srcB} {
		svid, err := f.ca.Issue(identity.MustParseID("spiffe://example.org/ns/agents/sa/"+node), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		certs[node] = svid.Certificates[0].Raw
		go func() { _ = src.Rotate(svid, nil) }()
	}
	eventually(t, "both new certificates everywhere", func() bool {
		for node, cert := range certs {
			for _, m := range []*Manager{a, b, c} {
				if l, ok := leafOfNode(m, topic, node); !ok || !bytes.Equal(l.cert, cert) {
					return false
				}
			}
			for _, v := range [][2]string{{"n1", "n2"}, {"n2", "n1"}} {
				m := map[string]*Manager{"n1": a, "n2": b}[v[0]]
				if l, ok := leafOfNode(m, v[1], node); !ok || !bytes.Equal(l.cert, cert) {
					return false
				}
			}
		}
		return true
	})
	converged(t, nodes, a, b, c)
	if c1 := countsOf(a, b, c); c1 != c0 {
		t.Fatalf("welcomes/rejoins %+v -> %+v: not in place", c0, c1)
	}
	broadcast(t, b, "after both rotations", a, c)
	broadcast(t, a, "after both rotations", b, c)
	ct := mustSeal(t, b, "n1")
	if _, err := a.Open(ctxT(t), "n2", nil, ct); err != nil {
		t.Fatal(err)
	}
}
