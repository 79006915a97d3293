package mlsinterop

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/agwproject/agw/mls"
	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/tree"
	"github.com/agwproject/agw/mls/wire"
)

// ts-mls 1.6.4 validates the unmerged_leaves of a joiner's ratchet tree
// more strictly than RFC 9420 allows. §12.4.3.1 says: for each non-blank
// parent P and each leaf L in P.unmerged_leaves, "verify that every
// non-blank intermediate node between the leaf node and the parent node also
// has an entry for the leaf node in its unmerged_leaves". ts-mls instead
// walks L's whole direct path (up to the root, past P) and demands that
// every non-blank node there has an unmerged_leaves list EQUAL to P's. A
// valid tree where P's ancestor also lists another, later added leaf is
// refused with "non-blank intermediate node must list leaf node in its
// unmerged_leaves". The helpers below state both rules over a decoded tree,
// so the tests can tell which one a tree breaks.

func decodeTree(t *testing.T, enc []byte) wire.RatchetTree {
	t.Helper()
	var rt wire.RatchetTree
	if err := wire.Decode(enc, &rt); err != nil {
		t.Fatalf("decode ratchet tree: %v", err)
	}
	return rt
}

func leafCount(rt wire.RatchetTree) uint32 {
	n := uint32(1)
	for tree.NodeCount(n) < uint32(len(rt)) {
		n *= 2
	}
	return n
}

func node(rt wire.RatchetTree, i tree.NodeIndex) *wire.Node {
	if int(i) >= len(rt) {
		return nil
	}
	return rt[i]
}

// rfcUnmergedViolation checks the unmerged_leaves rule of RFC 9420
// §12.4.3.1 and describes the first violation ("" if none).
func rfcUnmergedViolation(rt wire.RatchetTree) string {
	leaves := leafCount(rt)
	for i, n := range rt {
		if n == nil || n.Parent == nil {
			continue
		}
		p := tree.NodeIndex(i)
		for _, l := range n.Parent.UnmergedLeaves {
			ln := tree.NodeIndex(2 * l)
			if leafNode := node(rt, ln); leafNode == nil || leafNode.Leaf == nil || !tree.InSubtree(ln, p) || ln == p {
				return fmt.Sprintf("node %d lists leaf %d, which is blank or not below it", p, l)
			}
			for _, x := range tree.DirectPath(ln, leaves) {
				if x == p {
					break
				}
				if xn := node(rt, x); xn != nil && xn.Parent != nil && !slices.Contains(xn.Parent.UnmergedLeaves, l) {
					return fmt.Sprintf("node %d between leaf %d and node %d does not list it", x, l, p)
				}
			}
		}
	}
	return ""
}

// tsmlsUnmergedViolation applies ts-mls 1.6.4's rule (see above) and
// describes the first node it refuses ("" if none).
func tsmlsUnmergedViolation(rt wire.RatchetTree) string {
	leaves := leafCount(rt)
	for i, n := range rt {
		if n == nil || n.Parent == nil {
			continue
		}
		for _, l := range n.Parent.UnmergedLeaves {
			for _, x := range tree.DirectPath(tree.NodeIndex(2*l), leaves) {
				if xn := node(rt, x); xn != nil && xn.Parent != nil && !slices.Equal(xn.Parent.UnmergedLeaves, n.Parent.UnmergedLeaves) {
					return fmt.Sprintf("node %d lists %v, node %d (on leaf %d's path) lists %v", i, n.Parent.UnmergedLeaves, x, l, xn.Parent.UnmergedLeaves)
				}
			}
		}
	}
	return ""
}

// TestDeviationUnmergedLeaves builds a valid tree that ts-mls refuses: in an
// 8-leaf group whose creator's path covers nodes 3 and 7, leaves 2 and 6 are
// removed and refilled by an Add-only commit, so node 3 lists [2] and the
// root lists [2 6]. A Go joiner accepts the Welcome; a ts-mls joiner refuses
// it.
func TestDeviationUnmergedLeaves(t *testing.T) {
	d := startDriver(t)
	s := suite.ID(1)
	a := newGo(t, "a", s)
	var kps [][]byte
	for i := range 7 {
		kps = append(kps, goKeyPackage(t, fmt.Sprintf("m%d", i), s).Bytes())
	}
	a.merge(t)(a.g.Add(kps, mls.WithPath()))
	a.merge(t)(a.g.Remove([]uint32{2, 6}))
	goJoiner := goKeyPackage(t, "y", s)
	res := a.merge(t)(a.g.Add([][]byte{tsKeyPackage(t, d, "x", s), goJoiner.Bytes()}))

	rt := decodeTree(t, a.g.RatchetTree())
	if v := rfcUnmergedViolation(rt); v != "" {
		t.Fatalf("Go built a tree that breaks RFC 9420 §12.4.3.1: %s", v)
	}
	v := tsmlsUnmergedViolation(rt)
	if v == "" {
		t.Fatal("the tree does not have the shape this test needs (no node with a differing ancestor list)")
	}
	t.Logf("RFC-valid tree that ts-mls's rule refuses: %s", v)

	goJoin(t, "y", res.Welcome, goJoiner) // Go accepts the tree
	_, err := tryCall(d, "join", map[string]any{"name": "x", "welcome": res.Welcome})
	if err == nil {
		t.Fatal("ts-mls joined; its unmerged_leaves deviation is gone (drop the workaround in soak_test.go)")
	}
	if !strings.Contains(err.Error(), "unmerged_leaves") {
		t.Fatalf("ts-mls refused the Welcome for another reason: %v", err)
	}
}

// TestUnmergedRules checks the two rule helpers on hand-made trees.
func TestUnmergedRules(t *testing.T) {
	leaf := &wire.Node{Type: wire.NodeTypeLeaf, Leaf: &wire.LeafNode{}}
	parent := func(unmerged ...uint32) *wire.Node {
		return &wire.Node{Type: wire.NodeTypeParent, Parent: &wire.ParentNode{UnmergedLeaves: unmerged}}
	}
	// 4 leaves: nodes 0 1 2 3 4 5 6; root 3; node 5 is the parent of leaves 2, 3.
	valid := wire.RatchetTree{leaf, nil, leaf, parent(2), leaf, parent(2), leaf}
	if v := rfcUnmergedViolation(valid); v != "" {
		t.Fatalf("valid tree: %s", v)
	}
	// Root also lists leaf 1 (added later, node 1 blank): still valid, but
	// ts-mls's equality rule trips on node 5 vs the root.
	diff := wire.RatchetTree{leaf, nil, leaf, parent(2, 1), leaf, parent(2), leaf}
	if v := rfcUnmergedViolation(diff); v != "" {
		t.Fatalf("valid tree with differing lists: %s", v)
	}
	if tsmlsUnmergedViolation(diff) == "" {
		t.Fatal("ts-mls rule helper misses the differing lists")
	}
	// Root lists leaf 2, node 5 (between) does not: invalid.
	bad := wire.RatchetTree{leaf, nil, leaf, parent(2), leaf, parent(), leaf}
	if rfcUnmergedViolation(bad) == "" {
		t.Fatal("RFC rule helper misses a missing intermediate entry")
	}
	// Node 1 lists leaf 2, which is not below it: invalid.
	notBelow := wire.RatchetTree{leaf, parent(1, 2), leaf}
	if rfcUnmergedViolation(notBelow) == "" {
		t.Fatal("RFC rule helper misses a leaf outside the subtree")
	}
}
