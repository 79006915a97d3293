package tree

// Resolution returns the resolution of node x (§4.1.1): the node itself
// followed by its unmerged leaves if it is not blank; nothing for a blank
// leaf; the resolutions of its children, left then right, for a blank
// parent.
func (t *Tree) Resolution(x NodeIndex) []NodeIndex {
	if uint64(x) >= uint64(len(t.nodes)) {
		return nil
	}
	return t.appendResolution(nil, x)
}

func (t *Tree) appendResolution(dst []NodeIndex, x NodeIndex) []NodeIndex {
	s := &t.nodes[x]
	switch {
	case s.leaf != nil:
		return append(dst, x)
	case s.parent != nil:
		dst = append(dst, x)
		for _, l := range s.parent.UnmergedLeaves {
			dst = append(dst, LeafIndex(l).Node())
		}
		return dst
	case x.IsLeaf():
		return dst
	default:
		dst = t.appendResolution(dst, left(x))
		return t.appendResolution(dst, right(x))
	}
}

// resolutionEmpty reports whether the resolution of x is empty, i.e. the
// whole subtree under x is blank.
func (t *Tree) resolutionEmpty(x NodeIndex) bool {
	if !t.blank(x) {
		return false
	}
	if x.IsLeaf() {
		return true
	}
	return t.resolutionEmpty(left(x)) && t.resolutionEmpty(right(x))
}

// FilteredDirectPath returns the filtered direct path of leaf i (§4.1.2):
// its direct path without the nodes whose child on i's copath has an empty
// resolution.
func (t *Tree) FilteredDirectPath(i LeafIndex) []NodeIndex {
	fdp, _ := t.filteredPath(i)
	return fdp
}

// filteredPath returns the filtered direct path of leaf i and, for each of
// its nodes, the child on i's copath.
func (t *Tree) filteredPath(i LeafIndex) (fdp, copath []NodeIndex) {
	x := i.Node()
	if uint64(x) >= uint64(len(t.nodes)) {
		return nil, nil
	}
	r := t.Root()
	for x != r {
		s := sibling(x)
		x = parent(x)
		if !t.resolutionEmpty(s) {
			fdp = append(fdp, x)
			copath = append(copath, s)
		}
	}
	return fdp, copath
}

// resolutionExcluding is the resolution of x without the leaves in ex.
func (t *Tree) resolutionExcluding(x NodeIndex, ex map[LeafIndex]bool) []NodeIndex {
	res := t.appendResolution(nil, x)
	if len(ex) == 0 {
		return res
	}
	out := res[:0]
	for _, y := range res {
		if y.IsLeaf() && ex[y.Leaf()] {
			continue
		}
		out = append(out, y)
	}
	return out
}
