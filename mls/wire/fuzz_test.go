package wire

import (
	"bytes"
	"testing"

	"github.com/agwproject/agw/mls/internal/testvec"
)

// fuzzSeeds returns seed inputs for each decoder, taken from the vectors.
type fuzzSeeds struct {
	mls, tree, secrets, commit, proposal, keyPackage, groupInfo, welcome [][]byte
	pmc                                                                  [][]byte // content type byte + PrivateMessageContent
}

func loadFuzzSeeds(f testing.TB) *fuzzSeeds {
	var s fuzzSeeds
	var msgs []messagesVector
	testvec.Load(f, "messages.json", &msgs)
	for i, v := range msgs {
		if i >= 8 {
			break
		}
		for _, m := range v.mlsMessages() {
			s.mls = append(s.mls, m.b)
		}
		s.tree = append(s.tree, v.RatchetTree)
		s.secrets = append(s.secrets, v.GroupSecrets)
		s.commit = append(s.commit, v.Commit)
		s.keyPackage = append(s.keyPackage, v.MLSKeyPackage[4:])
		s.groupInfo = append(s.groupInfo, v.MLSGroupInfo[4:])
		s.welcome = append(s.welcome, v.MLSWelcome[4:])
		for typ, body := range map[ProposalType][]byte{
			ProposalTypeAdd: v.Add, ProposalTypeUpdate: v.Update, ProposalTypeRemove: v.Remove,
			ProposalTypePSK: v.PreSharedKey, ProposalTypeReInit: v.ReInit,
			ProposalTypeExternalInit: v.ExternalInit, ProposalTypeGroupContextExtensions: v.GroupContextExts,
		} {
			s.proposal = append(s.proposal, append([]byte{byte(typ >> 8), byte(typ)}, body...))
		}
		var c Commit
		var p Proposal
		if Decode(v.Commit, &c) == nil && Decode(s.proposal[len(s.proposal)-1], &p) == nil {
			auth := FramedContentAuthData{Signature: []byte{1, 2, 3}, ConfirmationTag: []byte{4, 5}}
			s.pmc = append(s.pmc,
				append([]byte{byte(ContentTypeCommit)}, Encode(&PrivateMessageContent{ContentType: ContentTypeCommit, Commit: &c, Auth: auth, Padding: 8})...),
				append([]byte{byte(ContentTypeProposal)}, Encode(&PrivateMessageContent{ContentType: ContentTypeProposal, Proposal: &p, Auth: auth})...),
				append([]byte{byte(ContentTypeApplication)}, Encode(&PrivateMessageContent{ContentType: ContentTypeApplication, Application: []byte("hi"), Auth: auth, Padding: 3})...))
		}
	}
	// GREASE-carrying key packages and welcomes from the interop vectors.
	var interop []passiveVector
	testvec.Load(f, "interop-passive/welcome_join.json", &interop)
	for i, v := range interop {
		if i >= 4 {
			break
		}
		s.mls = append(s.mls, v.KeyPackage, v.Welcome)
		s.keyPackage = append(s.keyPackage, v.KeyPackage[4:])
		s.welcome = append(s.welcome, v.Welcome[4:])
	}
	return &s
}

// checkStable decodes b; if that succeeds, the encoding must equal b
// exactly (the decoder accepts only canonical encodings) and decode again.
func checkStable(t *testing.T, b []byte, mk func() codecValue) {
	aliased := mk()
	aliasErr := DecodeAlias(b, aliased)
	v := mk()
	if err := Decode(b, v); err != nil {
		if aliasErr == nil {
			t.Fatalf("DecodeAlias accepted what Decode refused: %v", err)
		}
		return
	}
	if aliasErr != nil {
		t.Fatalf("DecodeAlias refused what Decode accepted: %v", aliasErr)
	}
	if !bytes.Equal(Encode(aliased), b) {
		t.Fatal("re-encoding of the aliased decoding differs from accepted input")
	}
	enc, err := EncodeChecked(v)
	if err != nil {
		t.Fatalf("encode decoded value: %v", err)
	}
	if !bytes.Equal(enc, b) {
		t.Fatalf("re-encoding differs from accepted input:\n got %x\nwant %x", enc, b)
	}
	v2 := mk()
	if err := Decode(enc, v2); err != nil {
		t.Fatalf("decode of re-encoding failed: %v", err)
	}
	if !bytes.Equal(Encode(v2), enc) {
		t.Fatal("second re-encoding differs")
	}
}

