package mls

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/agwproject/agw/mls/codec"
	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/tree"
	"github.com/agwproject/agw/mls/wire"
)

// Credential binds an identity to a signature key (RFC 9420 §5.3).
type Credential = wire.Credential

// BasicCredential returns a basic credential for identity.
func BasicCredential(identity []byte) Credential {
	return Credential{Type: wire.CredentialTypeBasic, Identity: append([]byte(nil), identity...)}
}

// KeyPackageBundle is a KeyPackage with the private keys that belong to it.
// Keep it secret until the KeyPackage is used by a Welcome.
type KeyPackageBundle struct {
	KeyPackage     *wire.KeyPackage
	InitPriv       []byte // HPKE private key of KeyPackage.InitKey
	EncryptionPriv []byte // HPKE private key of the leaf's encryption key
	SignaturePriv  []byte // signature private key of the leaf
}

// Bytes returns the KeyPackage as an encoded MLSMessage, ready to publish.
func (b *KeyPackageBundle) Bytes() []byte {
	return encodeMessage(&wire.MLSMessage{WireFormat: wire.WireFormatKeyPackage, KeyPackage: b.KeyPackage})
}

// Ref returns the KeyPackageRef of the bundle's KeyPackage.
func (b *KeyPackageBundle) Ref() ([]byte, error) {
	s, err := suiteOf(b.KeyPackage.CipherSuite)
	if err != nil {
		return nil, err
	}
	return s.KeyPackageRef(wire.Encode(b.KeyPackage)), nil
}

// KeyPackageRef returns the KeyPackageRef (RFC 9420 §5.2) of an encoded
// KeyPackage MLSMessage.
func KeyPackageRef(keyPackage []byte) ([]byte, error) {
	kp, err := decodeKeyPackage(keyPackage)
	if err != nil {
		return nil, err
	}
	s, err := suiteOf(kp.CipherSuite)
	if err != nil {
		return nil, err
	}
	return s.KeyPackageRef(wire.Encode(kp)), nil
}

func suiteOf(cs wire.CipherSuite) (*suite.Suite, error) {
	s, err := suite.Get(suite.ID(cs))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	return s, nil
}

// defaultCapabilities lists what this implementation supports.
func defaultCapabilities(s *suite.Suite) wire.Capabilities {
	return wire.Capabilities{
		Versions:     []wire.ProtocolVersion{wire.MLS10},
		CipherSuites: []wire.CipherSuite{wire.CipherSuite(s.ID())},
		Credentials:  []wire.CredentialType{wire.CredentialTypeBasic, wire.CredentialTypeX509},
	}
}

