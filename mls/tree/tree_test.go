package tree

import (
	"bytes"
	"errors"
	"testing"

	"github.com/agwproject/agw/mls/wire"
)

// commit runs a full commit with path from sender: generate, then every
// other member (except the excluded new ones) applies it and must agree.
func (g *testGroup) commit(t *testing.T, sender LeafIndex, exclude []LeafIndex, epoch uint64) *PathResult {
	t.Helper()
	gen := g.tree.Clone()
	r, err := GeneratePath(gen, PathParams{
		Sender: sender, GroupID: g.groupID, Signer: g.members[sender].signer,
		Exclude: exclude, GroupContext: g.gc(epoch),
	})
	if err != nil {
		t.Fatalf("GeneratePath from %d: %v", sender, err)
	}
	ex := excludeSet(exclude)
	for _, i := range g.tree.Members() {
		if i == sender || ex[i] {
			continue
		}
		tr := g.tree.Clone()
		res, err := ApplyPath(tr, sender, r.Path, g.privs[i], g.gc(epoch), exclude)
		if err != nil {
			t.Fatalf("ApplyPath of %d's path by %d: %v", sender, i, err)
		}
		if !bytes.Equal(res.CommitSecret, r.CommitSecret) {
			t.Fatalf("member %d: commit secret differs", i)
		}
		if !bytes.Equal(tr.TreeHash(), gen.TreeHash()) {
			t.Fatalf("member %d: tree hash differs", i)
		}
		if err := res.Private.Check(tr); err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		g.privs[i] = res.Private
	}
	g.privs[sender] = r.Private
	g.tree = gen
	return r
}

func TestAddRemoveShape(t *testing.T) {
	s := mustSuite(t, 1)
	g := newTestGroup(t, s, 5, false)
	tr := g.tree
	if tr.LeafCount() != 8 || tr.NodeCount() != 15 {
		t.Fatalf("5 members: %d leaves, %d nodes", tr.LeafCount(), tr.NodeCount())
	}
	if got := len(tr.Encode()); got != 9 {
		t.Fatalf("encoded tree has %d nodes, want 9 (trailing blanks trimmed)", got)
	}
	if err := tr.RemoveLeaf(4); err != nil {
		t.Fatal(err)
	}
	if tr.LeafCount() != 4 {
		t.Fatalf("after removing leaf 4: %d leaves, want 4", tr.LeafCount())
	}
	if err := tr.RemoveLeaf(4); !errors.Is(err, ErrBlankLeaf) {
		t.Fatalf("removing a leaf outside the tree: %v, want ErrBlankLeaf", err)
	}
	if err := tr.RemoveLeaf(1); err != nil {
		t.Fatal(err)
	}
	if err := tr.RemoveLeaf(1); !errors.Is(err, ErrBlankLeaf) {
		t.Fatalf("removing a blank leaf: %v, want ErrBlankLeaf", err)
	}
	if tr.LeafCount() != 4 {
		t.Fatalf("after removing leaf 1: %d leaves, want 4", tr.LeafCount())
	}
	m := newTestMember(t, s, "late")
	if idx := tr.AddLeaf(m.leaf); idx != 1 {
		t.Fatalf("AddLeaf used leaf %d, want the leftmost blank 1", idx)
	}
	for _, i := range []LeafIndex{2, 3} {
		if err := tr.RemoveLeaf(i); err != nil {
			t.Fatal(err)
		}
	}
	if tr.LeafCount() != 2 {
		t.Fatalf("after removing leaves 2, 3: %d leaves, want 2", tr.LeafCount())
	}
	fresh, err := Decode(s, tr.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh.TreeHash(), tr.TreeHash()) {
		t.Fatal("cached tree hash differs from a fresh one after adds and removes")
	}
	if err := tr.UpdateLeaf(3, m.leaf); !errors.Is(err, ErrBlankLeaf) {
		t.Fatalf("update of a missing leaf: %v", err)
	}
}

