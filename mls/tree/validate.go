package tree

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/wire"
)

// LeafNodeTBSLabel is the signature label of a leaf node (§7.2).
const LeafNodeTBSLabel = "LeafNodeTBS"

// VerifyLeafSignature checks the signature of leaf with its own signature
// key. groupID and index are the signature context for leaves of source
// update and commit (ignored for key_package). Errors wrap
// ErrLeafSignature.
func VerifyLeafSignature(s *suite.Suite, leaf *wire.LeafNode, groupID []byte, index LeafIndex) error {
	if err := s.VerifyWithLabel(leaf.SignatureKey, LeafNodeTBSLabel, leaf.TBS(groupID, uint32(index)), leaf.Signature); err != nil {
		return fmt.Errorf("%w: leaf %d: %w", ErrLeafSignature, index, err)
	}
	return nil
}

// SignLeaf sets leaf.Signature to a fresh signature by signer over the
// leaf's LeafNodeTBS for the given group and index.
func SignLeaf(signer Signer, leaf *wire.LeafNode, groupID []byte, index LeafIndex) error {
	sig, err := signer.SignWithLabel(LeafNodeTBSLabel, leaf.TBS(groupID, uint32(index)))
	if err != nil {
		return fmt.Errorf("mls tree: sign leaf %d: %w", index, err)
	}
	leaf.Signature = sig
	return nil
}

// Signer signs with the label prefix of RFC 9420 §5.1.2; *suite.Signer
// implements it.
type Signer interface {
	SignWithLabel(label string, content []byte) ([]byte, error)
}

// ValidateLeaf performs the checks of §7.3 that need no group state beyond
// the group id: the signature, that the source is want (0 accepts any),
// that every non-default extension of the leaf is listed in its capabilities, and that
// its credential type is listed in its capabilities. The credential itself,
// lifetime, required capabilities and key uniqueness (see CheckLeafKeys)
// are checked by the caller.
func ValidateLeaf(s *suite.Suite, leaf *wire.LeafNode, groupID []byte, index LeafIndex, want wire.LeafNodeSource) error {
	if leaf == nil {
		return fmt.Errorf("%w: missing", ErrInvalidLeaf)
	}
	if want != 0 && leaf.Source != want {
		return fmt.Errorf("%w: leaf source is %v, want %v", ErrInvalidLeaf, leaf.Source, want)
	}
	if len(leaf.EncryptionKey) == 0 || len(leaf.SignatureKey) == 0 {
		return fmt.Errorf("%w: empty encryption or signature key", ErrInvalidLeaf)
	}
	for _, e := range leaf.Extensions {
		// Extension types defined by RFC 9420 (1-5) are default and need
		// not be listed (§7.2).
		if e.Type > wire.ExtensionTypeExternalSenders && !slices.Contains(leaf.Capabilities.Extensions, e.Type) {
			return fmt.Errorf("%w: extension %d not listed in the leaf's capabilities", ErrInvalidLeaf, e.Type)
		}
	}
	if !slices.Contains(leaf.Capabilities.Credentials, leaf.Credential.Type) {
		return fmt.Errorf("%w: credential type %d not listed in the leaf's capabilities", ErrInvalidLeaf, leaf.Credential.Type)
	}
	return VerifyLeafSignature(s, leaf, groupID, index)
}

// VerifyLeafSignatures checks the signature of every non-blank leaf with
// groupID as context. Errors wrap ErrLeafSignature and name the leaf.
func (t *Tree) VerifyLeafSignatures(groupID []byte) error {
	for i := uint32(0); i < t.LeafCount(); i++ {
		if l := t.nodes[2*i].leaf; l != nil {
			if err := VerifyLeafSignature(t.s, l, groupID, LeafIndex(i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Validate checks a tree received from another party (§12.4.3.1): every
// leaf passes ValidateLeaf (any source), signature and encryption keys are
// unique, and the tree is parent-hash valid. The unmerged-leaves rules were
// checked by Decode.
func (t *Tree) Validate(groupID []byte) error {
	for i := uint32(0); i < t.LeafCount(); i++ {
		if l := t.nodes[2*i].leaf; l != nil {
			if err := ValidateLeaf(t.s, l, groupID, LeafIndex(i), 0); err != nil {
				return err
			}
		}
	}
	if err := t.checkUniqueKeys(); err != nil {
		return err
	}
	return t.ParentHashValid()
}

// checkUniqueKeys verifies that no two leaves share a signature key and no
// two nodes share an encryption key.
func (t *Tree) checkUniqueKeys() error {
	sig := make(map[string]LeafIndex)
	enc := make(map[string]NodeIndex)
	for x := range t.nodes {
		k := t.EncryptionKey(NodeIndex(x))
		if k == nil {
			continue
		}
		if y, dup := enc[string(k)]; dup {
			return fmt.Errorf("%w: nodes %d and %d share an encryption key", ErrDuplicateKey, y, x)
		}
		enc[string(k)] = NodeIndex(x)
		if l := t.nodes[x].leaf; l != nil {
			if j, dup := sig[string(l.SignatureKey)]; dup {
				return fmt.Errorf("%w: leaves %d and %d share a signature key", ErrDuplicateKey, j, x/2)
			}
			sig[string(l.SignatureKey)] = NodeIndex(x).Leaf()
		}
	}
	return nil
}

// CheckLeafKeys verifies that leaf's signature and encryption keys are not
// used by any node of the tree other than leaf except (pass the leaf being
// replaced for an Update or commit, or an out-of-range index for an Add).
func (t *Tree) CheckLeafKeys(leaf *wire.LeafNode, except LeafIndex) error {
	for x := range t.nodes {
		if NodeIndex(x) == except.Node() {
			continue
		}
		if k := t.EncryptionKey(NodeIndex(x)); k != nil && bytes.Equal(k, leaf.EncryptionKey) {
			return fmt.Errorf("%w: encryption key used by node %d", ErrDuplicateKey, x)
		}
		if l := t.nodes[x].leaf; l != nil && bytes.Equal(l.SignatureKey, leaf.SignatureKey) {
			return fmt.Errorf("%w: signature key used by leaf %d", ErrDuplicateKey, x/2)
		}
	}
	return nil
}

// FindLeafBySignatureKey returns the leaf whose signature key is key.
func (t *Tree) FindLeafBySignatureKey(key []byte) (LeafIndex, bool) {
	for i := uint32(0); i < t.LeafCount(); i++ {
		if l := t.nodes[2*i].leaf; l != nil && bytes.Equal(l.SignatureKey, key) {
			return LeafIndex(i), true
		}
	}
	return 0, false
}

// FindLeafByEncryptionKey returns the leaf whose encryption key is key.
func (t *Tree) FindLeafByEncryptionKey(key []byte) (LeafIndex, bool) {
	for i := uint32(0); i < t.LeafCount(); i++ {
		if l := t.nodes[2*i].leaf; l != nil && bytes.Equal(l.EncryptionKey, key) {
			return LeafIndex(i), true
		}
	}
	return 0, false
}

// FindLeaf returns the first leaf for which match returns true.
func (t *Tree) FindLeaf(match func(LeafIndex, *wire.LeafNode) bool) (LeafIndex, bool) {
	for i := uint32(0); i < t.LeafCount(); i++ {
		if l := t.nodes[2*i].leaf; l != nil && match(LeafIndex(i), l) {
			return LeafIndex(i), true
		}
	}
	return 0, false
}