// GenerateKeyPackage creates a KeyPackage for the suite with a fresh init
// key and leaf encryption key, and a fresh signature key unless
// WithSignatureKey is given. Options: WithSignatureKey, WithLifetime,
// WithClock, WithCapabilities, WithLeafExtensions, WithKeyPackageExtensions.
func GenerateKeyPackage(id suite.ID, cred Credential, opts ...Option) (*KeyPackageBundle, error) {
	cfg := newConfig(opts)
	s, err := suite.Get(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	sigPriv := cfg.signaturePriv
	if sigPriv == nil {
		if sigPriv, _, err = s.GenerateSignatureKey(); err != nil {
			return nil, fmt.Errorf("mls: signature key: %w", err)
		}
	}
	signer, err := s.NewSigner(sigPriv)
	if err != nil {
		return nil, fmt.Errorf("%w: signature key: %w", ErrInvalidArgument, err)
	}
	initPriv, initPub, err := s.GenerateHPKEKey()
	if err != nil {
		return nil, fmt.Errorf("mls: init key: %w", err)
	}
	encPriv, encPub, err := s.GenerateHPKEKey()
	if err != nil {
		return nil, fmt.Errorf("mls: encryption key: %w", err)
	}
	caps := defaultCapabilities(s)
	if cfg.capabilities != nil {
		caps = *cfg.capabilities
	}
	now := cfg.now()
	leaf := wire.LeafNode{
		EncryptionKey: encPub,
		SignatureKey:  signer.PublicKey(),
		Credential:    cred,
		Capabilities:  caps,
		Source:        wire.LeafNodeSourceKeyPackage,
		Lifetime: wire.Lifetime{
			NotBefore: uint64(now.Add(-time.Hour).Unix()),
			NotAfter:  uint64(now.Add(cfg.lifetime).Unix()),
		},
		Extensions: cfg.leafExtensions,
	}
	if err := tree.SignLeaf(signer, &leaf, nil, 0); err != nil {
		return nil, err
	}
	kp := &wire.KeyPackage{
		Version:     wire.MLS10,
		CipherSuite: wire.CipherSuite(id),
		InitKey:     initPub,
		LeafNode:    leaf,
		Extensions:  cfg.kpExtensions,
	}
	if kp.Signature, err = signer.SignWithLabel(labelKeyPackage, kp.TBS()); err != nil {
		return nil, fmt.Errorf("mls: sign key package: %w", err)
	}
	return &KeyPackageBundle{KeyPackage: kp, InitPriv: initPriv, EncryptionPriv: encPriv, SignaturePriv: sigPriv}, nil
}

// decodeKeyPackage accepts an encoded MLSMessage holding a KeyPackage or a
// bare KeyPackage.
func decodeKeyPackage(b []byte) (*wire.KeyPackage, error) {
	var m wire.MLSMessage
	if err := wire.Decode(b, &m); err == nil {
		if m.WireFormat != wire.WireFormatKeyPackage {
			return nil, fmt.Errorf("%w: message is a %v, not a key package", ErrMalformed, m.WireFormat)
		}
		return m.KeyPackage, nil
	}
	var kp wire.KeyPackage
	if err := wire.Decode(b, &kp); err != nil {
		return nil, fmt.Errorf("%w: key package: %w", ErrMalformed, err)
	}
	return &kp, nil
}

// ValidateKeyPackage checks an encoded KeyPackage on its own (RFC 9420
// §10.1): version, a supported suite, the KeyPackage and leaf signatures,
// the leaf's source, capabilities and lifetime, and that the init key
// differs from the leaf's encryption key.
func ValidateKeyPackage(keyPackage []byte, opts ...Option) error {
	kp, err := decodeKeyPackage(keyPackage)
	if err != nil {
		return err
	}
	s, err := suiteOf(kp.CipherSuite)
	if err != nil {
		return err
	}
	cfg := newConfig(opts)
	return validateKeyPackage(s, &cfg, kp)
}

func validateKeyPackage(s *suite.Suite, cfg *config, kp *wire.KeyPackage) error {
	if kp.Version != wire.MLS10 {
		return fmt.Errorf("%w: version %v", ErrInvalidKeyPackage, kp.Version)
	}
	if kp.CipherSuite != wire.CipherSuite(s.ID()) {
		return fmt.Errorf("%w: suite %d in a group of suite %d", ErrInvalidKeyPackage, kp.CipherSuite, s.ID())
	}
	if err := s.VerifyWithLabel(kp.LeafNode.SignatureKey, labelKeyPackage, kp.TBS(), kp.Signature); err != nil {
		return fmt.Errorf("%w: %w: %w", ErrInvalidKeyPackage, ErrBadSignature, err)
	}
	if bytes.Equal(kp.InitKey, kp.LeafNode.EncryptionKey) {
		return fmt.Errorf("%w: init key equals the leaf encryption key", ErrInvalidKeyPackage)
	}
	if err := s.ValidateHPKEPublicKey(kp.InitKey); err != nil {
		return fmt.Errorf("%w: init key: %w", ErrInvalidKeyPackage, err)
	}
	if err := validateLeafAlone(s, cfg, &kp.LeafNode, nil, 0, wire.LeafNodeSourceKeyPackage); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKeyPackage, err)
	}
	return nil
}

