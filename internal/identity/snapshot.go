package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"time"
)

// Snapshot is the workload's identity at one moment: its SVID and the trust
// bundle it was validated against. A Snapshot never changes; a rotation
// makes a new one. Certificates and keys it hands out are shared and must
// not be modified.
type Snapshot struct {
	svid     *SVID
	bundle   *Bundle
	cert     tls.Certificate
	fp       Fingerprint
	gen      uint64
	loadedAt time.Time
}

func newSnapshot(svid *SVID, bundle *Bundle, gen uint64, now time.Time) *Snapshot {
	return &Snapshot{svid: svid, bundle: bundle, cert: svid.TLSCertificate(), fp: FingerprintOf(svid.Leaf()), gen: gen, loadedAt: now}
}

// ID returns the workload's SPIFFE id.
func (s *Snapshot) ID() ID { return s.svid.ID }

// Leaf returns the parsed leaf certificate.
func (s *Snapshot) Leaf() *x509.Certificate { return s.svid.Leaf() }

// Chain returns the certificate chain, leaf first (a new slice).
func (s *Snapshot) Chain() []*x509.Certificate {
	return append([]*x509.Certificate(nil), s.svid.Certificates...)
}

// ChainDER returns the chain's DER encodings, leaf first: the certificates
// of the MLS X.509 credential (a new outer slice; the bytes are shared).
func (s *Snapshot) ChainDER() [][]byte { return append([][]byte(nil), s.cert.Certificate...) }

// Signer returns the private key as a crypto.Signer.
func (s *Snapshot) Signer() crypto.Signer { return s.svid.PrivateKey }

// Bundle returns the trust bundle of this snapshot.
func (s *Snapshot) Bundle() *Bundle { return s.bundle }

// TLSCertificate returns the chain and key for crypto/tls (shared: do not
// modify).
func (s *Snapshot) TLSCertificate() *tls.Certificate { return &s.cert }

// Fingerprint returns the leaf's SHA-256 fingerprint.
func (s *Snapshot) Fingerprint() Fingerprint { return s.fp }

// NotAfter returns the leaf's expiry.
func (s *Snapshot) NotAfter() time.Time { return s.svid.Leaf().NotAfter }

// Generation counts certificate and bundle changes since the Source started
// (1 for the first load).
func (s *Snapshot) Generation() uint64 { return s.gen }

// LoadedAt returns when the snapshot was loaded.
func (s *Snapshot) LoadedAt() time.Time { return s.loadedAt }

// SignatureScheme returns the TLS/MLS signature scheme of the key
// (tls.ECDSAWithP256AndSHA256, tls.Ed25519, ...), or 0 for keys MLS cannot
// use (RSA). It selects the MLS cipher suite: P-256 goes with
// MLS_128_DHKEMP256_AES128GCM_SHA256_P256 (2), Ed25519 with
// MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 (1).
func (s *Snapshot) SignatureScheme() tls.SignatureScheme {
	return signatureScheme(s.svid.PrivateKey.Public())
}

// MLSSignaturePublicKey returns the public key in MLS encoding (the leaf
// node's signature_key).
func (s *Snapshot) MLSSignaturePublicKey() ([]byte, error) {
	return SignaturePublicKeyBytes(s.svid.PrivateKey.Public())
}

// MLSSignatureKey returns the private key in the raw form that
// mls.WithSignatureKey takes: the 32-byte seed of an Ed25519 key or the
// fixed-length scalar of an ECDSA key. It is key material: hand it to the
// MLS library and never log or store it.
func (s *Snapshot) MLSSignatureKey() ([]byte, error) {
	switch k := s.svid.PrivateKey.(type) {
	case ed25519.PrivateKey:
		return append([]byte(nil), k.Seed()...), nil
	case *ecdsa.PrivateKey:
		b, err := k.Bytes()
		if err != nil {
			return nil, fmt.Errorf("encode ECDSA private key: %w", err)
		}
		return b, nil
	default:
		return nil, fmt.Errorf("%w: %T keys cannot serve as MLS signature keys; use ECDSA P-256 or Ed25519", ErrKeyUsage, s.svid.PrivateKey)
	}
}

// Change says what an Event changed.
type Change uint8

// Changes (bits; several may be set when events coalesce).
const (
	// ChangeCertificate: the workload's certificate or key was rotated; the
	// MLS layer commits an Update with the new credential.
	ChangeCertificate Change = 1 << iota
	// ChangeBundle: the trust bundle changed; members may need revalidation.
	ChangeBundle
	// ChangeDenyList: the deny list changed; the MLS layer removes members
	// whose credentials it now refuses.
	ChangeDenyList
)

func (c Change) String() string {
	var parts []string
	for _, p := range []struct {
		c Change
		s string
	}{{ChangeCertificate, "certificate"}, {ChangeBundle, "bundle"}, {ChangeDenyList, "deny_list"}} {
		if c&p.c != 0 {
			parts = append(parts, p.s)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// Event tells a subscriber that the identity changed. Snapshot and DenyList
// are the state after the change.
type Event struct {
	Changes  Change
	Snapshot *Snapshot
	DenyList *DenyList
}
