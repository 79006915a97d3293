package mlsinterop

import (
	"errors"
	"strings"
	"testing"

	"github.com/agwproject/agw/mls"
	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/wire"
)

// ts-mls 1.6.4 derives the commit secret wrongly when the root is not in
// the committer's filtered direct path (the root's child on the copath has
// an empty resolution: that half of the tree has no members). RFC 9420
// §12.4.1: "Define commit_secret as the value path_secret[n+1] derived from
// the last path secret value (path_secret[n]) derived for the UpdatePath."
// ts-mls's getCommitSecret (pathSecrets.js) instead keeps deriving "path"
// secrets up to the root index and derives the commit secret from that, one
// step too many. ts-mls members agree with each other, but Go (which follows
// the RFC) computes another epoch secret, so the confirmation tag fails in
// both directions.

// rootSkipped reports whether a commit with an UpdatePath from leaf c,
// after removing the leaves in removed (and, for an external join, after
// placing the joiner, who is then c), leaves the root out of the filtered
// direct path: the tree half not holding c has no members.
func rootSkipped(rt wire.RatchetTree, c uint32, removed []uint32, externalJoin bool) bool {
	occupied := map[uint32]bool{}
	for i := 0; i < len(rt); i += 2 {
		if rt[i] != nil {
			occupied[uint32(i/2)] = true
		}
	}
	for _, r := range removed {
		delete(occupied, r)
	}
	if externalJoin {
		c = 0
		for occupied[c] {
			c++
		}
		occupied[c] = true
	}
	maxLeaf := uint32(0)
	for l := range occupied {
		maxLeaf = max(maxLeaf, l)
	}
	width := uint32(1)
	for width <= maxLeaf {
		width *= 2
	}
	if width < 2 {
		return false
	}
	half := width / 2
	for l := range occupied {
		if (l < half) != (c < half) {
			return false
		}
	}
	return true
}

// commitSecretShape makes a 4-leaf group: Go a (leaf 0), Go x (1, never
// joins), ts-mls b (2), Go e (3). Removing a and x with a path from b or e
// leaves the root out of the filtered direct path.
func commitSecretShape(t *testing.T, d *Driver, s suite.ID) (b *tsMember, e *goMember) {
	t.Helper()
	a := newGo(t, "a", s)
	ekp := goKeyPackage(t, "e", s)
	res := a.merge(t)(a.g.Add([][]byte{goKeyPackage(t, "x", s).Bytes(), tsKeyPackage(t, d, "b", s), ekp.Bytes()}))
	call(t, d, "join", map[string]any{"name": "b", "welcome": res.Welcome})
	e = goJoin(t, "e", res.Welcome, ekp)
	b = &tsMember{name: "b", d: d}
	checkAgree(t, 1, e, b)
	if rt := decodeTree(t, e.g.RatchetTree()); !rootSkipped(rt, 3, []uint32{0, 1}, false) || !rootSkipped(rt, 2, []uint32{0, 1}, false) {
		t.Fatal("the group does not have the shape this test needs")
	}
	return b, e
}

func TestDeviationCommitSecret(t *testing.T) {
	d := startDriver(t)
	s := suite.ID(1)

	// ts-mls commits: Go refuses the confirmation tag.
	b, e := commitSecretShape(t, d, s)
	cm := call(t, d, "remove", map[string]any{"name": "b", "leaves": []uint32{0, 1}})
	_, err := e.g.ProcessMessage(cm.Commit)
	if err == nil {
		t.Fatal("Go accepted the ts-mls commit; the commit-secret deviation is gone (drop the guard in soak_test.go)")
	}
	if !errors.Is(err, mls.ErrBadConfirmationTag) {
		t.Fatalf("Go refused the ts-mls commit for another reason: %v", err)
	}

	// Go commits: ts-mls refuses the confirmation tag.
	d2 := startDriver(t)
	b, e = commitSecretShape(t, d2, s)
	res := e.merge(t)(e.g.Remove([]uint32{0, 1}))
	_, _, err = b.Process(res.Commit)
	if err == nil {
		t.Fatal("ts-mls accepted the Go commit; the commit-secret deviation is gone")
	}
	if !strings.Contains(err.Error(), "confirmation tag") {
		t.Fatalf("ts-mls refused the Go commit for another reason: %v", err)
	}
}

func TestRootSkipped(t *testing.T) {
	leaf := &wire.Node{Type: wire.NodeTypeLeaf, Leaf: &wire.LeafNode{}}
	// leaves 0, 2, 3 of 4.
	rt := wire.RatchetTree{leaf, nil, nil, nil, leaf, nil, leaf}
	if rootSkipped(rt, 2, nil, false) {
		t.Error("leaf 0 is in the other half")
	}
	if !rootSkipped(rt, 2, []uint32{0}, false) {
		t.Error("removing leaf 0 empties the other half")
	}
	if rootSkipped(rt, 0, []uint32{3}, false) {
		t.Error("leaf 2 remains in the other half")
	}
	// Removing 2 and 3 truncates the tree to one leaf: no path nodes.
	if rootSkipped(rt, 0, []uint32{2, 3}, false) {
		t.Error("one-leaf tree has no root to skip")
	}
	// An external joiner takes leaf 1, next to leaf 0: the other half
	// still holds 2 and 3.
	if rootSkipped(rt, 0, nil, true) {
		t.Error("external joiner at leaf 1 has members in the other half")
	}
	// leaves 2 and 3 only (8 nodes wide before truncation is impossible;
	// a blank left half): a joiner fills leaf 0.
	rt = wire.RatchetTree{nil, nil, nil, nil, leaf, nil, leaf}
	if rootSkipped(rt, 0, nil, true) {
		t.Error("external joiner at leaf 0 has members in the other half")
	}
	if !rootSkipped(rt, 3, nil, false) {
		t.Error("left half is empty")
	}
}
