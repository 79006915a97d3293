package suite

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"sync"

	"github.com/agwproject/agw/mls/codec"
)

// signHead appends the encoding of SignContent { opaque label<V> =
// "MLS 1.0 " + label; opaque content<V>; } (RFC 9420 §5.1.2) up to the
// content bytes, for content of n bytes.
func signHead(dst []byte, label string, n int) ([]byte, error) {
	dst, _ = codec.AppendVarint(dst, len(labelPrefix)+len(label))
	dst = append(dst, labelPrefix...)
	dst = append(dst, label...)
	dst, err := codec.AppendVarint(dst, n)
	if err != nil {
		return nil, fmt.Errorf("%w: signed content of %d bytes", ErrInvalidLength, n)
	}
	return dst, nil
}

func vecLen(parts [][]byte) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}

// maxPooled is the largest scratch buffer kept for reuse.
const maxPooled = 4 << 20

// scratch holds the buffers Ed25519 signs and verifies from: it needs the
// whole SignContent in one slice, which for a large application message
// is as large as the message.
var scratch = sync.Pool{New: func() any { return new([]byte) }}

// withSignContent calls f with the encoded SignContent{label, content}
// (content the concatenation of parts) in a scratch buffer that is
// cleared and reused afterwards: f must not keep it.
func withSignContent(label string, parts [][]byte, f func(msg []byte)) error {
	n := vecLen(parts)
	var head [64]byte
	h, err := signHead(head[:0], label, n)
	if err != nil {
		return err
	}
	bp := scratch.Get().(*[]byte)
	need := len(h) + n
	buf := *bp
	if cap(buf) < need {
		buf = make([]byte, 0, need)
	}
	buf = append(buf[:0], h...)
	for _, p := range parts {
		buf = append(buf, p...)
	}
	f(buf)
	clear(buf)
	if cap(buf) <= maxPooled {
		*bp = buf[:0]
		scratch.Put(bp)
	}
	return nil
}

// hashSignContent returns the suite's hash of SignContent{label, content}
// (content the concatenation of parts) without building the encoding.
func (s *Suite) hashSignContent(label string, parts [][]byte) ([]byte, error) {
	var head [64]byte
	hb, err := signHead(head[:0], label, vecLen(parts))
	if err != nil {
		return nil, err
	}
	h := s.newHash()
	h.Write(hb)
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(make([]byte, 0, s.nh)), nil
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
	return g.SignWithLabelVec(label, [][]byte{content})
}

// SignWithLabelVec is SignWithLabel of the concatenation of parts, which
// it does not build for ECDSA (the parts are hashed in turn); Ed25519
// signs the whole message, assembled in a reused buffer.
func (g *Signer) SignWithLabelVec(label string, parts [][]byte) ([]byte, error) {
	if g.ed != nil {
		var sig []byte
		if err := withSignContent(label, parts, func(msg []byte) { sig = ed25519.Sign(g.ed, msg) }); err != nil {
			return nil, err
		}
		return sig, nil
	}
	digest, err := g.s.hashSignContent(label, parts)
	if err != nil {
		return nil, err
	}
	sig, err := ecdsa.SignASN1(rand.Reader, g.ecdsa, digest)
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
	return s.VerifyWithLabelVec(pub, label, [][]byte{content}, signature)
}

// VerifyWithLabelVec is VerifyWithLabel of the concatenation of parts,
// which it does not build for ECDSA (see SignWithLabelVec).
func (s *Suite) VerifyWithLabelVec(pub []byte, label string, parts [][]byte, signature []byte) error {
	if s.sig == sigEd25519 {
		if len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 public key of %d bytes", ErrInvalidKey, len(pub))
		}
		ok := false
		if err := withSignContent(label, parts, func(msg []byte) { ok = ed25519.Verify(ed25519.PublicKey(pub), msg, signature) }); err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: Ed25519 signature with label %q", ErrVerify, label)
		}
		return nil
	}
	k, err := ecdsa.ParseUncompressedPublicKey(s.curve, pub)
	if err != nil {
		return fmt.Errorf("%w: ECDSA public key for %s is not a valid uncompressed point", ErrInvalidKey, s.id)
	}
	digest, err := s.hashSignContent(label, parts)
	if err != nil {
		return err
	}
	if !ecdsa.VerifyASN1(k, digest, signature) {
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
