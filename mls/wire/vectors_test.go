package wire

import (
	"bytes"
	"testing"

	"github.com/agwproject/agw/mls/internal/testvec"
)

// walker visits decoded values, re-encodes every known extension body and
// counts what it saw, so the tests prove GREASE and all variants decode.
type walker struct {
	t       testing.TB
	grease  int
	extBody map[ExtensionType]int
	creds   map[CredentialType]int
	props   map[ProposalType]int
	senders map[SenderType]int
	failed  bool
}

func newWalker(t testing.TB) *walker {
	return &walker{t: t, extBody: map[ExtensionType]int{}, creds: map[CredentialType]int{},
		props: map[ProposalType]int{}, senders: map[SenderType]int{}}
}

func (k *walker) errorf(format string, args ...any) {
	k.t.Helper()
	k.t.Errorf(format, args...)
	k.failed = true
}

func (k *walker) u16s(vs []uint16) {
	for _, v := range vs {
		if IsGREASE(v) {
			k.grease++
		}
	}
}

func toU16[T ~uint16](vs []T) []uint16 {
	out := make([]uint16, len(vs))
	for i, v := range vs {
		out[i] = uint16(v)
	}
	return out
}

func (k *walker) extensions(exts []Extension) {
	for _, e := range exts {
		if IsGREASE(uint16(e.Type)) {
			k.grease++
		}
		var body codecValue
		switch e.Type {
		case ExtensionTypeApplicationID:
			body = new(ApplicationID)
		case ExtensionTypeRatchetTree:
			body = new(RatchetTree)
		case ExtensionTypeRequiredCapabilities:
			body = new(RequiredCapabilities)
		case ExtensionTypeExternalPub:
			body = new(ExternalPub)
		case ExtensionTypeExternalSenders:
			body = new(ExternalSenders)
		default:
			continue
		}
		if err := Decode(e.Data, body); err != nil {
			k.errorf("extension %v body: %v", e.Type, err)
			continue
		}
		if !bytes.Equal(Encode(body), e.Data) {
			k.errorf("extension %v body does not re-encode identically", e.Type)
			continue
		}
		k.extBody[e.Type]++
		switch b := body.(type) {
		case *RatchetTree:
			k.tree(*b)
		case *ExternalSenders:
			for i := range *b {
				k.credential(&(*b)[i].Credential)
			}
		case *RequiredCapabilities:
			k.u16s(toU16(b.ExtensionTypes))
			k.u16s(toU16(b.ProposalTypes))
			k.u16s(toU16(b.CredentialTypes))
		}
	}
}

func (k *walker) credential(c *Credential) {
	k.creds[c.Type]++
	if IsGREASE(uint16(c.Type)) {
		k.grease++
	}
}

func (k *walker) leaf(l *LeafNode) {
	k.credential(&l.Credential)
	k.u16s(toU16(l.Capabilities.Versions))
	k.u16s(toU16(l.Capabilities.CipherSuites))
	k.u16s(toU16(l.Capabilities.Extensions))
	k.u16s(toU16(l.Capabilities.Proposals))
	k.u16s(toU16(l.Capabilities.Credentials))
	k.extensions(l.Extensions)
}

func (k *walker) tree(tr RatchetTree) {
	for _, n := range tr {
		if n != nil && n.Leaf != nil {
			k.leaf(n.Leaf)
		}
	}
}

func (k *walker) keyPackage(kp *KeyPackage) {
	k.leaf(&kp.LeafNode)
	k.extensions(kp.Extensions)
}

func (k *walker) proposal(p *Proposal) {
	k.props[p.Type]++
	switch p.Type {
	case ProposalTypeAdd:
		k.keyPackage(&p.Add.KeyPackage)
	case ProposalTypeUpdate:
		k.leaf(&p.Update.LeafNode)
	case ProposalTypeReInit:
		k.extensions(p.ReInit.Extensions)
	case ProposalTypeGroupContextExtensions:
		k.extensions(p.GroupContextExtensions.Extensions)
	}
}

func (k *walker) commit(c *Commit) {
	for _, p := range c.Proposals {
		if p.Proposal != nil {
			k.proposal(p.Proposal)
		}
	}
	if c.Path != nil {
		k.leaf(&c.Path.LeafNode)
	}
}

