package identity

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// Bundle is an immutable set of trusted CA certificates (the trust bundle,
// ca.crt). Peers' chains must lead to one of them.
type Bundle struct {
	certs []*x509.Certificate
	pool  *x509.CertPool
}

// NewBundle returns a bundle of CA certificates. Each must be a CA
// (basic constraints with cA true), so that a leaf put in ca.crt by mistake
// is caught at load time.
func NewBundle(certs ...*x509.Certificate) (*Bundle, error) {
	if len(certs) == 0 {
		return nil, errors.New("trust bundle holds no certificate")
	}
	b := &Bundle{pool: x509.NewCertPool()}
	for i, c := range certs {
		if c == nil {
			return nil, fmt.Errorf("trust bundle certificate %d is nil", i)
		}
		if !c.BasicConstraintsValid || !c.IsCA {
			return nil, fmt.Errorf("trust bundle certificate %d (subject %q, serial %s) is not a CA certificate; the bundle holds the issuing CAs, not workload certificates", i, c.Subject.String(), serialHex(c))
		}
		b.certs = append(b.certs, c)
		b.pool.AddCert(c)
	}
	return b, nil
}

// ParseBundlePEM parses PEM "CERTIFICATE" blocks into a bundle. Any other
// block type, or text that is not PEM, is an error.
func ParseBundlePEM(data []byte) (*Bundle, error) {
	certs, err := parseCertsPEM(data)
	if err != nil {
		return nil, err
	}
	return NewBundle(certs...)
}

// Certificates returns a copy of the list of CA certificates (the
// certificates themselves are shared and must not be modified).
func (b *Bundle) Certificates() []*x509.Certificate {
	return append([]*x509.Certificate(nil), b.certs...)
}

// Len returns the number of CA certificates.
func (b *Bundle) Len() int { return len(b.certs) }

// Pool returns a new pool holding the bundle's certificates.
func (b *Bundle) Pool() *x509.CertPool { return b.pool.Clone() }

// PEM encodes the bundle as PEM.
func (b *Bundle) PEM() []byte { return certsPEM(b.certs) }

// equal reports whether both bundles hold the same certificates in order.
func (b *Bundle) equal(o *Bundle) bool {
	if b == nil || o == nil {
		return b == o
	}
	if len(b.certs) != len(o.certs) {
		return false
	}
	for i := range b.certs {
		if !b.certs[i].Equal(o.certs[i]) {
			return false
		}
	}
	return true
}

// parseCertsPEM parses a sequence of PEM CERTIFICATE blocks.
func parseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			// The block's content is not quoted: it might be a key.
			return nil, fmt.Errorf("PEM block %d is %q; want CERTIFICATE", len(certs)+1, truncate(block.Type))
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	if len(trimSpace(rest)) != 0 {
		return nil, fmt.Errorf("trailing data after PEM block %d is not PEM", len(certs))
	}
	return certs, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

func certsPEM(certs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}
