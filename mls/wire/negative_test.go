package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/agwproject/agw/mls/codec"
	"github.com/agwproject/agw/mls/internal/testvec"
)

// mustFail decodes b into u and requires an error containing substr.
func mustFail(t *testing.T, name string, b []byte, u Unmarshaler, substr string) {
	t.Helper()
	err := Decode(b, u)
	if err == nil {
		t.Errorf("%s: decoded without error", name)
		return
	}
	if !strings.Contains(err.Error(), substr) {
		t.Errorf("%s: error %q does not mention %q", name, err, substr)
	}
}

func loadMessages(t testing.TB) []messagesVector {
	var vs []messagesVector
	testvec.Load(t, "messages.json", &vs)
	if len(vs) == 0 {
		t.Fatal("messages.json is empty")
	}
	return vs
}

func TestTruncatedInputsFail(t *testing.T) {
	v := loadMessages(t)[0]
	cases := []struct {
		name string
		b    []byte
		mk   func() Unmarshaler
	}{
		{"mls_welcome", v.MLSWelcome, func() Unmarshaler { return new(MLSMessage) }},
		{"mls_group_info", v.MLSGroupInfo, func() Unmarshaler { return new(MLSMessage) }},
		{"mls_key_package", v.MLSKeyPackage, func() Unmarshaler { return new(MLSMessage) }},
		{"public_message_commit", v.PublicCommit, func() Unmarshaler { return new(MLSMessage) }},
		{"public_message_proposal", v.PublicProposal, func() Unmarshaler { return new(MLSMessage) }},
		{"private_message", v.PrivateMessage, func() Unmarshaler { return new(MLSMessage) }},
		{"ratchet_tree", v.RatchetTree, func() Unmarshaler { return new(RatchetTree) }},
		{"group_secrets", v.GroupSecrets, func() Unmarshaler { return new(GroupSecrets) }},
		{"commit", v.Commit, func() Unmarshaler { return new(Commit) }},
		{"re_init_proposal", v.ReInit, func() Unmarshaler { return new(ReInit) }},
	}
	prefixes := 0
	for _, c := range cases {
		for n := 0; n < len(c.b); n++ {
			err := Decode(c.b[:n], c.mk())
			if err == nil {
				t.Fatalf("%s: prefix of %d/%d bytes decoded without error", c.name, n, len(c.b))
			}
			prefixes++
		}
		if err := Decode(c.b, c.mk()); err != nil {
			t.Fatalf("%s: full input: %v", c.name, err)
		}
	}
	t.Logf("%d truncated inputs refused", prefixes)
}

func TestTrailingByteFails(t *testing.T) {
	v := loadMessages(t)[0]
	for _, m := range v.mlsMessages() {
		b := append(append([]byte{}, m.b...), 0)
		err := Decode(b, new(MLSMessage))
		if !errors.Is(err, codec.ErrTrailing) {
			t.Errorf("%s + trailing byte: got %v, want ErrTrailing", m.name, err)
		}
	}
	for _, o := range v.others() {
		b := append(append([]byte{}, o.b...), 0)
		if err := Decode(b, o.val); !errors.Is(err, codec.ErrTrailing) {
			t.Errorf("%s + trailing byte: got %v, want ErrTrailing", o.name, err)
		}
	}
}

func TestUnknownProposalTypeFails(t *testing.T) {
	good := Encode(&Proposal{Type: ProposalTypeRemove, Remove: &Remove{Removed: 5}})
	if !bytes.Equal(good, []byte{0, 3, 0, 0, 0, 5}) {
		t.Fatalf("remove proposal encoding %x", good)
	}
	for _, typ := range []uint16{0, 8, 0x0A0A, 0xFFFF} {
		b := append([]byte{byte(typ >> 8), byte(typ)}, good[2:]...)
		mustFail(t, "proposal", b, new(Proposal), "unknown proposal type")
		// The same proposal inside a commit, by value.
		commit := Encode(&Commit{Proposals: []ProposalOrRef{{Proposal: &Proposal{Type: ProposalTypeRemove, Remove: &Remove{}}}}})
		commit[2], commit[3] = byte(typ>>8), byte(typ) // vector header, proposal_or_ref type, then proposal type
		mustFail(t, "commit", commit, new(Commit), "unknown proposal type")
	}
	// Unknown ProposalOrRef type.
	b := Encode(&Commit{Proposals: []ProposalOrRef{{Reference: []byte{1, 2}}}})
	b[1] = 3
	mustFail(t, "proposal or ref", b, new(Commit), "unknown proposal-or-reference type")
}

