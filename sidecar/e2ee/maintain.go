package e2ee

import (
	"context"
	"time"

	"github.com/agwproject/agw/internal/identity"
)

// snapshot returns the groups and pending channel joins.
func (m *Manager) snapshot() (groups []*group, pending []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pruneRetired(time.Now())
	for _, gr := range m.groups {
		groups = append(groups, gr)
	}
	for t := range m.want {
		if m.byTopic[t] == nil {
			pending = append(pending, t)
		}
	}
	return groups, pending
}

// tick does the periodic work: pending channel joins, invitations, removal
// of gone members, committer hand-over and key rotation.
func (m *Manager) tick(ctx context.Context) {
	groups, pending := m.snapshot()
	for _, t := range pending {
		if err := m.joinChannelOnce(ctx, t); err != nil {
			m.log.Warn("mls channel join failed", "group", t, "err", err)
		}
	}
	now := m.now()
	for _, gr := range groups {
		gr.mu.Lock()
		m.maintain(ctx, gr, now)
		gr.mu.Unlock()
	}
}

// maintain is tick for one group; call with gr.mu held.
func (m *Manager) maintain(ctx context.Context, gr *group, now time.Time) {
	if gr.g.Removed() {
		return
	}
	if gr.kind == kindChannel {
		// Every member reads the roster on every tick, not only the
		// committer: a Roster learns that a node's lease ended while it
		// reads the node's routes during the lease's grace period, and the
		// successor of a gone committer must learn it (Gone) to take over.
		m.roster.Participants(gr.name)
	}
	var gone []string
	for _, n := range gr.memberNodes(m.node) {
		if m.roster.Gone(n) {
			gone = append(gone, n)
		}
	}
	c := gr.committer()
	if gr.kind == kindChannel {
		// The successor of a gone committer is the lowest member left.
		live := []string{m.node}
		for _, n := range gr.memberNodes(m.node) {
			if !m.roster.Gone(n) {
				live = append(live, n)
			}
		}
		if c != m.node && lowest(live) == m.node && m.roster.Gone(c) {
			m.log.Info("mls committer gone, taking over", "group", gr.name, "old_committer", c)
			c = m.node
		}
		if c == m.node {
			if err := m.removeNodes(ctx, gr, gone); err != nil {
				m.log.Warn("mls removal failed", "group", gr.name, "err", err)
			}
			for _, n := range m.others(gr.name) {
				if gr.leafOf(n) < 0 {
					m.send(ctx, n, Envelope{Kind: KindInvite, Name: gr.name})
				}
			}
		}
	}
	if c == m.node && now.Sub(gr.lastRotation) >= m.cfg.RotateInterval && len(gr.memberNodes(m.node)) > 0 {
		if err := m.rotate(ctx, gr); err != nil {
			m.log.Warn("mls rotation failed", "group", gr.name, "err", err)
		}
	}
}

// freshenRestored asks for a fresh epoch in every restored group.
func (m *Manager) freshenRestored(ctx context.Context) {
	groups, _ := m.snapshot()
	for _, gr := range groups {
		gr.mu.Lock()
		if gr.restored && gr.g.Epoch() <= gr.minEpoch {
			m.freshen(ctx, gr)
		}
		gr.mu.Unlock()
	}
}

// identityChanged follows the identity Source: a rotated certificate
// replaces this sidecar's leaf in every group (the mls library keeps a
// leaf's credential across Update commits, so the leaf is replaced by a new
// member with the new credential: a fresh session, or a Remove+Add commit
// by the channel's committer); a changed bundle or deny list removes the
// members whose credentials are now refused.
func (m *Manager) identityChanged(ctx context.Context, ev identity.Event) {
	m.log.Info("identity changed", "changes", ev.Changes.String())
	groups, _ := m.snapshot()
	if ev.Changes&(identity.ChangeBundle|identity.ChangeDenyList) != 0 {
		for _, gr := range groups {
			gr.mu.Lock()
			if gr.committer() == m.node {
				m.revalidate(ctx, gr)
			}
			gr.mu.Unlock()
		}
	}
	if ev.Changes&identity.ChangeCertificate != 0 {
		for _, gr := range groups {
			m.renewLeaf(ctx, gr)
		}
	}
}

// revalidate removes members whose credential the validator now refuses;
// call with gr.mu held.
func (m *Manager) revalidate(ctx context.Context, gr *group) {
	var leaves []uint32
	for _, mem := range gr.g.Members() {
		if mem.Index == gr.g.LeafIndex() {
			continue
		}
		if err := m.validateCredential(mem.Credential, mem.SignatureKey); err != nil {
			leaves = append(leaves, mem.Index)
		}
	}
	if err := m.removeLeaves(ctx, gr, leaves); err != nil {
		m.log.Warn("mls removal of refused members failed", "group", gr.name, "err", err)
	}
}

// renewLeaf replaces this sidecar's leaf after a certificate rotation.
func (m *Manager) renewLeaf(ctx context.Context, gr *group) {
	gr.mu.Lock()
	kind, name, c := gr.kind, gr.name, gr.committer()
	gr.mu.Unlock()
	switch {
	case kind == kindP2P && m.node < name:
		// The lower node recreates the session from a fresh KeyPackage.
		m.send(ctx, name, Envelope{Kind: KindHello})
	case kind == kindP2P:
		kp, err := m.p2pKeyPackage(name, true)
		if err == nil {
			m.send(ctx, name, Envelope{Kind: KindKeyPackage, Body: kp})
		}
	case c != m.node:
		m.mu.Lock()
		req, err := m.newJoinReq()
		if err == nil {
			m.pendCh[name] = req
		}
		m.mu.Unlock()
		if err == nil {
			m.send(ctx, c, Envelope{Kind: KindKeyPackage, Name: name, Body: req.kpb.Bytes()})
		}
	default:
		// A committer cannot remove itself: the next member replaces its
		// leaf (KindHandover); with no other member, a new group.
		gr.mu.Lock()
		others := gr.memberNodes(m.node)
		gr.mu.Unlock()
		if len(others) == 0 {
			m.mu.Lock()
			m.drop(gr)
			m.mu.Unlock()
			_ = m.joinChannelOnce(ctx, name)
			return
		}
		m.mu.Lock()
		req, err := m.newJoinReq()
		if err == nil {
			m.pendCh[name] = req
		}
		m.mu.Unlock()
		if err == nil {
			m.send(ctx, lowest(others), Envelope{Kind: KindHandover, Name: name, Body: req.kpb.Bytes()})
		}
	}
}
