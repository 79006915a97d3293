package mls

import (
	"crypto/rand"
	"fmt"

	"github.com/agwproject/agw/mls/schedule"
	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/tree"
	"github.com/agwproject/agw/mls/wire"
)

// NewGroup creates a one-member group (RFC 9420 §11) for the creator with
// credential cred. Options: WithGroupID, WithGroupExtensions,
// WithSignatureKey, WithCapabilities, WithLeafExtensions, WithLifetime,
// and the group behaviour options (WithHandshakeEncryption, WithPadding,
// WithExternalPSK, WithCredentialValidator, ...).
func NewGroup(id suite.ID, cred Credential, opts ...Option) (*Group, error) {
	kpb, err := GenerateKeyPackage(id, cred, opts...)
	if err != nil {
		return nil, err
	}
	return newGroupFromBundle(kpb, opts)
}

func newGroupFromBundle(kpb *KeyPackageBundle, opts []Option) (*Group, error) {
	cfg := newConfig(opts)
	s, err := suiteOf(kpb.KeyPackage.CipherSuite)
	if err != nil {
		return nil, err
	}
	if err := checkGroupExtensions(cfg.groupExtensions); err != nil {
		return nil, err
	}
	gid := cfg.groupID
	if gid == nil {
		gid = make([]byte, 32)
		if _, err := rand.Read(gid); err != nil {
			return nil, fmt.Errorf("mls: group id: %w", err)
		}
	}
	t := tree.New(s)
	leaf := kpb.KeyPackage.LeafNode
	me := t.AddLeaf(&leaf)
	if err := checkLeafInGroup(tree.New(s), cfg.groupExtensions, &leaf, me); err != nil {
		return nil, err
	}
	ctx := wire.GroupContext{
		Version: wire.MLS10, CipherSuite: kpb.KeyPackage.CipherSuite, GroupID: gid,
		TreeHash: t.TreeHash(), ConfirmedTranscriptHash: []byte{}, Extensions: cfg.groupExtensions,
	}
	initSecret := make([]byte, s.Nh())
	if _, err := rand.Read(initSecret); err != nil {
		return nil, fmt.Errorf("mls: init secret: %w", err)
	}
	ctxBytes := wire.Encode(&ctx)
	sec, err := advanceEpoch(s, initSecret, nil, nil, ctxBytes)
	clear(initSecret)
	if err != nil {
		return nil, err
	}
	tag := schedule.ConfirmationTag(s, sec.ConfirmationKey, ctx.ConfirmedTranscriptHash)
	g, err := newGroupState(s, &cfg, kpb.SignaturePriv)
	if err != nil {
		return nil, err
	}
	if err := g.installEpoch(ctx, t, tree.NewPrivate(me, kpb.EncryptionPriv), sec, interimHash(s, ctx.ConfirmedTranscriptHash, tag), tag); err != nil {
		return nil, err
	}
	return g, nil
}

// CommitResult is what a commit produces.
type CommitResult struct {
	// Commit is the encoded MLSMessage to send to the group.
	Commit []byte
	// Welcome is the encoded Welcome for the added members, or nil.
	Welcome []byte
	// GroupInfo is the signed GroupInfo of the new epoch (with the
	// ratchet_tree and external_pub extensions unless disabled).
	GroupInfo []byte
	// Info describes the changes the commit makes.
	Info *CommitInfo
}

