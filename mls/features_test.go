package mls

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agwproject/agw/mls/schedule"
	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/wire"
)

func TestExternalPSKAndWelcome(t *testing.T) {
	psk := WithExternalPSK([]byte("psk-id"), []byte("shared secret"))
	alice, err := NewGroup(1, BasicCredential([]byte("alice")), psk, WithGroupID([]byte("group-1")))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(alice.GroupID(), []byte("group-1")) {
		t.Fatal("group id option ignored")
	}
	bob := newKPB(t, 1, "bob")
	p, err := alice.ExternalPSKProposal([]byte("psk-id"))
	if err != nil {
		t.Fatal(err)
	}
	add, _ := AddProposal(bob.Bytes())
	res, err := alice.Commit([]*wire.Proposal{add, p})
	if err != nil {
		t.Fatal(err)
	}
	alice.MergePendingCommit()
	// Without the PSK the joiner cannot join.
	_, err = Join(res.Welcome, bob)
	expectErr(t, err, ErrMissingPSK)
	g, err := Join(res.Welcome, bob, psk)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g.EpochAuthenticator(), alice.EpochAuthenticator()) {
		t.Fatal("epoch authenticators differ")
	}
	// A PSK proposal sent by reference, committed by bob.
	p, _ = g.ExternalPSKProposal([]byte("psk-id"))
	msg, err := g.Propose(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.ProcessMessage(msg); err != nil {
		t.Fatal(err)
	}
	res, err = g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.ProcessMessage(res.Commit); err != nil {
		t.Fatal(err)
	}
	g.MergePendingCommit()
	if !bytes.Equal(g.EpochAuthenticator(), alice.EpochAuthenticator()) {
		t.Fatal("epoch authenticators differ after PSK commit")
	}
	// Unknown PSK id: the proposal cannot be committed.
	p, _ = g.ExternalPSKProposal([]byte("unknown"))
	_, err = g.Commit([]*wire.Proposal{p})
	expectErr(t, err, ErrMissingPSK)
}

