package tree

import (
	"fmt"
	"slices"

	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/wire"
)

// slot is one node of the array: leaf for even indices, parent for odd
// ones, both nil when blank. hash caches the node's tree hash (nil: not
// computed since the subtree last changed).
type slot struct {
	leaf   *wire.LeafNode
	parent *wire.ParentNode
	hash   []byte
}

// Tree is a ratchet tree for one cipher suite. It caches the tree hash of
// every node and recomputes only what changed, so the methods that read
// hashes (TreeHash, ParentHashValid, GeneratePath, ApplyPath) update the
// cache: a Tree is not safe for concurrent use, Clone it instead.
//
// The LeafNode and ParentNode values held by a tree are never modified in
// place (changes replace them), so values returned by Leaf and Parent may be
// kept but must not be modified by the caller.
type Tree struct {
	s     *suite.Suite
	nodes []slot // len(nodes) == NodeCount(leaves), leaves a power of 2
}

// New returns an empty tree (no leaves) for suite s.
func New(s *suite.Suite) *Tree { return &Tree{s: s} }

// Decode builds a tree from the ratchet_tree form. It checks that leaves
// sit at even indices and parents at odd ones, that the last node is not
// blank, and pads the tree on the right with blank nodes to a full tree.
// It does not verify parent hashes or signatures: call Validate (or
// ParentHashValid and VerifyLeafSignatures) for a tree from another party.
func Decode(s *suite.Suite, rt wire.RatchetTree) (*Tree, error) {
	if len(rt) == 0 {
		return nil, fmt.Errorf("%w: empty tree", ErrInvalidTree)
	}
	if rt[len(rt)-1] == nil {
		return nil, fmt.Errorf("%w: last node is blank", ErrInvalidTree)
	}
	if len(rt) > 1<<31-1 {
		return nil, fmt.Errorf("%w: %d nodes", ErrInvalidTree, len(rt))
	}
	leaves := uint32(1)
	for NodeCount(leaves) < uint32(len(rt)) {
		leaves *= 2
	}
	t := &Tree{s: s, nodes: make([]slot, NodeCount(leaves))}
	for i, n := range rt {
		if n == nil {
			continue
		}
		if i%2 == 0 {
			if n.Type != wire.NodeTypeLeaf || n.Leaf == nil {
				return nil, fmt.Errorf("%w: node %d must be a leaf", ErrInvalidTree, i)
			}
			t.nodes[i].leaf = n.Leaf
		} else {
			if n.Type != wire.NodeTypeParent || n.Parent == nil {
				return nil, fmt.Errorf("%w: node %d must be a parent", ErrInvalidTree, i)
			}
			t.nodes[i].parent = n.Parent
		}
	}
	if err := t.checkUnmerged(); err != nil {
		return nil, err
	}
	return t, nil
}

// DecodeBytes decodes an encoded ratchet_tree (optional<Node> vector).
func DecodeBytes(s *suite.Suite, b []byte) (*Tree, error) {
	var rt wire.RatchetTree
	if err := wire.Decode(b, &rt); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidTree, err)
	}
	return Decode(s, rt)
}

// Encode returns the ratchet_tree form with trailing blank nodes trimmed.
// The nodes are shared with the tree, not copied.
func (t *Tree) Encode() wire.RatchetTree {
	n := len(t.nodes)
	for n > 0 && t.blank(NodeIndex(n-1)) {
		n--
	}
	rt := make(wire.RatchetTree, n)
	for i := 0; i < n; i++ {
		switch {
		case t.nodes[i].leaf != nil:
			rt[i] = &wire.Node{Type: wire.NodeTypeLeaf, Leaf: t.nodes[i].leaf}
		case t.nodes[i].parent != nil:
			rt[i] = &wire.Node{Type: wire.NodeTypeParent, Parent: t.nodes[i].parent}
		}
	}
	return rt
}

// EncodeBytes returns the encoded ratchet_tree extension body.
func (t *Tree) EncodeBytes() []byte {
	rt := t.Encode()
	return wire.Encode(&rt)
}

// Clone returns an independent copy of the tree (nodes are shared, which
// is safe because they are never modified in place).
func (t *Tree) Clone() *Tree {
	c := &Tree{s: t.s, nodes: make([]slot, len(t.nodes))}
	copy(c.nodes, t.nodes)
	return c
}

// Suite returns the tree's cipher suite.
func (t *Tree) Suite() *suite.Suite { return t.s }

