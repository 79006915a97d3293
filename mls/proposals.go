package mls

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/agwproject/agw/mls/tree"
	"github.com/agwproject/agw/mls/wire"
)

// resolvedProposal is one entry of a commit's proposal list with its
// sender (the committer for proposals by value).
type resolvedProposal struct {
	p      *wire.Proposal
	sender wire.Sender
	ref    []byte // nil for a proposal by value
}

// commitPlan is the result of validating and applying a proposal list
// (RFC 9420 §12.2, §12.3) to a copy of the group's tree and extensions.
type commitPlan struct {
	ext          []wire.Extension
	tree         *tree.Tree
	added        []tree.LeafIndex
	addedKPs     []*wire.KeyPackage
	removed      []tree.LeafIndex
	updated      []tree.LeafIndex
	psks         []wire.PreSharedKeyID
	extInit      *wire.ExternalInit
	reinit       *wire.ReInit
	gce          bool
	pathRequired bool
}

// senderMayPropose checks the sender types allowed for each proposal type
// (the "External" column of the IANA registry, RFC 9420 §17.4).
func senderMayPropose(sender wire.Sender, p *wire.Proposal) error {
	switch sender.Type {
	case wire.SenderTypeMember:
		if p.Type == wire.ProposalTypeExternalInit {
			return fmt.Errorf("%w: ExternalInit from a member", ErrInvalidProposal)
		}
	case wire.SenderTypeExternal:
		switch p.Type {
		case wire.ProposalTypeAdd, wire.ProposalTypeRemove, wire.ProposalTypePSK,
			wire.ProposalTypeReInit, wire.ProposalTypeGroupContextExtensions:
		default:
			return fmt.Errorf("%w: %v from an external sender", ErrInvalidProposal, p.Type)
		}
	case wire.SenderTypeNewMemberProposal:
		if p.Type != wire.ProposalTypeAdd {
			return fmt.Errorf("%w: %v from a new member", ErrInvalidProposal, p.Type)
		}
	case wire.SenderTypeNewMemberCommit:
		switch p.Type {
		case wire.ProposalTypeExternalInit, wire.ProposalTypeRemove, wire.ProposalTypePSK:
		default:
			return fmt.Errorf("%w: %v in an external commit", ErrInvalidProposal, p.Type)
		}
	default:
		return fmt.Errorf("%w: sender type %v", ErrInvalidProposal, sender.Type)
	}
	return nil
}

