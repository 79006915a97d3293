package mls

import (
	"testing"

	"github.com/agwproject/agw/mls/wire"
)

func TestExternalSenderProposals(t *testing.T) {
	s := mustSuite(t, 1)
	extPriv, extPub, err := s.GenerateSignatureKey()
	if err != nil {
		t.Fatal(err)
	}
	senders := wire.ExternalSenders{{SignatureKey: extPub, Credential: BasicCredential([]byte("server"))}}
	alice, err := NewGroup(1, BasicCredential([]byte("alice")),
		WithGroupExtensions(wire.NewExtension(wire.ExtensionTypeExternalSenders, &senders)))
	if err != nil {
		t.Fatal(err)
	}
	tg := &testGroup{t: t, members: map[string]*Group{"alice": alice}}
	bob := newKPB(t, 1, "bob")
	res, err := alice.Add([][]byte{bob.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	tg.commit("alice", res, map[string]*KeyPackageBundle{"bob": bob})

	// The external sender proposes adding carol; bob commits it by reference.
	carol := newKPB(t, 1, "carol")
	add, err := AddProposal(carol.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := ExternalProposal(1, alice.GroupID(), alice.Epoch(), 0, extPriv, add)
	if err != nil {
		t.Fatal(err)
	}
	tg.deliver("", msg, KindProposal)
	if n := tg.members["bob"].PendingProposals(); n != 1 {
		t.Fatalf("%d pending proposals", n)
	}
	res, err = tg.members["bob"].Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	tg.commit("bob", res, map[string]*KeyPackageBundle{"carol": carol})

	// A wrong external signer, an unknown index and a forbidden type are refused.
	otherPriv, _, _ := s.GenerateSignatureKey()
	msg, _ = ExternalProposal(1, alice.GroupID(), alice.Epoch(), 0, otherPriv, RemoveProposal(1))
	_, err = alice.ProcessMessage(msg)
	expectErr(t, err, ErrBadSignature)
	msg, _ = ExternalProposal(1, alice.GroupID(), alice.Epoch(), 3, extPriv, RemoveProposal(1))
	_, err = alice.ProcessMessage(msg)
	expectErr(t, err, ErrUnknownSender)
	if _, err := ExternalProposal(1, alice.GroupID(), alice.Epoch(), 0, extPriv, &wire.Proposal{Type: wire.ProposalTypeUpdate, Update: &wire.Update{}}); err == nil {
		t.Fatal("external update accepted")
	}

	// The external sender removes bob; carol commits.
	msg, err = ExternalProposal(1, alice.GroupID(), alice.Epoch(), 0, extPriv, RemoveProposal(tg.members["bob"].LeafIndex()))
	if err != nil {
		t.Fatal(err)
	}
	tg.deliver("", msg, KindProposal)
	res, err = tg.members["carol"].Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	tg.commit("carol", res, nil)
	delete(tg.members, "bob")
	tg.chat()

	// A new member asks to join by itself.
	dave := newKPB(t, 1, "dave")
	msg, err = NewMemberProposal(alice.GroupID(), alice.Epoch(), dave)
	if err != nil {
		t.Fatal(err)
	}
	tg.deliver("", msg, KindProposal)
	res, err = alice.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	tg.commit("alice", res, map[string]*KeyPackageBundle{"dave": dave})
	tg.chat()
}

func TestOwnCommitEcho(t *testing.T) {
	alice, bob := twoMembers(t)
	res, err := alice.Update()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.ProcessMessage(res.Commit); err != nil {
		t.Fatal(err)
	}
	// The delivery service echoes alice's commit back: it merges the pending one.
	p, err := alice.ProcessMessage(res.Commit)
	if err != nil || p.Kind != KindCommit {
		t.Fatalf("echo: %+v %v", p, err)
	}
	if alice.Epoch() != bob.Epoch() || string(alice.EpochAuthenticator()) != string(bob.EpochAuthenticator()) {
		t.Fatal("epochs differ after echo")
	}
	if _, err := alice.MergePendingCommit(); err != ErrNoPendingCommit {
		t.Fatalf("merge after echo: %v", err)
	}
}

func TestExternalJoinResync(t *testing.T) {
	alice, bob := twoMembers(t)
	gi, err := alice.GroupInfo()
	if err != nil {
		t.Fatal(err)
	}
	// Bob lost his state and rejoins with the same signature key.
	bob2, commit, err := JoinExternal(gi, BasicCredential([]byte("bob")), WithSignatureKey(bob.sigPriv), WithResync())
	if err != nil {
		t.Fatal(err)
	}
	p, err := alice.ProcessMessage(commit)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Commit.Removed) != 1 || p.Commit.Removed[0] != bob.LeafIndex() || !p.Commit.External {
		t.Fatalf("resync info %+v", p.Commit)
	}
	if string(alice.EpochAuthenticator()) != string(bob2.EpochAuthenticator()) || len(alice.Members()) != 2 {
		t.Fatal("resync: state differs")
	}
	// Without external_pub the GroupInfo cannot be used.
	gi, _ = alice.GroupInfo(WithoutExternalPub())
	_, _, err = JoinExternal(gi, BasicCredential([]byte("x")))
	expectErr(t, err, ErrInvalidGroupInfo)
}

func TestReInitStopsSending(t *testing.T) {
	alice, bob := twoMembers(t)
	ri := &wire.Proposal{Type: wire.ProposalTypeReInit, ReInit: &wire.ReInit{
		GroupID: []byte("next"), Version: wire.MLS10, CipherSuite: 2,
	}}
	res, err := alice.Commit([]*wire.Proposal{ri})
	if err != nil {
		t.Fatal(err)
	}
	p, err := bob.ProcessMessage(res.Commit)
	if err != nil || p.Commit.ReInit == nil {
		t.Fatalf("reinit commit: %+v %v", p, err)
	}
	if _, err := alice.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	for _, g := range []*Group{alice, bob} {
		if g.ReInit() == nil || string(g.ReInit().GroupID) != "next" {
			t.Fatal("reinit not recorded")
		}
		_, err := g.Encrypt([]byte("x"))
		expectErr(t, err, ErrReInit)
	}
	st, err := bob.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	bob2, err := UnmarshalState(st)
	if err != nil || bob2.ReInit() == nil {
		t.Fatalf("restored reinit: %v", err)
	}
	// A ReInit together with another proposal is invalid.
	alice2, _ := twoMembers(t)
	_, err = alice2.Commit([]*wire.Proposal{ri, GroupContextExtensionsProposal()})
	expectErr(t, err, ErrInvalidProposal)
}
