package wire

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"github.com/agwproject/agw/mls/codec"
)

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// cut splits b into pieces in several ways (empty pieces included).
func cut(b []byte) [][][]byte {
	out := [][][]byte{{b}, {nil, b, {}}}
	if len(b) > 2 {
		out = append(out, [][]byte{b[:1], b[1 : len(b)/2], {}, b[len(b)/2:]})
	}
	if len(b) == 0 {
		out = append(out, nil)
	}
	return out
}

func TestApplicationTBSMatchesEncoding(t *testing.T) {
	ctx := Encode(&GroupContext{Version: MLS10, CipherSuite: 1, GroupID: []byte("g"), Epoch: 3,
		TreeHash: randBytes(32), ConfirmedTranscriptHash: randBytes(32)})
	senders := []Sender{
		{Type: SenderTypeMember, LeafIndex: 7},
		{Type: SenderTypeExternal, SenderIndex: 2},
		{Type: SenderTypeNewMemberCommit},
		{Type: SenderTypeNewMemberProposal},
	}
	for _, appLen := range []int{0, 1, 63, 64, 16383, 16384, 70000} {
		for _, adLen := range []int{0, 63, 64} {
			for _, snd := range senders {
				for _, wf := range []WireFormat{WireFormatPrivateMessage, WireFormatPublicMessage} {
					fc := FramedContent{GroupID: randBytes(1 + adLen%7), Epoch: 1<<40 + uint64(appLen), Sender: snd,
						AuthenticatedData: randBytes(adLen), ContentType: ContentTypeApplication, Application: randBytes(appLen)}
					want := FramedContentTBS(MLS10, wf, &fc, ctx)
					name := fmt.Sprintf("app=%d ad=%d sender=%v wf=%v", appLen, adLen, snd.Type, wf)
					for _, parts := range cut(fc.Application) {
						content := fc
						content.Application = nil // ignored
						pieces, err := ApplicationTBS(MLS10, wf, &content, parts, ctx)
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						if got := bytes.Join(pieces, nil); !bytes.Equal(got, want) {
							t.Fatalf("%s: pieces differ from FramedContentTBS", name)
						}
					}
					pieces, err := FramedContentTBSVec(MLS10, wf, &fc, ctx)
					if err != nil || !bytes.Equal(bytes.Join(pieces, nil), want) {
						t.Fatalf("%s: FramedContentTBSVec: %v", name, err)
					}
					// The application data is not copied.
					if appLen > 0 && &pieces[1][0] != &fc.Application[0] {
						t.Fatalf("%s: application data copied", name)
					}
				}
			}
		}
	}
	// Handshake content: one piece equal to FramedContentTBS.
	for _, fc := range []FramedContent{
		{GroupID: []byte("g"), Sender: Sender{Type: SenderTypeMember, LeafIndex: 1}, ContentType: ContentTypeProposal,
			Proposal: &Proposal{Type: ProposalTypeRemove, Remove: &Remove{Removed: 3}}},
		{GroupID: []byte("g"), Sender: Sender{Type: SenderTypeExternal}, ContentType: ContentTypeProposal,
			Proposal: &Proposal{Type: ProposalTypeRemove, Remove: &Remove{Removed: 3}}},
		{GroupID: []byte("g"), Sender: Sender{Type: SenderTypeMember}, ContentType: ContentTypeCommit, Commit: &Commit{}},
	} {
		pieces, err := FramedContentTBSVec(MLS10, WireFormatPublicMessage, &fc, ctx)
		if err != nil || !bytes.Equal(bytes.Join(pieces, nil), FramedContentTBS(MLS10, WireFormatPublicMessage, &fc, ctx)) {
			t.Fatalf("%v content: FramedContentTBSVec: %v", fc.ContentType, err)
		}
	}
	if _, err := ApplicationTBS(MLS10, WireFormatPrivateMessage, &FramedContent{ContentType: ContentTypeCommit}, nil, ctx); err == nil {
		t.Fatal("ApplicationTBS of a commit succeeded")
	}
}

func TestPutApplicationContentMatchesEncoding(t *testing.T) {
	for _, appLen := range []int{0, 5, 64, 16384, 70000} {
		for _, sigLen := range []int{64, 71} {
			for _, pad := range []int{0, 1, 100} {
				app, sig := randBytes(appLen), randBytes(sigLen)
				want := Encode(&PrivateMessageContent{ContentType: ContentTypeApplication, Application: app,
					Auth: FramedContentAuthData{Signature: sig}, Padding: pad})
				n, err := ApplicationContentLen(appLen, sigLen, pad)
				if err != nil || n != len(want) {
					t.Fatalf("app=%d sig=%d pad=%d: length %d, %v; want %d", appLen, sigLen, pad, n, err, len(want))
				}
				for _, parts := range cut(app) {
					dst := bytes.Repeat([]byte{0xff}, n) // stale bytes: padding must be zeroed
					if err := PutApplicationContent(dst, parts, sig, pad); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(dst, want) {
						t.Fatalf("app=%d sig=%d pad=%d: content differs from encoding", appLen, sigLen, pad)
					}
				}
				if err := PutApplicationContent(make([]byte, n+1), [][]byte{app}, sig, pad); err == nil {
					t.Fatal("wrong-sized buffer accepted")
				}
			}
		}
	}
	if _, err := ApplicationContentLen(codec.MaxVarint+1, 64, 0); !errors.Is(err, codec.ErrTooLong) {
		t.Fatalf("over-long application data: %v", err)
	}
	if _, err := ApplicationContentLen(codec.MaxVarint-10, 64, 0); !errors.Is(err, codec.ErrTooLong) {
		t.Fatalf("over-long content: %v", err)
	}
	if _, err := ApplicationContentLen(1, 64, -1); err == nil {
		t.Fatal("negative padding accepted")
	}
}

