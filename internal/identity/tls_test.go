package identity

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

const (
	idA = "spiffe://example.org/ns/shop/sa/alice"
	idB = "spiffe://example.org/ns/shop/sa/bob"
)

func TestTLSMutualAccepted(t *testing.T) {
	ca := newCA(t, "example.org")
	reg := prometheus.NewRegistry()
	srv := memSource(t, ca, idA, WithRegisterer(reg))
	cli := memSource(t, ca, idB)
	s := startTLSServer(t, srv.ServerTLSConfig())
	cs, err := dial(t, s.addr, cli.ClientTLSConfig())
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	r := s.next(t)
	if r.err != nil {
		t.Fatalf("server: %v", r.err)
	}
	if r.id.String() != idB {
		t.Errorf("server saw peer %q; want %q", r.id, idB)
	}
	got, err := PeerIDFromConnectionState(cs)
	if err != nil || got.String() != idA {
		t.Errorf("client saw peer %q, %v; want %q", got, err, idA)
	}
	if cs.Version != tls.VersionTLS13 {
		t.Errorf("TLS version %x; want 1.3", cs.Version)
	}
	// The gRPC helper reads the same state from a peer.
	p := &peer.Peer{AuthInfo: credentials.TLSInfo{State: cs}}
	if got, err := PeerIDFromPeer(p); err != nil || got.String() != idA {
		t.Errorf("PeerIDFromPeer = %q, %v", got, err)
	}
	if v := counterValue(t, reg, "agw_identity_validations_accepted_total", ""); v != 1 {
		t.Errorf("server accepted %v credentials; want 1", v)
	}
}

func TestTLSOtherCARefused(t *testing.T) {
	ca := newCA(t, "example.org")
	other := newCA(t, "example.org") // same trust domain name, different key
	reg := prometheus.NewRegistry()
	srv := memSource(t, ca, idA, WithRegisterer(reg))
	s := startTLSServer(t, srv.ServerTLSConfig())

	// A client from the other CA is refused by the server.
	if _, err := dial(t, s.addr, plainClient(issue(t, other, idB, time.Hour))); err == nil {
		t.Error("client from another CA completed the exchange")
	}
	wantErr(t, s.next(t).err, ErrUntrusted)
	if v := counterValue(t, reg, "agw_identity_rejections_total", ReasonUntrusted); v != 1 {
		t.Errorf("untrusted rejections = %v; want 1", v)
	}

	// A client of the first CA refuses a server of the other.
	srv2 := memSource(t, other, idA)
	s2 := startTLSServer(t, srv2.ServerTLSConfig())
	cli := memSource(t, ca, idB)
	_, err := dial(t, s2.addr, cli.ClientTLSConfig())
	wantErr(t, err, ErrUntrusted)
	if r := s2.next(t); r.err == nil {
		t.Error("server of the other CA completed a handshake the client refused")
	}
}

