package mls

import (
	"fmt"

	"github.com/agwproject/agw/mls/schedule"
	"github.com/agwproject/agw/mls/tree"
	"github.com/agwproject/agw/mls/wire"
)

// JoinExternal joins a group on its own from a GroupInfo (an encoded
// MLSMessage carrying the external_pub extension) with an external commit
// (RFC 9420 §12.4.3.2). It returns the new member's group state, already in
// the new epoch, and the commit to send to the group. If another commit
// wins the race the commit is refused by the members: discard the Group
// and retry with a fresh GroupInfo. Options: WithRatchetTree,
// WithSignatureKey, WithCapabilities, WithLeafExtensions, WithResync,
// WithAuthenticatedData, WithoutLifetimeCheck, WithCredentialValidator and
// the group behaviour options.
func JoinExternal(groupInfo []byte, cred Credential, opts ...Option) (*Group, []byte, error) {
	m, err := decodeMessage(groupInfo)
	if err != nil {
		return nil, nil, err
	}
	if m.WireFormat != wire.WireFormatGroupInfo {
		return nil, nil, fmt.Errorf("%w: message is a %v, not a group info", ErrInvalidGroupInfo, m.WireFormat)
	}
	gi := m.GroupInfo
	cfg := newConfig(opts)
	s, err := suiteOf(gi.GroupContext.CipherSuite)
	if err != nil {
		return nil, nil, err
	}
	if gi.GroupContext.Version != wire.MLS10 {
		return nil, nil, fmt.Errorf("%w: version %v", ErrUnsupported, gi.GroupContext.Version)
	}
	t, err := groupInfoTree(s, &cfg, gi)
	if err != nil {
		return nil, nil, err
	}
	if err := verifyGroupInfo(s, t, gi); err != nil {
		return nil, nil, err
	}
	if err := validateTree(s, &cfg, t, &gi.GroupContext); err != nil {
		return nil, nil, err
	}
	if err := checkGroupExtensions(gi.GroupContext.Extensions); err != nil {
		return nil, nil, err
	}
	e := wire.FindExtension(gi.Extensions, wire.ExtensionTypeExternalPub)
	if e == nil {
		return nil, nil, fmt.Errorf("%w: no external_pub extension", ErrInvalidGroupInfo)
	}
	var ep wire.ExternalPub
	if err := wire.Decode(e.Data, &ep); err != nil {
		return nil, nil, fmt.Errorf("%w: external_pub: %w", ErrMalformed, err)
	}
	kemOutput, initSecret, err := s.ExternalInitSender(ep.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: external init: %w", ErrInvalidGroupInfo, err)
	}
	sigPriv := cfg.signaturePriv
	if sigPriv == nil {
		if sigPriv, _, err = s.GenerateSignatureKey(); err != nil {
			return nil, nil, fmt.Errorf("mls: signature key: %w", err)
		}
	}
	g, err := newGroupState(s, &cfg, sigPriv)
	if err != nil {
		return nil, nil, err
	}
	// The group as of the GroupInfo's epoch, seen from outside.
	g.ctx = gi.GroupContext
	g.ctxBytes = wire.Encode(&g.ctx)
	g.tree = t
	g.interim = interimHash(s, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag)
	sender := wire.Sender{Type: wire.SenderTypeNewMemberCommit}
	props := []*wire.Proposal{{Type: wire.ProposalTypeExternalInit, ExternalInit: &wire.ExternalInit{KEMOutput: kemOutput}}}
	if cfg.resync {
		old, ok := t.FindLeafBySignatureKey(g.signer.PublicKey())
		if !ok {
			return nil, nil, fmt.Errorf("%w: resync: no leaf with our signature key", ErrInvalidArgument)
		}
		props = append(props, RemoveProposal(uint32(old)))
	}
	list := make([]resolvedProposal, len(props))
	pors := make([]wire.ProposalOrRef, len(props))
	for i, p := range props {
		list[i] = resolvedProposal{p: p, sender: sender}
		pors[i] = wire.ProposalOrRef{Proposal: p}
	}
	plan, err := g.planCommit(sender, list)
	if err != nil {
		return nil, nil, err
	}
	caps := defaultCapabilities(s)
	if cfg.capabilities != nil {
		caps = *cfg.capabilities
	}
	tmpl := &wire.LeafNode{SignatureKey: g.signer.PublicKey(), Credential: cred, Capabilities: caps, Extensions: cfg.leafExtensions}
	me := plan.tree.AddLeaf(tmpl)
	newCtx, ctxFunc := g.provisionalContext(plan.ext)
	path, err := tree.GeneratePath(plan.tree, tree.PathParams{
		Sender: me, GroupID: g.ctx.GroupID, Signer: g.signer, Leaf: tmpl, GroupContext: ctxFunc,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("mls: update path: %w", err)
	}
	if err := checkLeafInGroup(plan.tree, plan.ext, &path.Path.LeafNode, me); err != nil {
		return nil, nil, err
	}
	ac := &wire.AuthenticatedContent{WireFormat: wire.WireFormatPublicMessage, Content: wire.FramedContent{
		GroupID: g.ctx.GroupID, Epoch: g.ctx.Epoch, Sender: sender,
		AuthenticatedData: cfg.authenticatedData, ContentType: wire.ContentTypeCommit,
		Commit: &wire.Commit{Proposals: pors, Path: path.Path},
	}}
	f := &framer{s: s, groupID: g.ctx.GroupID, epoch: g.ctx.Epoch, ctx: g.ctxBytes}
	if ac.Auth.Signature, err = f.signContent(g.signer, ac.WireFormat, &ac.Content); err != nil {
		return nil, nil, err
	}
	newCtx.TreeHash = plan.tree.TreeHash()
	newCtx.ConfirmedTranscriptHash = g.confirmedHash(ac)
	ctxBytes := wire.Encode(&newCtx)
	sec, err := advanceEpoch(s, initSecret, path.CommitSecret, nil, ctxBytes)
	if err != nil {
		return nil, nil, err
	}
	ac.Auth.ConfirmationTag = schedule.ConfirmationTag(s, sec.ConfirmationKey, newCtx.ConfirmedTranscriptHash)
	pm, err := f.protectPublic(ac)
	if err != nil {
		return nil, nil, err
	}
	msg := encodeMessage(&wire.MLSMessage{WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm})
	if err := g.installEpoch(newCtx, plan.tree, path.Private, sec,
		interimHash(s, newCtx.ConfirmedTranscriptHash, ac.Auth.ConfirmationTag), ac.Auth.ConfirmationTag); err != nil {
		return nil, nil, err
	}
	return g, msg, nil
}