func TestAppendPrivateMessageMatchesEncoding(t *testing.T) {
	for _, gidLen := range []int{0, 32, 100} {
		for _, adLen := range []int{0, 32, 70} {
			for _, ctLen := range []int{16, 100, 70000} {
				pm := &PrivateMessage{GroupID: randBytes(gidLen), Epoch: 0x0102030405060708, ContentType: ContentTypeApplication,
					AuthenticatedData: randBytes(adLen), EncryptedSenderData: randBytes(28), Ciphertext: randBytes(ctLen)}
				want := Encode(&MLSMessage{Version: MLS10, WireFormat: WireFormatPrivateMessage, PrivateMessage: pm})
				for _, prefix := range [][]byte{nil, []byte("prefix")} {
					b, f, err := AppendPrivateMessage(prefix, pm.GroupID, pm.Epoch, pm.ContentType, pm.AuthenticatedData, 28, ctLen)
					if err != nil {
						t.Fatal(err)
					}
					if len(b) != cap(b) {
						t.Fatalf("buffer not exactly sized: len %d cap %d", len(b), cap(b))
					}
					copy(f.EncryptedSenderData, pm.EncryptedSenderData)
					copy(f.Ciphertext, pm.Ciphertext)
					if !bytes.Equal(b[:len(prefix)], prefix) || !bytes.Equal(b[len(prefix):], want) {
						t.Fatalf("gid=%d ad=%d ct=%d: layout differs from encoding", gidLen, adLen, ctLen)
					}
					if !bytes.Equal(f.SenderDataAAD, SenderDataAADFor(pm)) || !bytes.Equal(f.ContentAAD, PrivateContentAADFor(pm)) {
						t.Fatalf("gid=%d ad=%d ct=%d: AADs differ", gidLen, adLen, ctLen)
					}
					// Writing a field to its capacity cannot spill into the next.
					if cap(f.EncryptedSenderData) != 28 || cap(f.Ciphertext) != ctLen {
						t.Fatal("frame fields not capped")
					}
				}
				// With enough spare capacity nothing is allocated.
				buf := make([]byte, 0, len(want)+10)
				allocs := testing.AllocsPerRun(10, func() {
					_, _, _ = AppendPrivateMessage(buf, pm.GroupID, pm.Epoch, pm.ContentType, pm.AuthenticatedData, 28, ctLen)
				})
				if allocs != 0 {
					t.Fatalf("%v allocations with spare capacity", allocs)
				}
			}
		}
	}
	if _, _, err := AppendPrivateMessage(nil, nil, 0, ContentTypeApplication, nil, 28, codec.MaxVarint+1); !errors.Is(err, codec.ErrTooLong) {
		t.Fatalf("over-long ciphertext: %v", err)
	}
}

func TestDecodeAlias(t *testing.T) {
	pm := &PrivateMessage{GroupID: []byte("group"), Epoch: 9, ContentType: ContentTypeApplication,
		AuthenticatedData: []byte("ad"), EncryptedSenderData: randBytes(28), Ciphertext: randBytes(200)}
	enc := Encode(&MLSMessage{Version: MLS10, WireFormat: WireFormatPrivateMessage, PrivateMessage: pm})
	var a, c MLSMessage
	if err := DecodeAlias(enc, &a); err != nil {
		t.Fatal(err)
	}
	if err := Decode(enc, &c); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(Encode(&a), enc) || !bytes.Equal(a.PrivateMessage.Ciphertext, pm.Ciphertext) {
		t.Fatal("aliased decoding differs")
	}
	enc[len(enc)-1] ^= 1
	if a.PrivateMessage.Ciphertext[199] == pm.Ciphertext[199] {
		t.Fatal("DecodeAlias copied its input")
	}
	if c.PrivateMessage.Ciphertext[199] != pm.Ciphertext[199] {
		t.Fatal("Decode aliased its input")
	}
	if err := DecodeAlias(append(enc, 0), &a); !errors.Is(err, codec.ErrTrailing) {
		t.Fatalf("trailing byte: %v", err)
	}
	if err := DecodeAlias(enc[:10], &a); !errors.Is(err, codec.ErrShort) {
		t.Fatalf("truncated: %v", err)
	}
}
