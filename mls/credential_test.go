package mls

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/wire"
)

// sameName is a successor check: "bob#2" succeeds "bob".
func sameName(old, next Credential) error {
	name := func(c Credential) string { n, _, _ := strings.Cut(string(c.Identity), "#"); return n }
	if name(old) != name(next) {
		return fmt.Errorf("%q does not succeed %q", next.Identity, old.Identity)
	}
	return nil
}

// rotGroup builds a group of the named members (the first creates it and
// adds the others) in suite id; opts are given to every member.
func rotGroup(t *testing.T, id suite.ID, names []string, opts ...Option) *testGroup {
	t.Helper()
	first, err := NewGroup(id, BasicCredential([]byte(names[0])), opts...)
	if err != nil {
		t.Fatal(err)
	}
	tg := &testGroup{t: t, members: map[string]*Group{names[0]: first}}
	var kps [][]byte
	joiners := map[string]*KeyPackageBundle{}
	for _, n := range names[1:] {
		kpb := newKPB(t, id, n)
		kps = append(kps, kpb.Bytes())
		joiners[n] = kpb
	}
	res, err := first.Add(kps)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	for n, kpb := range joiners {
		g, err := Join(res.Welcome, kpb, opts...)
		if err != nil {
			t.Fatalf("%s join: %v", n, err)
		}
		tg.members[n] = g
	}
	tg.agree()
	return tg
}

