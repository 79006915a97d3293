package mls

import (
	"crypto/rand"
	"fmt"

	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/wire"
)

// Branch creates a subgroup of this group (RFC 9420 §11.3): a new group,
// with the same suite and this member's credential and signature key,
// whose first commit adds the members of the given KeyPackages (fresh
// ones of current members) and injects this group's current resumption
// secret (usage branch). It returns the new group, already in epoch 1, and
// that commit's result; the new members join with
// Join(res.Welcome, kpb, WithResumptionPSKFrom(theirCopyOfThisGroup)).
// Options: WithGroupID, WithGroupExtensions and the group behaviour
// options.
func (g *Group) Branch(keyPackages [][]byte, opts ...Option) (*Group, *CommitResult, error) {
	if err := g.canSend(); err != nil {
		return nil, nil, err
	}
	return g.resume(wire.ResumptionPSKUsageBranch, g.s.ID(), nil, nil, keyPackages, opts)
}

// ReInitGroup creates the group that replaces this one after a ReInit
// proposal was committed (RFC 9420 §11.2): group id, version, suite and
// extensions come from the ReInit; the first commit adds the members of
// the given KeyPackages (for the new suite) and injects this group's
// resumption secret (usage reinit). New members join with
// Join(res.Welcome, kpb, WithResumptionPSKFrom(theirCopyOfThisGroup)).
func (g *Group) ReInitGroup(keyPackages [][]byte, opts ...Option) (*Group, *CommitResult, error) {
	ri := g.reinit
	if ri == nil {
		return nil, nil, fmt.Errorf("%w: no ReInit was committed", ErrInvalidArgument)
	}
	if ri.Version != wire.MLS10 {
		return nil, nil, fmt.Errorf("%w: version %v", ErrUnsupported, ri.Version)
	}
	return g.resume(wire.ResumptionPSKUsageReInit, suite.ID(ri.CipherSuite), ri.GroupID, ri.Extensions, keyPackages, opts)
}

func (g *Group) resume(usage wire.ResumptionPSKUsage, id suite.ID, groupID []byte, exts []wire.Extension, keyPackages [][]byte, opts []Option) (*Group, *CommitResult, error) {
	leaf := g.tree.Leaf(g.priv.Leaf)
	base := []Option{WithGroupExtensions(exts...)}
	if groupID != nil {
		base = append(base, WithGroupID(groupID))
	}
	if id == g.s.ID() {
		base = append(base, WithSignatureKey(g.sigPriv))
	}
	base = append(base, WithResumptionPSKFrom(g))
	ng, err := NewGroup(id, leaf.Credential, append(base, opts...)...)
	if err != nil {
		return nil, nil, err
	}
	nonce := make([]byte, ng.s.Nh())
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, fmt.Errorf("mls: psk nonce: %w", err)
	}
	var props []*wire.Proposal
	for _, kp := range keyPackages {
		p, err := AddProposal(kp)
		if err != nil {
			return nil, nil, err
		}
		props = append(props, p)
	}
	props = append(props, &wire.Proposal{Type: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: wire.PreSharedKeyID{
		PSKType: wire.PSKTypeResumption, Usage: usage, PSKGroupID: g.GroupID(), PSKEpoch: g.ctx.Epoch, PSKNonce: nonce,
	}}})
	res, err := ng.Commit(props)
	if err != nil {
		return nil, nil, err
	}
	if _, err := ng.MergePendingCommit(); err != nil {
		return nil, nil, err
	}
	ng.cfg.priorGroups = nil
	return ng, res, nil
}
