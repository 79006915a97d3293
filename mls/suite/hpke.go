package suite

import (
	"crypto/hpke"
	"fmt"
)

// GenerateHPKEKey returns a fresh HPKE key pair as (SerializePrivateKey,
// SerializePublicKey) bytes.
func (s *Suite) GenerateHPKEKey() (priv, pub []byte, err error) {
	k, err := s.kem.GenerateKey()
	if err != nil {
		return nil, nil, fmt.Errorf("mls suite: generate HPKE key: %w", err)
	}
	return s.serializeHPKE(k)
}

// DeriveHPKEKey is the KEM's DeriveKeyPair(ikm) of RFC 9180 §7.1.3.
func (s *Suite) DeriveHPKEKey(ikm []byte) (priv, pub []byte, err error) {
	k, err := s.kem.DeriveKeyPair(ikm)
	if err != nil {
		return nil, nil, fmt.Errorf("mls suite: derive HPKE key pair: %w", err)
	}
	return s.serializeHPKE(k)
}

func (s *Suite) serializeHPKE(k hpke.PrivateKey) (priv, pub []byte, err error) {
	priv, err = k.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("mls suite: serialize HPKE private key: %w", err)
	}
	return priv, k.PublicKey().Bytes(), nil
}

// maxStrippedZeros is how many leading zero bytes a NIST-curve HPKE
// private key may lack.
const maxStrippedZeros = 8

// hpkePrivate imports a serialized HPKE private key. A NIST-curve key
// shorter than the curve's scalar is left-padded with zeros first: some
// implementations (and some P-521 test vectors, 65 bytes) serialize the
// scalar without its leading zero bytes, which RFC 9180's
// SerializePrivateKey does not allow but which denotes the same scalar.
// At most maxStrippedZeros bytes may be missing: a random scalar has more
// leading zero bytes with probability 2^-64, so a shorter key is taken to
// be truncated and refused.
func (s *Suite) hpkePrivate(priv []byte) (hpke.PrivateKey, error) {
	if n := s.nistPrivSz; n > 0 && len(priv) >= n-maxStrippedZeros && len(priv) < n {
		padded := make([]byte, n)
		copy(padded[n-len(priv):], priv)
		priv = padded
	}
	k, err := s.kem.NewPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE private key (%d bytes) for %s", ErrInvalidKey, len(priv), s.id)
	}
	return k, nil
}

func (s *Suite) hpkePublic(pub []byte) (hpke.PublicKey, error) {
	k, err := s.kem.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE public key (%d bytes) for %s", ErrInvalidKey, len(pub), s.id)
	}
	return k, nil
}

// HPKEPublicKey returns the public key of a serialized HPKE private key.
func (s *Suite) HPKEPublicKey(priv []byte) ([]byte, error) {
	k, err := s.hpkePrivate(priv)
	if err != nil {
		return nil, err
	}
	return k.PublicKey().Bytes(), nil
}

// ValidateHPKEPublicKey reports whether pub is a valid public key encoding
// for the suite's KEM.
func (s *Suite) ValidateHPKEPublicKey(pub []byte) error {
	_, err := s.hpkePublic(pub)
	return err
}

// encryptContext encodes EncryptContext { opaque label<V> = "MLS 1.0 " +
// label; opaque context<V>; } (RFC 9420 §5.1.3).
func encryptContext(label string, context []byte) []byte {
	return appendLabelled(make([]byte, 0, labelledLen(label, context)), label, context)
}

// EncryptWithLabel is RFC 9420 §5.1.3: SealBase(pub, EncryptContext, "",
// plaintext). It returns the KEM output and the ciphertext separately, as
// HPKECiphertext carries them.
func (s *Suite) EncryptWithLabel(pub []byte, label string, context, plaintext []byte) (kemOutput, ciphertext []byte, err error) {
	pk, err := s.hpkePublic(pub)
	if err != nil {
		return nil, nil, err
	}
	enc, sender, err := hpke.NewSender(pk, s.hpkeKDF, s.hpkeAEAD, encryptContext(label, context))
	if err != nil {
		return nil, nil, fmt.Errorf("mls suite: HPKE setup: %w", err)
	}
	ct, err := sender.Seal(nil, plaintext)
	if err != nil {
		return nil, nil, fmt.Errorf("mls suite: HPKE seal: %w", err)
	}
	return enc, ct, nil
}

// DecryptWithLabel is RFC 9420 §5.1.3: OpenBase(kemOutput, priv,
// EncryptContext, "", ciphertext). A bad KEM output or ciphertext gives an
// error wrapping ErrDecrypt; a malformed private key ErrInvalidKey.
func (s *Suite) DecryptWithLabel(priv []byte, label string, context, kemOutput, ciphertext []byte) ([]byte, error) {
	sk, err := s.hpkePrivate(priv)
	if err != nil {
		return nil, err
	}
	r, err := hpke.NewRecipient(kemOutput, sk, s.hpkeKDF, s.hpkeAEAD, encryptContext(label, context))
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE decapsulation failed", ErrDecrypt)
	}
	pt, err := r.Open(nil, ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE open", ErrDecrypt)
	}
	return pt, nil
}

// HPKEExportSender sets up an HPKE base-mode sender context to pub with the
// given info and returns the KEM output and Export(exporterContext, n).
func (s *Suite) HPKEExportSender(pub, info []byte, exporterContext string, n int) (kemOutput, secret []byte, err error) {
	pk, err := s.hpkePublic(pub)
	if err != nil {
		return nil, nil, err
	}
	enc, sender, err := hpke.NewSender(pk, s.hpkeKDF, s.hpkeAEAD, info)
	if err != nil {
		return nil, nil, fmt.Errorf("mls suite: HPKE setup: %w", err)
	}
	secret, err = sender.Export(exporterContext, n)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: HPKE export: %v", ErrInvalidLength, err)
	}
	return enc, secret, nil
}

// HPKEExportReceiver is the receiving side of HPKEExportSender.
func (s *Suite) HPKEExportReceiver(priv, kemOutput, info []byte, exporterContext string, n int) ([]byte, error) {
	sk, err := s.hpkePrivate(priv)
	if err != nil {
		return nil, err
	}
	r, err := hpke.NewRecipient(kemOutput, sk, s.hpkeKDF, s.hpkeAEAD, info)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE decapsulation failed", ErrDecrypt)
	}
	secret, err := r.Export(exporterContext, n)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE export: %v", ErrInvalidLength, err)
	}
	return secret, nil
}

// externalInitLabel is the exporter context of RFC 9420 §8.3.
const externalInitLabel = "MLS 1.0 external init secret"

// ExternalInitSender is the joiner's side of an external commit (RFC 9420
// §8.3): SetupBaseS(external_pub, "") and init_secret =
// Export("MLS 1.0 external init secret", Nh). kemOutput goes into the
// ExternalInit proposal.
func (s *Suite) ExternalInitSender(externalPub []byte) (kemOutput, initSecret []byte, err error) {
	return s.HPKEExportSender(externalPub, nil, externalInitLabel, s.nh)
}

// ExternalInitReceiver is the members' side of ExternalInitSender, using the
// external private key derived from external_secret.
func (s *Suite) ExternalInitReceiver(externalPriv, kemOutput []byte) (initSecret []byte, err error) {
	return s.HPKEExportReceiver(externalPriv, kemOutput, nil, externalInitLabel, s.nh)
}
