package tree

import "math/bits"

// LeafIndex is the index of a leaf among the leaves (0, 1, 2, ...).
type LeafIndex uint32

// NodeIndex is the index of a node in the array representation: leaf i is
// node 2i, parents are at odd indices.
type NodeIndex uint32

// Node returns the node index of leaf l.
func (l LeafIndex) Node() NodeIndex { return NodeIndex(2 * uint64(l)) }

// IsLeaf reports whether x is a leaf node (even index).
func (x NodeIndex) IsLeaf() bool { return x&1 == 0 }

// Leaf returns the leaf index of leaf node x; x must be even.
func (x NodeIndex) Leaf() LeafIndex { return LeafIndex(x >> 1) }

// NodeCount returns the number of nodes of a tree with the given number of
// leaves: 2*(n-1)+1, or 0 for no leaves.
func NodeCount(leaves uint32) uint32 {
	if leaves == 0 {
		return 0
	}
	return 2*(leaves-1) + 1
}

// Level returns the level of node x in the tree: 0 for leaves, 1 for their
// parents, and so on (the number of trailing one bits of x).
func Level(x NodeIndex) int { return bits.TrailingZeros32(^uint32(x)) }

// Root returns the root node of a full tree with the given number of leaves.
func Root(leaves uint32) NodeIndex {
	w := NodeCount(leaves)
	if w == 0 {
		return 0
	}
	// (1 << log2(w)) - 1, log2 rounded down.
	return NodeIndex(uint32(1)<<(bits.Len32(w)-1) - 1)
}

// Left returns the left child of x; ok is false for a leaf.
func Left(x NodeIndex) (NodeIndex, bool) {
	k := Level(x)
	if k == 0 {
		return 0, false
	}
	return x ^ (1 << (k - 1)), true
}

// Right returns the right child of x; ok is false for a leaf.
func Right(x NodeIndex) (NodeIndex, bool) {
	k := Level(x)
	if k == 0 {
		return 0, false
	}
	return x ^ (3 << (k - 1)), true
}

// left and right are the unchecked forms for parent nodes.
func left(x NodeIndex) NodeIndex  { return x ^ (1 << (Level(x) - 1)) }
func right(x NodeIndex) NodeIndex { return x ^ (3 << (Level(x) - 1)) }

// parent is the unchecked parent of x in an infinite full tree.
func parent(x NodeIndex) NodeIndex {
	k := Level(x)
	b := (x >> (k + 1)) & 1
	return (x | 1<<k) ^ (b << (k + 1))
}

// sibling is the unchecked sibling of x (x must not be the root).
func sibling(x NodeIndex) NodeIndex {
	p := parent(x)
	if x < p {
		return right(p)
	}
	return left(p)
}

// inTree reports whether x is a node of a full tree with the given leaves.
func inTree(x NodeIndex, leaves uint32) bool { return uint32(x) < NodeCount(leaves) }

// Parent returns the parent of x in a full tree with the given number of
// leaves; ok is false for the root or a node outside the tree.
func Parent(x NodeIndex, leaves uint32) (NodeIndex, bool) {
	if !inTree(x, leaves) || x == Root(leaves) {
		return 0, false
	}
	return parent(x), true
}

// Sibling returns the other child of x's parent; ok is false for the root
// or a node outside the tree.
func Sibling(x NodeIndex, leaves uint32) (NodeIndex, bool) {
	if !inTree(x, leaves) || x == Root(leaves) {
		return 0, false
	}
	return sibling(x), true
}

// DirectPath returns the parents of x from its parent up to and including
// the root; it is empty for the root (or a node outside the tree).
func DirectPath(x NodeIndex, leaves uint32) []NodeIndex {
	if !inTree(x, leaves) {
		return nil
	}
	r := Root(leaves)
	var d []NodeIndex
	for x != r {
		x = parent(x)
		d = append(d, x)
	}
	return d
}

// Copath returns the siblings of x and of each node of its direct path
// except the root: the sibling of x first, the child of the root last.
func Copath(x NodeIndex, leaves uint32) []NodeIndex {
	if !inTree(x, leaves) {
		return nil
	}
	r := Root(leaves)
	var c []NodeIndex
	for x != r {
		c = append(c, sibling(x))
		x = parent(x)
	}
	return c
}

// InSubtree reports whether node x lies in the subtree rooted at node a
// (a node is in its own subtree).
func InSubtree(x, a NodeIndex) bool {
	k := Level(a)
	if Level(x) > k {
		return false
	}
	span := int64(1)<<k - 1 // nodes on each side of a in its subtree
	d := int64(x) - int64(a)
	return d >= -span && d <= span
}

// CommonAncestor returns the lowest node whose subtree holds both a and b.
func CommonAncestor(a, b NodeIndex) NodeIndex {
	for !InSubtree(b, a) {
		a = parent(a)
	}
	return a
}

// subtreeLeaves returns the first leaf and the number of leaves under x.
func subtreeLeaves(x NodeIndex) (first LeafIndex, n uint32) {
	k := Level(x)
	lo := uint32(x) - (uint32(1)<<k - 1)
	return LeafIndex(lo / 2), uint32(1) << k
}
