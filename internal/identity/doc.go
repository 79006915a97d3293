// Package identity is the identity and authentication service of agw: every
// sidecar holds an X.509 SVID (a certificate whose single URI SAN is a SPIFFE
// id such as spiffe://example.org/ns/shop/sa/checkout) and a trust bundle of
// CA certificates, loaded from PEM files (the tls.crt, tls.key and ca.crt of
// a Kubernetes secret or cert-manager) and reloaded when they change.
//
// The same certificate serves peer mutual TLS (ServerTLSConfig,
// ClientTLSConfig) and the MLS X.509 credential (Snapshot.MLSSignatureKey,
// Validator.ValidateMLSCredential). A Validator checks a peer's chain against
// the current bundle, its validity period, key usage, SPIFFE id, allowed trust
// domains and a reloadable deny list, and answers with the peer's ID or one
// of the sentinel errors (ErrUntrusted, ErrExpired, ErrRevoked, ...).
//
// NewCA makes a throwaway in-memory CA for the demo and for tests
// (CA.MemorySource gives a ready Source).
//
// Wiring: NewSource(cfg) loads the files (ConfigFromEnv, BindFlags,
// Validate for AGW_IDENTITY_*); run Source.Run(ctx) in a goroutine to follow
// changes; credentials.NewTLS(src.ServerTLSConfig()) and
// credentials.NewTLS(src.ClientTLSConfig()) secure the peer links, and
// PeerIDFromContext names the peer in handlers. The MLS layer signs with
// Snapshot.MLSSignatureKey, presents Snapshot.ChainDER as its X.509
// credential, validates members with Validator.ValidateMLSCredential, and
// on Subscribe events commits an Update (ChangeCertificate) or removes
// members whose credentials are now refused (ChangeDenyList, ChangeBundle).
//
// Key material never appears in logs or error strings of this package.
package identity