func TestCommitsUnmergedAndWelcome(t *testing.T) {
	s := mustSuite(t, 1)
	g := newTestGroup(t, s, 3, false)
	g.commit(t, 0, nil, 1)
	if err := g.tree.ParentHashValid(); err != nil {
		t.Fatalf("after commit by 0: %v", err)
	}
	if got := g.tree.FilteredDirectPath(0); len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Fatalf("filtered direct path of 0 = %v, want [1 3]", got)
	}
	// Add a member at leaf 3: it becomes unmerged at the root (node 3);
	// node 5 is blank.
	m := newTestMember(t, s, "joiner")
	idx := g.tree.AddLeaf(m.leaf)
	if idx != 3 {
		t.Fatalf("joiner at %d, want 3", idx)
	}
	g.members = append(g.members, m)
	g.privs = append(g.privs, NewPrivate(idx, m.encKey))
	if p := g.tree.Parent(3); p == nil || len(p.UnmergedLeaves) != 1 || p.UnmergedLeaves[0] != 3 {
		t.Fatalf("root unmerged leaves = %+v, want [3]", p)
	}
	if got := g.tree.Resolution(3); len(got) != 2 || got[0] != 3 || got[1] != 6 {
		t.Fatalf("resolution of the root = %v, want [3 6]", got)
	}
	if got := g.tree.Resolution(5); len(got) != 2 || got[0] != 4 || got[1] != 6 {
		t.Fatalf("resolution of node 5 = %v, want [4 6]", got)
	}
	// The original sibling tree hash excludes the unmerged leaf, so the
	// tree is still parent-hash valid.
	if err := g.tree.ParentHashValid(); err != nil {
		t.Fatalf("after add: %v", err)
	}
	// Leaf 1 commits and the joiner, added by the same commit, is excluded.
	r := g.commit(t, 1, []LeafIndex{3}, 2)
	if n := len(r.Path.Nodes[1].EncryptedPathSecret); n != 1 {
		t.Fatalf("root path node has %d ciphertexts, want 1 (joiner excluded)", n)
	}
	ps := r.PathSecretFor(3)
	if ps == nil || !bytes.Equal(ps, r.PathSecrets[1]) {
		t.Fatal("PathSecretFor(joiner) must be the root's path secret")
	}
	if err := g.privs[3].AddPathSecret(g.tree, 1, ps); err != nil {
		t.Fatalf("joiner AddPathSecret: %v", err)
	}
	if err := g.privs[3].Check(g.tree); err != nil {
		t.Fatalf("joiner private state: %v", err)
	}
	if err := g.privs[3].AddPathSecret(g.tree, 1, r.PathSecrets[0]); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("wrong welcome path secret: %v, want ErrKeyMismatch", err)
	}
	if err := g.tree.ParentHashValid(); err != nil {
		t.Fatalf("after commit by 1: %v", err)
	}
	// Everyone, the joiner included, commits in turn.
	for i, sender := range []LeafIndex{3, 2, 0} {
		g.commit(t, sender, nil, uint64(3+i))
		if err := g.tree.ParentHashValid(); err != nil {
			t.Fatalf("after commit by %d: %v", sender, err)
		}
		if err := g.tree.Validate(g.groupID); err != nil {
			t.Fatalf("after commit by %d: %v", sender, err)
		}
	}
	// Remove and Update blank the direct path; private keys are pruned.
	if err := g.tree.RemoveLeaf(3); err != nil {
		t.Fatal(err)
	}
	if !g.tree.Blank(5) || !g.tree.Blank(3) {
		t.Fatal("Remove must blank the removed leaf's direct path")
	}
	g.privs[2].Prune(g.tree)
	if err := g.privs[2].Check(g.tree); err != nil {
		t.Fatalf("after prune: %v", err)
	}
	if len(g.privs[2].Keys) != 1 {
		t.Fatalf("leaf 2 keeps %d keys, want only its leaf key", len(g.privs[2].Keys))
	}
}

