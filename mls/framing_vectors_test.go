package mls

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/agwproject/agw/mls/internal/testvec"
	"github.com/agwproject/agw/mls/internal/vecsuite"
	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/wire"
)

type messageProtectionVector struct {
	CipherSuite             uint16      `json:"cipher_suite"`
	GroupID                 testvec.Hex `json:"group_id"`
	Epoch                   uint64      `json:"epoch"`
	TreeHash                testvec.Hex `json:"tree_hash"`
	ConfirmedTranscriptHash testvec.Hex `json:"confirmed_transcript_hash"`
	SignaturePriv           testvec.Hex `json:"signature_priv"`
	SignaturePub            testvec.Hex `json:"signature_pub"`
	EncryptionSecret        testvec.Hex `json:"encryption_secret"`
	SenderDataSecret        testvec.Hex `json:"sender_data_secret"`
	MembershipKey           testvec.Hex `json:"membership_key"`
	Proposal                testvec.Hex `json:"proposal"`
	ProposalPriv            testvec.Hex `json:"proposal_priv"`
	ProposalPub             testvec.Hex `json:"proposal_pub"`
	Commit                  testvec.Hex `json:"commit"`
	CommitPriv              testvec.Hex `json:"commit_priv"`
	CommitPub               testvec.Hex `json:"commit_pub"`
	Application             testvec.Hex `json:"application"`
	ApplicationPriv         testvec.Hex `json:"application_priv"`
}