func newSigKey(t *testing.T, g *Group) (priv, pub []byte) {
	t.Helper()
	priv, pub, err := g.s.GenerateSignatureKey()
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

// checkLeaf checks that member g's leaf in every group of tg carries cred
// and key, at the same index as before.
func checkLeaf(t *testing.T, tg *testGroup, g *Group, index uint32, cred string, key []byte) {
	t.Helper()
	if g.LeafIndex() != index {
		t.Fatalf("leaf index %d, was %d", g.LeafIndex(), index)
	}
	if !bytes.Equal(g.signer.PublicKey(), key) {
		t.Fatalf("%s does not sign with its new key", cred)
	}
	for name, h := range tg.members {
		for _, m := range h.Members() {
			if m.Index != index {
				continue
			}
			if string(m.Credential.Identity) != cred || !bytes.Equal(m.SignatureKey, key) {
				t.Fatalf("%s sees leaf %d as %q", name, index, m.Credential.Identity)
			}
		}
	}
}

// expectOldKeyRefused has g send an application message signed with its
// old signature key: every other member must refuse it.
func expectOldKeyRefused(t *testing.T, tg *testGroup, from string, old *suite.Signer) {
	t.Helper()
	g := tg.members[from]
	cur := g.signer
	g.signer = old
	msg, err := g.Encrypt([]byte("signed with the old key"))
	g.signer = cur
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range tg.members {
		if name == from {
			continue
		}
		_, err := h.ProcessMessage(msg)
		expectErr(t, err, ErrBadSignature)
	}
}

func TestCredentialRotation(t *testing.T) {
	for _, id := range []suite.ID{1, 2} {
		t.Run(fmt.Sprint("suite", id), func(t *testing.T) {
			testCredentialRotation(t, id)
		})
	}
}

func testCredentialRotation(t *testing.T, id suite.ID) {
	var calls []string
	succ := func(old, next Credential) error {
		calls = append(calls, string(old.Identity)+">"+string(next.Identity))
		return sameName(old, next)
	}
	opts := []Option{WithCredentialSuccessor(succ), WithPadding(5)}
	tg := rotGroup(t, id, []string{"alice", "bob", "carol"}, opts...)
	alice, bob, carol := tg.members["alice"], tg.members["bob"], tg.members["carol"]

	// bob rotates in the path of his own commit.
	bobOld, bobIndex := bob.signer, bob.LeafIndex()
	bobPriv, bobPub := newSigKey(t, bob)
	res, err := bob.Update(WithLeafCredential(BasicCredential([]byte("bob#2")), bobPriv))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bob.signer.PublicKey(), bobOld.PublicKey()) {
		t.Fatal("bob signs with the new key before his commit is merged")
	}
	epoch := alice.Epoch()
	tg.commit("bob", res, nil)
	if alice.Epoch() != epoch+1 || len(res.Info.Updated)+len(res.Info.Added)+len(res.Info.Removed) != 0 {
		t.Fatalf("epoch %d after %d, info %+v", alice.Epoch(), epoch, res.Info)
	}
	checkLeaf(t, tg, bob, bobIndex, "bob#2", bobPub)
	if len(calls) != 2 || calls[0] != "bob>bob#2" {
		t.Fatalf("successor check calls %q, want bob>bob#2 at alice and carol", calls)
	}
	tg.chat()
	expectOldKeyRefused(t, tg, "bob", bobOld)

	// carol rotates with an Update proposal that alice commits.
	calls = nil
	carolOld, carolIndex := carol.signer, carol.LeafIndex()
	carolPriv, carolPub := newSigKey(t, carol)
	prop, err := carol.ProposeUpdate(WithLeafCredential(BasicCredential([]byte("carol#2")), carolPriv))
	if err != nil {
		t.Fatal(err)
	}
	tg.deliver("carol", prop, KindProposal)
	res, err = alice.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	tg.commit("alice", res, nil)
	if len(res.Info.Updated) != 1 || res.Info.Updated[0] != carolIndex {
		t.Fatalf("updated %v, want carol's leaf %d", res.Info.Updated, carolIndex)
	}
	checkLeaf(t, tg, carol, carolIndex, "carol#2", carolPub)
	tg.chat()
	expectOldKeyRefused(t, tg, "carol", carolOld)

	// A rotation with an Add: the joiner checks the GroupInfo with the
	// committer's new key.
	bobPriv3, bobPub3 := newSigKey(t, bob)
	dave := newKPB(t, id, "dave")
	add, err := AddProposal(dave.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	res, err = bob.Commit([]*wire.Proposal{add}, WithLeafCredential(BasicCredential([]byte("bob#3")), bobPriv3))
	if err != nil {
		t.Fatal(err)
	}
	tg.commit("bob", res, map[string]*KeyPackageBundle{"dave": dave})
	checkLeaf(t, tg, bob, bobIndex, "bob#3", bobPub3)
	gi, err := bob.GroupInfo()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := JoinExternal(gi, BasicCredential([]byte("erin")), WithSignatureKey(mustKey(t, bob))); err != nil {
		t.Fatalf("GroupInfo signed after the rotation: %v", err)
	}
	tg.chat()

	// State round trip after the rotations.
	for _, name := range []string{"bob", "carol"} {
		st, err := tg.members[name].MarshalState()
		if err != nil {
			t.Fatal(err)
		}
		g, err := UnmarshalState(st, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(g.signer.PublicKey(), tg.members[name].signer.PublicKey()) {
			t.Fatalf("%s: restored state signs with another key", name)
		}
		tg.members[name] = g
	}
	tg.chat()
	tg.agree()
}

// mustKey returns a fresh signature private key of g's suite.
func mustKey(t *testing.T, g *Group) []byte {
	priv, _ := newSigKey(t, g)
	return priv
}

func TestCredentialSuccessorRefused(t *testing.T) {
	tg := rotGroup(t, 1, []string{"alice", "bob", "carol"}, WithCredentialSuccessor(sameName))
	alice, bob, carol := tg.members["alice"], tg.members["bob"], tg.members["carol"]
	snapshot := func(g *Group) string {
		return fmt.Sprintf("%d %x %x %d", g.Epoch(), g.EpochAuthenticator(), g.RatchetTree(), g.PendingProposals())
	}
	before := snapshot(carol)

	// A commit whose path leaf carries another identity.
	priv := mustKey(t, bob)
	res, err := bob.Update(WithLeafCredential(BasicCredential([]byte("mallory")), priv))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*Group{alice, carol} {
		_, err = g.ProcessMessage(res.Commit)
		expectErr(t, err, ErrCredentialSuccessor, ErrInvalidCommit)
	}
	if snapshot(carol) != before {
		t.Fatal("a refused commit changed the group")
	}
	bob.ClearPendingCommit()
	if !bytes.Equal(bob.signer.PublicKey(), bob.tree.Leaf(bob.priv.Leaf).SignatureKey) {
		t.Fatal("a cleared rotation changed bob's signer")
	}

	// An Update proposal with another identity (bob's own check refuses
	// it too: turned off to send it).
	_, err = bob.ProposeUpdate(WithLeafCredential(BasicCredential([]byte("mallory")), priv))
	expectErr(t, err, ErrCredentialSuccessor)
	bob.cfg.successor = nil
	prop, err := bob.ProposeUpdate(WithLeafCredential(BasicCredential([]byte("mallory")), priv))
	if err != nil {
		t.Fatal(err)
	}
	_, err = carol.ProcessMessage(prop)
	expectErr(t, err, ErrCredentialSuccessor, ErrInvalidProposal)
	if snapshot(carol) != before {
		t.Fatal("a refused proposal changed the group")
	}

	// The group goes on: a commit without rotation is accepted (bob's own
	// refused proposal is not in it).
	res, err = bob.Update()
	if err != nil {
		t.Fatal(err)
	}
	tg.commit("bob", res, nil)
	tg.chat()

	// Without a successor check a change of identity is accepted.
	tg = rotGroup(t, 1, []string{"alice", "bob"})
	res, err = tg.members["bob"].Update(WithLeafCredential(BasicCredential([]byte("mallory")), mustKey(t, tg.members["bob"])))
	if err != nil {
		t.Fatal(err)
	}
	tg.commit("bob", res, nil)
	tg.chat()
}

func mustState(t *testing.T, g *Group) []byte {
	t.Helper()
	st, err := g.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// The validator sees the new credential of a rotated leaf, and refusing it
// refuses the commit.
func TestRotatedCredentialValidated(t *testing.T) {
	refuse := errors.New("revoked")
	v := func(c Credential, _ []byte) error {
		if string(c.Identity) == "bob#revoked" {
			return refuse
		}
		return nil
	}
	tg := rotGroup(t, 1, []string{"alice", "bob"}, WithCredentialValidator(v))
	res, err := tg.members["bob"].Update(WithLeafCredential(BasicCredential([]byte("bob#revoked")), mustKey(t, tg.members["bob"])))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tg.members["alice"].ProcessMessage(res.Commit)
	expectErr(t, err, ErrInvalidCommit, ErrInvalidLeafNode, refuse)
}

// A pending Update proposal with a new credential survives a state round
// trip: once committed, the restored member signs with the new key.
func TestRotationPendingUpdateStateRoundTrip(t *testing.T) {
	tg := rotGroup(t, 2, []string{"alice", "bob", "carol"})
	carol := tg.members["carol"]
	old := carol.signer
	priv, pub := newSigKey(t, carol)
	prop, err := carol.ProposeUpdate(WithLeafCredential(BasicCredential([]byte("carol#2")), priv))
	if err != nil {
		t.Fatal(err)
	}
	tg.deliver("carol", prop, KindProposal)
	restored, err := UnmarshalState(mustState(t, carol))
	if err != nil {
		t.Fatal(err)
	}
	tg.members["carol"] = restored
	res, err := tg.members["bob"].Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	tg.commit("bob", res, nil)
	checkLeaf(t, tg, restored, restored.LeafIndex(), "carol#2", pub)
	tg.chat()
	expectOldKeyRefused(t, tg, "carol", old)
}

func TestRotationBadArguments(t *testing.T) {
	tg := rotGroup(t, 1, []string{"alice", "bob"})
	alice, bob := tg.members["alice"], tg.members["bob"]
	cred := BasicCredential([]byte("alice#2"))
	for name, opt := range map[string]Option{
		"bad key":            WithLeafCredential(cred, []byte{1, 2, 3}),
		"key of bob":         WithLeafCredential(cred, bob.sigPriv),
		"unlisted cred type": WithLeafCredential(Credential{Type: 0x7777, Raw: []byte("x")}, mustKey(t, alice)),
	} {
		if _, err := alice.Update(opt); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: Update: %v, want ErrInvalidArgument", name, err)
		}
		if _, err := alice.ProposeUpdate(opt); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: ProposeUpdate: %v, want ErrInvalidArgument", name, err)
		}
	}
	if alice.HasPendingCommit() || alice.PendingProposals() != 0 {
		t.Fatal("a refused rotation left a pending commit or proposal")
	}
	// The option is per call: a group created with it keeps its key.
	g, err := NewGroup(1, BasicCredential([]byte("x")), WithLeafCredential(cred, mustKey(t, alice)))
	if err != nil {
		t.Fatal(err)
	}
	res, err := g.Update()
	if err != nil {
		t.Fatal(err)
	}
	before := g.signer.PublicKey()
	if _, err := g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g.signer.PublicKey(), before) || res.Info == nil {
		t.Fatal("WithLeafCredential given to NewGroup rotated a later Update")
	}
}