// checkProposal performs the checks of one proposal that do not depend on
// the rest of the list (§12.1).
func (g *Group) checkProposal(sender wire.Sender, p *wire.Proposal) error {
	if err := senderMayPropose(sender, p); err != nil {
		return err
	}
	switch p.Type {
	case wire.ProposalTypeAdd:
		if p.Add == nil {
			return fmt.Errorf("%w: empty add", ErrInvalidProposal)
		}
		if err := validateKeyPackage(g.s, &g.cfg, &p.Add.KeyPackage); err != nil {
			return fmt.Errorf("%w: add: %w", ErrInvalidProposal, err)
		}
	case wire.ProposalTypeUpdate:
		if p.Update == nil || sender.Type != wire.SenderTypeMember {
			return fmt.Errorf("%w: update not from a member", ErrInvalidProposal)
		}
		old := g.tree.Leaf(tree.LeafIndex(sender.LeafIndex))
		if old == nil {
			return fmt.Errorf("%w: update from blank leaf %d", ErrInvalidProposal, sender.LeafIndex)
		}
		if err := validateLeafAlone(g.s, &g.cfg, &p.Update.LeafNode, g.ctx.GroupID, sender.LeafIndex, wire.LeafNodeSourceUpdate); err != nil {
			return fmt.Errorf("%w: update: %w", ErrInvalidProposal, err)
		}
		if bytes.Equal(old.EncryptionKey, p.Update.LeafNode.EncryptionKey) {
			return fmt.Errorf("%w: update keeps the encryption key", ErrInvalidProposal)
		}
		if err := g.checkSuccessor(tree.LeafIndex(sender.LeafIndex), old, &p.Update.LeafNode); err != nil {
			return fmt.Errorf("%w: update: %w", ErrInvalidProposal, err)
		}
	case wire.ProposalTypeRemove:
		if p.Remove == nil || g.tree.Leaf(tree.LeafIndex(p.Remove.Removed)) == nil {
			return fmt.Errorf("%w: remove of a blank or unknown leaf", ErrInvalidProposal)
		}
	case wire.ProposalTypePSK:
		if p.PreSharedKey == nil {
			return fmt.Errorf("%w: empty psk", ErrInvalidProposal)
		}
		id := &p.PreSharedKey.PSK
		switch {
		case id.PSKType == wire.PSKTypeExternal:
		case id.PSKType == wire.PSKTypeResumption && id.Usage == wire.ResumptionPSKUsageApplication:
		case id.PSKType == wire.PSKTypeResumption && g.ctx.Epoch == 0 &&
			(id.Usage == wire.ResumptionPSKUsageBranch || id.Usage == wire.ResumptionPSKUsageReInit):
			// The first commit of a group made by Branch or ReInitGroup
			// (§11.2, §11.3).
		default:
			return fmt.Errorf("%w: psk proposal of type %v usage %v", ErrInvalidProposal, id.PSKType, id.Usage)
		}
		if len(id.PSKNonce) != g.s.Nh() {
			return fmt.Errorf("%w: psk nonce of %d bytes", ErrInvalidProposal, len(id.PSKNonce))
		}
	case wire.ProposalTypeReInit:
		if p.ReInit == nil || p.ReInit.Version < g.ctx.Version {
			return fmt.Errorf("%w: reinit to an older version", ErrInvalidProposal)
		}
	case wire.ProposalTypeExternalInit:
		if p.ExternalInit == nil {
			return fmt.Errorf("%w: empty external init", ErrInvalidProposal)
		}
	case wire.ProposalTypeGroupContextExtensions:
		if p.GroupContextExtensions == nil {
			return fmt.Errorf("%w: empty group context extensions", ErrInvalidProposal)
		}
		if err := checkGroupExtensions(p.GroupContextExtensions.Extensions); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidProposal, err)
		}
	default:
		return fmt.Errorf("%w: type %v", ErrInvalidProposal, p.Type)
	}
	return nil
}

