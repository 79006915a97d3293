package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func newTestValidator(t *testing.T, ca *CA, domains []string, opts ...Option) *Validator {
	t.Helper()
	v, err := NewValidator(ca.Bundle(), domains, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestValidatorAcceptsAndRefuses(t *testing.T) {
	ca := newCA(t, "example.org")
	other := newCA(t, "example.org")
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	v := newTestValidator(t, ca, []string{"example.org", "other.org"}, WithRegisterer(reg), WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	good := issue(t, ca, idA, time.Hour)
	now := time.Now()

	id, err := v.Validate(good.Certificates, UsageMLS, now)
	if err != nil || id.String() != idA {
		t.Fatalf("good: %q, %v", id, err)
	}
	if id, err := v.ValidateDER(good.TLSCertificate().Certificate, UsageServer, time.Time{}); err != nil || id.String() != idA {
		t.Fatalf("good DER: %q, %v", id, err)
	}

	serverOnly := issueOpts(t, ca, idB, IssueOptions{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	cases := []struct {
		name  string
		chain []*x509.Certificate
		usage Usage
		at    time.Time
		want  error
	}{
		{"other CA", issue(t, other, idA, time.Hour).Certificates, UsageMLS, now, ErrUntrusted},
		{"expired at a later time", good.Certificates, UsageMLS, now.Add(2 * time.Hour), ErrExpired},
		{"not yet valid", good.Certificates, UsageMLS, now.Add(-time.Hour), ErrExpired},
		{"server-only as client", serverOnly.Certificates, UsageClient, now, ErrKeyUsage},
		{"CA as leaf", []*x509.Certificate{ca.Certificate()}, UsageMLS, now, ErrKeyUsage},
		{"no SPIFFE id", []*x509.Certificate{leafWithout(t, ca)}, UsageMLS, now, ErrNoSPIFFEID},
		{"trust domain", issue(t, ca, "spiffe://third.org/a", time.Hour).Certificates, UsageMLS, now, ErrTrustDomain},
		// other.org is allowed, but this CA vouches for example.org only.
		{"CA bound to its domain", issue(t, ca, "spiffe://other.org/a", time.Hour).Certificates, UsageMLS, now, ErrTrustDomain},
		{"empty", nil, UsageMLS, now, ErrMalformed},
	}
	for _, c := range cases {
		if _, err := v.Validate(c.chain, c.usage, c.at); !errors.Is(err, c.want) {
			t.Errorf("%s: %v; want %v", c.name, err, c.want)
		} else if Reason(err) == "" {
			t.Errorf("%s: no reason for %v", c.name, err)
		}
	}
	if _, err := v.ValidateDER([][]byte{[]byte("not DER")}, UsageMLS, now); !errors.Is(err, ErrMalformed) {
		t.Errorf("garbage DER: %v", err)
	}
	if got := counterValue(t, reg, "agw_identity_rejections_total", ReasonTrustDomain); got != 2 {
		t.Errorf("trust domain rejections = %v; want 2", got)
	}
	if got := counterValue(t, reg, "agw_identity_rejections_total", ReasonMalformed); got != 2 {
		t.Errorf("malformed rejections = %v; want 2", got)
	}
	if got := counterValue(t, reg, "agw_identity_validations_accepted_total", ""); got != 2 {
		t.Errorf("accepted = %v; want 2", got)
	}
	// Refusals are logged as security events, with no key material.
	keyPEM, _ := good.KeyPEM()
	out := logs.String()
	if !strings.Contains(out, `"security_event":"credential_rejected"`) || !strings.Contains(out, `"reason":"untrusted"`) {
		t.Errorf("log lacks security events: %s", out)
	}
	if strings.Contains(out, "PRIVATE KEY") || strings.Contains(out, string(keyPEM[40:80])) {
		t.Error("log contains key material")
	}

	// A new bundle takes effect for the next validation.
	v.SetBundle(other.Bundle())
	if _, err := v.Validate(good.Certificates, UsageMLS, now); !errors.Is(err, ErrUntrusted) {
		t.Errorf("after bundle swap: %v; want ErrUntrusted", err)
	}
}

// leafWithout returns a leaf of ca with no URI SAN.
func leafWithout(t *testing.T, ca *CA) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c, err := ca.sign(&x509.Certificate{
		SerialNumber: must(randomSerial()), Subject: pkix.Name{CommonName: "no-uri"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}, &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestValidatorIntermediate(t *testing.T) {
	root := newCA(t, "example.org")
	// An intermediate CA under root, then a leaf under the intermediate.
	ikey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tdURL, _ := url.Parse("spiffe://example.org")
	inter, err := root.sign(&x509.Certificate{
		SerialNumber: must(randomSerial()), Subject: pkix.Name{CommonName: "intermediate"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true, URIs: []*url.URL{tdURL},
	}, &ikey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	icA := &CA{td: MustParseID("spiffe://example.org"), key: ikey, cert: inter, b: must(NewBundle(inter))}
	svid := issue(t, icA, idA, time.Hour)
	chain := []*x509.Certificate{svid.Leaf(), inter}
	v := newTestValidator(t, root, []string{"example.org"})
	if _, err := v.Validate(chain, UsageClient, time.Time{}); err != nil {
		t.Fatalf("leaf + intermediate: %v", err)
	}
	if _, err := v.Validate(chain[:1], UsageClient, time.Time{}); !errors.Is(err, ErrUntrusted) {
		t.Errorf("leaf without its intermediate: %v; want ErrUntrusted", err)
	}
	// Denying the intermediate revokes what it issued.
	v.SetDenyList(must(NewDenyList("sha256:" + FingerprintOf(inter).String())))
	if _, err := v.Validate(chain, UsageClient, time.Time{}); !errors.Is(err, ErrRevoked) {
		t.Errorf("denied intermediate: %v; want ErrRevoked", err)
	}
	v.SetDenyList(nil)
	if _, err := v.Validate(chain, UsageClient, time.Time{}); err != nil {
		t.Errorf("deny list cleared: %v", err)
	}
}

func TestValidateMLSCredential(t *testing.T) {
	ca := newCA(t, "example.org")
	v := newTestValidator(t, ca, []string{"example.org"})
	for _, kt := range []KeyType{KeyECDSAP256, KeyEd25519} {
		svid := issueOpts(t, ca, idA, IssueOptions{KeyType: kt})
		src, err := NewMemorySource(svid, ca.Bundle(), nil)
		if err != nil {
			t.Fatal(err)
		}
		snap := src.Current()
		pub, err := snap.MLSSignaturePublicKey()
		if err != nil {
			t.Fatal(err)
		}
		if priv, err := snap.MLSSignatureKey(); err != nil || len(priv) != 32 {
			t.Errorf("key type %d: MLS private key of %d bytes, %v; want 32", kt, len(priv), err)
		}
		if snap.SignatureScheme() == 0 {
			t.Errorf("key type %d: no signature scheme", kt)
		}
		id, err := v.ValidateMLSCredential(snap.ChainDER(), pub, time.Time{})
		if err != nil || id.String() != idA {
			t.Errorf("key type %d: %q, %v", kt, id, err)
		}
		otherPub, _ := SignaturePublicKeyBytes(issueOpts(t, ca, idA, IssueOptions{KeyType: kt}).PrivateKey.Public())
		if _, err := v.ValidateMLSCredential(snap.ChainDER(), otherPub, time.Time{}); !errors.Is(err, ErrKeyMismatch) {
			t.Errorf("key type %d: foreign signature key: %v; want ErrKeyMismatch", kt, err)
		}
		if _, err := v.ValidateMLSCredential(nil, pub, time.Time{}); !errors.Is(err, ErrMalformed) {
			t.Errorf("empty credential: %v", err)
		}
		src.Close()
	}
}

func TestNewValidatorErrors(t *testing.T) {
	ca := newCA(t, "example.org")
	if _, err := NewValidator(nil, []string{"example.org"}); err == nil {
		t.Error("nil bundle accepted")
	}
	if _, err := NewValidator(ca.Bundle(), nil); err == nil {
		t.Error("no trust domain accepted")
	}
	if _, err := NewValidator(ca.Bundle(), []string{"Bad.Domain"}); err == nil {
		t.Error("bad trust domain accepted")
	}
	leaf := issue(t, ca, idA, time.Hour).Leaf()
	if _, err := NewBundle(leaf); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Errorf("leaf in bundle: %v", err)
	}
	if _, err := ParseBundlePEM([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")); err == nil || strings.Contains(err.Error(), "AAAA") {
		t.Errorf("key in bundle: %v", err)
	}
}

func TestValidatorChainLimit(t *testing.T) {
	ca := newCA(t, "example.org")
	v := newTestValidator(t, ca, []string{"example.org"})
	svid := issue(t, ca, idA, time.Hour)
	long := [][]byte{svid.Leaf().Raw}
	for len(long) <= MaxChainLength {
		long = append(long, ca.Certificate().Raw)
	}
	if _, err := v.ValidateDER(long, UsageMLS, time.Time{}); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "at most") {
		t.Errorf("long chain: %v", err)
	}
	if _, err := v.ValidateDER(long[:MaxChainLength], UsageMLS, time.Time{}); err != nil {
		t.Errorf("chain at the limit: %v", err)
	}
}
