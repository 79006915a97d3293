package tree

import (
	"fmt"
	"testing"
)

var benchSizes = []int{16, 128, 1024}

// clearHashes drops every cached tree hash.
func (t *Tree) clearHashes() {
	for i := range t.nodes {
		t.nodes[i].hash = nil
	}
}

func BenchmarkGeneratePath(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			g := newTestGroup(b, mustSuite(b, 1), n, true)
			g.tree.TreeHash()
			for b.Loop() {
				tr := g.tree.Clone()
				if _, err := GeneratePath(tr, PathParams{Sender: 0, GroupID: g.groupID, Signer: g.members[0].signer, GroupContext: g.gc(1)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkApplyPath(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			g := newTestGroup(b, mustSuite(b, 1), n, true)
			g.tree.TreeHash()
			r, err := GeneratePath(g.tree.Clone(), PathParams{Sender: 0, GroupID: g.groupID, Signer: g.members[0].signer, GroupContext: g.gc(1)})
			if err != nil {
				b.Fatal(err)
			}
			me := g.privs[n-1]
			for b.Loop() {
				tr := g.tree.Clone()
				if _, err := ApplyPath(tr, 0, r.Path, me, g.gc(1), nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTreeHash recomputes every node's hash from scratch.
func BenchmarkTreeHash(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			g := newTestGroup(b, mustSuite(b, 1), n, true)
			for b.Loop() {
				g.tree.clearHashes()
				g.tree.TreeHash()
			}
		})
	}
}

// BenchmarkCommitAdd is a commit that adds one member with a path: the
// Add (which doubles a full tree), the UpdatePath excluding the joiner,
// and the tree hash of the new tree.
func BenchmarkCommitAdd(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := mustSuite(b, 1)
			g := newTestGroup(b, s, n, true)
			g.tree.TreeHash()
			joiner := newTestMember(b, s, "joiner")
			for b.Loop() {
				tr := g.tree.Clone()
				idx := tr.AddLeaf(joiner.leaf)
				r, err := GeneratePath(tr, PathParams{Sender: 0, GroupID: g.groupID, Signer: g.members[0].signer,
					GroupContext: g.gc(1), Exclude: []LeafIndex{idx}})
				if err != nil {
					b.Fatal(err)
				}
				if r.PathSecretFor(idx) == nil {
					b.Fatal("no path secret for the joiner")
				}
			}
		})
	}
}