func TestTLSExpiredRefused(t *testing.T) {
	ca := newCA(t, "example.org")
	srv := memSource(t, ca, idA)
	s := startTLSServer(t, srv.ServerTLSConfig())
	expired := issueOpts(t, ca, idB, IssueOptions{NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	if _, err := dial(t, s.addr, plainClient(expired)); err == nil {
		t.Error("expired client completed the exchange")
	}
	wantErr(t, s.next(t).err, ErrExpired)

	future := issueOpts(t, ca, idB, IssueOptions{NotBefore: time.Now().Add(time.Hour), NotAfter: time.Now().Add(2 * time.Hour)})
	if _, err := dial(t, s.addr, plainClient(future)); err == nil {
		t.Error("not-yet-valid client completed the exchange")
	}
	wantErr(t, s.next(t).err, ErrExpired)
}

func TestTLSDeniedRefused(t *testing.T) {
	ca := newCA(t, "example.org")
	srv := memSource(t, ca, idA)
	cli := memSource(t, ca, idB)
	s := startTLSServer(t, srv.ServerTLSConfig())
	if _, err := dial(t, s.addr, cli.ClientTLSConfig()); err != nil {
		t.Fatalf("before deny: %v", err)
	}
	if r := s.next(t); r.err != nil {
		t.Fatalf("before deny: server %v", r.err)
	}
	for _, entry := range []string{
		idB,
		"serial:" + serialHex(cli.Current().Leaf()),
		"sha256:" + cli.Current().Fingerprint().String(),
	} {
		d, err := NewDenyList(entry)
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.SetDenyList(d); err != nil {
			t.Fatal(err)
		}
		if _, err := dial(t, s.addr, cli.ClientTLSConfig()); err == nil {
			t.Errorf("deny %q: denied client completed the exchange", entry)
		}
		wantErr(t, s.next(t).err, ErrRevoked)
	}
	// The denied side refuses the server in turn when it is the one denied.
	d, _ := NewDenyList(idA)
	if err := cli.SetDenyList(d); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetDenyList(nil); err != nil {
		t.Fatal(err)
	}
	_, err := dial(t, s.addr, cli.ClientTLSConfig())
	wantErr(t, err, ErrRevoked)
	s.next(t)
}

func TestTLSAuthorizer(t *testing.T) {
	ca := newCA(t, "example.org")
	srv := memSource(t, ca, idA)
	cli := memSource(t, ca, idB)
	s := startTLSServer(t, srv.ServerTLSConfig())
	if _, err := dial(t, s.addr, cli.ClientTLSConfig(AuthorizeID(MustParseID(idA)))); err != nil {
		t.Fatalf("expected server: %v", err)
	}
	s.next(t)
	_, err := dial(t, s.addr, cli.ClientTLSConfig(AuthorizeID(MustParseID("spiffe://example.org/ns/shop/sa/carol"))))
	wantErr(t, err, ErrUnauthorized)
	s.next(t)
}

func TestTLSTrustDomainRefused(t *testing.T) {
	// One CA (no domain binding) issuing for two domains; the server only
	// allows its own.
	ca := newCA(t, "example.org")
	srv := memSource(t, ca, idA)
	s := startTLSServer(t, srv.ServerTLSConfig())
	foreign := issue(t, ca, "spiffe://other.org/ns/x/sa/y", time.Hour)
	if _, err := dial(t, s.addr, plainClient(foreign)); err == nil {
		t.Error("client of another trust domain completed the exchange")
	}
	wantErr(t, s.next(t).err, ErrTrustDomain)
}

func TestTLSRotationWhileServing(t *testing.T) {
	ca := newCA(t, "example.org")
	reg := prometheus.NewRegistry()
	srv, dir := fileSource(t, ca, idA, func(c *Config) { c.ReloadInterval = 20 * time.Millisecond }, WithRegisterer(reg))
	cli := memSource(t, ca, idB)
	events, cancel := srv.Subscribe()
	defer cancel()
	runDone := make(chan error, 1)
	ctx, stop := testContext(t)
	go func() { runDone <- srv.Run(ctx) }()
	s := startTLSServer(t, srv.ServerTLSConfig())

	cs, err := dial(t, s.addr, cli.ClientTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	s.next(t)
	first := FingerprintOf(cs.PeerCertificates[0])
	if first != srv.Current().Fingerprint() {
		t.Fatal("server did not present the loaded certificate")
	}

	// Rotate on disk; the running server must present the new certificate.
	next := issue(t, ca, idA, 2*time.Hour)
	if err := ca.WriteFiles(dir, next); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if ev.Changes&ChangeCertificate == 0 || ev.Snapshot.Fingerprint() != FingerprintOf(next.Leaf()) {
			t.Fatalf("event %v with %s; want certificate change to the new leaf", ev.Changes, ev.Snapshot.Fingerprint())
		}
		if ev.Snapshot.Generation() != 2 {
			t.Errorf("generation %d; want 2", ev.Snapshot.Generation())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no rotation event")
	}
	cs, err = dial(t, s.addr, cli.ClientTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	s.next(t)
	if got := FingerprintOf(cs.PeerCertificates[0]); got != FingerprintOf(next.Leaf()) {
		t.Errorf("after rotation the server presented %s; want the new %s", got, FingerprintOf(next.Leaf()))
	}

	// A bad rotation (key of another certificate) keeps the current pair.
	stray := issue(t, ca, idA, time.Hour)
	strayKey, err := stray.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, KeyFileName, strayKey)
	waitFor(t, "reload error", func() bool { return counterValue(t, reg, "agw_identity_reload_errors_total", "") >= 1 })
	if err := srv.LastError(); err == nil || !strings.Contains(err.Error(), "AGW_IDENTITY_KEY_FILE") {
		t.Errorf("LastError = %v; want the key mismatch naming AGW_IDENTITY_KEY_FILE", err)
	}
	cs, err = dial(t, s.addr, cli.ClientTLSConfig())
	if err != nil {
		t.Fatalf("after a bad rotation: %v", err)
	}
	s.next(t)
	if got := FingerprintOf(cs.PeerCertificates[0]); got != FingerprintOf(next.Leaf()) {
		t.Error("a bad rotation replaced the working certificate")
	}
	// Fixing the key applies the pending certificate.
	goodKey, _ := next.KeyPEM()
	writeFile(t, dir, KeyFileName, goodKey)
	waitFor(t, "error cleared", func() bool { return srv.LastError() == nil })

	stop()
	select {
	case err := <-runDone:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
}

func TestTLSClientWithoutCertificateRefused(t *testing.T) {
	ca := newCA(t, "example.org")
	srv, err := ca.MemorySource(MustParseID(idA), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	s := startTLSServer(t, srv.ServerTLSConfig())
	if _, err := dial(t, s.addr, &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}); err == nil {
		t.Error("client without a certificate completed the exchange")
	}
	if r := s.next(t); r.err == nil {
		t.Error("server accepted a client without a certificate")
	}
	// TLS 1.2 is refused too.
	cli := memSource(t, ca, idB)
	old := cli.ClientTLSConfig()
	old.MinVersion, old.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	if _, err := dial(t, s.addr, old); err == nil {
		t.Error("TLS 1.2 client accepted")
	}
	s.next(t)
}
