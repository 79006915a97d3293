package mls

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/wire"
)

// testGroup is a set of members of one group in a test.
type testGroup struct {
	t       *testing.T
	members map[string]*Group
}

func newKPB(t testing.TB, id suite.ID, name string, opts ...Option) *KeyPackageBundle {
	t.Helper()
	kpb, err := GenerateKeyPackage(id, BasicCredential([]byte(name)), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return kpb
}

// deliver sends msg from sender to every other member and checks the
// result kind.
func (tg *testGroup) deliver(from string, msg []byte, want ContentKind) {
	tg.t.Helper()
	for name, g := range tg.members {
		if name == from {
			continue
		}
		p, err := g.ProcessMessage(msg)
		if err != nil {
			tg.t.Fatalf("%s processing %v from %s: %v", name, want, from, err)
		}
		if p.Kind != want {
			tg.t.Fatalf("%s: got %v, want %v", name, p.Kind, want)
		}
	}
}

// commit delivers a commit result, merges it at the committer and joins
// new members from the Welcome.
func (tg *testGroup) commit(from string, res *CommitResult, joiners map[string]*KeyPackageBundle) {
	tg.t.Helper()
	tg.deliver(from, res.Commit, KindCommit)
	if _, err := tg.members[from].MergePendingCommit(); err != nil {
		tg.t.Fatal(err)
	}
	for name, kpb := range joiners {
		g, err := Join(res.Welcome, kpb)
		if err != nil {
			tg.t.Fatalf("%s join: %v", name, err)
		}
		tg.members[name] = g
	}
	tg.agree()
}

// agree checks that every member has the same epoch, authenticator,
// exporter output and tree.
func (tg *testGroup) agree() {
	tg.t.Helper()
	var ref *Group
	var refName string
	for name, g := range tg.members {
		if g.Removed() {
			continue
		}
		if ref == nil {
			ref, refName = g, name
			continue
		}
		if g.Epoch() != ref.Epoch() || !bytes.Equal(g.EpochAuthenticator(), ref.EpochAuthenticator()) {
			tg.t.Fatalf("%s and %s disagree: epoch %d/%d", name, refName, g.Epoch(), ref.Epoch())
		}
		a, _ := g.Export("test", []byte("ctx"), 32)
		b, _ := ref.Export("test", []byte("ctx"), 32)
		if !bytes.Equal(a, b) {
			tg.t.Fatalf("%s and %s export different secrets", name, refName)
		}
		if !bytes.Equal(g.RatchetTree(), ref.RatchetTree()) {
			tg.t.Fatalf("%s and %s have different trees", name, refName)
		}
	}
}

// chat has every member send an application message to all others.
func (tg *testGroup) chat() {
	tg.t.Helper()
	for name, g := range tg.members {
		if g.Removed() {
			continue
		}
		text := []byte("hello from " + name)
		ct, err := g.Encrypt(text, WithAuthenticatedData([]byte("ad")))
		if err != nil {
			tg.t.Fatalf("%s encrypt: %v", name, err)
		}
		for other, h := range tg.members {
			if other == name || h.Removed() {
				continue
			}
			p, err := h.ProcessMessage(ct)
			if err != nil {
				tg.t.Fatalf("%s decrypting from %s: %v", other, name, err)
			}
			if !bytes.Equal(p.Application, text) || !bytes.Equal(p.AuthenticatedData, []byte("ad")) || p.Sender.Leaf != g.LeafIndex() {
				tg.t.Fatalf("%s: wrong application message from %s", other, name)
			}
		}
	}
}

func testLifecycle(t *testing.T, id suite.ID, encrypt bool) {
	opts := []Option{WithHandshakeEncryption(encrypt), WithPadding(3)}
	alice, err := NewGroup(id, BasicCredential([]byte("alice")), opts...)
	if err != nil {
		t.Fatal(err)
	}
	tg := &testGroup{t: t, members: map[string]*Group{"alice": alice}}
	bob, carol, dave := newKPB(t, id, "bob"), newKPB(t, id, "carol"), newKPB(t, id, "dave")

	// Add two members by value in one commit.
	res, err := alice.Add([][]byte{bob.Bytes(), carol.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	tg.commit("alice", res, map[string]*KeyPackageBundle{"bob": bob, "carol": carol})
	for _, n := range []string{"bob", "carol"} {
		tg.members[n].cfg.encryptHandshake = encrypt
	}
	tg.chat()

	// Bob proposes adding dave (by reference), carol commits it.
	prop, err := tg.members["bob"].ProposeAdd(dave.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	tg.deliver("bob", prop, KindProposal)
	res, err = tg.members["carol"].Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Info == nil || len(res.Info.Added) != 1 {
		t.Fatalf("commit info %+v", res.Info)
	}
	tg.commit("carol", res, map[string]*KeyPackageBundle{"dave": dave})
	tg.members["dave"].cfg.encryptHandshake = encrypt

	// Dave proposes an update, alice commits it with a path.
	prop, err = tg.members["dave"].ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	tg.deliver("dave", prop, KindProposal)
	res, err = tg.members["alice"].Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	tg.commit("alice", res, nil)
	tg.chat()

	// Empty commit with a path from bob.
	res, err = tg.members["bob"].Update()
	if err != nil {
		t.Fatal(err)
	}
	tg.commit("bob", res, nil)

	// Persist and restore carol mid-way.
	state, err := tg.members["carol"].MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	restored, err := UnmarshalState(state)
	if err != nil {
		t.Fatal(err)
	}
	tg.members["carol"] = restored
	tg.chat()

	// Remove bob by reference (proposed by dave), committed by carol.
	prop, err = tg.members["dave"].ProposeRemove(tg.members["bob"].LeafIndex())
	if err != nil {
		t.Fatal(err)
	}
	tg.deliver("dave", prop, KindProposal)
	res, err = tg.members["carol"].Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	tg.deliver("carol", res.Commit, KindCommit)
	if !tg.members["bob"].Removed() {
		t.Fatal("bob does not know he was removed")
	}
	if _, err := tg.members["carol"].MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	delete(tg.members, "bob")
	tg.agree()
	tg.chat()

	// External join by erin from alice's GroupInfo.
	gi, err := tg.members["alice"].GroupInfo()
	if err != nil {
		t.Fatal(err)
	}
	erin, commit, err := JoinExternal(gi, BasicCredential([]byte("erin")), opts...)
	if err != nil {
		t.Fatal(err)
	}
	tg.deliver("erin", commit, KindCommit)
	tg.members["erin"] = erin
	tg.agree()
	tg.chat()

	// Resumption PSK and a group context extensions change.
	psk, err := tg.members["erin"].ResumptionPSKProposal(tg.members["erin"].Epoch())
	if err != nil {
		t.Fatal(err)
	}
	res, err = tg.members["erin"].Commit([]*wire.Proposal{psk, GroupContextExtensionsProposal()})
	if err != nil {
		t.Fatal(err)
	}
	tg.commit("erin", res, nil)
	tg.chat()
	if n := len(tg.members["alice"].Members()); n != 4 {
		t.Fatalf("%d members, want 4", n)
	}
}

func TestGroupLifecycle(t *testing.T) {
	for _, id := range shortSuites(suite.Supported()) {
		for _, enc := range []bool{false, true} {
			t.Run(fmt.Sprintf("suite%d-private%v", id, enc), func(t *testing.T) { testLifecycle(t, id, enc) })
		}
	}
}

// shortSuites returns ids, or with -short (the run under the race
// detector, which slows the crypto tenfold) only suite 1; the full run
// covers the others.
func shortSuites(ids []suite.ID) []suite.ID {
	if testing.Short() {
		return []suite.ID{1}
	}
	return ids
}