// planCommit validates a commit's proposal list (§12.2) for committer and
// applies it (§12.3) to copies of the tree and extensions.
func (g *Group) planCommit(committer wire.Sender, list []resolvedProposal) (*commitPlan, error) {
	external := committer.Type == wire.SenderTypeNewMemberCommit
	plan := &commitPlan{ext: g.ctx.Extensions, pathRequired: len(list) == 0}
	var updates, removes, adds []resolvedProposal
	touched := map[uint32]bool{}
	pskSeen := map[string]bool{}
	addKeys := map[string]bool{}
	for _, rp := range list {
		p := rp.p
		if err := g.checkProposal(rp.sender, p); err != nil {
			return nil, err
		}
		switch p.Type {
		case wire.ProposalTypeUpdate, wire.ProposalTypeRemove, wire.ProposalTypeExternalInit, wire.ProposalTypeGroupContextExtensions:
			plan.pathRequired = true
		}
		switch p.Type {
		case wire.ProposalTypeAdd:
			k := string(p.Add.KeyPackage.LeafNode.SignatureKey)
			if addKeys[k] {
				return nil, fmt.Errorf("%w: two adds of the same client", ErrInvalidProposal)
			}
			addKeys[k] = true
			adds = append(adds, rp)
		case wire.ProposalTypeUpdate:
			if !external && rp.sender.LeafIndex == committer.LeafIndex {
				return nil, fmt.Errorf("%w: commit includes the committer's own update", ErrInvalidProposal)
			}
			if touched[rp.sender.LeafIndex] {
				return nil, fmt.Errorf("%w: several updates/removes of leaf %d", ErrInvalidProposal, rp.sender.LeafIndex)
			}
			touched[rp.sender.LeafIndex] = true
			updates = append(updates, rp)
		case wire.ProposalTypeRemove:
			r := p.Remove.Removed
			if !external && r == committer.LeafIndex {
				return nil, fmt.Errorf("%w: commit removes the committer", ErrInvalidProposal)
			}
			if touched[r] {
				return nil, fmt.Errorf("%w: several updates/removes of leaf %d", ErrInvalidProposal, r)
			}
			touched[r] = true
			removes = append(removes, rp)
		case wire.ProposalTypePSK:
			k := string(wire.Encode(&p.PreSharedKey.PSK))
			if pskSeen[k] {
				return nil, fmt.Errorf("%w: duplicate psk", ErrInvalidProposal)
			}
			pskSeen[k] = true
			plan.psks = append(plan.psks, p.PreSharedKey.PSK)
		case wire.ProposalTypeReInit:
			if len(list) != 1 {
				return nil, fmt.Errorf("%w: reinit with other proposals", ErrInvalidProposal)
			}
			plan.reinit = p.ReInit
		case wire.ProposalTypeExternalInit:
			if !external || plan.extInit != nil {
				return nil, fmt.Errorf("%w: external init outside an external commit", ErrInvalidProposal)
			}
			plan.extInit = p.ExternalInit
		case wire.ProposalTypeGroupContextExtensions:
			if plan.gce {
				return nil, fmt.Errorf("%w: several group context extensions proposals", ErrInvalidProposal)
			}
			plan.gce = true
			plan.ext = p.GroupContextExtensions.Extensions
		}
	}
	if external {
		if plan.extInit == nil || len(removes) > 1 || len(adds) > 0 || len(updates) > 0 || plan.gce || plan.reinit != nil {
			return nil, fmt.Errorf("%w: external commit proposal list", ErrInvalidProposal)
		}
	}
	t := g.tree.Clone()
	for _, rp := range updates {
		l := tree.LeafIndex(rp.sender.LeafIndex)
		if err := checkLeafInGroup(t, plan.ext, &rp.p.Update.LeafNode, l); err != nil {
			return nil, fmt.Errorf("%w: update: %w", ErrInvalidProposal, err)
		}
		if err := t.UpdateLeaf(l, &rp.p.Update.LeafNode); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
		}
		plan.updated = append(plan.updated, l)
	}
	for _, rp := range removes {
		l := tree.LeafIndex(rp.p.Remove.Removed)
		if err := t.RemoveLeaf(l); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
		}
		plan.removed = append(plan.removed, l)
	}
	for _, rp := range adds {
		kp := &rp.p.Add.KeyPackage
		if err := checkLeafInGroup(t, plan.ext, &kp.LeafNode, tree.LeafIndex(^uint32(0))); err != nil {
			return nil, fmt.Errorf("%w: add: %w", ErrInvalidProposal, err)
		}
		plan.added = append(plan.added, t.AddLeaf(&kp.LeafNode))
		plan.addedKPs = append(plan.addedKPs, kp)
	}
	if plan.gce {
		rc, err := requiredCapabilities(plan.ext)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
		}
		for _, l := range t.Members() {
			leaf := t.Leaf(l)
			if !supportsRequired(leaf, rc) {
				return nil, fmt.Errorf("%w: member %d lacks the required capabilities", ErrInvalidProposal, l)
			}
			for _, e := range plan.ext {
				if e.Type > wire.ExtensionTypeExternalSenders && !wire.IsGREASE(uint16(e.Type)) && !slices.Contains(leaf.Capabilities.Extensions, e.Type) {
					return nil, fmt.Errorf("%w: member %d does not support extension %d", ErrInvalidProposal, l, e.Type)
				}
			}
		}
	}
	plan.tree = t
	return plan, nil
}
