package mlsinterop

import (
	"errors"
	"testing"

	"github.com/agwproject/agw/mls"
	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/wire"
)

// TestGroupContextExtensions changes the GroupContext extensions from both
// sides: a required_capabilities extension (requiring basic credentials) is
// set by Go and replaced by ts-mls.
func TestGroupContextExtensions(t *testing.T) {
	forSuites(t, func(t *testing.T, d *Driver, s suite.ID) {
		a := newGo(t, "a", s)
		res := a.merge(t)(a.g.Add([][]byte{tsKeyPackage(t, d, "b", s)}))
		call(t, d, "join", map[string]any{"name": "b", "welcome": res.Welcome})
		b := &tsMember{name: "b", d: d}

		rc := wire.Encode(&wire.RequiredCapabilities{CredentialTypes: []wire.CredentialType{1}})
		ext := wire.Extension{Type: wire.ExtensionTypeRequiredCapabilities, Data: rc}
		res = a.merge(t)(a.g.Commit([]*wire.Proposal{mls.GroupContextExtensionsProposal(ext)}, mls.WithHandshakeEncryption(true)))
		deliver(t, res.Commit, "commit", b)
		checkAgree(t, 2, a, b)
		if got := a.g.Extensions(); len(got) != 1 || got[0].Type != wire.ExtensionTypeRequiredCapabilities {
			t.Fatalf("Go extensions after the commit: %+v", got)
		}
		checkMessages(t, a, b)

		// ts-mls proposes replacing them (PrivateMessage); Go commits the
		// proposal by reference. (A ts-mls commit of it would lack the
		// path RFC 9420 requires, see TestDeviationExtensionsWithoutPath.)
		rc2 := wire.Encode(&wire.RequiredCapabilities{CredentialTypes: []wire.CredentialType{1, 2}})
		p := call(t, d, "propose", map[string]any{"name": "b", "kind": "extensions", "public": false,
			"extensions": []any{map[string]any{"type": 3, "data": Hex(rc2)}}})
		deliver(t, p.Message, "proposal", a)
		res = a.merge(t)(a.g.Commit(nil))
		deliver(t, res.Commit, "commit", b)
		checkAgree(t, 3, a, b)
		if got := a.g.Extensions(); len(got) != 1 || string(got[0].Data) != string(rc2) {
			t.Fatalf("Go extensions after the ts-mls proposal: %+v", got)
		}
		checkMessages(t, a, b)
	})
}

// ts-mls 1.6.4 commits a GroupContextExtensions proposal without an
// UpdatePath: its needsUpdatePath covers only empty commits, Update and
// Remove. RFC 9420 §12.4 lists group_context_extensions among the "path
// required" proposal types (also the IANA registry, §17.4), and Go refuses
// such a commit.
func TestDeviationExtensionsWithoutPath(t *testing.T) {
	d := startDriver(t)
	s := suite.ID(1)
	a := newGo(t, "a", s)
	res := a.merge(t)(a.g.Add([][]byte{tsKeyPackage(t, d, "b", s)}))
	call(t, d, "join", map[string]any{"name": "b", "welcome": res.Welcome})
	rc := wire.Encode(&wire.RequiredCapabilities{CredentialTypes: []wire.CredentialType{1}})
	cm := call(t, d, "commit", map[string]any{"name": "b", "extensions": []any{map[string]any{"type": 3, "data": Hex(rc)}}})
	var msg wire.MLSMessage
	if err := wire.Decode(cm.Commit, &msg); err != nil || msg.PublicMessage == nil || msg.PublicMessage.Content.Commit == nil {
		t.Fatalf("decode ts-mls commit: %v", err)
	}
	if msg.PublicMessage.Content.Commit.Path != nil {
		t.Fatal("ts-mls put a path in its GroupContextExtensions commit; the deviation is gone")
	}
	if _, err := a.g.ProcessMessage(cm.Commit); !errors.Is(err, mls.ErrInvalidCommit) {
		t.Fatalf("Go on a GroupContextExtensions commit without a path: %v, want ErrInvalidCommit", err)
	}
}

// ts-mls 1.6.4 cannot clear the GroupContext extensions: it applies a
// GroupContextExtensions proposal only when its list is non-empty
// (applyProposals/createCommit: "extensions.length > 0 ? new : old"), while
// RFC 9420 §12.1.7 replaces the extensions field with the proposal's list,
// empty or not. The committer encrypts the path to the provisional
// GroupContext without extensions, so ts-mls fails to decrypt it.
func TestDeviationClearExtensions(t *testing.T) {
	d := startDriver(t)
	s := suite.ID(1)
	a := newGo(t, "a", s)
	rc := wire.Encode(&wire.RequiredCapabilities{CredentialTypes: []wire.CredentialType{1}})
	a.merge(t)(a.g.Commit([]*wire.Proposal{mls.GroupContextExtensionsProposal(wire.Extension{Type: wire.ExtensionTypeRequiredCapabilities, Data: rc})}))
	res := a.merge(t)(a.g.Add([][]byte{tsKeyPackage(t, d, "b", s)}))
	call(t, d, "join", map[string]any{"name": "b", "welcome": res.Welcome})
	b := &tsMember{name: "b", d: d}
	checkAgree(t, 2, a, b)

	res = a.merge(t)(a.g.Commit([]*wire.Proposal{mls.GroupContextExtensionsProposal()}))
	if len(a.g.Extensions()) != 0 {
		t.Fatalf("Go kept extensions after clearing them: %+v", a.g.Extensions())
	}
	if _, _, err := b.Process(res.Commit); err == nil {
		t.Fatal("ts-mls followed a commit clearing the extensions; the deviation is gone")
	} else {
		t.Logf("ts-mls on a commit clearing the GroupContext extensions: %v", err)
	}
}
