package sidecar_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agwproject/agw/internal/identity"
	"github.com/agwproject/agw/sidecar"
	"github.com/agwproject/agw/sidecar/sidecartest"
)

const testTrustDomain = "test.agw"

// workloadID is the SPIFFE id of the sidecar of pod name in namespace ns.
func workloadID(ns, name string) identity.ID {
	return identity.MustParseID("spiffe://" + testTrustDomain + "/ns/" + ns + "/sa/" + name)
}

// memorySource issues id from ca and returns an in-memory identity source,
// closed when the test ends.
func memorySource(t *testing.T, ca *identity.CA, id identity.ID) *identity.Source {
	t.Helper()
	src, err := ca.MemorySource(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func newCA(t *testing.T) *identity.CA {
	t.Helper()
	ca, err := identity.NewCA(testTrustDomain)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// startWith starts a node with the given identity source (nil: the one of
// cfg.Identity, or none).
func startWith(t *testing.T, cfg sidecar.Config, src *identity.Source) testNode {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts := []sidecar.Option{sidecar.WithRegisterer(reg)}
	if src != nil {
		opts = append(opts, sidecar.WithIdentitySource(src))
	}
	return testNode{sidecartest.Start(t, cfg, opts...), reg}
}

// linkTo returns a config for id that keeps a link to n.
func linkTo(id string, n testNode) sidecar.Config {
	c := sidecartest.Config(id)
	c.StaticPeers = []string{n.NodeID() + "=" + n.PeerAddr().String()}
	return c
}

// refused waits until n has failed to link to peer (a failed attempt marks
// the peer down) and checks that peer never saw n as a peer.
func refused(t *testing.T, n, peer testNode) {
	t.Helper()
	eventually(t, 5*time.Second, n.NodeID()+" failing to link to "+peer.NodeID(), func() bool {
		info, _ := peerInfo(n.Node, peer.NodeID())
		return info.Status == sidecar.StatusDown
	})
	if info, ok := peerInfo(peer.Node, n.NodeID()); ok {
		t.Fatalf("%s accepted %s: %+v", peer.NodeID(), n.NodeID(), info)
	}
}

// TestMutualTLSPeerLink: two sidecars with identities from one CA link
// over mutual TLS, exchange messages and record each other's SPIFFE id; a
// certificate from another CA and a plaintext node are refused.
func TestMutualTLSPeerLink(t *testing.T) {
	ctx := ctxT(t)
	ca := newCA(t)
	idA, idB := workloadID("shop", "a"), workloadID("shop", "b")
	b := startWith(t, sidecartest.Config("b"), memorySource(t, ca, idB))
	if b.Identity() == nil || b.Identity().Current().ID() != idB {
		t.Fatalf("b's identity: %v", b.Identity())
	}
	sub := subscribe(t, ctx, b, topic)
	cfgA := linkTo("a", b)
	cfgA.StaticRoutes = []string{topic + "=b"}
	a := startWith(t, cfgA, memorySource(t, ca, idA))
	eventually(t, 5*time.Second, "mTLS link up", func() bool { return peerStatus(a.Node, "b") == sidecar.StatusUp })
	eventually(t, 5*time.Second, "b sees a", func() bool { return peerStatus(b.Node, "a") == sidecar.StatusUp })
	if ib, _ := peerInfo(b.Node, "a"); ib.PeerIdentity != idA.String() {
		t.Fatalf("b records peer identity %q, want %s", ib.PeerIdentity, idA)
	}
	if ia, _ := peerInfo(a.Node, "b"); ia.PeerIdentity != idB.String() {
		t.Fatalf("a records peer identity %q, want %s", ia.PeerIdentity, idB)
	}
	pub := sidecartest.DialAgent(t, a.Node)
	for _, text := range []string{"secret", "another secret"} {
		if ack, err := pub.PublishTo(ctx, topic, 0, []byte(text)); err != nil || ack.RemoteDeliveries != 1 {
			t.Fatalf("%v %v", ack, err)
		}
		if m, err := sub.Next(ctx); err != nil || string(m.Payload) != text {
			t.Fatalf("%v %v", m, err)
		}
	}

	// A node with a certificate from another CA cannot link, in either
	// direction: b refuses its client certificate, and it refuses b's.
	other, err := identity.NewCA(testTrustDomain)
	if err != nil {
		t.Fatal(err)
	}
	r := startWith(t, linkTo("rogue", b), memorySource(t, other, workloadID("shop", "rogue")))
	// A plaintext node cannot link either.
	p := startWith(t, linkTo("plain", b), nil)
	for _, n := range []testNode{r, p} {
		refused(t, n, b)
	}
	// Nor can b dial a node whose certificate is from another CA.
	r2 := startWith(t, sidecartest.Config("rogue2"), memorySource(t, other, workloadID("shop", "rogue2")))
	b2 := startWith(t, linkTo("b2", r2), memorySource(t, ca, workloadID("shop", "b2")))
	refused(t, b2, r2)
	if peerStatus(a.Node, "b") != sidecar.StatusUp {
		t.Fatal("the trusted link went down")
	}
}

// TestDeniedIdentityRefused: an identity on the deny list cannot link, and
// one put on it later cannot open new links.
func TestDeniedIdentityRefused(t *testing.T) {
	ca := newCA(t)
	idA, idC := workloadID("shop", "a"), workloadID("shop", "c")
	srcB := memorySource(t, ca, workloadID("shop", "b"))
	deny, err := identity.NewDenyList(idA.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := srcB.SetDenyList(deny); err != nil {
		t.Fatal(err)
	}
	b := startWith(t, sidecartest.Config("b"), srcB)
	a := startWith(t, linkTo("a", b), memorySource(t, ca, idA))
	refused(t, a, b)
	// c is allowed and links; the deny list names only a.
	c := startWith(t, linkTo("c", b), memorySource(t, ca, idC))
	eventually(t, 5*time.Second, "c links", func() bool { return peerStatus(c.Node, "b") == sidecar.StatusUp })

	// Denied through configuration (AGW_IDENTITY_DENY) on a node that
	// loads its identity from files.
	dir := t.TempDir()
	svid, err := ca.Issue(workloadID("shop", "d"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteFiles(dir, svid); err != nil {
		t.Fatal(err)
	}
	cfgD := sidecartest.Config("d")
	cfgD.Identity.Dir = dir
	cfgD.Identity.Deny = []string{idC.String()}
	d := startWith(t, cfgD, nil)
	cd := startWith(t, linkTo("c2", d), memorySource(t, ca, idC))
	refused(t, cd, d)
	// The refusal is a counted security event in d's metrics.
	if n := gather(d.reg, "agw_identity_rejections_total", "reason", identity.ReasonRevoked); n < 1 {
		t.Errorf("d counted %v revoked peers, want at least 1", n)
	}
	ad := startWith(t, linkTo("a2", d), memorySource(t, ca, idA))
	eventually(t, 5*time.Second, "a2 links to d", func() bool { return peerStatus(ad.Node, "d") == sidecar.StatusUp })
}

// presentedCert dials addr with a TLS client of src and returns the
// certificate the server presented.
func presentedCert(t *testing.T, src *identity.Source, addr string) []byte {
	t.Helper()
	cfg := src.ClientTLSConfig()
	cfg.NextProtos = []string{"h2"} // gRPC servers insist on ALPN
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 2 * time.Second}, Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	defer conn.Close()
	cs := conn.(*tls.Conn).ConnectionState()
	return cs.PeerCertificates[0].Raw
}

// TestCertificateRotationOnDisk: a node that loads its identity from
// files picks up a certificate rotated on disk for new links, without a
// restart and without dropping its links.
func TestCertificateRotationOnDisk(t *testing.T) {
	ctx := ctxT(t)
	ca := newCA(t)
	idB := workloadID("shop", "b")
	dir := t.TempDir()
	old, err := ca.Issue(idB, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteFiles(dir, old); err != nil {
		t.Fatal(err)
	}
	cfgB := sidecartest.Config("b")
	cfgB.Identity.Dir = dir
	cfgB.Identity.ReloadInterval = 10 * time.Millisecond
	b := startWith(t, cfgB, nil)
	sub := subscribe(t, ctx, b, topic)
	cfgA := linkTo("a", b)
	cfgA.StaticRoutes = []string{topic + "=b"}
	srcA := memorySource(t, ca, workloadID("shop", "a"))
	a := startWith(t, cfgA, srcA)
	eventually(t, 5*time.Second, "link up", func() bool { return peerStatus(a.Node, "b") == sidecar.StatusUp })
	if got := presentedCert(t, srcA, b.PeerAddr().String()); string(got) != string(old.Leaf().Raw) {
		t.Fatal("b does not present the certificate on disk")
	}

	// Rotate: a new certificate and key for the same id.
	fresh, err := ca.Issue(idB, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteFiles(dir, fresh); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "b presenting the rotated certificate", func() bool {
		return string(presentedCert(t, srcA, b.PeerAddr().String())) == string(fresh.Leaf().Raw)
	})
	if b.Identity().Current().Fingerprint() != identity.FingerprintOf(fresh.Leaf()) {
		t.Fatal("b's identity source did not switch")
	}
	if n := counterTotal(t, b.reg, "agw_identity_reloads_total"); n < 1 {
		t.Errorf("b counted %v reloads, want at least 1", n)
	}
	// A new node that refuses the old certificate (deny list by
	// fingerprint) links: only the rotated one can have been used.
	srcC := memorySource(t, ca, workloadID("shop", "c"))
	deny, err := identity.NewDenyList("sha256:" + identity.FingerprintOf(old.Leaf()).String())
	if err != nil {
		t.Fatal(err)
	}
	if err := srcC.SetDenyList(deny); err != nil {
		t.Fatal(err)
	}
	c := startWith(t, linkTo("c", b), srcC)
	eventually(t, 5*time.Second, "c links to the rotated b", func() bool { return peerStatus(c.Node, "b") == sidecar.StatusUp })
	// The link made before the rotation is still up and carries messages.
	if peerStatus(a.Node, "b") != sidecar.StatusUp {
		t.Fatal("rotation dropped the existing link")
	}
	pub := sidecartest.DialAgent(t, a.Node)
	if ack, err := pub.PublishTo(ctx, topic, 0, []byte("after rotation")); err != nil || ack.RemoteDeliveries != 1 {
		t.Fatalf("%v %v", ack, err)
	}
	if m, err := sub.Next(ctx); err != nil || string(m.Payload) != "after rotation" {
		t.Fatalf("%v %v", m, err)
	}
}

// TestPeerNodeBindingNamespace: with AGW_PEER_NODE_BINDING=namespace a
// peer may claim only node ids of its SPIFFE namespace (<ns>.<name>).
func TestPeerNodeBindingNamespace(t *testing.T) {
	ca := newCA(t)
	cfgB := sidecartest.Config("shop.b")
	cfgB.PeerNodeBinding = sidecar.BindingNamespace
	b := startWith(t, cfgB, memorySource(t, ca, workloadID("shop", "b")))
	ok := startWith(t, linkTo("shop.a", b), memorySource(t, ca, workloadID("shop", "a")))
	eventually(t, 5*time.Second, "shop.a links", func() bool { return peerStatus(ok.Node, "shop.b") == sidecar.StatusUp })
	// A valid identity of namespace shop claiming a node of namespace
	// bank is refused.
	bad := startWith(t, linkTo("bank.a", b), memorySource(t, ca, workloadID("shop", "x")))
	refused(t, bad, b)
	// An id without the Kubernetes workload form is refused too.
	odd := startWith(t, linkTo("shop.c", b), memorySource(t, ca, identity.MustParseID("spiffe://"+testTrustDomain+"/agents/c")))
	refused(t, odd, b)

	// The dialler applies the rule to the node it dials: b names itself
	// shop.b but holds an id of namespace bank.
	cfgM := sidecartest.Config("shop.m")
	m := startWith(t, cfgM, memorySource(t, ca, workloadID("bank", "m")))
	cfgD := linkTo("shop.d", m)
	cfgD.PeerNodeBinding = sidecar.BindingNamespace
	d := startWith(t, cfgD, memorySource(t, ca, workloadID("shop", "d")))
	eventually(t, 5*time.Second, "shop.d refusing shop.m", func() bool {
		info, _ := peerInfo(d.Node, "shop.m")
		return info.Status == sidecar.StatusDown
	})
}

// counterTotal sums the counters of the metric family name.
func counterTotal(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
