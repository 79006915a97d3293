package mls

import (
	"errors"
	"fmt"

	"github.com/agwproject/agw/mls/schedule"
	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/wire"
)

// The key schedule (RFC 9420 §8), the PSK secret (§8.4), the secret tree
// and its ratchets (§9) and the transcript hashes (§8.2) are those of
// package schedule; this file adapts them to the group's types and errors.

// epochSecrets are the secrets of one epoch. The group keeps every one of
// them except epoch_secret, which is zeroed once the others are derived.
type epochSecrets = schedule.Secrets

// Limits of the per-sender hash ratchets (RFC 9420 §9.4 leaves them to the
// application).
const (
	// maxForwardRatchet is how far ahead of a ratchet a received message's
	// generation may be.
	maxForwardRatchet = 1 << 12
	// ratchetWindow is how many generations below the newest one received
	// a ratchet keeps unused keys for out-of-order messages.
	ratchetWindow = 256
)

// advanceEpoch runs the key schedule for a new epoch from the previous
// init_secret, the commit_secret and the psk_secret (nil for none) and the
// encoded GroupContext of the new epoch.
func advanceEpoch(s *suite.Suite, initSecret, commitSecret, pskSecret, ctx []byte) (*epochSecrets, error) {
	joiner, err := schedule.JoinerSecret(s, initSecret, commitSecret, ctx)
	if err != nil {
		return nil, fmt.Errorf("mls: key schedule: %w", err)
	}
	return joinEpoch(s, joiner, pskSecret, ctx)
}

// joinEpoch runs the key schedule from joiner_secret on (§8), as a joiner
// does.
func joinEpoch(s *suite.Suite, joiner, pskSecret, ctx []byte) (*epochSecrets, error) {
	sec, err := schedule.FromJoinerSecret(s, joiner, pskSecret, ctx)
	if err != nil {
		return nil, fmt.Errorf("mls: key schedule: %w", err)
	}
	clear(sec.EpochSecret)
	sec.EpochSecret = nil
	return sec, nil
}

// secretList returns pointers to every persisted secret of an epoch, in
// the fixed order of the state encoding.
func secretList(e *epochSecrets) []*[]byte {
	return []*[]byte{&e.JoinerSecret, &e.WelcomeSecret, &e.SenderDataSecret, &e.EncryptionSecret,
		&e.ExporterSecret, &e.ExternalSecret, &e.ConfirmationKey, &e.MembershipKey, &e.ResumptionPSK,
		&e.EpochAuthenticator, &e.InitSecret}
}

// pskSecret chains the given PSKs into psk_secret (§8.4); nil for none
// (the key schedule then uses the zero vector).
func pskSecret(s *suite.Suite, ids []wire.PreSharedKeyID, secrets [][]byte) ([]byte, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	psks := make([]schedule.PSK, len(ids))
	for i := range ids {
		psks[i] = schedule.PSK{ID: wire.Encode(&ids[i]), Secret: secrets[i]}
	}
	sec, err := schedule.PSKSecret(s, psks)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
	}
	return sec, nil
}

// interimHash computes the interim transcript hash from a confirmed hash
// and a confirmation tag (§8.2).
func interimHash(s *suite.Suite, confirmed, tag []byte) []byte {
	return schedule.InterimTranscriptHash(s, confirmed, tag)
}

// externalKeyPair derives the external HPKE key pair of an epoch (§8).
func externalKeyPair(sec *epochSecrets) (priv, pub []byte, err error) {
	priv, pub, err = sec.ExternalKeyPair()
	if err != nil {
		return nil, nil, fmt.Errorf("mls: external key pair: %w", err)
	}
	return priv, pub, nil
}

// newSecretTree returns the secret tree of an epoch with the group's
// ratchet limits.
func newSecretTree(s *suite.Suite, encryptionSecret []byte, leaves uint32) (*schedule.SecretTree, error) {
	t, err := schedule.NewSecretTree(s, encryptionSecret, leaves,
		schedule.WithWindow(ratchetWindow), schedule.WithMaxForwardJump(maxForwardRatchet))
	if err != nil {
		return nil, fmt.Errorf("mls: secret tree: %w", err)
	}
	return t, nil
}

// ratchetType is the ratchet that protects content of the given type.
func ratchetType(ct wire.ContentType) schedule.RatchetType {
	if ct == wire.ContentTypeApplication {
		return schedule.Application
	}
	return schedule.Handshake
}

// ratchetError gives a secret tree error the package's sentinel: a leaf
// outside the tree is an unknown sender, a generation too far ahead a
// decryption failure, and a used, too old or exhausted generation
// ErrGenerationReused.
func ratchetError(err error) error {
	switch {
	case errors.Is(err, schedule.ErrLeafOutOfRange):
		return fmt.Errorf("%w: %w", ErrUnknownSender, err)
	case errors.Is(err, schedule.ErrGenerationTooFar):
		return fmt.Errorf("%w: %w", ErrDecrypt, err)
	default:
		return fmt.Errorf("%w: %w", ErrGenerationReused, err)
	}
}
