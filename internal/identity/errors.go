package identity

import (
	"errors"
)

// Sentinel errors. Validation errors wrap exactly one of them (test with
// errors.Is); the message adds the peer's SPIFFE id, serial or fingerprint,
// never key material.
var (
	// ErrMalformed: the certificate chain is empty or does not parse.
	ErrMalformed = errors.New("identity: malformed certificate")
	// ErrUntrusted: the chain does not lead to a CA of the trust bundle.
	ErrUntrusted = errors.New("identity: certificate not issued by the trust bundle")
	// ErrExpired: a certificate of the chain is expired or not yet valid.
	ErrExpired = errors.New("identity: certificate expired or not yet valid")
	// ErrRevoked: the SPIFFE id, serial or fingerprint is on the deny list.
	ErrRevoked = errors.New("identity: certificate revoked (deny list)")
	// ErrNoSPIFFEID: the leaf has no valid SPIFFE id (exactly one spiffe://
	// URI SAN with a non-empty path is required).
	ErrNoSPIFFEID = errors.New("identity: no SPIFFE id in certificate")
	// ErrTrustDomain: the SPIFFE id is outside the allowed trust domains.
	ErrTrustDomain = errors.New("identity: SPIFFE trust domain not allowed")
	// ErrKeyUsage: the leaf may not be used for this purpose (CA
	// certificate, missing digitalSignature, or wrong extended key usage).
	ErrKeyUsage = errors.New("identity: certificate key usage not allowed")
	// ErrKeyMismatch: an MLS signature key differs from the certificate's.
	ErrKeyMismatch = errors.New("identity: signature key does not match certificate")
	// ErrUnauthorized: the peer is valid but not the one this connection
	// expects (see Authorizer).
	ErrUnauthorized = errors.New("identity: peer not authorized")
	// ErrInvalidID: a string is not a valid SPIFFE id.
	ErrInvalidID = errors.New("identity: invalid SPIFFE id")
	// ErrClosed: the Source is closed.
	ErrClosed = errors.New("identity: source closed")
)

// Rejection reasons: the label values of agw_identity_rejections_total.
const (
	ReasonMalformed    = "malformed"
	ReasonUntrusted    = "untrusted"
	ReasonExpired      = "expired"
	ReasonRevoked      = "revoked"
	ReasonNoSPIFFEID   = "no_spiffe_id"
	ReasonTrustDomain  = "trust_domain"
	ReasonKeyUsage     = "key_usage"
	ReasonKeyMismatch  = "key_mismatch"
	ReasonUnauthorized = "unauthorized"
)

var reasons = []struct {
	err    error
	reason string
}{
	{ErrMalformed, ReasonMalformed},
	{ErrUntrusted, ReasonUntrusted},
	{ErrExpired, ReasonExpired},
	{ErrRevoked, ReasonRevoked},
	{ErrNoSPIFFEID, ReasonNoSPIFFEID},
	{ErrTrustDomain, ReasonTrustDomain},
	{ErrKeyUsage, ReasonKeyUsage},
	{ErrKeyMismatch, ReasonKeyMismatch},
	{ErrUnauthorized, ReasonUnauthorized},
}

// Reason maps a validation error to its metric label (one of the Reason*
// constants), or "" for nil and errors of other kinds.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return ""
}