func TestDecodeInvalidTrees(t *testing.T) {
	s := mustSuite(t, 1)
	g := newTestGroup(t, s, 3, false)
	g.commit(t, 0, nil, 1)
	m := newTestMember(t, s, "extra")
	g.tree.AddLeaf(m.leaf) // leaf 3, unmerged at the root (node 3)
	good := g.tree.Encode()
	if _, err := Decode(s, good); err != nil {
		t.Fatalf("valid tree: %v", err)
	}
	clone := func() wire.RatchetTree {
		c := make(wire.RatchetTree, len(good))
		copy(c, good)
		return c
	}
	withUnmerged := func(x int, u []uint32) wire.RatchetTree {
		c := clone()
		p := *c[x].Parent
		p.UnmergedLeaves = u
		c[x] = &wire.Node{Type: wire.NodeTypeParent, Parent: &p}
		return c
	}
	leafAtOdd := clone()
	leafAtOdd[1] = &wire.Node{Type: wire.NodeTypeLeaf, Leaf: m.leaf}
	trailing := append(clone(), nil)
	blankUnmerged := withUnmerged(3, []uint32{2, 3})
	blankUnmerged[4] = nil
	cases := map[string]wire.RatchetTree{
		"empty":              nil,
		"trailing blank":     trailing,
		"leaf at odd index":  leafAtOdd,
		"unsorted unmerged":  withUnmerged(3, []uint32{3, 2}),
		"unmerged not below": withUnmerged(1, []uint32{2}),
		"unmerged blank":     blankUnmerged,
		"unmerged duplicate": withUnmerged(3, []uint32{3, 3}),
		"unmerged skipped":   withUnmerged(3, []uint32{0, 3}), // node 1 on the way is non-blank without it
	}
	for name, rt := range cases {
		if _, err := Decode(s, rt); !errors.Is(err, ErrInvalidTree) {
			t.Errorf("%s: %v, want ErrInvalidTree", name, err)
		}
	}
	if _, err := DecodeBytes(s, []byte{0x01, 0x00}); !errors.Is(err, ErrInvalidTree) {
		t.Errorf("malformed bytes: %v, want ErrInvalidTree", err)
	}
}

func TestBrokenParentHash(t *testing.T) {
	s := mustSuite(t, 1)
	g := newTestGroup(t, s, 4, false)
	g.commit(t, 0, nil, 1)
	g.commit(t, 3, nil, 2)
	if err := g.tree.ParentHashValid(); err != nil {
		t.Fatalf("valid tree: %v", err)
	}
	for _, field := range []string{"parent_hash", "encryption_key"} {
		tr := g.tree.Clone()
		p := *tr.Parent(5)
		if field == "parent_hash" {
			p.ParentHash = append([]byte(nil), p.ParentHash...)
			p.ParentHash[0] ^= 1
		} else {
			p.EncryptionKey = append([]byte(nil), p.EncryptionKey...)
			p.EncryptionKey[3] ^= 1
		}
		tr.setParent(5, &p)
		if err := tr.ParentHashValid(); !errors.Is(err, ErrParentHash) {
			t.Errorf("tampered %s: %v, want ErrParentHash", field, err)
		}
	}
	// A parent node nobody links to (set out of band) is not valid either.
	tr := g.tree.Clone()
	_, pub, _ := s.GenerateHPKEKey()
	tr.setParent(1, &wire.ParentNode{EncryptionKey: pub})
	if err := tr.ParentHashValid(); !errors.Is(err, ErrParentHash) {
		t.Errorf("orphan parent: %v, want ErrParentHash", err)
	}
}