func fuzzDecoder(f *testing.F, seeds [][]byte, mk func() codecValue) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkStable(t, b, mk) })
}

func FuzzMLSMessage(f *testing.F) {
	fuzzDecoder(f, loadFuzzSeeds(f).mls, func() codecValue { return new(MLSMessage) })
}

func FuzzRatchetTree(f *testing.F) {
	fuzzDecoder(f, loadFuzzSeeds(f).tree, func() codecValue { return new(RatchetTree) })
}

func FuzzGroupSecrets(f *testing.F) {
	fuzzDecoder(f, loadFuzzSeeds(f).secrets, func() codecValue { return new(GroupSecrets) })
}

func FuzzCommit(f *testing.F) {
	fuzzDecoder(f, loadFuzzSeeds(f).commit, func() codecValue { return new(Commit) })
}

func FuzzProposal(f *testing.F) {
	fuzzDecoder(f, loadFuzzSeeds(f).proposal, func() codecValue { return new(Proposal) })
}

func FuzzKeyPackage(f *testing.F) {
	fuzzDecoder(f, loadFuzzSeeds(f).keyPackage, func() codecValue { return new(KeyPackage) })
}

func FuzzGroupInfo(f *testing.F) {
	fuzzDecoder(f, loadFuzzSeeds(f).groupInfo, func() codecValue { return new(GroupInfo) })
}

func FuzzWelcome(f *testing.F) {
	fuzzDecoder(f, loadFuzzSeeds(f).welcome, func() codecValue { return new(Welcome) })
}

// FuzzPrivateMessageContent takes the content type from the first byte.
func FuzzPrivateMessageContent(f *testing.F) {
	for _, s := range loadFuzzSeeds(f).pmc {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		ct := ContentType(b[0])
		checkStable(t, b[1:], func() codecValue { return &PrivateMessageContent{ContentType: ct} })
	})
}

// TestFuzzSeedsDecode makes sure the seeds are valid inputs, so the fuzz
// targets start from real messages rather than from rejected bytes.
func TestFuzzSeedsDecode(t *testing.T) {
	s := loadFuzzSeeds(t)
	for _, set := range []struct {
		name  string
		seeds [][]byte
		mk    func() codecValue
	}{
		{"MLSMessage", s.mls, func() codecValue { return new(MLSMessage) }},
		{"RatchetTree", s.tree, func() codecValue { return new(RatchetTree) }},
		{"GroupSecrets", s.secrets, func() codecValue { return new(GroupSecrets) }},
		{"Commit", s.commit, func() codecValue { return new(Commit) }},
		{"Proposal", s.proposal, func() codecValue { return new(Proposal) }},
		{"KeyPackage", s.keyPackage, func() codecValue { return new(KeyPackage) }},
		{"GroupInfo", s.groupInfo, func() codecValue { return new(GroupInfo) }},
		{"Welcome", s.welcome, func() codecValue { return new(Welcome) }},
	} {
		if len(set.seeds) == 0 {
			t.Errorf("%s: no seeds", set.name)
		}
		for _, b := range set.seeds {
			roundTrip(t, set.name+" seed", b, set.mk())
		}
	}
	if len(s.pmc) == 0 {
		t.Fatal("no PrivateMessageContent seeds")
	}
	for _, b := range s.pmc {
		if _, err := DecodePrivateMessageContent(b[1:], ContentType(b[0])); err != nil {
			t.Errorf("PrivateMessageContent seed: %v", err)
		}
	}
}
