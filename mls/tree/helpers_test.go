package tree

import (
	"fmt"
	"testing"

	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/wire"
)

// testMember is a member created for tests: its key-package leaf, its
// HPKE leaf private key and its signer.
type testMember struct {
	leaf   *wire.LeafNode
	encKey []byte
	signer *suite.Signer
}

func newTestMember(tb testing.TB, s *suite.Suite, name string) testMember {
	tb.Helper()
	encPriv, encPub, err := s.GenerateHPKEKey()
	if err != nil {
		tb.Fatal(err)
	}
	sigPriv, _, err := s.GenerateSignatureKey()
	if err != nil {
		tb.Fatal(err)
	}
	sg, err := s.NewSigner(sigPriv)
	if err != nil {
		tb.Fatal(err)
	}
	leaf := &wire.LeafNode{
		EncryptionKey: encPub,
		SignatureKey:  sg.PublicKey(),
		Credential:    wire.Credential{Type: wire.CredentialTypeBasic, Identity: []byte(name)},
		Capabilities: wire.Capabilities{
			Versions:     []wire.ProtocolVersion{wire.MLS10},
			CipherSuites: []wire.CipherSuite{wire.CipherSuite(s.ID())},
			Credentials:  []wire.CredentialType{wire.CredentialTypeBasic},
		},
		Source:   wire.LeafNodeSourceKeyPackage,
		Lifetime: wire.Lifetime{NotBefore: 0, NotAfter: 1 << 62},
	}
	if err := SignLeaf(sg, leaf, nil, 0); err != nil {
		tb.Fatal(err)
	}
	return testMember{leaf: leaf, encKey: encPriv, signer: sg}
}

// testGroup is a tree of n members with their private states.
type testGroup struct {
	s       *suite.Suite
	tree    *Tree
	members []testMember
	privs   []*Private
	groupID []byte
}

func (g *testGroup) gc(epoch uint64) GroupContextFunc {
	return groupContextFn(g.s, g.groupID, epoch, []byte("transcript"))
}

// newTestGroup adds n members. With full set, every parent node gets a
// fresh key known to the members below it, as if every member had
// committed (parent hashes are not valid then; TreeKEM does not need them).
func newTestGroup(tb testing.TB, s *suite.Suite, n int, full bool) *testGroup {
	tb.Helper()
	g := &testGroup{s: s, tree: New(s), groupID: []byte("test group")}
	for i := 0; i < n; i++ {
		m := newTestMember(tb, s, fmt.Sprint("member ", i))
		if idx := g.tree.AddLeaf(m.leaf); int(idx) != i {
			tb.Fatalf("AddLeaf = %d, want %d", idx, i)
		}
		g.members = append(g.members, m)
		g.privs = append(g.privs, NewPrivate(LeafIndex(i), m.encKey))
	}
	if full {
		for x := NodeIndex(1); uint32(x) < g.tree.NodeCount(); x += 2 {
			priv, pub, err := s.GenerateHPKEKey()
			if err != nil {
				tb.Fatal(err)
			}
			g.tree.setParent(x, &wire.ParentNode{EncryptionKey: pub, ParentHash: []byte{}})
			for _, p := range g.privs {
				if InSubtree(p.Leaf.Node(), x) {
					p.Keys[x] = priv
				}
			}
		}
	}
	return g
}

func mustSuite(tb testing.TB, id suite.ID) *suite.Suite {
	tb.Helper()
	s, err := suite.Get(id)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
