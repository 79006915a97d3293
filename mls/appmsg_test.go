package mls

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/agwproject/agw/mls/schedule"
	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/wire"
)

// referenceCheck rebuilds every byte of the application message msg that
// sender sent (content app, authenticated data ad, padding pad) with the
// general wire encoders (PrivateMessageContent, SenderData, MLSMessage)
// and the receiver's keys, and requires them equal: the fast path of
// Encrypt changes no output byte. The only inputs taken from msg are the
// random ones: the reuse guard and, for ECDSA, the signature, which is
// then verified over the encoded FramedContentTBS.
func referenceCheck(t *testing.T, sender, receiver *Group, msg, app, ad []byte, pad int, wantGen uint32) {
	t.Helper()
	s := receiver.s
	var m wire.MLSMessage
	if err := wire.Decode(msg, &m); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !bytes.Equal(wire.Encode(&m), msg) {
		t.Fatal("message is not in canonical encoding")
	}
	pm := m.PrivateMessage
	if m.WireFormat != wire.WireFormatPrivateMessage || pm.ContentType != wire.ContentTypeApplication ||
		!bytes.Equal(pm.GroupID, sender.ctx.GroupID) || pm.Epoch != sender.ctx.Epoch || !bytes.Equal(pm.AuthenticatedData, ad) {
		t.Fatalf("header: %v %v epoch %d", m.WireFormat, pm.ContentType, pm.Epoch)
	}
	sdKey, sdNonce := receiver.f.senderDataKeys(pm.Ciphertext)
	sdPlain, err := s.Open(sdKey, sdNonce, wire.SenderDataAADFor(pm), pm.EncryptedSenderData)
	if err != nil {
		t.Fatalf("sender data: %v", err)
	}
	var sd wire.SenderData
	if err := wire.Decode(sdPlain, &sd); err != nil {
		t.Fatal(err)
	}
	if sd.LeafIndex != uint32(sender.priv.Leaf) || sd.Generation != wantGen {
		t.Fatalf("sender data: leaf %d generation %d, want %d %d", sd.LeafIndex, sd.Generation, sender.priv.Leaf, wantGen)
	}
	wantSD, err := s.Seal(sdKey, sdNonce, wire.SenderDataAADFor(pm), wire.Encode(&sd))
	if err != nil || !bytes.Equal(wantSD, pm.EncryptedSenderData) {
		t.Fatalf("encrypted sender data differs: %v", err)
	}
	k, err := receiver.f.keys.Peek(sd.LeafIndex, schedule.Application, sd.Generation)
	if err != nil {
		t.Fatal(err)
	}
	for i := range sd.ReuseGuard {
		k.Nonce[i] ^= sd.ReuseGuard[i]
	}
	plain, err := s.Open(k.Key, k.Nonce, wire.PrivateContentAADFor(pm), pm.Ciphertext)
	if err != nil {
		t.Fatalf("content: %v", err)
	}
	pc, err := wire.DecodePrivateMessageContent(plain, wire.ContentTypeApplication)
	if err != nil {
		t.Fatal(err)
	}
	sig := pc.Auth.Signature
	fc := wire.FramedContent{GroupID: sender.ctx.GroupID, Epoch: sender.ctx.Epoch,
		Sender:            wire.Sender{Type: wire.SenderTypeMember, LeafIndex: uint32(sender.priv.Leaf)},
		AuthenticatedData: ad, ContentType: wire.ContentTypeApplication, Application: app}
	tbs := wire.FramedContentTBS(wire.MLS10, wire.WireFormatPrivateMessage, &fc, sender.f.ctx)
	if s.ID() == suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519 || s.ID() == suite.MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519 {
		want, err := sender.signer.SignWithLabel(labelFramedContent, tbs)
		if err != nil || !bytes.Equal(want, sig) {
			t.Fatalf("Ed25519 signature differs from the one over the encoded FramedContentTBS: %v", err)
		}
	} else if err := s.VerifyWithLabel(sender.signer.PublicKey(), labelFramedContent, tbs, sig); err != nil {
		t.Fatalf("ECDSA signature over the encoded FramedContentTBS: %v", err)
	}
	wantPlain := wire.Encode(&wire.PrivateMessageContent{ContentType: wire.ContentTypeApplication, Application: app,
		Auth: wire.FramedContentAuthData{Signature: sig}, Padding: pad})
	if !bytes.Equal(plain, wantPlain) {
		t.Fatal("content differs from the encoded PrivateMessageContent")
	}
	wantCT, err := s.Seal(k.Key, k.Nonce, wire.PrivateContentAADFor(pm), wantPlain)
	if err != nil || !bytes.Equal(wantCT, pm.Ciphertext) {
		t.Fatalf("ciphertext differs: %v", err)
	}
}