func TestBadLeafSignature(t *testing.T) {
	s := mustSuite(t, 1)
	g := newTestGroup(t, s, 3, false)
	g.commit(t, 1, nil, 1)
	if err := g.tree.VerifyLeafSignatures(g.groupID); err != nil {
		t.Fatalf("valid tree: %v", err)
	}
	if err := g.tree.VerifyLeafSignatures([]byte("other group")); !errors.Is(err, ErrLeafSignature) {
		t.Fatalf("commit leaf checked with another group id: %v, want ErrLeafSignature", err)
	}
	tr := g.tree.Clone()
	l := *tr.Leaf(2)
	l.Signature = append([]byte(nil), l.Signature...)
	l.Signature[5] ^= 0x80
	tr.setLeaf(2, &l)
	if err := tr.VerifyLeafSignatures(g.groupID); !errors.Is(err, ErrLeafSignature) {
		t.Fatalf("tampered signature: %v, want ErrLeafSignature", err)
	}
	if err := tr.Validate(g.groupID); !errors.Is(err, ErrLeafSignature) {
		t.Fatalf("Validate with tampered signature: %v, want ErrLeafSignature", err)
	}
	l2 := *g.tree.Leaf(0)
	l2.Extensions = []wire.Extension{{Type: 0x7a7a, Data: []byte{1}}}
	if err := ValidateLeaf(s, &l2, g.groupID, 0, 0); !errors.Is(err, ErrInvalidLeaf) {
		t.Fatalf("unlisted extension: %v, want ErrInvalidLeaf", err)
	}
	if err := ValidateLeaf(s, g.tree.Leaf(0), g.groupID, 0, wire.LeafNodeSourceCommit); !errors.Is(err, ErrInvalidLeaf) {
		t.Fatalf("key package leaf where a commit leaf is wanted: %v, want ErrInvalidLeaf", err)
	}
	if err := g.tree.CheckLeafKeys(g.tree.Leaf(0), 2); !errors.Is(err, ErrDuplicateKey) {
		t.Fatalf("duplicate keys: %v, want ErrDuplicateKey", err)
	}
	if err := g.tree.CheckLeafKeys(g.tree.Leaf(0), 0); err != nil {
		t.Fatalf("leaf against itself: %v", err)
	}
	if i, ok := g.tree.FindLeafBySignatureKey(g.tree.Leaf(2).SignatureKey); !ok || i != 2 {
		t.Fatalf("FindLeafBySignatureKey = %d, %v", i, ok)
	}
	if i, ok := g.tree.FindLeafByEncryptionKey(g.tree.Leaf(1).EncryptionKey); !ok || i != 1 {
		t.Fatalf("FindLeafByEncryptionKey = %d, %v", i, ok)
	}
	if _, ok := g.tree.FindLeafBySignatureKey([]byte("nobody")); ok {
		t.Fatal("FindLeafBySignatureKey found an unknown key")
	}
}

