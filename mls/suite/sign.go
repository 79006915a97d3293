package suite

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
)

// signContent encodes SignContent { opaque label<V> = "MLS 1.0 " + label;
// opaque content<V>; } (RFC 9420 §5.1.2).
func signContent(label string, content []byte) []byte {
	return appendLabelled(make([]byte, 0, labelledLen(label, content)), label, content)
}

// GenerateSignatureKey returns a fresh signature key pair: an Ed25519 seed
// and public key, or an ECDSA big-endian scalar and uncompressed point.
func (s *Suite) GenerateSignatureKey() (priv, pub []byte, err error) {
	if s.sig == sigEd25519 {
		pk, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, fmt.Errorf("mls suite: generate Ed25519 key: %w", err)
		}
		return sk.Seed(), []byte(pk), nil
	}
	k, err := ecdsa.GenerateKey(s.curve, rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("mls suite: generate ECDSA key: %w", err)
	}
	priv, err = k.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("mls suite: encode ECDSA key: %w", err)
	}
	pub, err = k.PublicKey.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("mls suite: encode ECDSA key: %w", err)
	}
	return priv, pub, nil
}

// Signer is a parsed signature private key, for callers that sign many
// times with one key (parsing an Ed25519 seed or ECDSA scalar costs about
// as much as a signature).
type Signer struct {
	s     *Suite
	ed    ed25519.PrivateKey
	ecdsa *ecdsa.PrivateKey
}

// NewSigner parses a signature private key.
func (s *Suite) NewSigner(priv []byte) (*Signer, error) {
	if s.sig == sigEd25519 {
		if len(priv) != ed25519.SeedSize {
			return nil, fmt.Errorf("%w: Ed25519 private key must be a %d-byte seed, got %d bytes", ErrInvalidKey, ed25519.SeedSize, len(priv))
		}
		return &Signer{s: s, ed: ed25519.NewKeyFromSeed(priv)}, nil
	}
	if len(priv) == 0 || len(priv) > s.scalarSz {
		return nil, fmt.Errorf("%w: ECDSA private key of %d bytes for %s", ErrInvalidKey, len(priv), s.id)
	}
	if len(priv) < s.scalarSz { // tolerate a big-endian scalar without leading zeros
		p := make([]byte, s.scalarSz)
		copy(p[s.scalarSz-len(priv):], priv)
		priv = p
	}
	k, err := ecdsa.ParseRawPrivateKey(s.curve, priv)
	if err != nil {
		return nil, fmt.Errorf("%w: ECDSA private key for %s is not a valid scalar", ErrInvalidKey, s.id)
	}
	return &Signer{s: s, ecdsa: k}, nil
}

// PublicKey returns the signer's raw public key.
func (g *Signer) PublicKey() []byte {
	if g.ed != nil {
		return append([]byte(nil), g.ed.Public().(ed25519.PublicKey)...)
	}
	pub, err := g.ecdsa.PublicKey.Bytes()
	if err != nil { // cannot happen for a key from ParseRawPrivateKey
		return nil
	}
	return pub
}

// SignWithLabel signs SignContent{label, content} (RFC 9420 §5.1.2).
func (g *Signer) SignWithLabel(label string, content []byte) ([]byte, error) {
	msg := signContent(label, content)
	if g.ed != nil {
		return ed25519.Sign(g.ed, msg), nil
	}
	sig, err := ecdsa.SignASN1(rand.Reader, g.ecdsa, g.s.Hash(msg))
	if err != nil {
		return nil, fmt.Errorf("mls suite: ECDSA sign: %w", err)
	}
	return sig, nil
}

// SignaturePublicKey returns the public key of a signature private key.
func (s *Suite) SignaturePublicKey(priv []byte) ([]byte, error) {
	g, err := s.NewSigner(priv)
	if err != nil {
		return nil, err
	}
	pub := g.PublicKey()
	if pub == nil {
		return nil, fmt.Errorf("%w: cannot encode public key", ErrInvalidKey)
	}
	return pub, nil
}

// SignWithLabel is RFC 9420 §5.1.2: Signature.Sign(priv, SignContent).
func (s *Suite) SignWithLabel(priv []byte, label string, content []byte) ([]byte, error) {
	g, err := s.NewSigner(priv)
	if err != nil {
		return nil, err
	}
	return g.SignWithLabel(label, content)
}

// VerifyWithLabel is RFC 9420 §5.1.2: Signature.Verify(pub, SignContent,
// signature). It returns nil on success, an error wrapping ErrVerify for a
// bad signature and one wrapping ErrInvalidKey for a malformed public key.
func (s *Suite) VerifyWithLabel(pub []byte, label string, content, signature []byte) error {
	msg := signContent(label, content)
	if s.sig == sigEd25519 {
		if len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 public key of %d bytes", ErrInvalidKey, len(pub))
		}
		if !ed25519.Verify(ed25519.PublicKey(pub), msg, signature) {
			return fmt.Errorf("%w: Ed25519 signature with label %q", ErrVerify, label)
		}
		return nil
	}
	k, err := ecdsa.ParseUncompressedPublicKey(s.curve, pub)
	if err != nil {
		return fmt.Errorf("%w: ECDSA public key for %s is not a valid uncompressed point", ErrInvalidKey, s.id)
	}
	if !ecdsa.VerifyASN1(k, s.Hash(msg), signature) {
		return fmt.Errorf("%w: ECDSA signature with label %q", ErrVerify, label)
	}
	return nil
}

// ValidateSignaturePublicKey reports whether pub is a valid signature public
// key encoding for the suite.
func (s *Suite) ValidateSignaturePublicKey(pub []byte) error {
	if s.sig == sigEd25519 {
		if len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 public key of %d bytes", ErrInvalidKey, len(pub))
		}
		return nil
	}
	if _, err := ecdsa.ParseUncompressedPublicKey(s.curve, pub); err != nil {
		return fmt.Errorf("%w: ECDSA public key for %s is not a valid uncompressed point", ErrInvalidKey, s.id)
	}
	return nil
}
