package tree

import (
	"fmt"
	"slices"

	"github.com/agwproject/agw/mls/wire"
)

// AddLeaf inserts leaf (from an Add proposal's KeyPackage) at the leftmost
// blank leaf, extending the tree if there is none, and adds the new index
// to the unmerged leaves of every non-blank parent on its direct path
// (§12.1.1). It returns the new member's index.
func (t *Tree) AddLeaf(leaf *wire.LeafNode) LeafIndex {
	n := t.LeafCount()
	idx := LeafIndex(n)
	for i := uint32(0); i < n; i++ {
		if t.nodes[2*i].leaf == nil {
			idx = LeafIndex(i)
			break
		}
	}
	if uint32(idx) >= n {
		t.extend()
	}
	t.setLeaf(idx, leaf)
	x := idx.Node()
	r := t.Root()
	for x != r {
		x = parent(x)
		p := t.nodes[x].parent
		if p == nil {
			continue
		}
		q := &wire.ParentNode{EncryptionKey: p.EncryptionKey, ParentHash: p.ParentHash,
			UnmergedLeaves: make([]uint32, 0, len(p.UnmergedLeaves)+1)}
		q.UnmergedLeaves = append(q.UnmergedLeaves, p.UnmergedLeaves...)
		if !containsU32(q.UnmergedLeaves, uint32(idx)) {
			q.UnmergedLeaves = append(q.UnmergedLeaves, uint32(idx))
			slices.Sort(q.UnmergedLeaves)
		}
		t.nodes[x].parent = q // hash already invalidated by setLeaf
	}
	return idx
}

// extend doubles the number of leaves: the old tree becomes the left
// subtree of a new blank root, the right subtree is blank.
func (t *Tree) extend() {
	n := t.LeafCount()
	if n == 0 {
		t.nodes = make([]slot, 1)
		return
	}
	grown := make([]slot, NodeCount(2*n))
	copy(grown, t.nodes)
	t.nodes = grown
}

// UpdateLeaf replaces leaf i by leaf (from an Update proposal) and blanks
// the nodes of its direct path (§12.1.2).
func (t *Tree) UpdateLeaf(i LeafIndex, leaf *wire.LeafNode) error {
	if t.Leaf(i) == nil {
		return fmt.Errorf("%w: update of leaf %d", ErrBlankLeaf, i)
	}
	if leaf == nil {
		return fmt.Errorf("%w: update of leaf %d with no leaf node", ErrInvalidLeaf, i)
	}
	t.setLeaf(i, leaf)
	t.blankDirectPath(i)
	return nil
}

// RemoveLeaf blanks leaf i and its direct path, then truncates the tree
// while its right half is blank (§12.1.3).
func (t *Tree) RemoveLeaf(i LeafIndex) error {
	if t.Leaf(i) == nil {
		return fmt.Errorf("%w: remove of leaf %d", ErrBlankLeaf, i)
	}
	t.setLeaf(i, nil)
	t.blankDirectPath(i)
	t.truncate()
	return nil
}

// blankDirectPath blanks every parent on leaf i's direct path.
func (t *Tree) blankDirectPath(i LeafIndex) {
	x := i.Node()
	r := t.Root()
	for x != r {
		x = parent(x)
		t.nodes[x].parent = nil
		t.nodes[x].hash = nil
	}
}

// truncate shrinks the tree to 2^d leaves, d the smallest value with 2^d
// greater than the index of the rightmost non-blank leaf (one leaf if
// every leaf is blank).
func (t *Tree) truncate() {
	n := t.LeafCount()
	last := int64(-1)
	for i := int64(n) - 1; i >= 0; i-- {
		if t.nodes[2*i].leaf != nil {
			last = i
			break
		}
	}
	keep := uint32(1)
	for int64(keep) <= last {
		keep *= 2
	}
	if keep >= n {
		return
	}
	// Drop the slots and release them for the garbage collector.
	w := NodeCount(keep)
	clear(t.nodes[w:])
	t.nodes = t.nodes[:w:w]
}