func TestBadUpdatePaths(t *testing.T) {
	s := mustSuite(t, 1)
	g := newTestGroup(t, s, 4, false)
	g.commit(t, 0, nil, 1)
	gen := g.tree.Clone()
	r, err := GeneratePath(gen, PathParams{Sender: 1, GroupID: g.groupID, Signer: g.members[1].signer, GroupContext: g.gc(2)})
	if err != nil {
		t.Fatal(err)
	}
	enc := wire.Encode(r.Path)
	fresh := func() *wire.UpdatePath {
		var p wire.UpdatePath
		if err := wire.Decode(enc, &p); err != nil {
			t.Fatal(err)
		}
		return &p
	}
	apply := func(p *wire.UpdatePath, receiver int, gc GroupContextFunc) error {
		_, err := ApplyPath(g.tree.Clone(), 1, p, g.privs[receiver], gc, nil)
		return err
	}
	if err := apply(fresh(), 3, g.gc(2)); err != nil {
		t.Fatalf("valid path: %v", err)
	}
	p := fresh()
	p.Nodes[1].EncryptedPathSecret = p.Nodes[1].EncryptedPathSecret[:0]
	if err := apply(p, 3, g.gc(2)); !errors.Is(err, ErrUpdatePath) {
		t.Errorf("missing ciphertext: %v, want ErrUpdatePath", err)
	}
	p = fresh()
	p.Nodes[0].EncryptedPathSecret = append(p.Nodes[0].EncryptedPathSecret, p.Nodes[0].EncryptedPathSecret[0])
	if err := apply(p, 3, g.gc(2)); !errors.Is(err, ErrUpdatePath) {
		t.Errorf("extra ciphertext: %v, want ErrUpdatePath", err)
	}
	p = fresh()
	p.Nodes = p.Nodes[:1]
	if err := apply(p, 3, g.gc(2)); !errors.Is(err, ErrUpdatePath) {
		t.Errorf("missing path node: %v, want ErrUpdatePath", err)
	}
	if err := MergePath(g.tree.Clone(), 1, p); !errors.Is(err, ErrUpdatePath) {
		t.Errorf("MergePath with a missing node: %v, want ErrUpdatePath", err)
	}
	p = fresh()
	p.Nodes[1].EncryptionKey[0] ^= 1
	if err := apply(p, 3, g.gc(2)); !errors.Is(err, ErrParentHash) {
		t.Errorf("changed path key: %v, want ErrParentHash", err)
	}
	p = fresh()
	p.LeafNode.ParentHash[0] ^= 1
	if err := apply(p, 0, g.gc(2)); !errors.Is(err, ErrParentHash) {
		t.Errorf("changed leaf parent hash: %v, want ErrParentHash", err)
	}
	p = fresh()
	for _, ct := range p.Nodes[1].EncryptedPathSecret {
		ct.Ciphertext[0] ^= 1
	}
	if err := apply(p, 3, g.gc(2)); err == nil {
		t.Error("corrupt ciphertext accepted")
	}
	if err := apply(fresh(), 3, g.gc(3)); err == nil {
		t.Error("path decrypted under another group context")
	}
	if _, err := ApplyPath(g.tree.Clone(), 1, fresh(), g.privs[1], g.gc(2), nil); !errors.Is(err, ErrNoPrivateKey) {
		t.Errorf("sender applying its own path: %v, want ErrNoPrivateKey", err)
	}
	if err := apply(fresh(), 3, g.gc(2)); err != nil {
		t.Fatalf("valid path after the negative cases: %v", err)
	}
	stranger := NewPrivate(3, []byte("not a key"))
	stranger.Keys = map[NodeIndex][]byte{}
	if _, err := ApplyPath(g.tree.Clone(), 1, fresh(), stranger, g.gc(2), nil); !errors.Is(err, ErrNoPrivateKey) {
		t.Errorf("member without keys: %v, want ErrNoPrivateKey", err)
	}
	if _, err := GeneratePath(g.tree.Clone(), PathParams{Sender: 9, Signer: g.members[1].signer, GroupContext: g.gc(2)}); !errors.Is(err, ErrBlankLeaf) {
		t.Errorf("GeneratePath from a missing leaf: %v, want ErrBlankLeaf", err)
	}
}

func TestSingleMemberPath(t *testing.T) {
	s := mustSuite(t, 2)
	g := newTestGroup(t, s, 1, false)
	r := g.commit(t, 0, nil, 1)
	if len(r.Path.Nodes) != 0 || len(r.CommitSecret) != s.Nh() {
		t.Fatalf("one member: %d path nodes, commit secret of %d bytes", len(r.Path.Nodes), len(r.CommitSecret))
	}
	if err := g.tree.Validate(g.groupID); err != nil {
		t.Fatal(err)
	}
	// A deterministic leaf secret gives a deterministic commit secret.
	a, err := GeneratePath(g.tree.Clone(), PathParams{Sender: 0, GroupID: g.groupID, Signer: g.members[0].signer, GroupContext: g.gc(2), LeafSecret: make([]byte, s.Nh())})
	if err != nil {
		t.Fatal(err)
	}
	b, err := GeneratePath(g.tree.Clone(), PathParams{Sender: 0, GroupID: g.groupID, Signer: g.members[0].signer, GroupContext: g.gc(2), LeafSecret: make([]byte, s.Nh())})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.CommitSecret, b.CommitSecret) || bytes.Equal(a.CommitSecret, r.CommitSecret) {
		t.Fatal("commit secrets must depend on the leaf secret only")
	}
}
