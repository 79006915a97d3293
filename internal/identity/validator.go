package identity

import (
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// Usage says what a peer's certificate is being checked for.
type Usage int

// Usages.
const (
	// UsageServer: the peer is a TLS server (extended key usage serverAuth).
	UsageServer Usage = iota + 1
	// UsageClient: the peer is a TLS client (extended key usage clientAuth).
	UsageClient
	// UsageMLS: the certificate is an MLS credential (any extended key usage;
	// digitalSignature is required as for every SVID).
	UsageMLS
)

func (u Usage) String() string {
	switch u {
	case UsageServer:
		return "server"
	case UsageClient:
		return "client"
	case UsageMLS:
		return "mls"
	}
	return fmt.Sprintf("usage(%d)", int(u))
}

// Validator checks peers' certificate chains against a trust bundle, the
// allowed trust domains and a deny list. The bundle and the deny list can be
// swapped at any time (a Source does so on reload); the trust domains are
// fixed. It is safe for concurrent use.
type Validator struct {
	bundle  atomic.Pointer[Bundle]
	deny    atomic.Pointer[DenyList]
	domains []string
	opts    options
	m       *validatorMetrics
}

// NewValidator returns a validator trusting bundle for the given trust
// domains (at least one) and denying nothing until SetDenyList.
func NewValidator(bundle *Bundle, trustDomains []string, opts ...Option) (*Validator, error) {
	o := newOptions(opts)
	m, cs := newValidatorMetrics()
	v, err := newValidator(bundle, trustDomains, o, m)
	if err != nil {
		return nil, err
	}
	if err := register(o.reg, cs); err != nil {
		return nil, err
	}
	return v, nil
}

func newValidator(bundle *Bundle, trustDomains []string, o options, m *validatorMetrics) (*Validator, error) {
	if bundle == nil {
		return nil, errors.New("identity validator: no trust bundle")
	}
	if len(trustDomains) == 0 {
		return nil, errors.New("identity validator: no allowed trust domain")
	}
	v := &Validator{opts: o, m: m}
	for _, td := range trustDomains {
		if _, err := TrustDomainID(td); err != nil {
			return nil, err
		}
		if !slices.Contains(v.domains, td) {
			v.domains = append(v.domains, td)
		}
	}
	v.bundle.Store(bundle)
	v.deny.Store(&DenyList{})
	return v, nil
}

// SetBundle replaces the trust bundle (nil is ignored).
func (v *Validator) SetBundle(b *Bundle) {
	if b != nil {
		v.bundle.Store(b)
	}
}

// Bundle returns the current trust bundle.
func (v *Validator) Bundle() *Bundle { return v.bundle.Load() }

// SetDenyList replaces the deny list (nil denies nothing).
func (v *Validator) SetDenyList(d *DenyList) {
	if d == nil {
		d = &DenyList{}
	}
	v.deny.Store(d)
}

// DenyList returns the current deny list.
func (v *Validator) DenyList() *DenyList { return v.deny.Load() }

// TrustDomains returns the allowed trust domains.
func (v *Validator) TrustDomains() []string { return slices.Clone(v.domains) }

// Validate checks chain (the peer's leaf first, then the intermediates it
// sent) at time at (zero: now) for usage, and returns the leaf's SPIFFE id.
// Errors wrap one sentinel: ErrMalformed, ErrExpired, ErrKeyUsage,
// ErrUntrusted, ErrNoSPIFFEID, ErrTrustDomain or ErrRevoked. Every refusal
// is counted and logged as a security event.
func (v *Validator) Validate(chain []*x509.Certificate, usage Usage, at time.Time) (ID, error) {
	id, err := v.validate(chain, usage, at)
	v.record(id, chain, usage, err)
	if err != nil {
		return ID{}, err
	}
	return id, nil
}

// ValidateDER is Validate for DER-encoded certificates (as carried in TLS
// and MLS X.509 credentials).
func (v *Validator) ValidateDER(chain [][]byte, usage Usage, at time.Time) (ID, error) {
	certs, err := parseDERChain(chain)
	if err != nil {
		v.record(ID{}, nil, usage, err)
		return ID{}, err
	}
	return v.Validate(certs, usage, at)
}

// ValidateMLSCredential checks an MLS X.509 credential: the DER chain is
// validated for UsageMLS at time at, and signatureKey (the leaf node's
// signature key, in MLS encoding) must be the leaf certificate's public key
// (else ErrKeyMismatch). It fits mls.WithCredentialValidator:
//
//	func(c wire.Credential, sk []byte) error {
//		_, err := v.ValidateMLSCredential(c.Certificates, sk, time.Time{})
//		return err
//	}
func (v *Validator) ValidateMLSCredential(chain [][]byte, signatureKey []byte, at time.Time) (ID, error) {
	certs, err := parseDERChain(chain)
	if err == nil {
		var id ID
		id, err = v.validate(certs, UsageMLS, at)
		if err == nil {
			var pub []byte
			pub, err = SignaturePublicKeyBytes(certs[0].PublicKey)
			if err == nil && subtle.ConstantTimeCompare(pub, signatureKey) != 1 {
				err = fmt.Errorf("%w: MLS signature key differs from the public key of %s (serial %s)", ErrKeyMismatch, id, serialHex(certs[0]))
			}
			if err == nil {
				v.record(id, certs, UsageMLS, nil)
				return id, nil
			}
		}
		v.record(id, certs, UsageMLS, err)
		return ID{}, err
	}
	v.record(ID{}, nil, UsageMLS, err)
	return ID{}, err
}

// MaxChainLength bounds the certificates a peer may present (leaf and
// intermediates), so a hostile credential cannot make validation costly.
const MaxChainLength = 8

func parseDERChain(chain [][]byte) ([]*x509.Certificate, error) {
	if len(chain) == 0 {
		return nil, fmt.Errorf("%w: empty certificate chain", ErrMalformed)
	}
	if len(chain) > MaxChainLength {
		return nil, fmt.Errorf("%w: chain of %d certificates; at most %d", ErrMalformed, len(chain), MaxChainLength)
	}
	certs := make([]*x509.Certificate, 0, len(chain))
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %d: %w", ErrMalformed, i, err)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

func (v *Validator) validate(chain []*x509.Certificate, usage Usage, at time.Time) (ID, error) {
	return v.validateWith(v.bundle.Load(), v.deny.Load(), chain, usage, at)
}

func (v *Validator) validateWith(bundle *Bundle, deny *DenyList, chain []*x509.Certificate, usage Usage, at time.Time) (ID, error) {
	if len(chain) == 0 || slices.Contains(chain, nil) {
		return ID{}, fmt.Errorf("%w: empty certificate chain", ErrMalformed)
	}
	if len(chain) > MaxChainLength {
		return ID{}, fmt.Errorf("%w: chain of %d certificates; at most %d", ErrMalformed, len(chain), MaxChainLength)
	}
	if at.IsZero() {
		at = v.opts.now()
	}
	leaf := chain[0]
	who := leafName(leaf)
	if at.Before(leaf.NotBefore) {
		return ID{}, fmt.Errorf("%w: %s is not valid before %s", ErrExpired, who, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if at.After(leaf.NotAfter) {
		return ID{}, fmt.Errorf("%w: %s expired at %s", ErrExpired, who, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if err := checkLeafUsage(leaf); err != nil {
		return ID{}, err
	}
	vo := x509.VerifyOptions{
		Roots:         bundle.pool,
		Intermediates: x509.NewCertPool(),
		CurrentTime:   at,
	}
	for _, c := range chain[1:] {
		vo.Intermediates.AddCert(c)
	}
	switch usage {
	case UsageServer:
		vo.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case UsageClient:
		vo.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	case UsageMLS:
		vo.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
	default:
		return ID{}, fmt.Errorf("identity: unknown usage %d", int(usage))
	}
	chains, err := leaf.Verify(vo)
	if err != nil {
		return ID{}, mapVerifyError(who, err)
	}
	id, err := IDFromCertificate(leaf)
	if err != nil {
		return ID{}, err
	}
	if !slices.Contains(v.domains, id.TrustDomain()) {
		return id, fmt.Errorf("%w: %s is outside the allowed trust domains %v", ErrTrustDomain, id, v.domains)
	}
	for _, ch := range chains {
		// A CA naming a SPIFFE trust domain vouches for that domain only.
		for _, ca := range ch[1:] {
			if caID, ok := caTrustDomain(ca); ok && caID != id.TrustDomain() {
				return id, fmt.Errorf("%w: %s was issued under a CA of trust domain %q", ErrTrustDomain, id, caID)
			}
		}
		if err := deny.Check(id, ch); err != nil {
			return id, err
		}
	}
	return id, nil
}

// caTrustDomain returns the trust domain of a CA certificate that carries a
// spiffe://<td> URI SAN.
func caTrustDomain(c *x509.Certificate) (string, bool) {
	for _, u := range c.URIs {
		if u.Scheme != "spiffe" {
			continue
		}
		if id, err := ParseID(u.String()); err == nil {
			return id.TrustDomain(), true
		}
	}
	return "", false
}

func mapVerifyError(who string, err error) error {
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) {
		switch inv.Reason {
		case x509.Expired:
			return fmt.Errorf("%w: chain of %s: %w", ErrExpired, who, err)
		case x509.IncompatibleUsage:
			return fmt.Errorf("%w: chain of %s: %w", ErrKeyUsage, who, err)
		}
	}
	return fmt.Errorf("%w: %s: %w", ErrUntrusted, who, err)
}

func leafName(c *x509.Certificate) string {
	if len(c.URIs) == 1 {
		return fmt.Sprintf("%s (serial %s)", truncate(c.URIs[0].String()), serialHex(c))
	}
	return "certificate serial " + serialHex(c)
}

func (v *Validator) record(id ID, chain []*x509.Certificate, usage Usage, err error) {
	if err == nil {
		v.m.accepted.Inc()
		return
	}
	reason := Reason(err)
	if reason == "" {
		reason = ReasonMalformed
	}
	v.m.rejections[reason].Inc()
	attrs := []any{"security_event", "credential_rejected", "reason", reason, "usage", usage.String(), "error", err}
	if !id.IsZero() {
		attrs = append(attrs, "spiffe_id", id.String())
	}
	if len(chain) > 0 && chain[0] != nil {
		attrs = append(attrs, "serial", serialHex(chain[0]), "sha256", FingerprintOf(chain[0]).String())
	}
	v.opts.log.Warn("peer credential refused", attrs...)
}

// recordUnauthorized counts an authorizer's refusal.
func (v *Validator) recordUnauthorized(id ID, err error) {
	v.m.rejections[ReasonUnauthorized].Inc()
	v.opts.log.Warn("peer credential refused", "security_event", "credential_rejected", "reason", ReasonUnauthorized, "spiffe_id", id.String(), "error", err)
}
