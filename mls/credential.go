package mls

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/tree"
	"github.com/agwproject/agw/mls/wire"
)

// Credential rotation (RFC 9420 §7.3, §12.1.2, §13.4.2): a member changes
// the credential and signature key of its own leaf in the UpdatePath of a
// commit it sends or in an Update proposal (WithLeafCredential); receivers
// validate the new leaf like any other and check that its credential is a
// valid successor of the old one (WithCredentialSuccessor).

// newIdentity is the credential and signature key a call's new leaf gets.
type newIdentity struct {
	cred    Credential
	sigPriv []byte
	signer  *suite.Signer
}

func cloneCredential(c Credential) Credential {
	out := Credential{Type: c.Type, Identity: bytes.Clone(c.Identity), Raw: bytes.Clone(c.Raw)}
	for _, cert := range c.Certificates {
		out.Certificates = append(out.Certificates, bytes.Clone(cert))
	}
	return out
}

// rotation returns the new identity a call's options ask for, or nil. The
// new signature key must be a key of the suite that no other member uses,
// and the credential's type one the member's leaf lists.
func (g *Group) rotation(cfg *config) (*newIdentity, error) {
	if cfg.leafCred == nil {
		return nil, nil
	}
	signer, err := g.s.NewSigner(cfg.leafSigPriv)
	if err != nil {
		return nil, fmt.Errorf("%w: new signature key: %w", ErrInvalidArgument, err)
	}
	own := g.tree.Leaf(g.priv.Leaf)
	if own == nil {
		return nil, fmt.Errorf("%w: own leaf is blank", ErrInvalidArgument)
	}
	if !slices.Contains(own.Capabilities.Credentials, cfg.leafCred.Type) {
		return nil, fmt.Errorf("%w: credential type %d not in the leaf's capabilities", ErrInvalidArgument, cfg.leafCred.Type)
	}
	if l, ok := g.tree.FindLeafBySignatureKey(signer.PublicKey()); ok && l != g.priv.Leaf {
		return nil, fmt.Errorf("%w: new signature key is used by leaf %d", ErrInvalidArgument, l)
	}
	return &newIdentity{cred: cloneCredential(*cfg.leafCred), sigPriv: bytes.Clone(cfg.leafSigPriv), signer: signer}, nil
}

// leafTemplate returns the template of this member's next leaf: its
// current one with the new credential and signature key.
func (g *Group) leafTemplate(id *newIdentity) *wire.LeafNode {
	own := g.tree.Leaf(g.priv.Leaf)
	return &wire.LeafNode{
		SignatureKey: id.signer.PublicKey(), Credential: id.cred,
		Capabilities: own.Capabilities, Extensions: own.Extensions,
	}
}

// identityChanged reports whether next changes old's credential or
// signature key.
func identityChanged(old, next *wire.LeafNode) bool {
	if !bytes.Equal(old.SignatureKey, next.SignatureKey) {
		return true
	}
	return !bytes.Equal(wire.Encode(&old.Credential), wire.Encode(&next.Credential))
}

// checkSuccessor applies the succession check to a member's new leaf
// (leaf l, currently old).
func (g *Group) checkSuccessor(l tree.LeafIndex, old, next *wire.LeafNode) error {
	if g.cfg.successor == nil || !identityChanged(old, next) {
		return nil
	}
	if err := g.cfg.successor(old.Credential, next.Credential); err != nil {
		return fmt.Errorf("%w: leaf %d: %w", ErrCredentialSuccessor, l, err)
	}
	return nil
}

// ownUpdateSigner returns the signer for this member's leaf replaced by a
// committed Update proposal (nil: the signature key is unchanged).
func (g *Group) ownUpdateSigner(leaf *wire.LeafNode) (*suite.Signer, []byte, error) {
	if bytes.Equal(leaf.SignatureKey, g.signer.PublicKey()) {
		return nil, nil, nil
	}
	priv, ok := g.pendingSigs[string(leaf.EncryptionKey)]
	if !ok {
		return nil, nil, fmt.Errorf("%w: own update committed with a signature key this member does not hold", ErrInvalidCommit)
	}
	signer, err := g.s.NewSigner(priv)
	if err != nil || !bytes.Equal(signer.PublicKey(), leaf.SignatureKey) {
		return nil, nil, fmt.Errorf("%w: own update's signature key does not match", ErrInvalidCommit)
	}
	return signer, priv, nil
}

// setSigner makes signer (of private key priv) this member's signature
// key, once its new leaf is in the tree.
func (g *Group) setSigner(signer *suite.Signer, priv []byte) {
	clear(g.sigPriv)
	g.signer, g.sigPriv = signer, priv
}
