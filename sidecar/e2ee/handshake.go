package e2ee

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/agwproject/agw/mls"
	"github.com/agwproject/agw/mls/wire"
)

// HandleHandshake processes a handshake envelope that node from sent to
// this sidecar (the Transport's receive side). Refused messages are
// security events; the error is for the caller's log only.
func (m *Manager) HandleHandshake(ctx context.Context, from string, msg []byte) error {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return ErrClosed
	}
	var e Envelope
	if err := e.UnmarshalBinary(msg); err != nil {
		m.security(EventMalformed, from, "", err)
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	m.log.Debug("mls handshake received", "from", from, "kind", e.Kind, "name", e.Name)
	if from == "" || from == m.node {
		m.security(EventWrongSender, from, e.Name, errors.New("handshake from this node or no node"))
		return ErrRefused
	}
	switch {
	case e.Kind == KindHello && e.Name == "":
		return m.onHello(ctx, from)
	case e.Kind == KindKeyPackage && e.Name == "":
		return m.onP2PKeyPackage(ctx, from, e.Body)
	case e.Kind == KindKeyPackage:
		return m.onChannelKeyPackage(ctx, from, e.Name, e.Body)
	case e.Kind == KindWelcome:
		return m.onWelcome(from, e.Name, e.Body)
	case e.Kind == KindCommit:
		return m.onCommit(ctx, from, e.Name, [][]byte{e.Body})
	case e.Kind == KindCommitBundle:
		msgs, err := decodeBundle(e.Body)
		if err != nil {
			m.security(EventMalformed, from, e.Name, err)
			return fmt.Errorf("%w: %w", ErrRefused, err)
		}
		return m.onCommit(ctx, from, e.Name, msgs)
	case e.Kind == KindUpdate:
		return m.onUpdate(ctx, from, e.Name, e.Body)
	case e.Kind == KindInvite && e.Name != "":
		return m.onInvite(ctx, from, e.Name, e.Body)
	case e.Kind == KindEpochRequest:
		return m.onEpochRequest(ctx, from, e.Name)
	case e.Kind == KindLeave && e.Name != "":
		return m.onLeave(ctx, from, e.Name)
	case e.Kind == KindHandover && e.Name != "":
		return m.onHandover(ctx, from, e.Name, e.Body)
	case e.Kind == KindNoGroup && e.Name != "" && len(e.Body) == 1:
		return m.onNoGroup(ctx, from, e.Name, e.Body[0] == 1)
	}
	m.security(EventMalformed, from, e.Name, fmt.Errorf("unexpected %s", e.Kind))
	return ErrRefused
}

// groupFor returns the group a handshake names: the channel topic, or the
// session with from when name is empty.
func (m *Manager) groupFor(from, name string) *group {
	m.mu.Lock()
	defer m.mu.Unlock()
	if name == "" {
		return m.byPeer[from]
	}
	return m.byTopic[name]
}

