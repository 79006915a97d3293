package mls

import (
	"fmt"

	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/wire"
)

// epochSecrets are the secrets derived from an epoch secret (RFC 9420 §8).
type epochSecrets struct {
	joiner         []byte
	welcome        []byte
	senderData     []byte
	encryption     []byte
	exporter       []byte
	external       []byte
	confirmation   []byte
	membership     []byte
	resumption     []byte
	authentication []byte
	init           []byte
}

// zeros returns an all-zero vector of length n.
func zeros(n int) []byte { return make([]byte, n) }

// deriveJoiner computes the joiner secret of the new epoch from the
// previous init secret, the commit secret and the new GroupContext.
func deriveJoiner(s *suite.Suite, initSecret, commitSecret, ctx []byte) []byte {
	return s.ExpandWithLabel(s.Extract(initSecret, commitSecret), "joiner", ctx, s.Nh())
}

// deriveEpoch derives all secrets of an epoch from its joiner secret, the
// PSK secret and the encoded GroupContext.
func deriveEpoch(s *suite.Suite, joiner, pskSecret, ctx []byte) *epochSecrets {
	if pskSecret == nil {
		pskSecret = zeros(s.Nh())
	}
	member := s.Extract(joiner, pskSecret)
	epoch := s.ExpandWithLabel(member, "epoch", ctx, s.Nh())
	e := &epochSecrets{
		joiner:         append([]byte(nil), joiner...),
		welcome:        s.DeriveSecret(member, "welcome"),
		senderData:     s.DeriveSecret(epoch, "sender data"),
		encryption:     s.DeriveSecret(epoch, "encryption"),
		exporter:       s.DeriveSecret(epoch, "exporter"),
		external:       s.DeriveSecret(epoch, "external"),
		confirmation:   s.DeriveSecret(epoch, "confirm"),
		membership:     s.DeriveSecret(epoch, "membership"),
		resumption:     s.DeriveSecret(epoch, "resumption"),
		authentication: s.DeriveSecret(epoch, "authentication"),
		init:           s.DeriveSecret(epoch, "init"),
	}
	clear(member)
	clear(epoch)
	return e
}

// welcomeKey derives the key and nonce that encrypt a Welcome's GroupInfo.
func welcomeKey(s *suite.Suite, welcomeSecret []byte) (key, nonce []byte) {
	return s.ExpandWithLabel(welcomeSecret, "key", nil, s.AEADKeySize()),
		s.ExpandWithLabel(welcomeSecret, "nonce", nil, s.AEADNonceSize())
}

// welcomeSecretFor derives the welcome secret from a joiner secret and PSK
// secret (used by joiners before they know the GroupContext).
func welcomeSecretFor(s *suite.Suite, joiner, pskSecret []byte) []byte {
	if pskSecret == nil {
		pskSecret = zeros(s.Nh())
	}
	return s.DeriveSecret(s.Extract(joiner, pskSecret), "welcome")
}

// pskSecret chains the given PSKs into psk_secret (§8.4); nil for none
// (the caller then uses the zero vector).
func pskSecret(s *suite.Suite, ids []wire.PreSharedKeyID, psks [][]byte) []byte {
	if len(ids) == 0 {
		return nil
	}
	sec := zeros(s.Nh())
	for i := range ids {
		extracted := s.Extract(zeros(s.Nh()), psks[i])
		label := wire.Encode(&wire.PSKLabel{ID: ids[i], Index: uint16(i), Count: uint16(len(ids))})
		input := s.ExpandWithLabel(extracted, "derived psk", label, s.Nh())
		sec = s.Extract(input, sec)
	}
	return sec
}

// exporter computes MLS-Exporter(label, context, n) (§8.5).
func exporter(s *suite.Suite, exporterSecret []byte, label string, context []byte, n int) []byte {
	return s.ExpandWithLabel(s.DeriveSecret(exporterSecret, label), "exported", s.Hash(context), n)
}

// interimFrom computes the interim transcript hash from a confirmed hash
// and a confirmation tag (§8.2, used by joiners and at group creation).
func interimFrom(s *suite.Suite, confirmed, tag []byte) []byte {
	ii := wire.Encode(&wire.InterimTranscriptHashInput{ConfirmationTag: tag})
	return s.Hash(append(append([]byte(nil), confirmed...), ii...))
}

// externalKeyPair derives the external HPKE key pair of an epoch (§8).
func externalKeyPair(s *suite.Suite, external []byte) (priv, pub []byte, err error) {
	priv, pub, err = s.DeriveHPKEKey(external)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: external key pair: %w", err)
	}
	return priv, pub, nil
}
