package mls

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/agwproject/agw/mls/schedule"
	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/tree"
	"github.com/agwproject/agw/mls/wire"
)

// pendingCommit is a commit this member created and has not merged yet:
// the state of the next epoch, ready to install.
type pendingCommit struct {
	content []byte // encoded FramedContent, to recognise the commit if echoed
	ctx     wire.GroupContext
	tree    *tree.Tree
	priv    *tree.Private
	sec     *epochSecrets
	interim []byte
	confTag []byte
	info    *CommitInfo
	// signer and sigPriv are this member's new signature key when the
	// commit's path changes its credential (WithLeafCredential), else nil.
	signer  *suite.Signer
	sigPriv []byte
}

// CommitInfo describes an applied commit.
type CommitInfo struct {
	// Epoch is the epoch the commit started.
	Epoch uint64
	// Added, Removed and Updated list the leaves that changed.
	Added, Removed, Updated []uint32
	// External is true for an external commit (a new member joined itself).
	External bool
	// PSKs is the number of pre-shared keys injected.
	PSKs int
	// ReInit is set when the commit carried a ReInit proposal; the group
	// must not be used to send anymore.
	ReInit *wire.ReInit
	// SelfRemoved is true when the commit removed this member.
	SelfRemoved bool
}

func leafList(ls []tree.LeafIndex) []uint32 {
	out := make([]uint32, len(ls))
	for i, l := range ls {
		out[i] = uint32(l)
	}
	return out
}

func (p *commitPlan) info(epoch uint64, external bool) *CommitInfo {
	return &CommitInfo{
		Epoch: epoch, Added: leafList(p.added), Removed: leafList(p.removed), Updated: leafList(p.updated),
		External: external, PSKs: len(p.psks), ReInit: p.reinit,
	}
}

// provisionalContext returns the GroupContext of the next epoch with the
// old confirmed transcript hash, and a function encoding it for a tree
// hash (§12.4.1, §12.4.2).
func (g *Group) provisionalContext(ext []wire.Extension) (wire.GroupContext, tree.GroupContextFunc) {
	ctx := wire.GroupContext{
		Version: g.ctx.Version, CipherSuite: g.ctx.CipherSuite, GroupID: g.ctx.GroupID,
		Epoch: g.ctx.Epoch + 1, ConfirmedTranscriptHash: g.ctx.ConfirmedTranscriptHash, Extensions: ext,
	}
	return ctx, func(th []byte) ([]byte, error) {
		c := ctx
		c.TreeHash = th
		return wire.Encode(&c), nil
	}
}