func TestBadPresenceByteFails(t *testing.T) {
	// Commit with no proposals and an absent path: 00 00.
	b := Encode(&Commit{})
	if !bytes.Equal(b, []byte{0, 0}) {
		t.Fatalf("empty commit encoding %x", b)
	}
	for _, p := range []byte{2, 0xff} {
		mustFail(t, "commit path presence", []byte{0, p}, new(Commit), "boolean byte")
	}
	gs := Encode(&GroupSecrets{JoinerSecret: []byte{1}})
	gs[2] = 2 // joiner_secret (2 bytes), then the path_secret presence byte
	mustFail(t, "group secrets path presence", gs, new(GroupSecrets), "boolean byte")
	mustFail(t, "ratchet tree presence", []byte{1, 2}, new(RatchetTree), "boolean byte")
}

func TestUnknownEnumsFail(t *testing.T) {
	// Sender type: group_id<V> (1 byte), epoch (8), then sender_type.
	fc := Encode(&FramedContent{Sender: Sender{Type: SenderTypeMember}, ContentType: ContentTypeApplication})
	for _, st := range []byte{0, 5, 0xff} {
		b := append([]byte{}, fc...)
		b[9] = st
		mustFail(t, "sender type", b, new(FramedContent), "unknown sender type")
	}
	// Content type: after sender (5 bytes) and authenticated_data (1 byte).
	for _, ct := range []byte{0, 4} {
		b := append([]byte{}, fc...)
		b[15] = ct
		mustFail(t, "content type", b, new(FramedContent), "unknown content type")
	}
	pm := Encode(&PrivateMessage{ContentType: ContentTypeCommit})
	pm[9] = 9
	mustFail(t, "private message content type", pm, new(PrivateMessage), "unknown content type")

	// Wire format and version of MLSMessage.
	msg := Encode(&MLSMessage{Version: MLS10, WireFormat: WireFormatPrivateMessage, PrivateMessage: &PrivateMessage{ContentType: ContentTypeApplication}})
	for _, wf := range []uint16{0, 6, 0x0A0A} {
		b := append([]byte{}, msg...)
		b[2], b[3] = byte(wf>>8), byte(wf)
		mustFail(t, "wire format", b, new(MLSMessage), "unknown wire format")
	}
	b := append([]byte{}, msg...)
	b[1] = 2
	mustFail(t, "version", b, new(MLSMessage), "unsupported protocol version")
	ac := Encode(&AuthenticatedContent{WireFormat: WireFormatPublicMessage, Content: FramedContent{ContentType: ContentTypeApplication, Sender: Sender{Type: SenderTypeNewMemberProposal}}})
	ac[1] = 7
	mustFail(t, "authenticated content wire format", ac, new(AuthenticatedContent), "unknown wire format")

	// Leaf node source: 2 empty keys, basic credential (3 bytes), empty
	// capabilities (5 bytes), then the source.
	ln := Encode(&LeafNode{Credential: Credential{Type: CredentialTypeBasic}, Source: LeafNodeSourceUpdate})
	for _, src := range []byte{0, 4} {
		b := append([]byte{}, ln...)
		b[10] = src
		mustFail(t, "leaf node source", b, new(LeafNode), "unknown leaf node source")
	}

	// Node type in a ratchet tree: header, presence, node type.
	tree := RatchetTree{{Type: NodeTypeLeaf, Leaf: &LeafNode{Credential: Credential{Type: CredentialTypeBasic}, Source: LeafNodeSourceUpdate}}}
	tb := Encode(&tree)
	tb[2] = 3
	mustFail(t, "node type", tb, new(RatchetTree), "unknown node type")
	tb[2] = byte(NodeTypeParent)
	mustFail(t, "parent at leaf index", tb, new(RatchetTree), "is a parent node")

	// PSK type and resumption usage.
	psk := Encode(&PreSharedKeyID{PSKType: PSKTypeResumption, Usage: ResumptionPSKUsageBranch})
	for _, pt := range []byte{0, 3} {
		b := append([]byte{}, psk...)
		b[0] = pt
		mustFail(t, "psk type", b, new(PreSharedKeyID), "unknown PSK type")
	}
	b = append([]byte{}, psk...)
	b[1] = 4
	mustFail(t, "psk usage", b, new(PreSharedKeyID), "unknown resumption PSK usage")
}