func (v *messageProtectionVector) framer(t testing.TB, s *suite.Suite) *framer {
	t.Helper()
	keys, err := newSecretTree(s, v.EncryptionSecret, 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx := wire.Encode(&wire.GroupContext{
		Version: wire.MLS10, CipherSuite: wire.CipherSuite(v.CipherSuite), GroupID: v.GroupID,
		Epoch: v.Epoch, TreeHash: v.TreeHash, ConfirmedTranscriptHash: v.ConfirmedTranscriptHash,
	})
	return &framer{
		s: s, groupID: v.GroupID, epoch: v.Epoch, ctx: ctx,
		membershipKey: v.MembershipKey, senderDataSecret: v.SenderDataSecret,
		keys: keys,
	}
}

// unprotect decodes an MLSMessage and returns its verified content.
func (f *framer) unprotectForTest(msg, sigPub []byte) (*wire.AuthenticatedContent, error) {
	m, err := decodeMessage(msg)
	if err != nil {
		return nil, err
	}
	var ac *wire.AuthenticatedContent
	switch m.WireFormat {
	case wire.WireFormatPublicMessage:
		ac, err = f.unprotectPublic(m.PublicMessage)
	case wire.WireFormatPrivateMessage:
		ac, err = f.unprotectPrivate(m.PrivateMessage, func(l uint32) bool { return l < 2 })
	default:
		return nil, fmt.Errorf("unexpected wire format %v", m.WireFormat)
	}
	if err != nil {
		return nil, err
	}
	if err := f.verifyContent(sigPub, ac); err != nil {
		return nil, err
	}
	return ac, nil
}

func contentBytes(ac *wire.AuthenticatedContent) []byte {
	switch ac.Content.ContentType {
	case wire.ContentTypeProposal:
		return wire.Encode(ac.Content.Proposal)
	case wire.ContentTypeCommit:
		return wire.Encode(ac.Content.Commit)
	}
	return ac.Content.Application
}

func TestMessageProtectionVectors(t *testing.T) {
	var vs []messageProtectionVector
	testvec.Load(t, "message-protection.json", &vs)
	c := testvec.Counter{File: "message-protection.json"}
	for i, v := range vs {
		s := vecsuite.ForHeavy(t, &c, v.CipherSuite)
		if s == nil {
			continue
		}
		t.Run(fmt.Sprintf("%d-suite%d", i, v.CipherSuite), func(t *testing.T) {
			cases := []struct {
				name      string
				want, msg []byte
				ct        wire.ContentType
			}{
				{"proposal_pub", v.Proposal, v.ProposalPub, wire.ContentTypeProposal},
				{"proposal_priv", v.Proposal, v.ProposalPriv, wire.ContentTypeProposal},
				{"commit_pub", v.Commit, v.CommitPub, wire.ContentTypeCommit},
				{"commit_priv", v.Commit, v.CommitPriv, wire.ContentTypeCommit},
				{"application_priv", v.Application, v.ApplicationPriv, wire.ContentTypeApplication},
			}
			signer, err := s.NewSigner(v.SignaturePriv)
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range cases {
				f := v.framer(t, s)
				ac, err := f.unprotectForTest(tc.msg, v.SignaturePub)
				if err != nil {
					t.Fatalf("%s: unprotect: %v", tc.name, err)
				}
				if ac.Content.ContentType != tc.ct || !bytes.Equal(contentBytes(ac), tc.want) {
					t.Fatalf("%s: content mismatch", tc.name)
				}
				if ac.Content.Sender.Type != wire.SenderTypeMember || ac.Content.Sender.LeafIndex != 1 {
					t.Fatalf("%s: sender %+v", tc.name, ac.Content.Sender)
				}
				// Re-protect with our own keys and unprotect again.
				for _, wf := range []wire.WireFormat{wire.WireFormatPublicMessage, wire.WireFormatPrivateMessage} {
					if wf == wire.WireFormatPublicMessage && tc.ct == wire.ContentTypeApplication {
						continue
					}
					sender := v.framer(t, s)
					ac2 := &wire.AuthenticatedContent{WireFormat: wf, Content: ac.Content}
					ac2.Auth.ConfirmationTag = ac.Auth.ConfirmationTag
					if ac2.Auth.Signature, err = sender.signContent(signer, wf, &ac2.Content); err != nil {
						t.Fatal(err)
					}
					m := &wire.MLSMessage{WireFormat: wf}
					if wf == wire.WireFormatPublicMessage {
						m.PublicMessage, err = sender.protectPublic(ac2)
					} else {
						m.PrivateMessage, err = sender.protectPrivate(ac2, 1, 7)
					}
					if err != nil {
						t.Fatalf("%s %v: protect: %v", tc.name, wf, err)
					}
					back, err := v.framer(t, s).unprotectForTest(encodeMessage(m), v.SignaturePub)
					if err != nil {
						t.Fatalf("%s %v: round trip: %v", tc.name, wf, err)
					}
					if !bytes.Equal(contentBytes(back), tc.want) || !bytes.Equal(back.Auth.ConfirmationTag, ac.Auth.ConfirmationTag) {
						t.Fatalf("%s %v: round trip content mismatch", tc.name, wf)
					}
				}
			}
			// An application message as PublicMessage is refused on both sides.
			f := v.framer(t, s)
			ac := &wire.AuthenticatedContent{WireFormat: wire.WireFormatPublicMessage, Content: wire.FramedContent{
				GroupID: v.GroupID, Epoch: v.Epoch, Sender: wire.Sender{Type: wire.SenderTypeMember, LeafIndex: 1},
				ContentType: wire.ContentTypeApplication, Application: v.Application,
			}}
			if ac.Auth.Signature, err = f.signContent(signer, wire.WireFormatPublicMessage, &ac.Content); err != nil {
				t.Fatal(err)
			}
			if _, err := f.protectPublic(ac); !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("protect application as PublicMessage: %v", err)
			}
			pm := &wire.PublicMessage{Content: ac.Content, Auth: ac.Auth, MembershipTag: f.membershipTag(ac)}
			if _, err := f.unprotectForTest(encodeMessage(&wire.MLSMessage{WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm}), v.SignaturePub); !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("unprotect application as PublicMessage: %v", err)
			}
		})
		if !t.Failed() {
			c.Passed++
		}
	}
	c.Report(t)
}
