package e2ee

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/agwproject/agw/internal/identity"
	"github.com/agwproject/agw/mls"
	"github.com/agwproject/agw/mls/wire"
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
	if !m.updateLeaf(ctx, gr) {
		m.goAsync(func(ctx context.Context) { m.replaceLeaf(ctx, gr) })
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
// updates this sidecar's leaf in every group in place (see updateLeaf); a
// changed bundle or deny list removes the members whose credentials are
// now refused.
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

// renewLeaf brings this sidecar's leaf in gr to its current certificate:
// in place (updateLeaf), or else by replacing the leaf (replaceLeaf).
func (m *Manager) renewLeaf(ctx context.Context, gr *group) {
	gr.mu.Lock()
	ok := m.updateLeaf(ctx, gr)
	gr.mu.Unlock()
	if !ok {
		m.replaceLeaf(ctx, gr)
	}
}

// replaceLeaf replaces this sidecar's leaf after a certificate rotation
// that could not be made in place (the SPIFFE id changed, or the update
// failed): a fresh session, a Remove+Add commit by the channel's committer,
// or for the committer a hand-over to the next member (KindHandover).
func (m *Manager) replaceLeaf(ctx context.Context, gr *group) {
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

// leafRenewal is the state of an in-place update of this sidecar's leaf in
// one group (see updateLeaf).
type leafRenewal struct {
	epoch    uint64    // epoch of the Update proposal in flight
	sent     time.Time // when it was sent (zero: none)
	fallback time.Time // when the leaf's replacement started (zero: none)
}

// renewals holds the in-place updates in progress, by group. An entry
// lives from a certificate rotation until the group's leaf carries the new
// certificate (or the group is gone: entries older than renewalTTL are
// forgotten).
var renewals = struct {
	sync.Mutex
	m map[*group]leafRenewal
}{m: map[*group]leafRenewal{}}

const renewalTTL = 10 * time.Minute

func renewalOf(gr *group) leafRenewal {
	renewals.Lock()
	defer renewals.Unlock()
	return renewals.m[gr]
}

// setRenewal records r for gr (the zero value forgets it) and forgets the
// entries older than renewalTTL at now.
func setRenewal(gr *group, r leafRenewal, now time.Time) {
	renewals.Lock()
	defer renewals.Unlock()
	if r == (leafRenewal{}) {
		delete(renewals.m, gr)
		return
	}
	renewals.m[gr] = r
	for g, x := range renewals.m {
		if t := later(x.sent, x.fallback); now.Sub(t) > renewalTTL {
			delete(renewals.m, g)
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// ownLeaf returns this member's leaf in g.
func ownLeaf(g *mls.Group) *mls.Member {
	me := g.LeafIndex()
	for _, mem := range g.Members() {
		if mem.Index == me {
			return &mem
		}
	}
	return nil
}

// updateLeaf makes this sidecar's leaf in gr carry its current certificate
// in place, without a Welcome or a new leaf: the committer commits an
// Update with path with the new credential and signature key; another
// member sends an Update proposal with them to the committer (KindUpdate),
// which commits it. It reports false when the leaf must be replaced
// instead (replaceLeaf): the certificate names another SPIFFE id, the
// update failed, or the committer did not commit the proposal within
// JoinTimeout. Call with gr.mu held.
func (m *Manager) updateLeaf(ctx context.Context, gr *group) bool {
	if gr.g.Removed() {
		return true
	}
	snap := m.src.Current()
	own := ownLeaf(gr.g)
	if own == nil || len(own.Credential.Certificates) == 0 {
		return true
	}
	if bytes.Equal(own.Credential.Certificates[0], snap.Leaf().Raw) {
		if renewalOf(gr) != (leafRenewal{}) {
			setRenewal(gr, leafRenewal{}, time.Time{})
		}
		return true
	}
	now := m.now()
	r := renewalOf(gr)
	if !r.fallback.IsZero() {
		if now.Sub(r.fallback) < m.cfg.JoinTimeout {
			return true // a replacement in progress
		}
		setRenewal(gr, leafRenewal{fallback: now}, now) // try it again
		return false
	}
	fallback := func(reason string, err error) bool {
		m.log.Warn("mls leaf not updated in place: replacing it", "group", gr.name, "reason", reason, "err", err)
		setRenewal(gr, leafRenewal{fallback: now}, now)
		return false
	}
	if old, cur := credentialSPIFFE(own.Credential), snap.ID().String(); old == "" || old != cur {
		return fallback("SPIFFE id changed", fmt.Errorf("%q -> %q", old, cur))
	}
	id, err := m.currentIdentity()
	if err != nil {
		return fallback("identity", err)
	}
	leafCred := mls.WithLeafCredential(id.cred, id.sigKey)
	c := gr.committer()
	if c == m.node {
		res, err := gr.g.Update(leafCred)
		if err != nil {
			gr.g.ClearPendingCommit()
			return fallback("update", err)
		}
		if err := m.commitAndSend(ctx, gr, res, ""); err != nil {
			return fallback("commit", err)
		}
		gr.lastRotation, gr.sent, gr.restored = now, 0, false
		m.met.rotations.Inc()
		setRenewal(gr, leafRenewal{}, now)
		m.log.Info("mls leaf credential updated in place", "group", gr.name, "epoch", gr.g.Epoch())
		return true
	}
	if !r.sent.IsZero() && r.epoch == gr.g.Epoch() {
		if now.Sub(r.sent) < m.cfg.JoinTimeout {
			return true // the proposal is on its way
		}
		return fallback("update proposal not committed", fmt.Errorf("committer %s", c))
	}
	prop, err := gr.g.ProposeUpdate(leafCred)
	if err != nil {
		return fallback("update proposal", err)
	}
	setRenewal(gr, leafRenewal{epoch: gr.g.Epoch(), sent: now}, now)
	m.saveGroup(gr)
	name := gr.name
	if gr.kind == kindP2P {
		name = ""
	}
	m.send(ctx, c, Envelope{Kind: KindUpdate, Name: name, Body: prop})
	m.log.Info("mls leaf update proposed", "group", gr.name, "committer", c, "epoch", gr.g.Epoch())
	return true
}

// credentialSPIFFE returns the SPIFFE id of an X.509 credential, or "".
func credentialSPIFFE(c wire.Credential) string {
	return leafSPIFFE(&wire.LeafNode{Credential: c})
}

// credentialSuccessor is the MLS succession check (RFC 9420 §5.3.1): a
// member's new credential must name the SPIFFE id of its old one. The
// new credential itself is validated against the trust bundle and the
// deny list by validateCredential, as every credential.
func (m *Manager) credentialSuccessor(old, next wire.Credential) error {
	o, n := credentialSPIFFE(old), credentialSPIFFE(next)
	if o == "" || o != n {
		err := fmt.Errorf("e2ee: credential of %q does not succeed %q", n, o)
		m.security(EventCredential, "", "", err)
		return err
	}
	return nil
}
