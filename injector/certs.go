package injector

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// certReloader serves the webhook certificate and reloads it from its files
// when they change (a Secret volume update swaps both atomically; a pair
// that does not match yet is retried at the next check).
type certReloader struct {
	certFile, keyFile string

	cur atomic.Pointer[tls.Certificate]

	mu                sync.Mutex // guards lastCert, lastKey
	lastCert, lastKey []byte
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	if _, err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// reload reads both files and, when they changed, loads them. It reports
// whether a new certificate is now served. On error the old one stays.
func (r *certReloader) reload() (bool, error) {
	certPEM, err := os.ReadFile(r.certFile)
	if err != nil {
		return false, fmt.Errorf("webhook certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(r.keyFile)
	if err != nil {
		return false, fmt.Errorf("webhook key: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur.Load() != nil && bytes.Equal(certPEM, r.lastCert) && bytes.Equal(keyPEM, r.lastKey) {
		return false, nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The error names what is wrong (no PEM, mismatch), never the key.
		return false, fmt.Errorf("webhook certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return false, fmt.Errorf("webhook certificate %s: %w", r.certFile, err)
		}
	}
	r.lastCert, r.lastKey = certPEM, keyPEM
	r.cur.Store(&pair)
	return true, nil
}

// getCertificate is tls.Config.GetCertificate.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := r.cur.Load()
	if c == nil {
		return nil, errors.New("no webhook certificate loaded")
	}
	return c, nil
}

// notAfter is the served certificate's expiry.
func (r *certReloader) notAfter() time.Time {
	if c := r.cur.Load(); c != nil && c.Leaf != nil {
		return c.Leaf.NotAfter
	}
	return time.Time{}
}