func TestRequiredCapabilities(t *testing.T) {
	alice, bob := twoMembers(t)
	const custom = wire.ExtensionType(0xff00)
	rc := &wire.RequiredCapabilities{ExtensionTypes: []wire.ExtensionType{custom}}
	// Members do not support the custom extension: refused.
	_, err := alice.ProposeGroupContextExtensions([]wire.Extension{wire.NewExtension(wire.ExtensionTypeRequiredCapabilities, rc)})
	expectErr(t, err, ErrInvalidProposal, ErrUnsupported)
	// Requiring the basic credential is fine.
	rc = &wire.RequiredCapabilities{CredentialTypes: []wire.CredentialType{wire.CredentialTypeBasic}}
	msg, err := alice.ProposeGroupContextExtensions([]wire.Extension{wire.NewExtension(wire.ExtensionTypeRequiredCapabilities, rc)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.ProcessMessage(msg); err != nil {
		t.Fatal(err)
	}
	res, err := bob.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.ProcessMessage(res.Commit); err != nil {
		t.Fatal(err)
	}
	bob.MergePendingCommit()
	if len(alice.Extensions()) != 1 || !bytes.Equal(alice.EpochAuthenticator(), bob.EpochAuthenticator()) {
		t.Fatal("extensions not applied")
	}
	// A key package without x509 support cannot join a group requiring it.
	rc = &wire.RequiredCapabilities{CredentialTypes: []wire.CredentialType{wire.CredentialTypeX509}}
	res, err = alice.Commit([]*wire.Proposal{GroupContextExtensionsProposal(wire.NewExtension(wire.ExtensionTypeRequiredCapabilities, rc))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.ProcessMessage(res.Commit); err != nil {
		t.Fatal(err)
	}
	alice.MergePendingCommit()
	carol := newKPB(t, 1, "carol", WithCapabilities(wire.Capabilities{
		Versions: []wire.ProtocolVersion{wire.MLS10}, CipherSuites: []wire.CipherSuite{1},
		Credentials: []wire.CredentialType{wire.CredentialTypeBasic},
	}))
	_, err = alice.Add([][]byte{carol.Bytes()})
	expectErr(t, err, ErrInvalidProposal, ErrInvalidLeafNode)
}

func TestCredentialValidatorAndRefs(t *testing.T) {
	refuse := errors.New("not on the allow list")
	validator := func(c Credential, _ []byte) error {
		if string(c.Identity) == "mallory" {
			return refuse
		}
		return nil
	}
	alice, err := NewGroup(1, BasicCredential([]byte("alice")), WithCredentialValidator(validator))
	if err != nil {
		t.Fatal(err)
	}
	mallory := newKPB(t, 1, "mallory")
	_, err = alice.Add([][]byte{mallory.Bytes()})
	expectErr(t, err, ErrInvalidProposal, refuse)
	if err := ValidateKeyPackage(mallory.Bytes(), WithCredentialValidator(validator)); !errors.Is(err, refuse) {
		t.Fatalf("validate: %v", err)
	}
	ref1, err := mallory.Ref()
	if err != nil {
		t.Fatal(err)
	}
	ref2, err := KeyPackageRef(mallory.Bytes())
	if err != nil || !bytes.Equal(ref1, ref2) || len(ref1) != 32 {
		t.Fatalf("refs %x %x %v", ref1, ref2, err)
	}
	// Lifetimes follow the injected clock.
	future := WithClock(func() time.Time { return time.Now().Add(365 * 24 * time.Hour) })
	expectErr(t, ValidateKeyPackage(mallory.Bytes(), future), ErrInvalidKeyPackage)
}

func TestOutOfOrderApplication(t *testing.T) {
	alice, bob := twoMembers(t)
	var msgs [][]byte
	for i := 0; i < 5; i++ {
		m, err := alice.Encrypt([]byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	for _, i := range []int{3, 0, 4, 1, 2} {
		p, err := bob.Decrypt(msgs[i])
		if err != nil || len(p) != 1 || p[0] != byte(i) {
			t.Fatalf("message %d: %v %v", i, p, err)
		}
	}
	for _, m := range msgs {
		_, err := bob.Decrypt(m)
		expectErr(t, err, ErrGenerationReused)
	}
	if ContentKind(9).String() == "" || KindCommit.String() != "commit" {
		t.Fatal("kind names")
	}
}

func TestCommitPrefersRemoveOverUpdate(t *testing.T) {
	alice, err := NewGroup(1, BasicCredential([]byte("alice")))
	if err != nil {
		t.Fatal(err)
	}
	tg := &testGroup{t: t, members: map[string]*Group{"alice": alice}}
	bob, carol := newKPB(t, 1, "bob"), newKPB(t, 1, "carol")
	res, err := alice.Add([][]byte{bob.Bytes(), carol.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	tg.commit("alice", res, map[string]*KeyPackageBundle{"bob": bob, "carol": carol})
	up, err := tg.members["bob"].ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	tg.deliver("bob", up, KindProposal)
	rm, err := tg.members["carol"].ProposeRemove(tg.members["bob"].LeafIndex())
	if err != nil {
		t.Fatal(err)
	}
	tg.deliver("carol", rm, KindProposal)
	// Alice proposes adding carol's key package again (carol is a member): dropped.
	again, err := alice.ProposeAdd(carol.Bytes())
	if err == nil {
		tg.deliver("alice", again, KindProposal)
	}
	res, err = alice.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Info.Removed) != 1 || len(res.Info.Updated) != 0 || len(res.Info.Added) != 0 {
		t.Fatalf("commit info %+v", res.Info)
	}
	tg.commit("alice", res, nil)
	if !tg.members["bob"].Removed() {
		t.Fatal("bob not removed")
	}
}

func TestLateApplicationMessage(t *testing.T) {
	alice, bob := twoMembers(t)
	late, err := alice.Encrypt([]byte("sent before the commit"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := bob.Update()
	if err != nil {
		t.Fatal(err)
	}
	bob.MergePendingCommit()
	if _, err := alice.ProcessMessage(res.Commit); err != nil {
		t.Fatal(err)
	}
	p, err := bob.ProcessMessage(late)
	if err != nil || string(p.Application) != "sent before the commit" || p.Epoch+1 != bob.Epoch() {
		t.Fatalf("late message: %+v %v", p, err)
	}
	_, err = bob.ProcessMessage(late)
	expectErr(t, err, ErrGenerationReused)
	// Two epochs later it is refused.
	res, _ = alice.Update()
	alice.MergePendingCommit()
	bob.ProcessMessage(res.Commit)
	old, _ := alice.Encrypt([]byte("x"))
	res, _ = alice.Update()
	alice.MergePendingCommit()
	bob.ProcessMessage(res.Commit)
	res, _ = alice.Update()
	alice.MergePendingCommit()
	bob.ProcessMessage(res.Commit)
	_, err = bob.ProcessMessage(old)
	expectErr(t, err, ErrWrongEpoch)
}

func TestKeyPackageBundleRoundTrip(t *testing.T) {
	for _, id := range []uint16{1, 2, 5} {
		kpb := newKPB(t, suiteID(id), "bob")
		enc, err := kpb.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back, err := UnmarshalKeyPackageBundle(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back.Bytes(), kpb.Bytes()) || !bytes.Equal(back.SignaturePriv, kpb.SignaturePriv) {
			t.Fatal("bundle round trip differs")
		}
		// A swapped private key is detected.
		back.InitPriv, back.EncryptionPriv = back.EncryptionPriv, back.InitPriv
		enc, _ = back.MarshalBinary()
		if _, err := UnmarshalKeyPackageBundle(enc); !errors.Is(err, ErrMalformed) {
			t.Fatalf("swapped keys: %v", err)
		}
	}
}

func TestGREASEIgnored(t *testing.T) {
	const grease = wire.ExtensionType(0x3a3a)
	caps := wire.Capabilities{
		Versions:     []wire.ProtocolVersion{wire.MLS10, 0x1a1a},
		CipherSuites: []wire.CipherSuite{1, 0x2a2a},
		Extensions:   []wire.ExtensionType{grease},
		Proposals:    []wire.ProposalType{0x4a4a},
		Credentials:  []wire.CredentialType{wire.CredentialTypeBasic, 0x5a5a},
	}
	opts := []Option{WithCapabilities(caps), WithLeafExtensions(wire.Extension{Type: grease, Data: []byte{1}}),
		WithKeyPackageExtensions(wire.Extension{Type: 0x6a6a})}
	alice, err := NewGroup(1, BasicCredential([]byte("alice")), opts...)
	if err != nil {
		t.Fatal(err)
	}
	bob := newKPB(t, 1, "bob", opts...)
	res, err := alice.Add([][]byte{bob.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	alice.MergePendingCommit()
	g, err := Join(res.Welcome, bob)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g.EpochAuthenticator(), alice.EpochAuthenticator()) {
		t.Fatal("epoch authenticators differ")
	}
	// A GREASE extension in a GroupInfo is ignored by an external joiner.
	gi, err := alice.GroupInfo()
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeMessage(gi)
	if err != nil {
		t.Fatal(err)
	}
	m.GroupInfo.Extensions = append(m.GroupInfo.Extensions, wire.Extension{Type: 0x7a7a, Data: []byte("grease")})
	if m.GroupInfo.Signature, err = alice.signer.SignWithLabel(labelGroupInfo, m.GroupInfo.TBS()); err != nil {
		t.Fatal(err)
	}
	carol, commit, err := JoinExternal(encodeMessage(m), BasicCredential([]byte("carol")), opts...)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []*Group{alice, g} {
		if _, err := h.ProcessMessage(commit); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(h.EpochAuthenticator(), carol.EpochAuthenticator()) {
			t.Fatal("epoch authenticators differ after external join")
		}
	}
}

func suiteID(id uint16) suite.ID { return suite.ID(id) }

// TestRatchetWindow checks the group's ratchet limits through the secret
// tree it builds: keys of the ratchetWindow generations below the newest
// are kept once, older ones and used ones are refused, generations more
// than maxForwardRatchet ahead are a decryption failure, and leaves
// outside the tree unknown senders.
func TestRatchetWindow(t *testing.T) {
	s := mustSuite(t, 1)
	secret := make([]byte, s.Nh())
	send, err := newSecretTree(s, secret, 4)
	if err != nil {
		t.Fatal(err)
	}
	recv, _ := newSecretTree(s, secret, 4)
	var keys [][]byte
	for i := 0; i < ratchetWindow+10; i++ {
		k, err := send.Next(2, schedule.Application)
		if err != nil || k.Generation != uint32(i) {
			t.Fatal(k.Generation, err)
		}
		keys = append(keys, k.Key)
	}
	last := uint32(len(keys) - 1)
	k, err := recv.Peek(2, schedule.Application, last)
	if err != nil || !bytes.Equal(k.Key, keys[last]) {
		t.Fatal("last key", err)
	}
	if err := recv.Consume(2, schedule.Application, last); err != nil {
		t.Fatal(err)
	}
	// Within the window: still available once.
	g := last - ratchetWindow
	if k, err := recv.Peek(2, schedule.Application, g); err != nil || !bytes.Equal(k.Key, keys[g]) {
		t.Fatal("window key", err)
	}
	// Older than the window, or consumed: refused.
	if _, err := recv.Peek(2, schedule.Application, g-1); !errors.Is(ratchetError(err), ErrGenerationReused) {
		t.Fatal("old key", err)
	}
	if _, err := recv.Peek(2, schedule.Application, last); !errors.Is(ratchetError(err), ErrGenerationReused) {
		t.Fatal("consumed key", err)
	}
	if n := recv.Kept(2, schedule.Application); n != ratchetWindow {
		t.Fatalf("%d skipped keys kept, want %d", n, ratchetWindow)
	}
	// Too far ahead.
	if _, err := recv.Peek(2, schedule.Application, last+maxForwardRatchet+2); !errors.Is(ratchetError(err), ErrDecrypt) {
		t.Fatal("far ahead", err)
	}
	if _, err := recv.Peek(9, schedule.Application, 0); !errors.Is(ratchetError(err), ErrUnknownSender) {
		t.Fatal("leaf outside tree", err)
	}
}

func TestUnsupportedSuites(t *testing.T) {
	for _, id := range []suite.ID{4, 6, 0x1234} {
		_, err := NewGroup(id, BasicCredential([]byte("x")))
		expectErr(t, err, ErrUnsupported, suite.ErrUnsupported)
		_, err = GenerateKeyPackage(id, BasicCredential([]byte("x")))
		expectErr(t, err, ErrUnsupported)
	}
	alice, _ := twoMembers(t)
	if _, err := alice.Export("x", nil, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("export length 0: %v", err)
	}
	if _, err := alice.Remove([]uint32{99}); !errors.Is(err, ErrInvalidProposal) {
		t.Fatalf("remove of a missing leaf: %v", err)
	}
	if _, err := AddProposal([]byte("junk")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("junk key package: %v", err)
	}
	if _, err := Join([]byte("junk"), nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("join without bundle: %v", err)
	}
}

// A PrivateMessage whose sender data decrypts but whose content does not
// (forged by someone who knows the sender-data secret, or corrupted) must
// neither burn the claimed generation's key nor move the sender's ratchet:
// the key is consumed only once the content authenticated.
func TestForgedGenerationLeavesRatchet(t *testing.T) {
	alice, bob := twoMembers(t)
	m0, err := alice.Encrypt([]byte("zero"))
	if err != nil {
		t.Fatal(err)
	}
	m1, err := alice.Encrypt([]byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	// Corrupted content of generation 1.
	bad := bytes.Clone(m1)
	bad[len(bad)-1] ^= 1
	if _, err := bob.Decrypt(bad); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("corrupted message: %v, want ErrDecrypt", err)
	}
	// A forged generation far ahead, within the forward limit but beyond
	// the out-of-order window.
	forged := &wire.PrivateMessage{
		GroupID: bob.ctx.GroupID, Epoch: bob.ctx.Epoch, ContentType: wire.ContentTypeApplication,
		Ciphertext: bytes.Repeat([]byte{7}, 64),
	}
	sd := wire.Encode(&wire.SenderData{LeafIndex: alice.LeafIndex(), Generation: ratchetWindow + 100})
	key, nonce := bob.f.senderDataKeys(forged.Ciphertext)
	if forged.EncryptedSenderData, err = bob.s.Seal(key, nonce, wire.SenderDataAADFor(forged), sd); err != nil {
		t.Fatal(err)
	}
	msg := encodeMessage(&wire.MLSMessage{WireFormat: wire.WireFormatPrivateMessage, PrivateMessage: forged})
	if _, err := bob.Decrypt(msg); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("forged message: %v, want ErrDecrypt", err)
	}
	if n := bob.f.keys.Kept(alice.LeafIndex(), schedule.Application); n != 0 {
		t.Errorf("forged messages left %d kept keys", n)
	}
	// The genuine messages still decrypt, in any order, once each.
	for _, m := range []struct {
		msg  []byte
		want string
	}{{m1, "one"}, {m0, "zero"}} {
		pt, err := bob.Decrypt(m.msg)
		if err != nil || string(pt) != m.want {
			t.Fatalf("genuine message %q: %q, %v", m.want, pt, err)
		}
	}
	if _, err := bob.Decrypt(m1); !errors.Is(err, ErrGenerationReused) {
		t.Errorf("replay: %v, want ErrGenerationReused", err)
	}
}

// The ratchets persist: kept out-of-order keys survive MarshalState, used
// generations stay used, and a state of the old format 1 is refused.
func TestRatchetStatePersists(t *testing.T) {
	alice, bob := twoMembers(t)
	var msgs [][]byte
	for i := range 4 {
		m, err := alice.Encrypt([]byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	if _, err := bob.Decrypt(msgs[3]); err != nil { // keeps the keys of 0..2
		t.Fatal(err)
	}
	if _, err := bob.Decrypt(msgs[1]); err != nil {
		t.Fatal(err)
	}
	st, err := bob.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalState(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{2, 0} {
		if pt, err := back.Decrypt(msgs[i]); err != nil || !bytes.Equal(pt, []byte{byte(i)}) {
			t.Fatalf("kept generation %d after restore: %v", i, err)
		}
	}
	for _, i := range []int{1, 3} {
		if _, err := back.Decrypt(msgs[i]); !errors.Is(err, ErrGenerationReused) {
			t.Errorf("used generation %d after restore: %v, want ErrGenerationReused", i, err)
		}
	}
	old := bytes.Clone(st)
	old[len(stateMagic)-1] = 1
	if _, err := UnmarshalState(old); !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "version 1") {
		t.Errorf("format 1 state: %v, want ErrState naming the version", err)
	}
}
