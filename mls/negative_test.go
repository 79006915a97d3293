package mls

import (
	"errors"
	"testing"

	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/tree"
	"github.com/agwproject/agw/mls/wire"
)

// twoMembers returns alice and bob in a fresh group of suite 1.
func twoMembers(t testing.TB, opts ...Option) (alice, bob *Group) {
	t.Helper()
	alice, err := NewGroup(1, BasicCredential([]byte("alice")), opts...)
	if err != nil {
		t.Fatal(err)
	}
	kpb := newKPB(t, 1, "bob")
	res, err := alice.Add([][]byte{kpb.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if bob, err = Join(res.Welcome, kpb, opts...); err != nil {
		t.Fatal(err)
	}
	return alice, bob
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	if i < 0 {
		i += len(c)
	}
	c[i] ^= 0x01
	return c
}

func expectErr(t *testing.T, err error, targets ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", targets)
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Fatalf("error %q does not wrap %q", err, target)
		}
	}
}

func TestNegativeBadSignature(t *testing.T) {
	alice, bob := twoMembers(t)
	// A proposal signed with another key but with a valid membership tag.
	cfg := alice.cfg
	ac, err := alice.frame(&cfg, wire.ContentTypeProposal, nil, RemoveProposal(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	otherPriv, _, _ := alice.s.GenerateSignatureKey()
	other, _ := alice.s.NewSigner(otherPriv)
	if ac.Auth.Signature, err = alice.f.signContent(other, ac.WireFormat, &ac.Content); err != nil {
		t.Fatal(err)
	}
	msg, err := alice.protect(&cfg, ac)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bob.ProcessMessage(msg)
	expectErr(t, err, ErrBadSignature)
}

func TestNegativeBadMembershipTag(t *testing.T) {
	alice, bob := twoMembers(t)
	msg, err := alice.ProposeRemove(bob.LeafIndex())
	if err != nil {
		t.Fatal(err)
	}
	_, err = bob.ProcessMessage(flip(msg, -1)) // the tag is the last field
	expectErr(t, err, ErrBadMembershipTag)
	if _, err := bob.ProcessMessage(msg); err != nil {
		t.Fatalf("the untampered message must still be accepted: %v", err)
	}
}

func TestNegativeWrongEpoch(t *testing.T) {
	alice, bob := twoMembers(t)
	old, err := bob.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	res, err := alice.Update()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	// A handshake message of the previous epoch.
	_, err = alice.ProcessMessage(old)
	expectErr(t, err, ErrWrongEpoch)
	if errors.Is(err, ErrFutureEpoch) {
		t.Fatal("a past message reported as future")
	}
	// Bob has not seen the commit yet: a message of alice's new epoch is
	// from his future.
	early, err := alice.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	alice.proposals, alice.pendingUpdates = nil, nil
	_, err = bob.ProcessMessage(early)
	expectErr(t, err, ErrWrongEpoch, ErrFutureEpoch)
	if _, err := bob.ProcessMessage(res.Commit); err != nil {
		t.Fatal(err)
	}
	// Replaying the commit is also for a past epoch.
	_, err = bob.ProcessMessage(res.Commit)
	expectErr(t, err, ErrWrongEpoch)
	// An application message two epochs old.
	app, _ := alice.Encrypt([]byte("old"))
	for i := 0; i < 2; i++ {
		res, _ = alice.Update()
		alice.MergePendingCommit()
		if _, err := bob.ProcessMessage(res.Commit); err != nil {
			t.Fatal(err)
		}
	}
	_, err = bob.ProcessMessage(app)
	expectErr(t, err, ErrWrongEpoch)
}

func TestNegativeReusedGeneration(t *testing.T) {
	alice, bob := twoMembers(t)
	msg, err := alice.Encrypt([]byte("once"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Decrypt(msg); err != nil {
		t.Fatal(err)
	}
	_, err = bob.Decrypt(msg)
	expectErr(t, err, ErrGenerationReused)
}

func TestNegativeTamperedCiphertext(t *testing.T) {
	alice, bob := twoMembers(t)
	msg, err := alice.Encrypt([]byte("secret"), WithPadding(5))
	if err != nil {
		t.Fatal(err)
	}
	_, err = bob.Decrypt(flip(msg, -3)) // inside the content ciphertext
	expectErr(t, err, ErrDecrypt)
	// The key was not consumed: the real message still decrypts.
	if p, err := bob.Decrypt(msg); err != nil || string(p) != "secret" {
		t.Fatalf("original after tampered copy: %q, %v", p, err)
	}
	// Tampered sender data.
	msg2, _ := alice.Encrypt([]byte("secret 2"))
	m, _ := decodeMessage(msg2)
	m.PrivateMessage.EncryptedSenderData = flip(m.PrivateMessage.EncryptedSenderData, 0)
	_, err = bob.Decrypt(encodeMessage(m))
	expectErr(t, err, ErrDecrypt)
}

func TestNegativeBadParentHash(t *testing.T) {
	alice, err := NewGroup(1, BasicCredential([]byte("alice")))
	if err != nil {
		t.Fatal(err)
	}
	bob, carol := newKPB(t, 1, "bob"), newKPB(t, 1, "carol")
	res, err := alice.Add([][]byte{bob.Bytes(), carol.Bytes()}, WithPath(), WithoutRatchetTreeExtension())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	var rt wire.RatchetTree
	if err := wire.Decode(alice.RatchetTree(), &rt); err != nil {
		t.Fatal(err)
	}
	tampered := false
	for _, n := range rt {
		if n != nil && n.Parent != nil && len(n.Parent.ParentHash) > 0 {
			p := *n.Parent
			p.ParentHash = flip(p.ParentHash, 0)
			n.Parent = &p
			tampered = true
			break
		}
	}
	if !tampered {
		t.Fatal("no parent node with a parent hash to tamper with")
	}
	_, err = Join(res.Welcome, bob, WithRatchetTree(wire.Encode(&rt)))
	expectErr(t, err, ErrInvalidTree, tree.ErrParentHash)
	// The genuine tree works.
	if _, err := Join(res.Welcome, bob, WithRatchetTree(alice.RatchetTree())); err != nil {
		t.Fatal(err)
	}
}

func TestNegativeKeyPackageSignature(t *testing.T) {
	kpb := newKPB(t, 1, "mallory")
	kpb.KeyPackage.Signature = flip(kpb.KeyPackage.Signature, 0)
	expectErr(t, ValidateKeyPackage(kpb.Bytes()), ErrInvalidKeyPackage, ErrBadSignature)
	alice, err := NewGroup(1, BasicCredential([]byte("alice")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = alice.Add([][]byte{kpb.Bytes()})
	expectErr(t, err, ErrInvalidProposal, ErrBadSignature)
	// A leaf signature broken inside an otherwise re-signed key package.
	kpb = newKPB(t, 1, "mallory")
	s, _ := suite.Get(1)
	kpb.KeyPackage.LeafNode.Signature = flip(kpb.KeyPackage.LeafNode.Signature, 0)
	if kpb.KeyPackage.Signature, err = s.SignWithLabel(kpb.SignaturePriv, labelKeyPackage, kpb.KeyPackage.TBS()); err != nil {
		t.Fatal(err)
	}
	expectErr(t, ValidateKeyPackage(kpb.Bytes()), ErrInvalidKeyPackage, ErrBadSignature)
}

func TestNegativeLifetime(t *testing.T) {
	kpb := newKPB(t, 1, "old", WithLifetime(-2*3600e9))
	expectErr(t, ValidateKeyPackage(kpb.Bytes()), ErrInvalidKeyPackage)
	if err := ValidateKeyPackage(kpb.Bytes(), WithoutLifetimeCheck()); err != nil {
		t.Fatal(err)
	}
}

func TestNegativeMisc(t *testing.T) {
	alice, bob := twoMembers(t)
	// A commit that removes the committer is refused.
	_, err := alice.Remove([]uint32{alice.LeafIndex()})
	expectErr(t, err, ErrInvalidProposal)
	// A commit referencing an unknown proposal.
	prop, _ := alice.ProposeRemove(bob.LeafIndex())
	res, err := alice.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bob.ProcessMessage(res.Commit)
	expectErr(t, err, ErrUnknownProposal)
	if _, err := bob.ProcessMessage(prop); err != nil {
		t.Fatal(err)
	}
	p, err := bob.ProcessMessage(res.Commit)
	if err != nil || p.Commit == nil || !p.Commit.SelfRemoved || !bob.Removed() {
		t.Fatalf("removal: %+v, %v", p, err)
	}
	_, err = bob.Encrypt([]byte("x"))
	expectErr(t, err, ErrRemoved)
	// Garbage and non-group messages.
	_, err = alice.ProcessMessage([]byte{0, 1, 0, 1, 2})
	expectErr(t, err, ErrMalformed)
	_, err = alice.ProcessMessage(res.GroupInfo)
	expectErr(t, err, ErrInvalidMessage)
	// A second commit while one is pending.
	_, err = alice.Update()
	expectErr(t, err, ErrPendingCommit)
	// Bad confirmation tag: tamper and re-protect a commit.
	alice.ClearPendingCommit()
	carolKP := newKPB(t, 1, "carol")
	alice2, carol := twoMembersWith(t, carolKP)
	res, err = alice2.Update()
	if err != nil {
		t.Fatal(err)
	}
	m, _ := decodeMessage(res.Commit)
	pm := m.PublicMessage
	pm.Auth.ConfirmationTag = flip(pm.Auth.ConfirmationTag, 0)
	ac := &wire.AuthenticatedContent{WireFormat: wire.WireFormatPublicMessage, Content: pm.Content, Auth: pm.Auth}
	pm.MembershipTag = alice2.f.membershipTag(ac)
	_, err = carol.ProcessMessage(encodeMessage(m))
	expectErr(t, err, ErrBadConfirmationTag)
}

func twoMembersWith(t *testing.T, kpb *KeyPackageBundle) (*Group, *Group) {
	t.Helper()
	alice, err := NewGroup(1, BasicCredential([]byte("alice")))
	if err != nil {
		t.Fatal(err)
	}
	res, err := alice.Add([][]byte{kpb.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	alice.MergePendingCommit()
	bob, err := Join(res.Welcome, kpb)
	if err != nil {
		t.Fatal(err)
	}
	return alice, bob
}

func mustSuite(t testing.TB, id suite.ID) *suite.Suite {
	t.Helper()
	s, err := suite.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNegativePathRequired(t *testing.T) {
	alice, err := NewGroup(1, BasicCredential([]byte("alice")))
	if err != nil {
		t.Fatal(err)
	}
	bobKP, carolKP := newKPB(t, 1, "bob"), newKPB(t, 1, "carol")
	res, err := alice.Add([][]byte{bobKP.Bytes(), carolKP.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	alice.MergePendingCommit()
	bob, err := Join(res.Welcome, bobKP)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*wire.Commit{
		"remove without path": {Proposals: []wire.ProposalOrRef{{Proposal: RemoveProposal(2)}}},
		"empty without path":  {},
		"gce without path":    {Proposals: []wire.ProposalOrRef{{Proposal: GroupContextExtensionsProposal()}}},
	} {
		cfg := alice.cfg
		ac, err := alice.frame(&cfg, wire.ContentTypeCommit, nil, nil, c)
		if err != nil {
			t.Fatal(err)
		}
		ac.Auth.ConfirmationTag = make([]byte, alice.s.Nh())
		msg, err := alice.protect(&cfg, ac)
		if err != nil {
			t.Fatal(err)
		}
		_, err = bob.ProcessMessage(msg)
		if !errors.Is(err, ErrInvalidCommit) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// An add needs no path; a wrong confirmation tag is then the failure.
	dave := newKPB(t, 1, "dave")
	add, _ := AddProposal(dave.Bytes())
	cfg := alice.cfg
	ac, _ := alice.frame(&cfg, wire.ContentTypeCommit, nil, nil, &wire.Commit{Proposals: []wire.ProposalOrRef{{Proposal: add}}})
	ac.Auth.ConfirmationTag = make([]byte, alice.s.Nh())
	msg, _ := alice.protect(&cfg, ac)
	_, err = bob.ProcessMessage(msg)
	expectErr(t, err, ErrBadConfirmationTag)
}