func (k *walker) content(fc *FramedContent) {
	k.senders[fc.Sender.Type]++
	if fc.Proposal != nil {
		k.proposal(fc.Proposal)
	}
	if fc.Commit != nil {
		k.commit(fc.Commit)
	}
}

func (k *walker) message(m *MLSMessage) {
	switch {
	case m.KeyPackage != nil:
		k.keyPackage(m.KeyPackage)
	case m.GroupInfo != nil:
		k.extensions(m.GroupInfo.GroupContext.Extensions)
		k.extensions(m.GroupInfo.Extensions)
	case m.PublicMessage != nil:
		k.content(&m.PublicMessage.Content)
	}
}

// decodeMessage round-trips an MLSMessage and walks it.
func (k *walker) decodeMessage(what string, b []byte, want WireFormat) bool {
	k.t.Helper()
	var m MLSMessage
	if !roundTrip(k.t, what, b, &m) {
		k.failed = true
		return false
	}
	if m.WireFormat != want {
		k.errorf("%s: wire format %v, want %v", what, m.WireFormat, want)
		return false
	}
	k.message(&m)
	return true
}

type passiveVector struct {
	KeyPackage  testvec.Hex `json:"key_package"`
	Welcome     testvec.Hex `json:"welcome"`
	RatchetTree testvec.Hex `json:"ratchet_tree"`
	Epochs      []struct {
		Proposals []testvec.Hex `json:"proposals"`
		Commit    testvec.Hex   `json:"commit"`
	} `json:"epochs"`
}

var passiveFiles = []string{
	"passive-client-welcome.json",
	"passive-client-handling-commit.json",
	"passive-client-random.json",
	"interop-passive/welcome_join.json",
	"interop-passive/application.json",
	"interop-passive/commit.json",
	"interop-passive/external_join.json",
	"interop-passive/external_proposals.json",
	"interop-passive/reinit.json",
	"interop-passive/branch.json",
}

func TestPassiveVectorsDecode(t *testing.T) {
	if testing.Short() {
		t.Skip("large vector files")
	}
	total := newWalker(t)
	for _, file := range passiveFiles {
		var vs []passiveVector
		testvec.Load(t, file, &vs)
		c := testvec.Counter{File: file + " (wire decode)"}
		msgs := 0
		for _, v := range vs {
			k := newWalker(t)
			k.decodeMessage("key_package", v.KeyPackage, WireFormatKeyPackage)
			k.decodeMessage("welcome", v.Welcome, WireFormatWelcome)
			msgs += 2
			if v.RatchetTree != nil {
				var tr RatchetTree
				if roundTrip(t, "ratchet_tree", v.RatchetTree, &tr) {
					k.tree(tr)
				} else {
					k.failed = true
				}
			}
			for _, ep := range v.Epochs {
				for _, p := range ep.Proposals {
					var m MLSMessage
					if roundTrip(t, "proposal", p, &m) {
						k.message(&m)
					} else {
						k.failed = true
					}
					msgs++
				}
				var m MLSMessage
				if roundTrip(t, "commit", ep.Commit, &m) {
					k.message(&m)
				} else {
					k.failed = true
				}
				msgs++
			}
			if !k.failed {
				c.Passed++
			}
			total.merge(k)
		}
		c.Report(t)
		t.Logf("%s: %d MLSMessages round-tripped", file, msgs)
	}
	t.Logf("GREASE values seen: %d; extension bodies re-encoded: %v; credentials: %v; proposals by value: %v; senders: %v",
		total.grease, total.extBody, total.creds, total.props, total.senders)
	if total.grease == 0 {
		t.Error("no GREASE value met in the interop vectors")
	}
	if total.extBody[ExtensionTypeExternalSenders] == 0 || total.extBody[ExtensionTypeRequiredCapabilities] == 0 {
		t.Errorf("expected external_senders and required_capabilities extension bodies, got %v", total.extBody)
	}
}