// onWelcome joins a group this sidecar asked for.
func (m *Manager) onWelcome(from, name string, body []byte) error {
	m.mu.Lock()
	var req *joinReq
	if name == "" {
		req = m.pendP2P[from]
	} else {
		req = m.pendCh[name]
	}
	m.mu.Unlock()
	if req == nil {
		m.log.Debug("welcome not asked for", "from", from, "group", name)
		return nil
	}
	g, err := mls.Join(body, req.kpb, m.groupOptions()...)
	if err != nil {
		if errors.Is(err, mls.ErrNoMatchingKeyPackage) {
			return nil // a Welcome for an older KeyPackage of ours
		}
		m.security(EventForgedCommit, from, name, err)
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	kind, gname := kindChannel, name
	if name == "" {
		kind, gname = kindP2P, from
	}
	gr, err := newGroup(kind, gname, g)
	if err != nil {
		return err
	}
	gr.lastRotation = m.now()
	if kind == kindP2P && (len(gr.memberNodes("")) != 2 || gr.leafOf(from) < 0) {
		m.security(EventWrongSender, from, name, errors.New("session Welcome with unexpected members"))
		return ErrRefused
	}
	if kind == kindChannel && gr.leafOf(from) < 0 {
		m.security(EventWrongSender, from, name, errors.New("Welcome from a non-member"))
		return ErrRefused
	}
	m.met.welcomes.Inc()
	// gr.mu is held from before the install until the state is saved, so
	// nothing uses the group before it is on disk. (Lock order: gr.mu,
	// then m.mu.)
	gr.mu.Lock()
	m.mu.Lock()
	if kind == kindChannel && !m.want[name] {
		m.mu.Unlock()
		gr.mu.Unlock()
		return nil
	}
	m.install(gr)
	m.mu.Unlock()
	m.saveGroup(gr)
	gr.mu.Unlock()
	m.log.Info("mls group joined", "group", gname, "kind", kind, "epoch", g.Epoch(), "committer", gr.committer())
	if req.gen != m.src.Current().Generation() {
		// The certificate rotated while the Welcome was on its way.
		m.renewLeaf(context.Background(), gr)
	}
	return nil
}

// onCommit applies a commit of a group this sidecar is in: msgs is the
// commit, after the proposals it includes that this member has not seen
// (KindCommitBundle).
func (m *Manager) onCommit(ctx context.Context, from, name string, msgs [][]byte) error {
	gr := m.groupFor(from, name)
	if gr == nil {
		return nil // not (or no longer) a member: nothing to apply
	}
	gr.mu.Lock()
	err := m.applyCommit(gr, from, msgs)
	removed := gr.g.Removed()
	gr.mu.Unlock()
	if removed {
		m.mu.Lock()
		m.drop(gr)
		rejoin := gr.kind == kindChannel && m.want[gr.name]
		m.mu.Unlock()
		m.log.Info("mls removed from group", "group", gr.name)
		if rejoin {
			m.met.rejoins.Inc()
			name := gr.name
			m.goAsync(func(ctx context.Context) { _ = m.JoinChannel(ctx, name) })
		}
	}
	return err
}

// applyCommit processes a commit, after the proposals of its bundle (msgs:
// proposals first, the commit last), and any buffered later ones; call
// with gr.mu held. A bundle is applied whole or not at all: the proposals
// of a refused commit are discarded.
func (m *Manager) applyCommit(gr *group, from string, msgs [][]byte) error {
	var refs [][]byte
	discard := func() {
		for _, r := range refs {
			gr.g.DiscardProposal(r)
		}
	}
	var p *mls.Processed
	var err error
	for i, b := range msgs {
		if p, err = gr.g.ProcessMessage(b); err != nil {
			break
		}
		last := i == len(msgs)-1
		if !last && p.Kind == mls.KindProposal {
			refs = append(refs, p.ProposalRef)
			continue
		}
		if last && p.Kind == mls.KindCommit {
			break
		}
		discard()
		m.security(EventMalformed, from, gr.name, fmt.Errorf("%s sent as a commit", p.Kind))
		return ErrRefused
	}
	if err != nil {
		discard()
	}
	switch {
	case errors.Is(err, mls.ErrFutureEpoch):
		if len(gr.future) < 16 {
			gr.future = append(gr.future, encodeBundle(msgs))
		}
		return nil
	case errors.Is(err, mls.ErrWrongEpoch):
		return nil // a commit already applied (duplicate)
	case errors.Is(err, mls.ErrWrongGroup) && gr.kind == kindChannel:
		// Another group for the same channel: a fork, resolved as an
		// invitation (the lower committer wins).
		name := gr.name
		m.goAsync(func(ctx context.Context) { _ = m.onInvite(ctx, from, name, nil) })
		return nil
	case errors.Is(err, mls.ErrCredentialSuccessor):
		m.security(EventCredential, from, gr.name, err)
		return fmt.Errorf("%w: %w", ErrRefused, err)
	case err != nil:
		m.security(EventForgedCommit, from, gr.name, err)
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	m.met.commits.Inc()
	if err := gr.refresh(); err != nil {
		return err
	}
	if len(p.Commit.Updated) > 0 || p.Commit.Removed != nil || p.Commit.Added != nil {
		gr.lastRotation = m.now()
	}
	m.saveGroup(gr)
	// Buffered commits of later epochs may apply now.
	fut := gr.future
	gr.future = nil
	for _, b := range fut {
		if gr.g.Removed() {
			break
		}
		if msgs, err := decodeBundle(b); err == nil {
			_ = m.applyCommit(gr, from, msgs)
		}
	}
	return nil
}

// commitAndSend sends a staged commit to every member but this sidecar and
// skip, then merges it; call with gr.mu held.
func (m *Manager) commitAndSend(ctx context.Context, gr *group, res *mls.CommitResult, skip string) error {
	return m.commitAndSendWith(ctx, gr, res, skip, "", nil)
}

// commitAndSendWith is commitAndSend for a commit that includes the
// proposals props of member proposer by reference: proposer gets the
// commit alone, every other member the proposals and the commit in one
// envelope (KindCommitBundle), so that it holds them only while it applies
// the commit.
func (m *Manager) commitAndSendWith(ctx context.Context, gr *group, res *mls.CommitResult, skip, proposer string, props [][]byte) error {
	name := gr.name
	if gr.kind == kindP2P {
		name = ""
	}
	var bundle []byte
	if len(props) > 0 {
		bundle = encodeBundle(append(slices.Clip(props), res.Commit))
	}
	for _, n := range gr.memberNodes(m.node) {
		switch {
		case n == skip:
		case bundle != nil && n != proposer:
			m.send(ctx, n, Envelope{Kind: KindCommitBundle, Name: name, Body: bundle})
		default:
			m.send(ctx, n, Envelope{Kind: KindCommit, Name: name, Body: res.Commit})
		}
	}
	if _, err := gr.g.MergePendingCommit(); err != nil {
		gr.g.ClearPendingCommit()
		return err
	}
	m.met.commits.Inc()
	if err := gr.refresh(); err != nil {
		return err
	}
	m.saveGroup(gr)
	return nil
}

// rotate commits an Update with path; call with gr.mu held.
func (m *Manager) rotate(ctx context.Context, gr *group) error {
	res, err := gr.g.Update(mls.WithPath())
	if err != nil {
		return err
	}
	if err := m.commitAndSend(ctx, gr, res, ""); err != nil {
		return err
	}
	gr.lastRotation, gr.sent = m.now(), 0
	gr.restored = false
	m.met.rotations.Inc()
	m.log.Info("mls keys rotated", "group", gr.name, "epoch", gr.g.Epoch())
	return nil
}

// onEpochRequest: a member asks the committer for a fresh epoch.
func (m *Manager) onEpochRequest(ctx context.Context, from, name string) error {
	gr := m.groupFor(from, name)
	if gr == nil {
		return nil
	}
	gr.mu.Lock()
	defer gr.mu.Unlock()
	if gr.leafOf(from) < 0 || gr.committer() != m.node {
		return nil
	}
	// A restored member asks again every RetryInterval until the commit
	// reaches it: one rotation answers them all (each extra epoch would
	// leave its first messages in an epoch already gone here).
	now := m.now()
	if t, ok := gr.freshFor[from]; ok && now.Sub(t) < m.cfg.EpochWait {
		return nil
	}
	if err := m.rotate(ctx, gr); err != nil {
		return err
	}
	if gr.freshFor == nil {
		gr.freshFor = map[string]time.Time{}
	}
	gr.freshFor[from] = now
	return nil
}

// onUpdate: a member whose certificate rotated sends its Update proposal
// (the new credential in its leaf) to this sidecar, the committer, which
// commits it at once with a path; the other members get the proposal with
// the commit.
func (m *Manager) onUpdate(ctx context.Context, from, name string, body []byte) error {
	gr := m.groupFor(from, name)
	if gr == nil {
		return nil
	}
	gr.mu.Lock()
	defer gr.mu.Unlock()
	leaf := gr.leafOf(from)
	if leaf < 0 || gr.committer() != m.node || gr.g.Removed() {
		return nil // the member retries with the committer it learns
	}
	if err := updateFrom(body, uint32(leaf)); err != nil {
		m.security(EventWrongSender, from, gr.name, err)
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	p, err := gr.g.ProcessMessage(body)
	switch {
	case errors.Is(err, mls.ErrWrongEpoch):
		return nil // a commit crossed it: the member proposes again
	case errors.Is(err, mls.ErrCredentialSuccessor), errors.Is(err, mls.ErrInvalidLeafNode):
		m.security(EventCredential, from, gr.name, err)
		return fmt.Errorf("%w: %w", ErrRefused, err)
	case err != nil:
		m.security(EventForgedCommit, from, gr.name, err)
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	res, err := gr.g.Commit(nil)
	if err != nil {
		gr.g.ClearPendingCommit()
		gr.g.DiscardProposal(p.ProposalRef)
		m.security(EventCredential, from, gr.name, err)
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if err := m.commitAndSendWith(ctx, gr, res, "", from, [][]byte{body}); err != nil {
		return err
	}
	gr.lastRotation, gr.sent = m.now(), 0
	m.met.rotations.Inc()
	m.log.Info("mls member's credential updated in place", "group", gr.name, "member", from, "epoch", gr.g.Epoch())
	return nil
}

// updateFrom checks, before it is processed, that an MLS message is an
// Update proposal in a PublicMessage from member leaf: the committer
// commits nothing else that a KindUpdate carries.
func updateFrom(b []byte, leaf uint32) error {
	var msg wire.MLSMessage
	if err := wire.Decode(b, &msg); err != nil {
		return fmt.Errorf("e2ee: update: %w", err)
	}
	pm := msg.PublicMessage
	if msg.WireFormat != wire.WireFormatPublicMessage || pm == nil {
		return errors.New("e2ee: update: not a PublicMessage")
	}
	c := &pm.Content
	if c.ContentType != wire.ContentTypeProposal || c.Proposal == nil || c.Proposal.Type != wire.ProposalTypeUpdate {
		return errors.New("e2ee: update: not an Update proposal")
	}
	if c.Sender.Type != wire.SenderTypeMember || c.Sender.LeafIndex != leaf {
		return fmt.Errorf("e2ee: update from leaf %d sent by the member at leaf %d", c.Sender.LeafIndex, leaf)
	}
	return nil
}