func TestEncryptMatchesReferenceEncoding(t *testing.T) {
	for _, id := range suite.Supported() {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			alice, bob := pair(t, id)
			gen := uint32(0)
			for _, n := range []int{0, 1, 63, 64, 16383, 16384, 70000} {
				for _, pad := range []int{0, 5} {
					for _, ad := range [][]byte{nil, []byte("routing digest")} {
						app := bytes.Repeat([]byte{byte(n), 0xa5}, n/2+n%2)[:n]
						msg, err := alice.Encrypt(app, WithAuthenticatedData(ad), WithPadding(pad))
						if err != nil {
							t.Fatal(err)
						}
						referenceCheck(t, alice, bob, msg, app, ad, pad, gen)
						gen++
						p, err := bob.ProcessMessage(msg)
						if err != nil {
							t.Fatalf("n=%d pad=%d: process: %v", n, pad, err)
						}
						if p.Kind != KindApplication || !bytes.Equal(p.Application, app) || !bytes.Equal(p.AuthenticatedData, ad) ||
							p.Sender.Leaf != uint32(alice.priv.Leaf) {
							t.Fatalf("n=%d pad=%d: got %v, %d bytes", n, pad, p.Kind, len(p.Application))
						}
					}
				}
			}
		})
	}
}

func TestEncryptVec(t *testing.T) {
	for _, id := range []suite.ID{1, 2} {
		alice, bob := pair(t, id)
		app := make([]byte, 5000)
		for i := range app {
			app[i] = byte(i * 7)
		}
		splits := [][][]byte{
			{app}, {app[:1], app[1:]}, {nil, app[:100], {}, app[100:4999], app[4999:]}, {},
		}
		gen := uint32(0)
		for i, parts := range splits {
			want := bytes.Join(parts, nil)
			msg, err := alice.EncryptVec(parts, WithAuthenticatedData([]byte("ad")), WithPadding(3))
			if err != nil {
				t.Fatal(err)
			}
			referenceCheck(t, alice, bob, msg, want, []byte("ad"), 3, gen)
			gen++
			got, err := bob.Decrypt(msg)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("suite %d split %d: %v", id, i, err)
			}
		}
	}
}

func TestAppendEncryptVecReusesBuffer(t *testing.T) {
	alice, bob := pair(t, 2)
	app := bytes.Repeat([]byte("x"), 3000)
	buf := make([]byte, 0, 8192)
	buf = append(buf, "hdr"...)
	out, err := alice.AppendEncryptVec(buf, [][]byte{app[:10], app[10:]})
	if err != nil {
		t.Fatal(err)
	}
	if &out[0] != &buf[0] || !bytes.Equal(out[:3], []byte("hdr")) {
		t.Fatal("spare capacity not used, or prefix changed")
	}
	got, err := bob.Decrypt(out[3:])
	if err != nil || !bytes.Equal(got, app) {
		t.Fatalf("decrypt: %v", err)
	}
	// Reusing the buffer for the next message (stale bytes in it).
	out2, err := alice.AppendEncryptVec(out[:0], [][]byte{app[:5]}, WithPadding(40))
	if err != nil {
		t.Fatal(err)
	}
	if &out2[0] != &buf[0] {
		t.Fatal("buffer not reused")
	}
	if got, err := bob.Decrypt(out2); err != nil || !bytes.Equal(got, app[:5]) {
		t.Fatalf("decrypt reused: %v", err)
	}
	// Too small a buffer grows once, keeping the prefix.
	small := []byte("ab")
	out3, err := alice.AppendEncryptVec(small, [][]byte{app})
	if err != nil || !bytes.Equal(out3[:2], small) || len(out3) != cap(out3) {
		t.Fatalf("grown buffer: %v, len %d cap %d", err, len(out3), cap(out3))
	}
	if got, err := bob.Decrypt(out3[2:]); err != nil || !bytes.Equal(got, app) {
		t.Fatalf("decrypt grown: %v", err)
	}
}

