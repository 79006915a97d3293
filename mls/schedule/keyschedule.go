package schedule

import (
	"errors"
	"fmt"

	"github.com/agwproject/agw/mls/suite"
)

// Errors. Functions wrap them; compare with errors.Is.
var (
	// ErrSecretLength: an input secret does not have the suite's Nh length.
	ErrSecretLength = errors.New("mls schedule: secret has the wrong length")
	// ErrLength: a requested output length is out of range.
	ErrLength = errors.New("mls schedule: invalid output length")
)

// Secrets holds the secrets of one epoch (RFC 9420 §8, table in §8).
type Secrets struct {
	Suite *suite.Suite

	JoinerSecret  []byte
	WelcomeSecret []byte
	EpochSecret   []byte

	SenderDataSecret   []byte // "sender data"
	EncryptionSecret   []byte // "encryption"
	ExporterSecret     []byte // "exporter"
	ExternalSecret     []byte // "external"
	ConfirmationKey    []byte // "confirm"
	MembershipKey      []byte // "membership"
	ResumptionPSK      []byte // "resumption"
	EpochAuthenticator []byte // "authentication"

	// InitSecret is init_secret for the next epoch ("init").
	InitSecret []byte
}

func checkLen(s *suite.Suite, name string, b []byte) error {
	if len(b) != s.Nh() {
		return fmt.Errorf("%w: %s is %d bytes, %s needs %d", ErrSecretLength, name, len(b), s.ID(), s.Nh())
	}
	return nil
}

// orZero returns b, or Nh zero bytes when b is nil (the "0" of RFC 9420
// §8 for an absent commit_secret or psk_secret).
func orZero(s *suite.Suite, b []byte) []byte {
	if b == nil {
		return make([]byte, s.Nh())
	}
	return b
}

// JoinerSecret derives joiner_secret = ExpandWithLabel(Extract(init_secret,
// commit_secret), "joiner", GroupContext, Nh). A nil commitSecret stands for
// the all-zero commit secret.
func JoinerSecret(s *suite.Suite, initSecret, commitSecret, groupContext []byte) ([]byte, error) {
	if err := checkLen(s, "init_secret", initSecret); err != nil {
		return nil, err
	}
	commitSecret = orZero(s, commitSecret)
	if err := checkLen(s, "commit_secret", commitSecret); err != nil {
		return nil, err
	}
	prk := s.Extract(initSecret, commitSecret)
	defer clear(prk)
	return s.ExpandWithLabel(prk, "joiner", groupContext, s.Nh()), nil
}

// Advance runs the key schedule of RFC 9420 §8 for a new epoch from the
// previous epoch's init_secret, the commit_secret (nil for none) and the
// psk_secret (nil for none), with groupContext the serialized GroupContext
// of the new epoch.
func Advance(s *suite.Suite, initSecret, commitSecret, pskSecret, groupContext []byte) (*Secrets, error) {
	joiner, err := JoinerSecret(s, initSecret, commitSecret, groupContext)
	if err != nil {
		return nil, err
	}
	return FromJoinerSecret(s, joiner, pskSecret, groupContext)
}

