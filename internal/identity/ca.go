package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// File names of the Kubernetes TLS secret and cert-manager layout.
const (
	CertFileName   = "tls.crt"
	KeyFileName    = "tls.key"
	BundleFileName = "ca.crt"
)

// KeyType selects the key algorithm of an issued SVID.
type KeyType int

// Key types. ECDSA P-256 goes with the MLS cipher suite
// MLS_128_DHKEMP256_AES128GCM_SHA256_P256, Ed25519 with the X25519 suites.
const (
	KeyECDSAP256 KeyType = iota
	KeyEd25519
)

// CA is a throwaway in-memory certificate authority for one trust domain,
// with an ECDSA P-256 key. It issues X.509 SVIDs for the demo and tests;
// production certificates come from the cluster's CA (cert-manager, SPIRE).
// It is safe for concurrent use.
type CA struct {
	td   ID
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	b    *Bundle
}

// IssueOptions refine CA.IssueWithOptions.
type IssueOptions struct {
	// NotBefore and NotAfter bound validity; zero: one minute ago (to
	// tolerate clock skew) and NotBefore plus the lifetime or one hour.
	NotBefore, NotAfter time.Time
	// KeyType of the SVID's key (default ECDSA P-256).
	KeyType KeyType
	// DNSNames are added as DNS SANs (SPIFFE does not need them).
	DNSNames []string
	// ExtKeyUsage defaults to both server and client authentication.
	ExtKeyUsage []x509.ExtKeyUsage
}

// NewCA makes a CA for trustDomain valid for ten years from an hour ago.
func NewCA(trustDomain string) (*CA, error) {
	td, err := TrustDomainID(trustDomain)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	u, _ := url.Parse(td.String())
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"agw"}, CommonName: "agw throwaway CA " + trustDomain},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		URIs:                  []*url.URL{u},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	b, err := NewBundle(cert)
	if err != nil {
		return nil, err
	}
	return &CA{td: td, key: key, cert: cert, b: b}, nil
}

// TrustDomain returns the CA's trust domain.
func (ca *CA) TrustDomain() string { return ca.td.TrustDomain() }

// Certificate returns the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Bundle returns a trust bundle holding the CA certificate.
func (ca *CA) Bundle() *Bundle { return ca.b }

// Issue issues an SVID for id valid from a minute ago for lifetime.
func (ca *CA) Issue(id ID, lifetime time.Duration) (*SVID, error) {
	return ca.IssueWithOptions(id, IssueOptions{NotAfter: time.Now().Add(lifetime)})
}

// IssueWithOptions issues an SVID for id. The id need not be in the CA's
// trust domain (tests use that to check trust-domain rules).
func (ca *CA) IssueWithOptions(id ID, o IssueOptions) (*SVID, error) {
	if id.IsZero() || id.Path() == "" {
		return nil, fmt.Errorf("%w: an SVID needs a workload id with a path, got %q", ErrInvalidID, id.String())
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Minute)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = o.NotBefore.Add(time.Hour)
	}
	if !o.NotAfter.After(o.NotBefore) {
		return nil, errors.New("issue: NotAfter must be after NotBefore")
	}
	if len(o.ExtKeyUsage) == 0 {
		o.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	var key crypto.Signer
	var err error
	switch o.KeyType {
	case KeyECDSAP256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyEd25519:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("issue: unknown key type %d", o.KeyType)
	}
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(id.String())
	if err != nil {
		return nil, fmt.Errorf("issue: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"agw"}},
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  o.ExtKeyUsage,
		URIs:         []*url.URL{u},
		DNSNames:     o.DNSNames,
		// BasicConstraintsValid with IsCA false marks a leaf explicitly.
		BasicConstraintsValid: true,
	}
	leaf, err := ca.sign(tmpl, key.Public())
	if err != nil {
		return nil, err
	}
	return NewSVID([]*x509.Certificate{leaf}, key)
}

// sign signs tmpl for pub with the CA key.
func (ca *CA) sign(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return c, nil
}

// WriteFiles writes svid and the CA's bundle to dir as tls.crt, tls.key
// (mode 0600) and ca.crt, each replaced atomically.
func (ca *CA) WriteFiles(dir string, svid *SVID) error {
	return WriteSVIDFiles(dir, svid, ca.b)
}

// WriteSVIDFiles writes svid and bundle to dir as tls.crt, tls.key (mode
// 0600) and ca.crt (skipped when bundle is nil), each replaced atomically
// (write to a temporary file, then rename).
func WriteSVIDFiles(dir string, svid *SVID, bundle *Bundle) error {
	keyPEM, err := svid.KeyPEM()
	if err != nil {
		return err
	}
	if err := WriteFileAtomic(filepath.Join(dir, CertFileName), svid.CertificatesPEM(), 0o644); err != nil {
		return err
	}
	if err := WriteFileAtomic(filepath.Join(dir, KeyFileName), keyPEM, 0o600); err != nil {
		return err
	}
	if bundle != nil {
		if err := WriteFileAtomic(filepath.Join(dir, BundleFileName), bundle.PEM(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// WriteFileAtomic replaces path with data through a temporary file in the
// same directory and a rename, so a reader sees the old or the new content,
// never a mix.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func randomSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}

// MemorySource issues an SVID for id and returns a memory Source holding it
// with this CA's bundle (the demo's sidecars, tests of other packages).
func (ca *CA) MemorySource(id ID, lifetime time.Duration, opts ...Option) (*Source, error) {
	svid, err := ca.Issue(id, lifetime)
	if err != nil {
		return nil, err
	}
	return NewMemorySource(svid, ca.b, nil, opts...)
}