// resolveCommitProposals turns the ProposalOrRef list of a commit into
// proposals with their senders.
func (g *Group) resolveCommitProposals(committer wire.Sender, c *wire.Commit) ([]resolvedProposal, error) {
	list := make([]resolvedProposal, 0, len(c.Proposals))
	for _, por := range c.Proposals {
		if por.Proposal != nil {
			list = append(list, resolvedProposal{p: por.Proposal, sender: committer})
			continue
		}
		if committer.Type == wire.SenderTypeNewMemberCommit {
			return nil, fmt.Errorf("%w: external commit with a proposal by reference", ErrInvalidCommit)
		}
		found := false
		for _, cp := range g.proposals {
			if bytes.Equal(cp.ref, por.Reference) {
				list = append(list, resolvedProposal{p: cp.proposal, sender: cp.sender, ref: cp.ref})
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: %x", ErrUnknownProposal, por.Reference)
		}
	}
	return list, nil
}

// processCommit applies a verified commit from another member or an
// external joiner (§12.4.2).
func (g *Group) processCommit(ac *wire.AuthenticatedContent) (*CommitInfo, error) {
	c := ac.Content.Commit
	sender := ac.Content.Sender
	external := sender.Type == wire.SenderTypeNewMemberCommit
	if sender.Type != wire.SenderTypeMember && !external {
		return nil, fmt.Errorf("%w: commit from sender type %v", ErrInvalidCommit, sender.Type)
	}
	if !external && sender.LeafIndex == uint32(g.priv.Leaf) {
		return g.mergeOwnCommit(ac)
	}
	list, err := g.resolveCommitProposals(sender, c)
	if err != nil {
		return nil, err
	}
	plan, err := g.planCommit(sender, list)
	if err != nil {
		return nil, err
	}
	info := plan.info(g.ctx.Epoch+1, external)
	for _, l := range plan.removed {
		if l == g.priv.Leaf {
			g.removed = true
			info.SelfRemoved = true
			return info, nil
		}
	}
	if plan.pathRequired && c.Path == nil {
		return nil, fmt.Errorf("%w: path required", ErrInvalidCommit)
	}
	priv := g.priv.Clone()
	var newSigner *suite.Signer
	var newSigPriv []byte
	for _, l := range plan.updated {
		if l == g.priv.Leaf {
			key, ok := g.pendingUpdates[string(plan.tree.Leaf(l).EncryptionKey)]
			if !ok {
				return nil, fmt.Errorf("%w: own update committed but its private key is unknown", ErrInvalidCommit)
			}
			priv.Keys[l.Node()] = key
			if newSigner, newSigPriv, err = g.ownUpdateSigner(plan.tree.Leaf(l)); err != nil {
				return nil, err
			}
		}
	}
	priv.Prune(plan.tree)
	newCtx, ctxFunc := g.provisionalContext(plan.ext)
	var commitSecret []byte // none: the zero vector
	if c.Path != nil {
		var committer tree.LeafIndex
		if external {
			committer = plan.tree.AddLeaf(&c.Path.LeafNode)
			info.Added = append(info.Added, uint32(committer))
		} else {
			committer = tree.LeafIndex(sender.LeafIndex)
			old := g.tree.Leaf(committer)
			if old != nil && bytes.Equal(old.EncryptionKey, c.Path.LeafNode.EncryptionKey) {
				return nil, fmt.Errorf("%w: path leaf keeps the committer's encryption key", ErrInvalidCommit)
			}
			if old != nil {
				if err := g.checkSuccessor(committer, old, &c.Path.LeafNode); err != nil {
					return nil, fmt.Errorf("%w: path leaf: %w", ErrInvalidCommit, err)
				}
			}
		}
		if err := g.checkPathKeys(plan.tree, plan.ext, committer, c.Path); err != nil {
			return nil, err
		}
		res, err := tree.ApplyPath(plan.tree, committer, c.Path, priv, ctxFunc, plan.added)
		if err != nil {
			return nil, pathError(err)
		}
		commitSecret = res.CommitSecret
		priv = res.Private
	}
	newCtx.TreeHash = plan.tree.TreeHash()
	confirmed := g.confirmedHash(ac)
	newCtx.ConfirmedTranscriptHash = confirmed
	initSecret := g.sec.InitSecret
	if external {
		extPriv, _, err := externalKeyPair(g.sec)
		if err != nil {
			return nil, err
		}
		if initSecret, err = g.s.ExternalInitReceiver(extPriv, plan.extInit.KEMOutput); err != nil {
			return nil, fmt.Errorf("%w: external init: %w", ErrDecrypt, err)
		}
	}
	psk, err := resolvePSKs(g.s, &g.cfg, plan.psks, g.groupResumption)
	if err != nil {
		return nil, err
	}
	ctxBytes := wire.Encode(&newCtx)
	sec, err := advanceEpoch(g.s, initSecret, commitSecret, psk, ctxBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
	}
	if !schedule.VerifyConfirmationTag(g.s, sec.ConfirmationKey, confirmed, ac.Auth.ConfirmationTag) {
		return nil, ErrBadConfirmationTag
	}
	if err := g.installEpoch(newCtx, plan.tree, priv, sec, interimHash(g.s, confirmed, ac.Auth.ConfirmationTag), ac.Auth.ConfirmationTag); err != nil {
		return nil, err
	}
	if newSigner != nil {
		g.setSigner(newSigner, newSigPriv)
	}
	g.reinit = plan.reinit
	return info, nil
}

// confirmedHash returns the confirmed transcript hash of the epoch a
// commit starts (§8.2).
func (g *Group) confirmedHash(ac *wire.AuthenticatedContent) []byte {
	ci, _ := wire.TranscriptHashInputs(ac)
	return schedule.ConfirmedTranscriptHash(g.s, g.interim, ci)
}

// checkPathKeys validates the UpdatePath leaf (§7.3, source commit) and
// that none of its public keys already appear in the tree (§12.4.2).
func (g *Group) checkPathKeys(t *tree.Tree, ext []wire.Extension, committer tree.LeafIndex, path *wire.UpdatePath) error {
	if err := validateLeafAlone(g.s, &g.cfg, &path.LeafNode, g.ctx.GroupID, uint32(committer), wire.LeafNodeSourceCommit); err != nil {
		return fmt.Errorf("%w: path leaf: %w", ErrInvalidCommit, err)
	}
	if err := checkLeafInGroup(t, ext, &path.LeafNode, committer); err != nil {
		return fmt.Errorf("%w: path leaf: %w", ErrInvalidCommit, err)
	}
	keys := map[string]bool{}
	for x := uint32(0); x < t.NodeCount(); x++ {
		if k := t.EncryptionKey(tree.NodeIndex(x)); k != nil && tree.NodeIndex(x) != committer.Node() {
			keys[string(k)] = true
		}
	}
	for _, n := range path.Nodes {
		if keys[string(n.EncryptionKey)] {
			return fmt.Errorf("%w: update path reuses a public key of the tree", ErrInvalidCommit)
		}
		keys[string(n.EncryptionKey)] = true
	}
	return nil
}

// pathError maps tree errors of ApplyPath to this package's sentinels.
func pathError(err error) error {
	switch {
	case errors.Is(err, tree.ErrParentHash):
		return fmt.Errorf("%w: %w", ErrInvalidTree, err)
	case errors.Is(err, tree.ErrNoPrivateKey), errors.Is(err, tree.ErrKeyMismatch):
		return fmt.Errorf("%w: %w", ErrDecrypt, err)
	case errors.Is(err, tree.ErrUpdatePath), errors.Is(err, tree.ErrInvalidLeaf), errors.Is(err, tree.ErrBlankLeaf):
		return fmt.Errorf("%w: %w", ErrInvalidCommit, err)
	}
	return fmt.Errorf("%w: %w", ErrDecrypt, err)
}

// mergeOwnCommit handles our own commit coming back from the delivery
// service: it merges the pending commit if it is the same one.
func (g *Group) mergeOwnCommit(ac *wire.AuthenticatedContent) (*CommitInfo, error) {
	if g.pending == nil || !bytes.Equal(g.pending.content, wire.Encode(&ac.Content)) {
		return nil, fmt.Errorf("%w: commit from our own leaf that we did not create", ErrInvalidCommit)
	}
	return g.MergePendingCommit()
}

// MergePendingCommit installs the epoch of the commit created last by
// Commit (or Add, Remove, ...) once the delivery service accepted it.
func (g *Group) MergePendingCommit() (*CommitInfo, error) {
	p := g.pending
	if p == nil {
		return nil, ErrNoPendingCommit
	}
	if err := g.installEpoch(p.ctx, p.tree, p.priv, p.sec, p.interim, p.confTag); err != nil {
		return nil, err
	}
	if p.signer != nil {
		g.setSigner(p.signer, p.sigPriv)
	}
	g.reinit = p.info.ReInit
	return p.info, nil
}

// ClearPendingCommit drops the pending commit (the delivery service
// refused it, or another member's commit won).
func (g *Group) ClearPendingCommit() { g.pending = nil }

// HasPendingCommit reports whether a created commit awaits merging.
func (g *Group) HasPendingCommit() bool { return g.pending != nil }