// States of format 2 (before credential rotation) are still read.
func TestStateFormat2Read(t *testing.T) {
	tg := rotGroup(t, 1, []string{"alice", "bob"})
	st := mustState(t, tg.members["bob"])
	// Format 3 appends the (here empty) map of pending signature keys.
	if st[len(st)-1] != 0 {
		t.Fatalf("state ends with %d, want an empty vector", st[len(st)-1])
	}
	v2 := append([]byte(nil), st[:len(st)-1]...)
	v2[len(stateMagic)-1] = stateV2
	g, err := UnmarshalState(v2)
	if err != nil {
		t.Fatal(err)
	}
	tg.members["bob"] = g
	tg.chat()
	v4 := append([]byte(nil), st...)
	v4[len(stateMagic)-1] = 4
	if _, err := UnmarshalState(v4); !errors.Is(err, ErrState) {
		t.Fatalf("format 4: %v, want ErrState", err)
	}
}

// A member whose only pending proposal is its own Update (here a
// rotation) goes on sending with its current key; a member that received
// a proposal may not until it commits or discards it.
func TestOwnUpdateDoesNotBlockSending(t *testing.T) {
	tg := rotGroup(t, 1, []string{"alice", "bob", "carol"})
	alice, bob, carol := tg.members["alice"], tg.members["bob"], tg.members["carol"]
	priv, pub := newSigKey(t, carol)
	prop, err := carol.ProposeUpdate(WithLeafCredential(BasicCredential([]byte("carol#2")), priv))
	if err != nil {
		t.Fatal(err)
	}
	p, err := alice.ProcessMessage(prop)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.ProcessMessage(prop); err != nil {
		t.Fatal(err)
	}
	msg, err := carol.Encrypt([]byte("still the old key"))
	if err != nil {
		t.Fatalf("carol with her own pending update: %v", err)
	}
	if got, err := alice.ProcessMessage(msg); err != nil || string(got.Application) != "still the old key" {
		t.Fatalf("%v", err)
	}
	if _, err := alice.Encrypt([]byte("x")); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("alice holding carol's proposal sent: %v", err)
	}
	// Another own proposal blocks as before.
	if _, err := carol.ProposeRemove(bob.LeafIndex()); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Encrypt([]byte("x")); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("carol with her own pending remove sent: %v", err)
	}
	// bob discards carol's proposal: he may send again, and his commit
	// does not include it.
	if bob.DiscardProposal([]byte("no such ref")) {
		t.Fatal("discarded an unknown proposal")
	}
	if !bob.DiscardProposal(p.ProposalRef) || bob.PendingProposals() != 0 {
		t.Fatal("proposal not discarded")
	}
	if _, err := bob.Encrypt([]byte("x")); err != nil {
		t.Fatal(err)
	}
	// alice commits the update: carol signs with her new key.
	res, err := alice.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.ProcessMessage(res.Commit); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(carol.signer.PublicKey(), pub) {
		t.Fatal("carol does not sign with her new key")
	}
	msg, err = carol.Encrypt([]byte("new key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.ProcessMessage(msg); err != nil {
		t.Fatal(err)
	}
}
