package identity

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
)

// Fingerprint is the SHA-256 of a certificate's DER encoding.
type Fingerprint [sha256.Size]byte

// FingerprintOf returns the SHA-256 fingerprint of cert.
func FingerprintOf(cert *x509.Certificate) Fingerprint { return sha256.Sum256(cert.Raw) }

// String returns the fingerprint in lower-case hex.
func (f Fingerprint) String() string { return hex.EncodeToString(f[:]) }

// SVID is an X.509 SVID: a certificate chain (leaf first, then any
// intermediates, not the root) whose leaf names a SPIFFE id, and the leaf's
// private key.
type SVID struct {
	ID           ID
	Certificates []*x509.Certificate
	PrivateKey   crypto.Signer
}

// ParseSVIDPEM parses a certificate chain (tls.crt) and its private key
// (tls.key: PKCS#8, SEC 1 EC or PKCS#1 RSA), checks that the key belongs to
// the leaf and that the leaf is a valid SVID (exactly one SPIFFE URI SAN,
// not a CA, digitalSignature allowed). Errors never contain key material.
func ParseSVIDPEM(certPEM, keyPEM []byte) (*SVID, error) {
	certs, err := parseCertsPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// crypto/tls's messages name the problem, not the key.
		return nil, fmt.Errorf("key pair: %w", err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("key pair: private key cannot sign")
	}
	return NewSVID(certs, signer)
}

// NewSVID checks and assembles an SVID from a chain (leaf first) and the
// leaf's private key.
func NewSVID(chain []*x509.Certificate, key crypto.Signer) (*SVID, error) {
	if len(chain) == 0 || chain[0] == nil {
		return nil, fmt.Errorf("%w: empty certificate chain", ErrMalformed)
	}
	leaf := chain[0]
	if key == nil || !publicKeysEqual(key.Public(), leaf.PublicKey) {
		return nil, fmt.Errorf("%w: private key does not belong to the leaf certificate (serial %s)", ErrKeyMismatch, serialHex(leaf))
	}
	id, err := IDFromCertificate(leaf)
	if err != nil {
		return nil, err
	}
	if err := checkLeafUsage(leaf); err != nil {
		return nil, err
	}
	return &SVID{ID: id, Certificates: append([]*x509.Certificate(nil), chain...), PrivateKey: key}, nil
}

// Leaf returns the leaf certificate.
func (s *SVID) Leaf() *x509.Certificate { return s.Certificates[0] }

// CertificatesPEM encodes the chain as PEM (the content of tls.crt).
func (s *SVID) CertificatesPEM() []byte { return certsPEM(s.Certificates) }

// KeyPEM encodes the private key as PKCS#8 PEM (the content of tls.key).
func (s *SVID) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(s.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// TLSCertificate returns the chain and key as a tls.Certificate.
func (s *SVID) TLSCertificate() tls.Certificate {
	c := tls.Certificate{PrivateKey: s.PrivateKey, Leaf: s.Certificates[0]}
	for _, x := range s.Certificates {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

// checkLeafUsage enforces the SPIFFE X.509-SVID rules for a leaf: not a
// CA, digitalSignature set, no keyCertSign or cRLSign.
func checkLeafUsage(leaf *x509.Certificate) error {
	if leaf.IsCA {
		return fmt.Errorf("%w: certificate serial %s is a CA certificate, not a workload SVID", ErrKeyUsage, serialHex(leaf))
	}
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return fmt.Errorf("%w: certificate serial %s lacks the digitalSignature key usage", ErrKeyUsage, serialHex(leaf))
	}
	if leaf.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0 {
		return fmt.Errorf("%w: certificate serial %s of a workload may not sign certificates or CRLs", ErrKeyUsage, serialHex(leaf))
	}
	return nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	ea, ok := a.(equaler)
	return ok && ea.Equal(b)
}

// SignaturePublicKeyBytes returns a public key in the encoding MLS uses for
// signature keys (RFC 9420 §5.1.1): the 32 raw bytes of an Ed25519 key, or
// the uncompressed point of an ECDSA key.
func SignaturePublicKeyBytes(pub crypto.PublicKey) ([]byte, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return bytes.Clone(k), nil
	case *ecdsa.PublicKey:
		b, err := k.Bytes()
		if err != nil {
			return nil, fmt.Errorf("encode ECDSA public key: %w", err)
		}
		return b, nil
	default:
		return nil, fmt.Errorf("%w: %T keys cannot serve as MLS signature keys; use ECDSA P-256 or Ed25519", ErrKeyUsage, pub)
	}
}

// signatureScheme returns the TLS/MLS SignatureScheme of a public key, or
// 0 if MLS has none for it.
func signatureScheme(pub crypto.PublicKey) tls.SignatureScheme {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return tls.Ed25519
	case *ecdsa.PublicKey:
		switch k.Curve.Params().BitSize {
		case 256:
			return tls.ECDSAWithP256AndSHA256
		case 384:
			return tls.ECDSAWithP384AndSHA384
		case 521:
			return tls.ECDSAWithP521AndSHA512
		}
	}
	return 0
}

func serialHex(c *x509.Certificate) string {
	if c == nil || c.SerialNumber == nil {
		return "?"
	}
	return hex.EncodeToString(c.SerialNumber.Bytes())
}