// WelcomeSecret derives welcome_secret = DeriveSecret(Extract(joiner_secret,
// psk_secret), "welcome"); a new member needs it to decrypt the GroupInfo
// before it knows the GroupContext.
func WelcomeSecret(s *suite.Suite, joinerSecret, pskSecret []byte) ([]byte, error) {
	member, err := memberSecret(s, joinerSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	defer clear(member)
	return s.DeriveSecret(member, "welcome"), nil
}

// memberSecret is Extract(joiner_secret, psk_secret), the secret between
// joiner_secret and welcome_secret and epoch_secret (RFC 9420 §8); a nil
// pskSecret stands for the all-zero one.
func memberSecret(s *suite.Suite, joinerSecret, pskSecret []byte) ([]byte, error) {
	if err := checkLen(s, "joiner_secret", joinerSecret); err != nil {
		return nil, err
	}
	pskSecret = orZero(s, pskSecret)
	if err := checkLen(s, "psk_secret", pskSecret); err != nil {
		return nil, err
	}
	return s.Extract(joinerSecret, pskSecret), nil
}

// FromJoinerSecret runs the key schedule from joiner_secret on, as a member
// joining from a Welcome does.
func FromJoinerSecret(s *suite.Suite, joinerSecret, pskSecret, groupContext []byte) (*Secrets, error) {
	member, err := memberSecret(s, joinerSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	defer clear(member) // needed for nothing else
	epoch := s.ExpandWithLabel(member, "epoch", groupContext, s.Nh())
	return &Secrets{
		Suite:              s,
		JoinerSecret:       joinerSecret,
		WelcomeSecret:      s.DeriveSecret(member, "welcome"),
		EpochSecret:        epoch,
		SenderDataSecret:   s.DeriveSecret(epoch, "sender data"),
		EncryptionSecret:   s.DeriveSecret(epoch, "encryption"),
		ExporterSecret:     s.DeriveSecret(epoch, "exporter"),
		ExternalSecret:     s.DeriveSecret(epoch, "external"),
		ConfirmationKey:    s.DeriveSecret(epoch, "confirm"),
		MembershipKey:      s.DeriveSecret(epoch, "membership"),
		ResumptionPSK:      s.DeriveSecret(epoch, "resumption"),
		EpochAuthenticator: s.DeriveSecret(epoch, "authentication"),
		InitSecret:         s.DeriveSecret(epoch, "init"),
	}, nil
}

// ExternalKeyPair derives the epoch's external HPKE key pair,
// DeriveKeyPair(external_secret) (RFC 9420 §8.3); pub is external_pub of
// the ExternalPub extension.
func (e *Secrets) ExternalKeyPair() (priv, pub []byte, err error) {
	return e.Suite.DeriveHPKEKey(e.ExternalSecret)
}

// Export is MLS-Exporter(label, context, length) (RFC 9420 §8.5):
// ExpandWithLabel(DeriveSecret(exporter_secret, label), "exported",
// Hash(context), length).
func (e *Secrets) Export(label string, context []byte, length int) ([]byte, error) {
	return Export(e.Suite, e.ExporterSecret, label, context, length)
}

// Export is MLS-Exporter on a given exporter_secret.
func Export(s *suite.Suite, exporterSecret []byte, label string, context []byte, length int) ([]byte, error) {
	if length < 0 || length > 255*s.Nh() {
		return nil, fmt.Errorf("%w: exporter length %d (maximum %d)", ErrLength, length, 255*s.Nh())
	}
	return s.ExpandWithLabel(s.DeriveSecret(exporterSecret, label), "exported", s.Hash(context), length), nil
}

// WelcomeKeyNonce derives the key and nonce that encrypt the GroupInfo of a
// Welcome (RFC 9420 §12.4.3.1) from welcome_secret.
func WelcomeKeyNonce(s *suite.Suite, welcomeSecret []byte) (key, nonce []byte) {
	return s.ExpandWithLabel(welcomeSecret, "key", nil, s.AEADKeySize()),
		s.ExpandWithLabel(welcomeSecret, "nonce", nil, s.AEADNonceSize())
}

// WelcomeKeyNonce derives the Welcome's GroupInfo key and nonce.
func (e *Secrets) WelcomeKeyNonce() (key, nonce []byte) {
	return WelcomeKeyNonce(e.Suite, e.WelcomeSecret)
}

// SecretTree returns the epoch's secret tree over the given number of
// leaves (the ratchet tree's leaf count).
func (e *Secrets) SecretTree(leaves uint32, opts ...Option) (*SecretTree, error) {
	return NewSecretTree(e.Suite, e.EncryptionSecret, leaves, opts...)
}