func TestRatchetTreeShape(t *testing.T) {
	leaf := &Node{Type: NodeTypeLeaf, Leaf: &LeafNode{Credential: Credential{Type: CredentialTypeBasic}, Source: LeafNodeSourceUpdate}}
	parent := &Node{Type: NodeTypeParent, Parent: &ParentNode{EncryptionKey: []byte{1}, UnmergedLeaves: []uint32{2}}}
	full := RatchetTree{leaf, parent, nil, nil, leaf, nil, nil}
	b := Encode(&full)
	var back RatchetTree
	if err := Decode(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back) != 5 || back[2] != nil || back[4] == nil || back[1].Parent.UnmergedLeaves[0] != 2 {
		t.Fatalf("trailing blanks not trimmed or nodes wrong: %d nodes", len(back))
	}
	// A tree that ends in a blank: encode by hand.
	w := codec.NewWriter(0)
	w.Vector(func(w *codec.Writer) {
		w.Optional(true, func(w *codec.Writer) { leaf.Marshal(w) })
		w.Optional(false, nil)
	})
	mustFail(t, "trailing blank", w.MustBytes(), new(RatchetTree), "ends with a blank node")
	mustFail(t, "empty tree", []byte{0}, new(RatchetTree), "empty ratchet tree")
	w = codec.NewWriter(0)
	w.Vector(func(w *codec.Writer) {
		w.Optional(true, func(w *codec.Writer) { leaf.Marshal(w) })
		w.Optional(true, func(w *codec.Writer) { leaf.Marshal(w) })
	})
	mustFail(t, "leaf at parent index", w.MustBytes(), new(RatchetTree), "is a leaf node")
}

func TestPrivateMessageContentPadding(t *testing.T) {
	for _, ct := range []ContentType{ContentTypeApplication, ContentTypeProposal, ContentTypeCommit} {
		pmc := PrivateMessageContent{
			ContentType: ct,
			Application: []byte("hello"),
			Proposal:    &Proposal{Type: ProposalTypeRemove, Remove: &Remove{Removed: 3}},
			Commit:      &Commit{Proposals: []ProposalOrRef{{Reference: []byte{9}}}},
			Auth:        FramedContentAuthData{Signature: []byte{1, 2}, ConfirmationTag: []byte{3}},
			Padding:     17,
		}
		b := Encode(&pmc)
		got, err := DecodePrivateMessageContent(b, ct)
		if err != nil {
			t.Fatalf("%v: %v", ct, err)
		}
		if got.Padding != 17 || !bytes.Equal(got.Auth.Signature, []byte{1, 2}) {
			t.Fatalf("%v: padding %d, signature %x", ct, got.Padding, got.Auth.Signature)
		}
		if (ct == ContentTypeCommit) != (got.Auth.ConfirmationTag != nil) {
			t.Fatalf("%v: confirmation tag %x", ct, got.Auth.ConfirmationTag)
		}
		if !bytes.Equal(Encode(got), b) {
			t.Fatalf("%v: re-encoding differs", ct)
		}
		for _, pos := range []int{len(b) - 17, len(b) - 1} {
			bad := append([]byte{}, b...)
			bad[pos] = 1
			mustFail(t, "non-zero padding", bad, &PrivateMessageContent{ContentType: ct}, "padding")
		}
	}
	mustFail(t, "unknown content type", []byte{0, 0}, &PrivateMessageContent{ContentType: 0}, "unknown content type")
}

