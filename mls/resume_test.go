package mls

import (
	"bytes"
	"testing"

	"github.com/agwproject/agw/mls/wire"
)

func TestBranch(t *testing.T) {
	alice, bob := twoMembers(t)
	bob2 := newKPB(t, 1, "bob")
	sub, res, err := alice.Branch([][]byte{bob2.Bytes()}, WithGroupID([]byte("subgroup")))
	if err != nil {
		t.Fatal(err)
	}
	if sub.Epoch() != 1 || !bytes.Equal(sub.GroupID(), []byte("subgroup")) {
		t.Fatalf("subgroup epoch %d id %q", sub.Epoch(), sub.GroupID())
	}
	// Without the prior group the resumption PSK is missing.
	_, err = Join(res.Welcome, bob2)
	expectErr(t, err, ErrMissingPSK)
	bsub, err := Join(res.Welcome, bob2, WithResumptionPSKFrom(bob))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bsub.EpochAuthenticator(), sub.EpochAuthenticator()) {
		t.Fatal("subgroup epoch authenticators differ")
	}
	ct, _ := sub.Encrypt([]byte("in the subgroup"))
	if p, err := bsub.ProcessMessage(ct); err != nil || string(p.Application) != "in the subgroup" {
		t.Fatalf("subgroup message: %v", err)
	}
	// The parent group keeps working.
	ct, _ = bob.Encrypt([]byte("parent"))
	if _, err := alice.ProcessMessage(ct); err != nil {
		t.Fatal(err)
	}
}

func TestReInitGroup(t *testing.T) {
	alice, bob := twoMembers(t)
	if _, _, err := alice.ReInitGroup(nil); err == nil {
		t.Fatal("ReInitGroup without a committed ReInit")
	}
	ri := &wire.Proposal{Type: wire.ProposalTypeReInit, ReInit: &wire.ReInit{
		GroupID: []byte("reinit"), Version: wire.MLS10, CipherSuite: 2,
	}}
	msg, err := bob.Propose(ri)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.ProcessMessage(msg); err != nil {
		t.Fatal(err)
	}
	res, err := alice.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.ProcessMessage(res.Commit); err != nil {
		t.Fatal(err)
	}
	alice.MergePendingCommit()
	bob2 := newKPB(t, 2, "bob")
	next, res, err := alice.ReInitGroup([][]byte{bob2.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	if next.Suite() != 2 || !bytes.Equal(next.GroupID(), []byte("reinit")) {
		t.Fatal("reinit parameters not applied")
	}
	bnext, err := Join(res.Welcome, bob2, WithResumptionPSKFrom(bob))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bnext.EpochAuthenticator(), next.EpochAuthenticator()) {
		t.Fatal("reinit epoch authenticators differ")
	}
	// A reinit Welcome is refused when the prior group committed no ReInit.
	carol, dave := twoMembers(t)
	dave2 := newKPB(t, 1, "dave")
	_, res, err = carol.resume(wire.ResumptionPSKUsageReInit, 1, []byte("fake"), nil, [][]byte{dave2.Bytes()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Join(res.Welcome, dave2, WithResumptionPSKFrom(dave))
	expectErr(t, err, ErrInvalidWelcome)
}