func (k *walker) merge(o *walker) {
	k.grease += o.grease
	for t, n := range o.extBody {
		k.extBody[t] += n
	}
	for t, n := range o.creds {
		k.creds[t] += n
	}
	for t, n := range o.props {
		k.props[t] += n
	}
	for t, n := range o.senders {
		k.senders[t] += n
	}
}

func TestOtherVectorsDecode(t *testing.T) {
	k := newWalker(t)

	var wv []struct {
		KeyPackage testvec.Hex `json:"key_package"`
		Welcome    testvec.Hex `json:"welcome"`
	}
	testvec.Load(t, "welcome.json", &wv)
	c := testvec.Counter{File: "welcome.json (wire decode)"}
	for _, v := range wv {
		if k.decodeMessage("key_package", v.KeyPackage, WireFormatKeyPackage) &&
			k.decodeMessage("welcome", v.Welcome, WireFormatWelcome) {
			c.Passed++
		}
	}
	c.Report(t)

	var mp []struct {
		Proposal     testvec.Hex `json:"proposal"`
		ProposalPub  testvec.Hex `json:"proposal_pub"`
		ProposalPriv testvec.Hex `json:"proposal_priv"`
		Commit       testvec.Hex `json:"commit"`
		CommitPub    testvec.Hex `json:"commit_pub"`
		CommitPriv   testvec.Hex `json:"commit_priv"`
		AppPriv      testvec.Hex `json:"application_priv"`
	}
	testvec.Load(t, "message-protection.json", &mp)
	c = testvec.Counter{File: "message-protection.json (wire decode)"}
	for _, v := range mp {
		ok := roundTrip(t, "proposal", v.Proposal, new(Proposal)) &&
			roundTrip(t, "commit", v.Commit, new(Commit)) &&
			k.decodeMessage("proposal_pub", v.ProposalPub, WireFormatPublicMessage) &&
			k.decodeMessage("commit_pub", v.CommitPub, WireFormatPublicMessage) &&
			k.decodeMessage("proposal_priv", v.ProposalPriv, WireFormatPrivateMessage) &&
			k.decodeMessage("commit_priv", v.CommitPriv, WireFormatPrivateMessage) &&
			k.decodeMessage("application_priv", v.AppPriv, WireFormatPrivateMessage)
		if ok {
			c.Passed++
		}
	}
	c.Report(t)

	var th []struct {
		AuthenticatedContent testvec.Hex `json:"authenticated_content"`
	}
	testvec.Load(t, "transcript-hashes.json", &th)
	c = testvec.Counter{File: "transcript-hashes.json (wire decode)"}
	for _, v := range th {
		var ac AuthenticatedContent
		if !roundTrip(t, "authenticated_content", v.AuthenticatedContent, &ac) {
			continue
		}
		if ac.Content.ContentType != ContentTypeCommit || len(ac.Auth.ConfirmationTag) == 0 {
			t.Errorf("authenticated_content is not a commit with a confirmation tag")
			continue
		}
		// The confirmed input is the AuthenticatedContent minus the
		// confirmation tag; the interim input is the tag itself.
		confirmed, interim := TranscriptHashInputs(&ac)
		tagLen := len(interim)
		if !bytes.Equal(confirmed, v.AuthenticatedContent[:len(v.AuthenticatedContent)-tagLen]) ||
			!bytes.Equal(interim, v.AuthenticatedContent[len(v.AuthenticatedContent)-tagLen:]) {
			t.Errorf("transcript hash inputs do not split the AuthenticatedContent")
			continue
		}
		c.Passed++
	}
	c.Report(t)

	var to []struct {
		Proposal   testvec.Hex `json:"proposal"`
		TreeBefore testvec.Hex `json:"tree_before"`
		TreeAfter  testvec.Hex `json:"tree_after"`
	}
	testvec.Load(t, "tree-operations.json", &to)
	c = testvec.Counter{File: "tree-operations.json (wire decode)"}
	for _, v := range to {
		var p Proposal
		if roundTrip(t, "proposal", v.Proposal, &p) &&
			roundTrip(t, "tree_before", v.TreeBefore, new(RatchetTree)) &&
			roundTrip(t, "tree_after", v.TreeAfter, new(RatchetTree)) {
			k.proposal(&p)
			c.Passed++
		}
	}
	c.Report(t)
}