func TestUnknownCredentialAndExtensionRoundTrip(t *testing.T) {
	kp := KeyPackage{
		Version: MLS10, CipherSuite: 0x2A2A, InitKey: []byte{1},
		LeafNode: LeafNode{
			EncryptionKey: []byte{2}, SignatureKey: []byte{3},
			Credential: Credential{Type: 0x0A0A, Raw: []byte("grease credential")},
			Capabilities: Capabilities{
				Versions: []ProtocolVersion{MLS10, 0x1A1A}, CipherSuites: []CipherSuite{1, 0x3A3A},
				Extensions: []ExtensionType{0x4A4A}, Proposals: []ProposalType{0x5A5A}, Credentials: []CredentialType{1, 2, 0x6A6A},
			},
			Source:     LeafNodeSourceKeyPackage,
			Lifetime:   Lifetime{NotBefore: 1, NotAfter: 1 << 62},
			Extensions: []Extension{{Type: 0x7A7A, Data: []byte{}}, {Type: 0xF000, Data: []byte{1, 2, 3}}},
		},
		Extensions: []Extension{{Type: ExtensionTypeApplicationID, Data: Encode(&ApplicationID{ID: []byte("app")})}},
		Signature:  []byte{4},
	}
	b := Encode(&kp)
	var back KeyPackage
	if err := Decode(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.LeafNode.Credential.Type != 0x0A0A || string(back.LeafNode.Credential.Raw) != "grease credential" {
		t.Fatalf("credential %+v", back.LeafNode.Credential)
	}
	if !bytes.Equal(Encode(&back), b) {
		t.Fatal("re-encoding differs")
	}
	x509 := Credential{Type: CredentialTypeX509, Certificates: [][]byte{{0x30, 1}, {0x30, 2, 3}}}
	var xb Credential
	if err := Decode(Encode(&x509), &xb); err != nil || len(xb.Certificates) != 2 || !bytes.Equal(xb.Certificates[1], []byte{0x30, 2, 3}) {
		t.Fatalf("x509: %v %+v", err, xb)
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	b := Encode(&ExternalInit{KEMOutput: []byte{1, 2, 3}})
	var v ExternalInit
	if err := Decode(b, &v); err != nil {
		t.Fatal(err)
	}
	b[1] = 9
	if v.KEMOutput[0] != 1 {
		t.Fatal("decoded value aliases the input")
	}
}

func TestNilBodiesEncode(t *testing.T) {
	// Marshal must not panic on a type field without its body.
	for _, m := range []Marshaler{
		&Proposal{Type: ProposalTypeAdd},
		&Proposal{Type: 99},
		&Node{Type: NodeTypeParent},
		&MLSMessage{Version: MLS10, WireFormat: WireFormatWelcome},
		&FramedContent{ContentType: ContentTypeCommit},
		&PrivateMessageContent{ContentType: ContentTypeProposal},
		&RatchetTree{nil, nil},
	} {
		_ = Encode(m)
	}
	var w Welcome
	if err := Decode(Encode(&MLSMessage{Version: MLS10, WireFormat: WireFormatWelcome})[4:], &w); err != nil {
		t.Fatalf("zero welcome: %v", err)
	}
}

func TestIsGREASE(t *testing.T) {
	n := 0
	for v := 0; v <= 0xFFFF; v++ {
		if IsGREASE(uint16(v)) {
			n++
			if v&0xFF != 0x0A|(v>>12)<<4 || v>>8 != v&0xFF {
				t.Errorf("IsGREASE(0x%04x) = true", v)
			}
		}
	}
	if n != 15 || !IsGREASE(0x0A0A) || !IsGREASE(0xEAEA) || IsGREASE(0xFAFA) || IsGREASE(0x0A1A) {
		t.Errorf("%d GREASE values", n)
	}
}

func TestEnumStrings(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{ProposalTypeGroupContextExtensions.String(), "group_context_extensions"},
		{ProposalType(0x0A0A).String(), "ProposalType(0x0a0a)"},
		{ExtensionTypeExternalSenders.String(), "external_senders"},
		{WireFormatKeyPackage.String(), "mls_key_package"},
		{SenderTypeNewMemberCommit.String(), "new_member_commit"},
		{ContentTypeCommit.String(), "commit"},
		{CredentialTypeX509.String(), "x509"},
		{LeafNodeSourceCommit.String(), "commit"},
		{NodeTypeParent.String(), "parent"},
		{PSKTypeResumption.String(), "resumption"},
		{ResumptionPSKUsageBranch.String(), "branch"},
		{MLS10.String(), "mls10"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestFramedContentTBSAndTBM(t *testing.T) {
	fc := FramedContent{GroupID: []byte{7}, Epoch: 2, Sender: Sender{Type: SenderTypeMember, LeafIndex: 1}, ContentType: ContentTypeCommit, Commit: &Commit{}}
	gc := Encode(&GroupContext{Version: MLS10, CipherSuite: 1, GroupID: []byte{7}, Epoch: 2})
	tbs := FramedContentTBS(MLS10, WireFormatPublicMessage, &fc, gc)
	want := append(append([]byte{0, 1, 0, 1}, Encode(&fc)...), gc...)
	if !bytes.Equal(tbs, want) {
		t.Fatalf("member TBS\n got %x\nwant %x", tbs, want)
	}
	fc.Sender = Sender{Type: SenderTypeExternal, SenderIndex: 4}
	if tbs := FramedContentTBS(MLS10, WireFormatPublicMessage, &fc, gc); !bytes.Equal(tbs, append([]byte{0, 1, 0, 1}, Encode(&fc)...)) {
		t.Fatal("external sender TBS must not include the group context")
	}
	auth := FramedContentAuthData{Signature: []byte{1}, ConfirmationTag: []byte{2, 3}}
	tbm := AuthenticatedContentTBM(tbs, &auth, ContentTypeCommit)
	if !bytes.Equal(tbm, append(append([]byte{}, tbs...), 1, 1, 2, 2, 3)) {
		t.Fatalf("TBM %x", tbm)
	}
	if tbm := AuthenticatedContentTBM(tbs, &auth, ContentTypeProposal); !bytes.Equal(tbm, append(append([]byte{}, tbs...), 1, 1)) {
		t.Fatalf("proposal TBM %x", tbm)
	}
}

func TestExtensionHelpers(t *testing.T) {
	senders := ExternalSenders{
		{SignatureKey: []byte{1}, Credential: Credential{Type: CredentialTypeBasic, Identity: []byte("a")}},
		{SignatureKey: []byte{2}, Credential: Credential{Type: CredentialTypeBasic, Identity: []byte("b")}},
	}
	exts := []Extension{
		{Type: 0x0A0A, Data: []byte{0xff}},
		NewExtension(ExtensionTypeExternalSenders, &senders),
		{Type: ExtensionTypeExternalPub, Data: []byte{5}},
	}
	var got ExternalSenders
	ok, err := DecodeExtension(exts, ExtensionTypeExternalSenders, &got)
	if !ok || err != nil || len(got) != 2 || string(got[1].Credential.Identity) != "b" {
		t.Fatalf("external senders: %v %v %+v", ok, err, got)
	}
	if ok, err := DecodeExtension(exts, ExtensionTypeRequiredCapabilities, new(RequiredCapabilities)); ok || err != nil {
		t.Fatalf("absent extension: %v %v", ok, err)
	}
	if ok, err := DecodeExtension(exts, ExtensionTypeExternalPub, new(ExternalPub)); !ok || err == nil {
		t.Fatalf("malformed external_pub: %v %v", ok, err)
	}
	if _, dup := DuplicateExtension(exts); dup {
		t.Fatal("no duplicates expected")
	}
	if typ, dup := DuplicateExtension(append(exts, Extension{Type: 0x0A0A})); !dup || typ != 0x0A0A {
		t.Fatalf("duplicate: %v %v", typ, dup)
	}
}
