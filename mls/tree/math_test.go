package tree

import (
	"testing"

	"github.com/agwproject/agw/mls/internal/testvec"
)

type treeMathVector struct {
	NLeaves uint32    `json:"n_leaves"`
	NNodes  uint32    `json:"n_nodes"`
	Root    uint32    `json:"root"`
	Left    []*uint32 `json:"left"`
	Right   []*uint32 `json:"right"`
	Parent  []*uint32 `json:"parent"`
	Sibling []*uint32 `json:"sibling"`
}

func checkOpt(t *testing.T, what string, n uint32, i int, got NodeIndex, ok bool, want *uint32) {
	t.Helper()
	switch {
	case want == nil && ok:
		t.Errorf("n=%d %s(%d) = %d, want none", n, what, i, got)
	case want != nil && !ok:
		t.Errorf("n=%d %s(%d) = none, want %d", n, what, i, *want)
	case want != nil && uint32(got) != *want:
		t.Errorf("n=%d %s(%d) = %d, want %d", n, what, i, got, *want)
	}
}

func TestTreeMathVectors(t *testing.T) {
	var vs []treeMathVector
	testvec.Load(t, "tree-math.json", &vs)
	c := testvec.Counter{File: "tree-math.json"}
	for _, v := range vs {
		if got := NodeCount(v.NLeaves); got != v.NNodes {
			t.Errorf("NodeCount(%d) = %d, want %d", v.NLeaves, got, v.NNodes)
		}
		if got := Root(v.NLeaves); uint32(got) != v.Root {
			t.Errorf("Root(%d) = %d, want %d", v.NLeaves, got, v.Root)
		}
		if len(v.Left) != int(v.NNodes) || len(v.Right) != int(v.NNodes) ||
			len(v.Parent) != int(v.NNodes) || len(v.Sibling) != int(v.NNodes) {
			t.Fatalf("n=%d: vector arrays do not have n_nodes entries", v.NLeaves)
		}
		for i := 0; i < int(v.NNodes); i++ {
			x := NodeIndex(i)
			l, ok := Left(x)
			checkOpt(t, "left", v.NLeaves, i, l, ok, v.Left[i])
			r, ok := Right(x)
			checkOpt(t, "right", v.NLeaves, i, r, ok, v.Right[i])
			p, ok := Parent(x, v.NLeaves)
			checkOpt(t, "parent", v.NLeaves, i, p, ok, v.Parent[i])
			s, ok := Sibling(x, v.NLeaves)
			checkOpt(t, "sibling", v.NLeaves, i, s, ok, v.Sibling[i])
		}
		if !t.Failed() {
			c.Passed++
		}
	}
	if len(vs) != 10 {
		t.Errorf("tree-math.json has %d entries, want 10", len(vs))
	}
	c.Report(t)
}

func TestDirectPathCopath(t *testing.T) {
	// 8 leaves: root 7. Leaf 2 (node 4): direct path 5, 3, 7; copath 6, 1, 11.
	dp := DirectPath(4, 8)
	want := []NodeIndex{5, 3, 7}
	if len(dp) != len(want) {
		t.Fatalf("DirectPath(4,8) = %v, want %v", dp, want)
	}
	for i := range want {
		if dp[i] != want[i] {
			t.Fatalf("DirectPath(4,8) = %v, want %v", dp, want)
		}
	}
	cp := Copath(4, 8)
	wantC := []NodeIndex{6, 1, 11}
	for i := range wantC {
		if len(cp) != len(wantC) || cp[i] != wantC[i] {
			t.Fatalf("Copath(4,8) = %v, want %v", cp, wantC)
		}
	}
	if len(DirectPath(0, 1)) != 0 || len(Copath(0, 1)) != 0 {
		t.Fatal("one-leaf tree: direct path and copath must be empty")
	}
	if DirectPath(15, 8) != nil {
		t.Fatal("node outside the tree must have no direct path")
	}
	// Relations cross-checked against the path functions for 16 leaves.
	const n = 16
	for x := NodeIndex(0); x < NodeIndex(NodeCount(n)); x++ {
		dp := DirectPath(x, n)
		cp := Copath(x, n)
		if len(dp) != len(cp) {
			t.Fatalf("node %d: direct path %v and copath %v differ in length", x, dp, cp)
		}
		prev := x
		for i, p := range dp {
			if !InSubtree(prev, p) || InSubtree(p, prev) && p != prev {
				t.Fatalf("node %d: %d not under %d", x, prev, p)
			}
			if s, _ := Sibling(prev, n); s != cp[i] {
				t.Fatalf("node %d: copath[%d]=%d, sibling of %d is %d", x, i, cp[i], prev, s)
			}
			prev = p
		}
		for y := NodeIndex(0); y < NodeIndex(NodeCount(n)); y++ {
			a := CommonAncestor(x, y)
			if !InSubtree(x, a) || !InSubtree(y, a) {
				t.Fatalf("CommonAncestor(%d,%d)=%d does not cover both", x, y, a)
			}
			if Level(a) > 0 {
				l, r := left(a), right(a)
				if InSubtree(x, l) && InSubtree(y, l) || InSubtree(x, r) && InSubtree(y, r) {
					t.Fatalf("CommonAncestor(%d,%d)=%d is not the lowest", x, y, a)
				}
			}
		}
	}
	first, cnt := subtreeLeaves(11)
	if first != 4 || cnt != 4 {
		t.Fatalf("subtreeLeaves(11) = %d,%d, want 4,4", first, cnt)
	}
}