func TestProcessMessageLeavesInputAlone(t *testing.T) {
	alice, bob := pair(t, 1)
	app := []byte("hello, large world")
	msg, err := alice.Encrypt(app, WithAuthenticatedData([]byte("ad")))
	if err != nil {
		t.Fatal(err)
	}
	orig := bytes.Clone(msg)
	p, err := bob.ProcessMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(msg, orig) {
		t.Fatal("ProcessMessage modified its input")
	}
	// The caller may now reuse msg: the result must not change.
	for i := range msg {
		msg[i] = 0xee
	}
	if !bytes.Equal(p.Application, app) || !bytes.Equal(p.AuthenticatedData, []byte("ad")) {
		t.Fatal("result aliases the input")
	}
	// Same for Decrypt.
	msg2, err := alice.Encrypt(app)
	if err != nil {
		t.Fatal(err)
	}
	got, err := bob.Decrypt(msg2)
	if err != nil {
		t.Fatal(err)
	}
	clear(msg2)
	if !bytes.Equal(got, app) {
		t.Fatal("Decrypt result aliases the input")
	}
}

func TestProcessMessageInPlace(t *testing.T) {
	for _, id := range []suite.ID{1, 3} {
		alice, bob := pair(t, id)
		app := bytes.Repeat([]byte("in place "), 1000)
		msg, err := alice.Encrypt(app, WithAuthenticatedData([]byte("ad")), WithPadding(9))
		if err != nil {
			t.Fatal(err)
		}
		// A tampered copy fails, burns no key, and the genuine one still
		// decrypts in place.
		bad := bytes.Clone(msg)
		bad[len(bad)-1] ^= 1
		if _, err := bob.ProcessMessageInPlace(bad); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("tampered: %v", err)
		}
		p, err := bob.ProcessMessageInPlace(msg)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(p.Application, app) || !bytes.Equal(p.AuthenticatedData, []byte("ad")) {
			t.Fatal("wrong content")
		}
		if i := bytes.Index(msg, app); i < 0 || &p.Application[0] != &msg[i] {
			t.Fatal("plaintext not decrypted in place")
		}
		// A replay fails as for ProcessMessage.
		if _, err := bob.ProcessMessageInPlace(bytes.Clone(msg)); err == nil {
			t.Fatal("replay accepted")
		}
		// A message of the previous epoch, in place.
		late, err := alice.Encrypt(app[:100])
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
		if p, err := bob.ProcessMessageInPlace(res.Commit); err != nil || p.Kind != KindCommit {
			t.Fatalf("commit in place: %v", err)
		}
		p, err = bob.ProcessMessageInPlace(late)
		if err != nil || !bytes.Equal(p.Application, app[:100]) || p.Epoch+1 != bob.Epoch() {
			t.Fatalf("late message in place: %v", err)
		}
	}
}

// TestEncryptedHandshakeStillWorks covers the general PrivateMessage path
// (proposals and commits), which the application fast path leaves as it
// was, through aliased decoding.
func TestEncryptedHandshakeStillWorks(t *testing.T) {
	alice, bob := pair(t, 2)
	for _, g := range []*Group{alice, bob} {
		g.cfg.encryptHandshake = true
	}
	prop, err := bob.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	if p, err := alice.ProcessMessage(prop); err != nil || p.Kind != KindProposal {
		t.Fatalf("proposal: %v", err)
	}
	// The cached proposal must not alias the message.
	for i := range prop {
		prop[i] = 0xff
	}
	res, err := alice.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if p, err := bob.ProcessMessageInPlace(res.Commit); err != nil || p.Kind != KindCommit {
		t.Fatalf("commit: %v", err)
	}
	if alice.Epoch() != bob.Epoch() || !bytes.Equal(alice.EpochAuthenticator(), bob.EpochAuthenticator()) {
		t.Fatal("members disagree after an encrypted commit")
	}
	// The group keeps nothing that aliases a message processed in place:
	// clobbering it afterwards changes no state.
	before, err := bob.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	for i := range res.Commit {
		res.Commit[i] = 0xff
	}
	after, err := bob.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("group state aliases a commit processed in place")
	}
}
