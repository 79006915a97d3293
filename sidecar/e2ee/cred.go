package e2ee

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"

	"github.com/agwproject/agw/internal/identity"
	"github.com/agwproject/agw/mls"
	"github.com/agwproject/agw/mls/wire"
)

// errNotX509 refuses credentials that are not X.509.
var errNotX509 = errors.New("e2ee: only X.509 credentials are accepted")

// leafSPIFFE returns the SPIFFE id of a leaf's X.509 credential, or "".
func leafSPIFFE(l *wire.LeafNode) string {
	if l.Credential.Type != wire.CredentialTypeX509 || len(l.Credential.Certificates) == 0 {
		return ""
	}
	der := l.Credential.Certificates[0]
	key := sha256.Sum256(der)
	spiffeCache.mu.Lock()
	id, ok := spiffeCache.m[key]
	spiffeCache.mu.Unlock()
	if ok {
		return id
	}
	if c, err := x509.ParseCertificate(der); err == nil {
		if sid, err := identity.IDFromCertificate(c); err == nil {
			id = sid.String()
		}
	}
	spiffeCache.mu.Lock()
	if len(spiffeCache.m) >= spiffeCacheSize {
		clear(spiffeCache.m)
	}
	spiffeCache.m[key] = id
	spiffeCache.mu.Unlock()
	return id
}

// spiffeCache maps a certificate (its SHA-256) to the SPIFFE id in it:
// every epoch change reads the id of every member, and parsing a
// certificate costs tens of microseconds. It only names members for
// /debug/groups and logs; credentials are validated apart from it.
var spiffeCache = struct {
	mu sync.Mutex
	m  map[[32]byte]string
}{m: map[[32]byte]string{}}

const spiffeCacheSize = 8192

// validateCredential is the MLS Authentication Service hook: an X.509
// credential whose chain the trust bundle accepts, not denied, whose leaf
// key is the MLS signature key.
func (m *Manager) validateCredential(c wire.Credential, sigKey []byte) error {
	if c.Type != wire.CredentialTypeX509 {
		m.security(EventCredential, "", "", errNotX509)
		return errNotX509
	}
	if _, err := m.src.Validator().ValidateMLSCredential(c.Certificates, sigKey, m.now()); err != nil {
		m.security(EventCredential, "", "", err)
		return err
	}
	return nil
}

// me is this sidecar's current MLS identity.
type me struct {
	cred   mls.Credential
	sigKey []byte
	gen    uint64
}

func (m *Manager) currentIdentity() (*me, error) {
	s := m.src.Current()
	k, err := s.MLSSignatureKey()
	if err != nil {
		return nil, fmt.Errorf("e2ee: signature key of the SVID: %w", err)
	}
	return &me{cred: wire.Credential{Type: wire.CredentialTypeX509, Certificates: s.ChainDER()}, sigKey: k, gen: s.Generation()}, nil
}

// leafOptions are the options of every leaf this sidecar makes.
func (m *Manager) leafOptions(id *me) []mls.Option {
	caps := wire.Capabilities{
		Versions:     []wire.ProtocolVersion{wire.MLS10},
		CipherSuites: []wire.CipherSuite{wire.CipherSuite(m.cfg.Suite)},
		Extensions:   []wire.ExtensionType{ExtensionNodeID},
		Credentials:  []wire.CredentialType{wire.CredentialTypeX509},
	}
	return []mls.Option{
		mls.WithSignatureKey(id.sigKey), mls.WithCapabilities(caps),
		mls.WithLeafExtensions(wire.Extension{Type: ExtensionNodeID, Data: []byte(m.node)}),
		mls.WithCredentialValidator(m.validateCredential), mls.WithClock(m.now),
		mls.WithEpochWindow(m.cfg.EpochWindow), mls.WithCredentialSuccessor(m.credentialSuccessor),
	}
}

// groupOptions are the options of every group operation.
func (m *Manager) groupOptions() []mls.Option {
	return []mls.Option{mls.WithCredentialValidator(m.validateCredential), mls.WithClock(m.now), mls.WithEpochWindow(m.cfg.EpochWindow),
		mls.WithCredentialSuccessor(m.credentialSuccessor)}
}

// keyPackageNode returns the node id a KeyPackage's leaf claims.
func keyPackageNode(kp []byte) (string, error) {
	var msg wire.MLSMessage
	if err := wire.Decode(kp, &msg); err != nil || msg.KeyPackage == nil {
		return "", fmt.Errorf("e2ee: not a KeyPackage")
	}
	n := leafNodeID(&msg.KeyPackage.LeafNode)
	if n == "" {
		return "", fmt.Errorf("e2ee: KeyPackage without node id")
	}
	return n, nil
}
