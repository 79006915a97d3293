package identity

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestNewSourceErrors(t *testing.T) {
	ca := newCA(t, "example.org")
	other := newCA(t, "example.org")
	svid := issue(t, ca, idA, time.Hour)
	certPEM := svid.CertificatesPEM()
	keyPEM, _ := svid.KeyPEM()
	otherKey, _ := issue(t, ca, idA, time.Hour).KeyPEM()
	expired := issueOpts(t, ca, idA, IssueOptions{NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	expiredKey, _ := expired.KeyPEM()
	for _, c := range []struct {
		name            string
		cert, key, bndl []byte
		domains         []string
		want            string
		wantErr         error
	}{
		{name: "key of another cert", cert: certPEM, key: otherKey, bndl: ca.Bundle().PEM(), want: "AGW_IDENTITY_KEY_FILE"},
		{name: "bundle of another CA", cert: certPEM, key: keyPEM, bndl: other.Bundle().PEM(), want: "must hold the CA", wantErr: ErrUntrusted},
		{name: "leaf as bundle", cert: certPEM, key: keyPEM, bndl: certPEM, want: "not a CA certificate"},
		{name: "empty bundle", cert: certPEM, key: keyPEM, bndl: []byte("\n"), want: "AGW_IDENTITY_BUNDLE_FILE"},
		{name: "own domain not allowed", cert: certPEM, key: keyPEM, bndl: ca.Bundle().PEM(), domains: []string{"other.org"}, want: `add "example.org" to AGW_IDENTITY_TRUST_DOMAINS`, wantErr: ErrTrustDomain},
		{name: "expired", cert: expired.CertificatesPEM(), key: expiredKey, bndl: ca.Bundle().PEM(), wantErr: ErrExpired},
	} {
		dir := t.TempDir()
		writeFile(t, dir, CertFileName, c.cert)
		writeFile(t, dir, KeyFileName, c.key)
		writeFile(t, dir, BundleFileName, c.bndl)
		cfg := DefaultConfig()
		cfg.Dir = dir
		cfg.TrustDomains = c.domains
		s, err := NewSource(cfg)
		if err == nil {
			s.Close()
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if c.want != "" && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want it to mention %q", c.name, err, c.want)
		}
		if c.wantErr != nil && !errors.Is(err, c.wantErr) {
			t.Errorf("%s: %v; want %v", c.name, err, c.wantErr)
		}
		if strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("%s: error quotes key material", c.name)
		}
	}
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	if _, err := NewSource(cfg); err == nil || !strings.Contains(err.Error(), "AGW_IDENTITY_CERT_FILE") {
		t.Errorf("missing files: %v", err)
	}
}

func TestSourceReloadAndDenyFile(t *testing.T) {
	ca := newCA(t, "example.org")
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	denyPath := filepath.Join(t.TempDir(), "deny")
	writeFile(t, filepath.Dir(denyPath), "deny", []byte("# nobody yet\n"))
	src, dir := fileSource(t, ca, idA, func(c *Config) {
		c.DenyFile = denyPath
		c.Deny = []string{"spiffe://example.org/ns/shop/sa/mallory"}
	}, WithRegisterer(reg), WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	v := src.Validator()
	if v.DenyList().Len() != 1 {
		t.Fatalf("inline deny entries: %v", v.DenyList().Entries())
	}
	if got := counterValue(t, reg, "agw_identity_certificate_expiry_seconds", ""); got < 3500 || got > 3600 {
		t.Errorf("expiry gauge %v; want about an hour", got)
	}
	events, cancel := src.Subscribe()
	defer cancel()

	if c, err := src.Reload(); c != 0 || err != nil {
		t.Fatalf("unchanged files: %v, %v", c, err)
	}
	bob := issue(t, ca, idB, time.Hour)
	if _, err := v.Validate(bob.Certificates, UsageClient, time.Time{}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Dir(denyPath), "deny", []byte(idB+"\n"))
	if c, err := src.Reload(); c != ChangeDenyList || err != nil {
		t.Fatalf("deny change: %v, %v", c, err)
	}
	ev := <-events
	if ev.Changes != ChangeDenyList || !ev.DenyList.DeniesID(MustParseID(idB)) || !ev.DenyList.DeniesID(MustParseID("spiffe://example.org/ns/shop/sa/mallory")) {
		t.Errorf("event %v with %v", ev.Changes, ev.DenyList.Entries())
	}
	if _, err := v.Validate(bob.Certificates, UsageClient, time.Time{}); !errors.Is(err, ErrRevoked) {
		t.Errorf("after deny: %v; want ErrRevoked", err)
	}
	// A broken deny file keeps the previous list.
	writeFile(t, filepath.Dir(denyPath), "deny", []byte("bogus\n"))
	if _, err := src.Reload(); err == nil || !strings.Contains(err.Error(), "AGW_IDENTITY_DENY_FILE") {
		t.Errorf("bad deny file: %v", err)
	}
	if !v.DenyList().DeniesID(MustParseID(idB)) {
		t.Error("bad deny file replaced the list")
	}

	// Two rotations before the subscriber reads coalesce into one event.
	if err := ca.WriteFiles(dir, issue(t, ca, idA, time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Reload(); err == nil {
		t.Error("deny file still bad, Reload reported no error")
	}
	writeFile(t, filepath.Dir(denyPath), "deny", nil)
	latest := issue(t, ca, idA, time.Hour)
	if err := ca.WriteFiles(dir, latest); err != nil {
		t.Fatal(err)
	}
	if c, err := src.Reload(); c != ChangeCertificate|ChangeDenyList || err != nil {
		t.Fatalf("second reload: %v, %v", c, err)
	}
	ev = <-events
	if ev.Changes != ChangeCertificate|ChangeDenyList || ev.Snapshot.Fingerprint() != FingerprintOf(latest.Leaf()) {
		t.Errorf("coalesced event %v for %s", ev.Changes, ev.Snapshot.Fingerprint())
	}
	select {
	case ev := <-events:
		t.Errorf("extra event %v", ev.Changes)
	default:
	}
	if src.Current().Generation() != 3 {
		t.Errorf("generation %d; want 3", src.Current().Generation())
	}
	if got := counterValue(t, reg, "agw_identity_reloads_total", ""); got != 3 {
		t.Errorf("reloads %v; want 3", got)
	}

	// A garbage key never reaches logs or errors.
	secret := "-----BEGIN PRIVATE KEY-----\nU0VDUkVUU0VDUkVUU0VDUkVU\n-----END PRIVATE KEY-----\n"
	writeFile(t, dir, KeyFileName, []byte(secret))
	_, err := src.Reload()
	if err == nil {
		t.Fatal("garbage key accepted")
	}
	if strings.Contains(err.Error(), "U0VDUkVU") || strings.Contains(logs.String(), "U0VDUkVU") {
		t.Error("key file content in error or log")
	}
	if src.Current().Fingerprint() != FingerprintOf(latest.Leaf()) {
		t.Error("garbage key replaced the snapshot")
	}
}

// TestSourceKubernetesSecretSwap follows the kubelet's layout: files are
// symlinks through ..data, which is swapped atomically to a new directory.
func TestSourceKubernetesSecretSwap(t *testing.T) {
	ca := newCA(t, "example.org")
	dir := t.TempDir()
	writeVersion := func(name string, svid *SVID) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := ca.WriteFiles(filepath.Join(dir, name), svid); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	writeVersion("..v1", issue(t, ca, idA, time.Hour))
	for _, f := range []string{CertFileName, KeyFileName, BundleFileName} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.ReloadInterval = 10 * time.Millisecond
	src, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, stop := context.WithTimeout(context.Background(), 20*time.Second)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	v2 := issue(t, ca, idA, time.Hour)
	writeVersion("..v2", v2)
	waitFor(t, "the swapped secret", func() bool { return src.Current().Fingerprint() == FingerprintOf(v2.Leaf()) })
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Run after Close: %v", err)
	}
}

func TestSourceLifecycle(t *testing.T) {
	ca := newCA(t, "example.org")
	src := memSource(t, ca, idA)
	events, cancel := src.Subscribe()
	ctx, stop := context.WithTimeout(context.Background(), 20*time.Second)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	waitFor(t, "Run to start", func() bool { src.mu.Lock(); defer src.mu.Unlock(); return src.running })
	if err := src.Run(ctx); err == nil {
		t.Error("second Run accepted")
	}
	next := issue(t, ca, idA, time.Hour)
	if err := src.Rotate(next, nil); err != nil {
		t.Fatal(err)
	}
	if ev := <-events; ev.Changes != ChangeCertificate || ev.Snapshot.Generation() != 2 {
		t.Errorf("rotate event %v generation %d", ev.Changes, ev.Snapshot.Generation())
	}
	// A rotation to a certificate the bundle does not trust is refused.
	if err := src.Rotate(issue(t, newCA(t, "example.org"), idA, time.Hour), nil); !errors.Is(err, ErrUntrusted) {
		t.Errorf("untrusted rotation: %v", err)
	}
	if src.Current().Fingerprint() != FingerprintOf(next.Leaf()) {
		t.Error("refused rotation changed the snapshot")
	}
	if _, err := src.Reload(); err != nil {
		t.Errorf("Reload of a memory source: %v", err)
	}
	cancel()
	cancel() // idempotent
	if _, ok := <-events; ok {
		t.Error("cancelled subscription still open")
	}
	ev2, _ := src.Subscribe()
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if _, ok := <-ev2; ok {
		t.Error("Close left a subscription open")
	}
	if err := src.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v", err)
	}
	if err := src.Rotate(next, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Rotate after Close: %v", err)
	}
	if src.Current() == nil {
		t.Error("no snapshot after Close")
	}
	fsrc, _ := fileSource(t, ca, idA, nil)
	if err := fsrc.Rotate(next, nil); err == nil {
		t.Error("Rotate on a file source accepted")
	}
	if err := fsrc.SetDenyList(nil); err == nil {
		t.Error("SetDenyList on a file source accepted")
	}
}

func TestSourcesShareRegistererOnce(t *testing.T) {
	ca := newCA(t, "example.org")
	reg := prometheus.NewRegistry()
	memSource(t, ca, idA, WithRegisterer(reg))
	if _, err := NewMemorySource(issue(t, ca, idB, time.Hour), ca.Bundle(), nil, WithRegisterer(reg)); err == nil {
		t.Error("second source on one registerer: no error")
	}
	// A failed construction registers nothing, so a retry works.
	reg2 := prometheus.NewRegistry()
	if _, err := NewMemorySource(issue(t, newCA(t, "example.org"), idB, time.Hour), ca.Bundle(), nil, WithRegisterer(reg2)); err == nil {
		t.Fatal("untrusted own certificate accepted")
	}
	memSource(t, ca, idB, WithRegisterer(reg2))
}

func TestSourceLogsExpiry(t *testing.T) {
	ca := newCA(t, "example.org")
	now := time.Now()
	var mu sync.Mutex
	clock := now
	var logs syncBuffer
	src, _ := fileSource(t, ca, idA, nil, WithClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }),
		WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	if _, err := src.Reload(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "expired") {
		t.Fatal("expiry logged early")
	}
	mu.Lock()
	clock = now.Add(2 * time.Hour)
	mu.Unlock()
	src.Reload()
	src.Reload()
	if n := strings.Count(logs.String(), "has expired"); n != 1 {
		t.Errorf("expiry logged %d times; want once", n)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