// Commit creates a commit covering every proposal received in this epoch
// (by reference) plus the given proposals (by value), and stages it: call
// MergePendingCommit once the delivery service accepted it (a commit sent
// as PublicMessage may instead be fed back to ProcessMessage, which merges
// it), ClearPendingCommit if it was refused.
// An UpdatePath is included when required, with WithPath, or with
// WithLeafCredential (the path's leaf then carries the new credential and
// signature key, and the group signs with it once the commit is merged).
// Options: WithPath, WithLeafCredential, WithAuthenticatedData,
// WithHandshakeEncryption, WithPadding, WithoutRatchetTreeExtension.
func (g *Group) Commit(proposals []*wire.Proposal, opts ...Option) (*CommitResult, error) {
	if err := g.canSend(); err != nil {
		return nil, err
	}
	if g.pending != nil {
		return nil, ErrPendingCommit
	}
	cfg := g.callConfig(opts)
	id, err := g.rotation(&cfg)
	if err != nil {
		return nil, err
	}
	me := wire.Sender{Type: wire.SenderTypeMember, LeafIndex: uint32(g.priv.Leaf)}
	var list []resolvedProposal
	var pors []wire.ProposalOrRef
	for _, cp := range g.selectCachedProposals(me, proposals) {
		list = append(list, resolvedProposal{p: cp.proposal, sender: cp.sender, ref: cp.ref})
		pors = append(pors, wire.ProposalOrRef{Reference: cp.ref})
	}
	for _, p := range proposals {
		if p == nil {
			return nil, fmt.Errorf("%w: nil proposal", ErrInvalidArgument)
		}
		list = append(list, resolvedProposal{p: p, sender: me})
		pors = append(pors, wire.ProposalOrRef{Proposal: p})
	}
	plan, err := g.planCommit(me, list)
	if err != nil {
		return nil, err
	}
	newCtx, ctxFunc := g.provisionalContext(plan.ext)
	priv := g.priv.Clone()
	priv.Prune(plan.tree)
	var commitSecret []byte // none: the zero vector
	var path *tree.PathResult
	nextSigner := g.signer // signs the new leaf and the GroupInfo
	var tmpl *wire.LeafNode
	if id != nil {
		nextSigner, tmpl = id.signer, g.leafTemplate(id)
	}
	if plan.pathRequired || cfg.forcePath || id != nil {
		path, err = tree.GeneratePath(plan.tree, tree.PathParams{
			Sender: g.priv.Leaf, GroupID: g.ctx.GroupID, Signer: nextSigner, Leaf: tmpl,
			Exclude: plan.added, GroupContext: ctxFunc,
		})
		if err != nil {
			return nil, fmt.Errorf("mls: update path: %w", err)
		}
		commitSecret = path.CommitSecret
		priv = path.Private
	}
	commit := &wire.Commit{Proposals: pors}
	if path != nil {
		commit.Path = path.Path
	}
	ac, err := g.frame(&cfg, wire.ContentTypeCommit, nil, nil, commit)
	if err != nil {
		return nil, err
	}
	newCtx.TreeHash = plan.tree.TreeHash()
	newCtx.ConfirmedTranscriptHash = g.confirmedHash(ac)
	psk, err := resolvePSKs(g.s, &cfg, plan.psks, g.groupResumption)
	if err != nil {
		return nil, err
	}
	ctxBytes := wire.Encode(&newCtx)
	sec, err := advanceEpoch(g.s, g.sec.InitSecret, commitSecret, psk, ctxBytes)
	if err != nil {
		return nil, err
	}
	ac.Auth.ConfirmationTag = schedule.ConfirmationTag(g.s, sec.ConfirmationKey, newCtx.ConfirmedTranscriptHash)
	msg, err := g.protect(&cfg, ac)
	if err != nil {
		return nil, err
	}
	info := plan.info(newCtx.Epoch, false)
	res := &CommitResult{Commit: msg, Info: info}
	gi, err := signGroupInfo(g.s, nextSigner, &newCtx, plan.tree, sec, ac.Auth.ConfirmationTag, g.priv.Leaf, &cfg)
	if err != nil {
		return nil, err
	}
	res.GroupInfo = encodeMessage(&wire.MLSMessage{WireFormat: wire.WireFormatGroupInfo, GroupInfo: gi})
	if len(plan.added) > 0 {
		w, err := makeWelcome(g.s, gi, sec, plan, path)
		if err != nil {
			return nil, err
		}
		res.Welcome = encodeMessage(&wire.MLSMessage{WireFormat: wire.WireFormatWelcome, Welcome: w})
	}
	g.pending = &pendingCommit{
		content: wire.Encode(&ac.Content), ctx: newCtx, tree: plan.tree, priv: priv, sec: sec,
		interim: interimHash(g.s, newCtx.ConfirmedTranscriptHash, ac.Auth.ConfirmationTag),
		confTag: ac.Auth.ConfirmationTag, info: info,
	}
	if id != nil {
		g.pending.signer, g.pending.sigPriv = id.signer, id.sigPriv
	}
	return res, nil
}

// selectCachedProposals picks the cached proposals a commit by me can
// include by reference together with the by-value ones (§12.2, §12.4):
// proposals that are no longer valid, own updates, removal of ourselves
// and duplicates are left out; a Remove wins over an Update of the same
// leaf; a ReInit is kept only when nothing else is committed.
func (g *Group) selectCachedProposals(me wire.Sender, byValue []*wire.Proposal) []cachedProposal {
	removed := map[uint32]bool{}
	updated := map[uint32]bool{}
	addKeys := map[string]bool{}
	psks := map[string]bool{}
	gce := false
	for _, p := range byValue {
		if p == nil {
			continue
		}
		switch p.Type {
		case wire.ProposalTypeRemove:
			if p.Remove != nil {
				removed[p.Remove.Removed] = true
			}
		case wire.ProposalTypeAdd:
			if p.Add != nil {
				addKeys[string(p.Add.KeyPackage.LeafNode.SignatureKey)] = true
			}
		case wire.ProposalTypePSK:
			if p.PreSharedKey != nil {
				psks[string(wire.Encode(&p.PreSharedKey.PSK))] = true
			}
		case wire.ProposalTypeGroupContextExtensions:
			gce = true
		}
	}
	var valid []cachedProposal
	for _, cp := range g.proposals {
		if g.checkProposal(cp.sender, cp.proposal) == nil {
			valid = append(valid, cp)
		}
	}
	for _, cp := range valid {
		if p := cp.proposal; p.Type == wire.ProposalTypeRemove && p.Remove.Removed != me.LeafIndex {
			removed[p.Remove.Removed] = true
		}
	}
	var out []cachedProposal
	removeTaken := map[uint32]bool{}
	for _, cp := range valid {
		p := cp.proposal
		switch p.Type {
		case wire.ProposalTypeUpdate:
			l := cp.sender.LeafIndex
			if l == me.LeafIndex || removed[l] || updated[l] {
				continue
			}
			updated[l] = true
		case wire.ProposalTypeRemove:
			r := p.Remove.Removed
			if r == me.LeafIndex || removeTaken[r] || byValueRemoves(byValue, r) {
				continue
			}
			removeTaken[r] = true
		case wire.ProposalTypeAdd:
			k := string(p.Add.KeyPackage.LeafNode.SignatureKey)
			if addKeys[k] {
				continue
			}
			if l, ok := g.tree.FindLeafBySignatureKey([]byte(k)); ok && !removed[uint32(l)] {
				continue
			}
			addKeys[k] = true
		case wire.ProposalTypePSK:
			k := string(wire.Encode(&p.PreSharedKey.PSK))
			if psks[k] {
				continue
			}
			if _, err := resolvePSKs(g.s, &g.cfg, []wire.PreSharedKeyID{p.PreSharedKey.PSK}, g.groupResumption); err != nil {
				continue
			}
			psks[k] = true
		case wire.ProposalTypeGroupContextExtensions:
			if gce {
				continue
			}
			gce = true
		case wire.ProposalTypeReInit:
			continue // handled below
		}
		out = append(out, cp)
	}
	if len(out) == 0 && len(byValue) == 0 {
		for _, cp := range valid {
			if cp.proposal.Type == wire.ProposalTypeReInit {
				return []cachedProposal{cp}
			}
		}
	}
	return out
}