// LeafCount returns the number of leaves (a power of two, or 0), blank
// leaves included.
func (t *Tree) LeafCount() uint32 {
	if len(t.nodes) == 0 {
		return 0
	}
	return uint32(len(t.nodes)+1) / 2
}

// NodeCount returns the number of nodes of the full tree.
func (t *Tree) NodeCount() uint32 { return uint32(len(t.nodes)) }

// Root returns the root node index.
func (t *Tree) Root() NodeIndex { return Root(t.LeafCount()) }

// Leaf returns the leaf node at index i, or nil if it is blank or out of
// range.
func (t *Tree) Leaf(i LeafIndex) *wire.LeafNode {
	x := i.Node()
	if uint64(x) >= uint64(len(t.nodes)) {
		return nil
	}
	return t.nodes[x].leaf
}

// Parent returns the parent node at node index x, or nil if it is blank,
// a leaf or out of range.
func (t *Tree) Parent(x NodeIndex) *wire.ParentNode {
	if uint64(x) >= uint64(len(t.nodes)) {
		return nil
	}
	return t.nodes[x].parent
}

// Blank reports whether node x is blank (or outside the tree).
func (t *Tree) Blank(x NodeIndex) bool {
	return uint64(x) >= uint64(len(t.nodes)) || t.blank(x)
}

func (t *Tree) blank(x NodeIndex) bool {
	return t.nodes[x].leaf == nil && t.nodes[x].parent == nil
}

// EncryptionKey returns the HPKE public key of node x, or nil if blank.
func (t *Tree) EncryptionKey(x NodeIndex) []byte {
	if uint64(x) >= uint64(len(t.nodes)) {
		return nil
	}
	if l := t.nodes[x].leaf; l != nil {
		return l.EncryptionKey
	}
	if p := t.nodes[x].parent; p != nil {
		return p.EncryptionKey
	}
	return nil
}

// Members returns the indices of the non-blank leaves in order.
func (t *Tree) Members() []LeafIndex {
	var m []LeafIndex
	for i := uint32(0); i < t.LeafCount(); i++ {
		if t.nodes[2*i].leaf != nil {
			m = append(m, LeafIndex(i))
		}
	}
	return m
}

// invalidate drops the cached hashes of x and all its ancestors.
func (t *Tree) invalidate(x NodeIndex) {
	r := t.Root()
	t.nodes[x].hash = nil
	for x != r {
		x = parent(x)
		t.nodes[x].hash = nil
	}
}

// setLeaf replaces leaf i (nil blanks it) and invalidates hashes.
func (t *Tree) setLeaf(i LeafIndex, l *wire.LeafNode) {
	x := i.Node()
	t.nodes[x].leaf = l
	t.invalidate(x)
}

// setParent replaces parent x (nil blanks it) and invalidates hashes.
func (t *Tree) setParent(x NodeIndex, p *wire.ParentNode) {
	t.nodes[x].parent = p
	t.invalidate(x)
}

// checkUnmerged verifies the unmerged_leaves lists (§7.1, §12.4.3.1):
// sorted, strictly increasing, each leaf under the node and non-blank, and
// every node between the leaf and the parent either blank or listing it too.
func (t *Tree) checkUnmerged() error {
	n := t.LeafCount()
	for x := NodeIndex(1); uint32(x) < uint32(len(t.nodes)); x += 2 {
		p := t.nodes[x].parent
		if p == nil {
			continue
		}
		for j, l := range p.UnmergedLeaves {
			if j > 0 && l <= p.UnmergedLeaves[j-1] {
				return fmt.Errorf("%w: unmerged leaves of node %d not in increasing order", ErrInvalidTree, x)
			}
			if l >= n || !InSubtree(LeafIndex(l).Node(), x) {
				return fmt.Errorf("%w: unmerged leaf %d is not under node %d", ErrInvalidTree, l, x)
			}
			if t.nodes[LeafIndex(l).Node()].leaf == nil {
				return fmt.Errorf("%w: unmerged leaf %d of node %d is blank", ErrInvalidTree, l, x)
			}
			for y := parent(LeafIndex(l).Node()); y != x; y = parent(y) {
				if q := t.nodes[y].parent; q != nil && !sortedContains(q.UnmergedLeaves, l) {
					return fmt.Errorf("%w: leaf %d unmerged at node %d but not at node %d", ErrInvalidTree, l, x, y)
				}
			}
		}
	}
	return nil
}

// sortedContains reports whether the sorted list s holds v.
func sortedContains(s []uint32, v uint32) bool {
	_, found := slices.BinarySearch(s, v)
	return found
}

func containsU32(s []uint32, v uint32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
