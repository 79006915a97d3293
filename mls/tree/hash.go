package tree

import (
	"crypto/hmac"
	"fmt"
	"slices"

	"github.com/agwproject/agw/mls/codec"
	"github.com/agwproject/agw/mls/wire"
)

// TreeHash returns the tree hash of the root (§7.8); nil for an empty tree.
func (t *Tree) TreeHash() []byte {
	if len(t.nodes) == 0 {
		return nil
	}
	return t.NodeHash(t.Root())
}

// NodeHash returns the tree hash of node x (x must be in the tree). The
// returned slice is shared with the cache: do not modify it.
func (t *Tree) NodeHash(x NodeIndex) []byte {
	s := &t.nodes[x]
	if s.hash != nil {
		return s.hash
	}
	var h []byte
	if x.IsLeaf() {
		h = t.s.Hash(leafHashInput(x.Leaf(), s.leaf))
	} else {
		l := t.NodeHash(left(x))
		r := t.NodeHash(right(x))
		h = t.s.Hash(parentHashInput(s.parent, l, r))
	}
	s.hash = h
	return h
}

// leafHashInput encodes TreeHashInput for a leaf.
func leafHashInput(i LeafIndex, l *wire.LeafNode) []byte {
	size := 6
	if l != nil {
		size = 512
	}
	w := codec.NewWriter(size)
	w.U8(uint8(wire.NodeTypeLeaf))
	w.U32(uint32(i))
	w.Optional(l != nil, func(w *codec.Writer) { l.Marshal(w) })
	return w.MustBytes()
}

// parentHashInput encodes TreeHashInput for a parent node.
func parentHashInput(p *wire.ParentNode, l, r []byte) []byte {
	size := 4 + len(l) + len(r)
	if p != nil {
		size += 8 + len(p.EncryptionKey) + len(p.ParentHash) + 4*len(p.UnmergedLeaves)
	}
	w := codec.NewWriter(size)
	w.U8(uint8(wire.NodeTypeParent))
	w.Optional(p != nil, func(w *codec.Writer) { p.Marshal(w) })
	w.Opaque(l)
	w.Opaque(r)
	return w.MustBytes()
}

// hashExcluding computes the tree hash of x as if the leaves in ex were
// blank and absent from every unmerged_leaves list (the "original" tree of
// §7.9). Subtrees without excluded leaves use the cache.
func (t *Tree) hashExcluding(x NodeIndex, ex []uint32) []byte {
	first, n := subtreeLeaves(x)
	// ex is sorted (unmerged_leaves lists are checked to be), so the
	// leaves under x form a contiguous run.
	lo, _ := slices.BinarySearch(ex, uint32(first))
	hi, _ := slices.BinarySearch(ex, uint32(first)+n)
	in := ex[lo:hi]
	if len(in) == 0 {
		return t.NodeHash(x)
	}
	s := &t.nodes[x]
	if x.IsLeaf() {
		return t.s.Hash(leafHashInput(x.Leaf(), nil))
	}
	p := s.parent
	if p != nil {
		q := &wire.ParentNode{EncryptionKey: p.EncryptionKey, ParentHash: p.ParentHash}
		for _, u := range p.UnmergedLeaves {
			if _, found := slices.BinarySearch(in, u); !found {
				q.UnmergedLeaves = append(q.UnmergedLeaves, u)
			}
		}
		p = q
	}
	l := t.hashExcluding(left(x), in)
	r := t.hashExcluding(right(x), in)
	return t.s.Hash(parentHashInput(p, l, r))
}

// parentHash computes the parent hash of P (§7.9) with copath child s: the
// hash of ParentHashInput{encryption_key, parent_hash,
// original_sibling_tree_hash}.
func (t *Tree) parentHash(p *wire.ParentNode, s NodeIndex) []byte {
	sth := t.hashExcluding(s, p.UnmergedLeaves)
	w := codec.NewWriter(64 + len(p.EncryptionKey) + len(p.ParentHash) + len(sth))
	w.Opaque(p.EncryptionKey)
	w.Opaque(p.ParentHash)
	w.Opaque(sth)
	return t.s.Hash(w.MustBytes())
}

// nodeParentHash returns the parent_hash field of node x and whether it
// has one (parents always do; leaves only with source commit).
func (t *Tree) nodeParentHash(x NodeIndex) ([]byte, bool) {
	s := &t.nodes[x]
	switch {
	case s.parent != nil:
		return s.parent.ParentHash, true
	case s.leaf != nil && s.leaf.Source == wire.LeafNodeSourceCommit:
		return s.leaf.ParentHash, true
	}
	return nil, false
}

// ParentHashValid verifies that every non-blank parent node is
// parent-hash valid (§7.9.2), top down: each one must have exactly one
// descendant D whose parent hash is valid with respect to it. It returns an
// error wrapping ErrParentHash naming the first node that fails.
func (t *Tree) ParentHashValid() error {
	for x := NodeIndex(1); uint32(x) < uint32(len(t.nodes)); x += 2 {
		p := t.nodes[x].parent
		if p == nil {
			continue
		}
		found := 0
		for _, c := range [2]NodeIndex{left(x), right(x)} {
			sib := sibling(c)
			found += t.validChildren(p, c, sib)
		}
		if found != 1 {
			return fmt.Errorf("%w: parent node %d has %d valid parent-hash links, want 1", ErrParentHash, x, found)
		}
	}
	return nil
}

// validChildren counts the nodes D in the resolution of child c of P
// (whose other child is sib) for which P's parent hash is valid (§7.9.2):
// D's parent_hash is the parent hash of P with copath child sib, and the
// resolution of c minus D equals P's unmerged leaves under c. At most one
// D can satisfy the second condition, so the result is 0 or 1.
func (t *Tree) validChildren(p *wire.ParentNode, c, sib NodeIndex) int {
	res := t.appendResolution(nil, c)
	unmerged := make(map[NodeIndex]bool)
	for _, l := range p.UnmergedLeaves {
		if y := LeafIndex(l).Node(); InSubtree(y, c) {
			unmerged[y] = true
		}
	}
	if len(res) != len(unmerged)+1 {
		return 0
	}
	var d NodeIndex
	missing := 0
	for _, y := range res {
		if !unmerged[y] {
			d = y
			missing++
		}
	}
	if missing != 1 {
		return 0
	}
	dph, ok := t.nodeParentHash(d)
	if !ok || !hmac.Equal(dph, t.parentHash(p, sib)) {
		return 0
	}
	return 1
}