// validateLeafAlone performs the §7.3 checks that need no tree: signature,
// source, capabilities listing its extensions and credential type,
// lifetime (source key_package) and the application's credential check.
func validateLeafAlone(s *suite.Suite, cfg *config, leaf *wire.LeafNode, groupID []byte, index uint32, src wire.LeafNodeSource) error {
	if err := tree.ValidateLeaf(s, leaf, groupID, tree.LeafIndex(index), src); err != nil {
		if errors.Is(err, tree.ErrLeafSignature) {
			return fmt.Errorf("%w: %w: %w", ErrInvalidLeafNode, ErrBadSignature, err)
		}
		return fmt.Errorf("%w: %w", ErrInvalidLeafNode, err)
	}
	return leafPolicy(cfg, leaf)
}

// leafPolicy checks a leaf's lifetime (source key_package), its support of
// MLS 1.0 and the application's credential check.
func leafPolicy(cfg *config, leaf *wire.LeafNode) error {
	if leaf.Source == wire.LeafNodeSourceKeyPackage && !cfg.noLifetimeCheck {
		now := uint64(cfg.now().Unix())
		if now < leaf.Lifetime.NotBefore || now > leaf.Lifetime.NotAfter {
			return fmt.Errorf("%w: outside its lifetime", ErrInvalidLeafNode)
		}
	}
	if !slices.Contains(leaf.Capabilities.Versions, wire.MLS10) {
		return fmt.Errorf("%w: does not support MLS 1.0", ErrInvalidLeafNode)
	}
	if cfg.validator != nil {
		if err := cfg.validator(leaf.Credential, leaf.SignatureKey); err != nil {
			return fmt.Errorf("%w: credential refused: %w", ErrInvalidLeafNode, err)
		}
	}
	return nil
}

// bundleMagic starts an encoded KeyPackageBundle.
var bundleMagic = []byte("agw-mls-kpb\x01")

// MarshalBinary encodes the bundle, private keys included, so it can be
// stored until its Welcome arrives. The caller encrypts it at rest.
func (b *KeyPackageBundle) MarshalBinary() ([]byte, error) {
	if b == nil || b.KeyPackage == nil {
		return nil, fmt.Errorf("%w: empty key package bundle", ErrInvalidArgument)
	}
	w := codec.NewWriter(1024)
	w.Raw(bundleMagic)
	b.KeyPackage.Marshal(w)
	w.Opaque(b.InitPriv)
	w.Opaque(b.EncryptionPriv)
	w.Opaque(b.SignaturePriv)
	out, err := w.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return out, nil
}

// UnmarshalKeyPackageBundle decodes a bundle encoded by MarshalBinary and
// checks that its private keys match the KeyPackage.
func UnmarshalKeyPackageBundle(data []byte) (*KeyPackageBundle, error) {
	r := codec.NewReader(append([]byte(nil), data...))
	if m := r.Raw(len(bundleMagic)); m == nil || !bytes.Equal(m, bundleMagic) {
		return nil, fmt.Errorf("%w: not a key package bundle", ErrMalformed)
	}
	b := &KeyPackageBundle{KeyPackage: new(wire.KeyPackage)}
	b.KeyPackage.Unmarshal(r)
	b.InitPriv = r.OpaqueCopy()
	b.EncryptionPriv = r.OpaqueCopy()
	b.SignaturePriv = r.OpaqueCopy()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("%w: key package bundle: %w", ErrMalformed, err)
	}
	s, err := suiteOf(b.KeyPackage.CipherSuite)
	if err != nil {
		return nil, err
	}
	for _, k := range []struct {
		priv, pub []byte
		hpke      bool
	}{
		{b.InitPriv, b.KeyPackage.InitKey, true},
		{b.EncryptionPriv, b.KeyPackage.LeafNode.EncryptionKey, true},
		{b.SignaturePriv, b.KeyPackage.LeafNode.SignatureKey, false},
	} {
		var pub []byte
		if k.hpke {
			pub, err = s.HPKEPublicKey(k.priv)
		} else {
			pub, err = s.SignaturePublicKey(k.priv)
		}
		if err != nil || !bytes.Equal(pub, k.pub) {
			return nil, fmt.Errorf("%w: key package bundle: private key does not match", ErrMalformed)
		}
	}
	return b, nil
}