func byValueRemoves(byValue []*wire.Proposal, leaf uint32) bool {
	for _, p := range byValue {
		if p != nil && p.Type == wire.ProposalTypeRemove && p.Remove != nil && p.Remove.Removed == leaf {
			return true
		}
	}
	return false
}

// signGroupInfo builds and signs the GroupInfo of an epoch (§12.4.3).
func signGroupInfo(s *suite.Suite, signer *suite.Signer, ctx *wire.GroupContext, t *tree.Tree, sec *epochSecrets, tag []byte, me tree.LeafIndex, cfg *config) (*wire.GroupInfo, error) {
	gi := &wire.GroupInfo{GroupContext: *ctx, ConfirmationTag: tag, Signer: uint32(me)}
	if !cfg.noTreeExtension {
		gi.Extensions = append(gi.Extensions, wire.Extension{Type: wire.ExtensionTypeRatchetTree, Data: t.EncodeBytes()})
	}
	if !cfg.noExternalPub {
		_, pub, err := externalKeyPair(sec)
		if err != nil {
			return nil, err
		}
		gi.Extensions = append(gi.Extensions, wire.NewExtension(wire.ExtensionTypeExternalPub, &wire.ExternalPub{PublicKey: pub}))
	}
	sig, err := signer.SignWithLabel(labelGroupInfo, gi.TBS())
	if err != nil {
		return nil, fmt.Errorf("mls: sign group info: %w", err)
	}
	gi.Signature = sig
	return gi, nil
}

// makeWelcome encrypts the GroupInfo and the GroupSecrets of every added
// member (§12.4.3.1).
func makeWelcome(s *suite.Suite, gi *wire.GroupInfo, sec *epochSecrets, plan *commitPlan, path *tree.PathResult) (*wire.Welcome, error) {
	key, nonce := sec.WelcomeKeyNonce()
	egi, err := s.Seal(key, nonce, nil, wire.Encode(gi))
	if err != nil {
		return nil, fmt.Errorf("mls: encrypt group info: %w", err)
	}
	w := &wire.Welcome{CipherSuite: gi.GroupContext.CipherSuite, EncryptedGroupInfo: egi}
	for i, l := range plan.added {
		kp := plan.addedKPs[i]
		gs := &wire.GroupSecrets{JoinerSecret: sec.JoinerSecret, PSKs: plan.psks}
		if path != nil {
			gs.PathSecret = path.PathSecretFor(l)
		}
		kem, ct, err := s.EncryptWithLabel(kp.InitKey, labelWelcome, egi, wire.Encode(gs))
		if err != nil {
			return nil, fmt.Errorf("mls: encrypt group secrets: %w", err)
		}
		w.Secrets = append(w.Secrets, wire.EncryptedGroupSecrets{
			NewMember:             s.KeyPackageRef(wire.Encode(kp)),
			EncryptedGroupSecrets: wire.HPKECiphertext{KEMOutput: kem, Ciphertext: ct},
		})
	}
	return w, nil
}

// GroupInfo returns a signed GroupInfo of the current epoch as an encoded
// MLSMessage, with the ratchet_tree and external_pub extensions unless
// WithoutRatchetTreeExtension or WithoutExternalPub is given. A holder of
// it can join with JoinExternal.
func (g *Group) GroupInfo(opts ...Option) ([]byte, error) {
	cfg := g.callConfig(opts)
	gi, err := signGroupInfo(g.s, g.signer, &g.ctx, g.tree, g.sec, g.confTag, g.priv.Leaf, &cfg)
	if err != nil {
		return nil, err
	}
	return encodeMessage(&wire.MLSMessage{WireFormat: wire.WireFormatGroupInfo, GroupInfo: gi}), nil
}
