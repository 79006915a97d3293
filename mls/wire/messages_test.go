package wire

import (
	"testing"

	"github.com/agwproject/agw/mls/internal/testvec"
)

// messagesVector is one entry of messages.json.
type messagesVector struct {
	MLSWelcome       testvec.Hex `json:"mls_welcome"`
	MLSGroupInfo     testvec.Hex `json:"mls_group_info"`
	MLSKeyPackage    testvec.Hex `json:"mls_key_package"`
	RatchetTree      testvec.Hex `json:"ratchet_tree"`
	GroupSecrets     testvec.Hex `json:"group_secrets"`
	Add              testvec.Hex `json:"add_proposal"`
	Update           testvec.Hex `json:"update_proposal"`
	Remove           testvec.Hex `json:"remove_proposal"`
	PreSharedKey     testvec.Hex `json:"pre_shared_key_proposal"`
	ReInit           testvec.Hex `json:"re_init_proposal"`
	ExternalInit     testvec.Hex `json:"external_init_proposal"`
	GroupContextExts testvec.Hex `json:"group_context_extensions_proposal"`
	Commit           testvec.Hex `json:"commit"`
	PublicApp        testvec.Hex `json:"public_message_application"`
	PublicProposal   testvec.Hex `json:"public_message_proposal"`
	PublicCommit     testvec.Hex `json:"public_message_commit"`
	PrivateMessage   testvec.Hex `json:"private_message"`
}

// mlsMessageCase is an MLSMessage field with the wire format (and, for
// public messages, content type) it must have.
type mlsMessageCase struct {
	name string
	b    []byte
	wf   WireFormat
	ct   ContentType
}

func (v *messagesVector) mlsMessages() []mlsMessageCase {
	return []mlsMessageCase{
		{"mls_welcome", v.MLSWelcome, WireFormatWelcome, 0},
		{"mls_group_info", v.MLSGroupInfo, WireFormatGroupInfo, 0},
		{"mls_key_package", v.MLSKeyPackage, WireFormatKeyPackage, 0},
		{"public_message_application", v.PublicApp, WireFormatPublicMessage, ContentTypeApplication},
		{"public_message_proposal", v.PublicProposal, WireFormatPublicMessage, ContentTypeProposal},
		{"public_message_commit", v.PublicCommit, WireFormatPublicMessage, ContentTypeCommit},
		{"private_message", v.PrivateMessage, WireFormatPrivateMessage, 0},
	}
}

type codecValue interface {
	Marshaler
	Unmarshaler
}

func (v *messagesVector) others() []struct {
	name string
	b    []byte
	val  codecValue
} {
	return []struct {
		name string
		b    []byte
		val  codecValue
	}{
		{"ratchet_tree", v.RatchetTree, new(RatchetTree)},
		{"group_secrets", v.GroupSecrets, new(GroupSecrets)},
		{"add_proposal", v.Add, new(Add)},
		{"update_proposal", v.Update, new(Update)},
		{"remove_proposal", v.Remove, new(Remove)},
		{"pre_shared_key_proposal", v.PreSharedKey, new(PreSharedKey)},
		{"re_init_proposal", v.ReInit, new(ReInit)},
		{"external_init_proposal", v.ExternalInit, new(ExternalInit)},
		{"group_context_extensions_proposal", v.GroupContextExts, new(GroupContextExtensions)},
		{"commit", v.Commit, new(Commit)},
	}
}

func TestMessagesVectors(t *testing.T) {
	var vs []messagesVector
	testvec.Load(t, "messages.json", &vs)
	c := testvec.Counter{File: "messages.json"}
	fields := 0
	k := newWalker(t)
	for i := range vs {
		v := &vs[i]
		ok := true
		for _, m := range v.mlsMessages() {
			var msg MLSMessage
			if !roundTrip(t, m.name, m.b, &msg) {
				ok = false
				continue
			}
			fields++
			if msg.WireFormat != m.wf {
				t.Errorf("entry %d %s: wire format %v, want %v", i, m.name, msg.WireFormat, m.wf)
				ok = false
			}
			if m.ct != 0 && (msg.PublicMessage == nil || msg.PublicMessage.Content.ContentType != m.ct) {
				t.Errorf("entry %d %s: not a public message of content type %v", i, m.name, m.ct)
				ok = false
			}
			k.message(&msg)
		}
		for _, o := range v.others() {
			if !roundTrip(t, o.name, o.b, o.val) {
				ok = false
				continue
			}
			fields++
		}
		if ok {
			c.Passed++
		}
	}
	c.Report(t)
	t.Logf("messages.json: %d fields round-tripped; extension bodies re-encoded: %v; GREASE values: %d",
		fields, k.extBody, k.grease)
	if c.Passed != len(vs) || len(vs) == 0 {
		t.Errorf("messages.json: %d of %d entries passed", c.Passed, len(vs))
	}
}
