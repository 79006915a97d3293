package tree

import (
	"crypto/hmac"
	"fmt"
	"maps"

	"github.com/agwproject/agw/mls/suite"
)

// Private is one member's private view of the tree: its leaf index and
// the HPKE private keys (serialized as suite.DeriveHPKEKey returns them) it
// holds, by node: its own leaf's key and the keys of the parent nodes above
// it that it learned from path secrets.
type Private struct {
	Leaf LeafIndex
	Keys map[NodeIndex][]byte
}

// NewPrivate returns the private state of the member at leaf with its
// leaf encryption private key.
func NewPrivate(leaf LeafIndex, leafKey []byte) *Private {
	return &Private{Leaf: leaf, Keys: map[NodeIndex][]byte{leaf.Node(): leafKey}}
}

// Clone returns a copy whose key map can be changed independently.
func (p *Private) Clone() *Private {
	return &Private{Leaf: p.Leaf, Keys: maps.Clone(p.Keys)}
}

// DeriveNodeKey derives the HPKE key pair of a node from its path secret:
// node_secret = DeriveSecret(path_secret, "node"), then
// KEM.DeriveKeyPair(node_secret) (§7.4).
func DeriveNodeKey(s *suite.Suite, pathSecret []byte) (priv, pub []byte, err error) {
	priv, pub, err = s.DeriveHPKEKey(s.DeriveSecret(pathSecret, "node"))
	if err != nil {
		return nil, nil, fmt.Errorf("mls tree: derive node key: %w", err)
	}
	return priv, pub, nil
}

// NextPathSecret returns DeriveSecret(pathSecret, "path"), the path secret
// of the next node up the filtered direct path (or the commit secret after
// the last node).
func NextPathSecret(s *suite.Suite, pathSecret []byte) []byte {
	return s.DeriveSecret(pathSecret, "path")
}

// SetPathSecret derives the key pair of node x from its path secret and
// stores the private key. It does not check the public key against a tree
// (see Check).
func (p *Private) SetPathSecret(s *suite.Suite, x NodeIndex, pathSecret []byte) error {
	priv, _, err := DeriveNodeKey(s, pathSecret)
	if err != nil {
		return err
	}
	p.Keys[x] = priv
	return nil
}

// Check verifies that every private key held matches the public key of
// its node in t, and that the member's own leaf has a key. Errors wrap
// ErrKeyMismatch or ErrNoPrivateKey.
func (p *Private) Check(t *Tree) error {
	if _, ok := p.Keys[p.Leaf.Node()]; !ok {
		return fmt.Errorf("%w: no key for own leaf %d", ErrNoPrivateKey, p.Leaf)
	}
	for x, priv := range p.Keys {
		pub := t.EncryptionKey(x)
		if pub == nil {
			return fmt.Errorf("%w: key held for blank node %d", ErrKeyMismatch, x)
		}
		got, err := t.s.HPKEPublicKey(priv)
		if err != nil {
			return fmt.Errorf("%w: node %d: %w", ErrKeyMismatch, x, err)
		}
		if !hmac.Equal(got, pub) {
			return fmt.Errorf("%w: node %d", ErrKeyMismatch, x)
		}
	}
	return nil
}

// Prune drops the keys of nodes that are blank in t, outside it, or not
// the member's leaf or one of its ancestors (after a Remove, Update or
// truncation).
func (p *Private) Prune(t *Tree) {
	for x := range p.Keys {
		if t.Blank(x) || !InSubtree(p.Leaf.Node(), x) {
			delete(p.Keys, x)
		}
	}
}

// AddPathSecret installs the path secret a joiner receives in a Welcome
// (GroupSecrets.path_secret, §12.4.3.1): it belongs to the lowest node of
// the committer's filtered direct path above the joiner. The keys of that
// node and of the rest of the committer's filtered direct path are derived
// and checked against t, which must be the tree after the commit.
func (p *Private) AddPathSecret(t *Tree, committer LeafIndex, pathSecret []byte) error {
	fdp := t.FilteredDirectPath(committer)
	start := -1
	for j, x := range fdp {
		if InSubtree(p.Leaf.Node(), x) {
			start = j
			break
		}
	}
	if start < 0 {
		return fmt.Errorf("%w: leaf %d is not below the filtered direct path of leaf %d", ErrUpdatePath, p.Leaf, committer)
	}
	ps := pathSecret
	for _, x := range fdp[start:] {
		priv, pub, err := DeriveNodeKey(t.s, ps)
		if err != nil {
			return err
		}
		if !hmac.Equal(pub, t.EncryptionKey(x)) {
			return fmt.Errorf("%w: node %d from the welcome path secret", ErrKeyMismatch, x)
		}
		p.Keys[x] = priv
		ps = NextPathSecret(t.s, ps)
	}
	return nil
}
