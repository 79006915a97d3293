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

// JoinChannel makes this sidecar a member of the channel of topic and
// waits (at most JoinTimeout) until it is. If no participant holds the
// group and this node has the lowest id it knows of, it creates it.
func (m *Manager) JoinChannel(ctx context.Context, topic string) error {
	_, err := m.channel(ctx, topic)
	return err
}

func (m *Manager) channel(ctx context.Context, topic string) (*group, error) {
	if topic == "" || len(topic) > MaxNameLen {
		return nil, fmt.Errorf("e2ee: invalid channel name")
	}
	m.mu.Lock()
	m.want[topic] = true
	gr, closed := m.byTopic[topic], m.closed
	m.mu.Unlock()
	if gr != nil && !closed {
		return gr, nil // the common case: no timer
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.JoinTimeout)
	defer cancel()
	var last time.Time
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, ErrClosed
		}
		if gr := m.byTopic[topic]; gr != nil {
			m.mu.Unlock()
			return gr, nil
		}
		ch := m.changed
		m.mu.Unlock()
		if now := time.Now(); now.Sub(last) >= m.cfg.RetryInterval {
			last = now
			if err := m.joinChannelOnce(ctx, topic); err != nil {
				return nil, err
			}
		}
		if err := m.waitChange(ctx, ch, m.cfg.RetryInterval); err != nil {
			return nil, fmt.Errorf("e2ee: channel %s not joined: %w", topic, err)
		}
	}
}

// others returns the participants of topic other than this node, sorted.
func (m *Manager) others(topic string) []string {
	var out []string
	for _, n := range m.roster.Participants(topic) {
		if n != m.node && n != "" && !m.roster.Gone(n) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// joinChannelOnce creates the channel (no participant with a lower id, or
// the join has waited for half the JoinTimeout without an answer) or sends
// a KeyPackage to every participant.
func (m *Manager) joinChannelOnce(ctx context.Context, topic string) error {
	parts := m.others(topic)
	m.mu.Lock()
	if m.byTopic[topic] != nil || !m.want[topic] {
		m.mu.Unlock()
		return nil
	}
	req := m.pendCh[topic]
	waited := req != nil && m.now().Sub(req.started) > m.cfg.JoinTimeout/2
	// Invited by a committer (KindInvite): its Welcome is coming, so this
	// sidecar does not fork the channel with a group of its own unless the
	// join has waited too long (the roster may not name the committer yet:
	// a sidecar that only subscribes may have no route for the topic).
	invited := req != nil && req.target != "" && !waited
	create := !invited && (len(parts) == 0 || m.node < parts[0] ||
		(req != nil && (waited || req.lowerIdle(m.node, parts))))
	if create {
		g, err := m.newMLSGroup()
		if err != nil {
			m.mu.Unlock()
			return err
		}
		gr, err := newGroup(kindChannel, topic, g)
		if err != nil {
			m.mu.Unlock()
			return err
		}
		gr.lastRotation = m.now()
		// gr.mu from before the install until the state is saved, so
		// nothing uses the group before it is on disk (gr is not yet
		// reachable: taking it under m.mu cannot deadlock).
		gr.mu.Lock()
		m.install(gr)
		m.mu.Unlock()
		m.saveGroup(gr)
		gr.mu.Unlock()
		m.log.Info("mls channel created", "group", topic)
		for _, n := range parts {
			m.send(ctx, n, Envelope{Kind: KindInvite, Name: topic})
		}
		return nil
	}
	if req == nil {
		var err error
		if req, err = m.newJoinReq(); err != nil {
			m.mu.Unlock()
			return err
		}
		m.pendCh[topic] = req
	}
	kp := req.kpb.Bytes()
	// One KeyPackage goes to one sidecar at a time (the lowest participant
	// not known to be idle), so that two groups never both add it.
	target := ""
	for _, p := range parts {
		if !req.idle[p] {
			target = p
			break
		}
	}
	if req.target != "" {
		target = req.target // named by a member's redirect
	}
	m.mu.Unlock()
	if target != "" {
		m.send(ctx, target, Envelope{Kind: KindKeyPackage, Name: topic, Body: kp})
	}
	return nil
}

// LeaveChannel leaves the channel of topic: the committer is told and
// removes this member with a commit (a leaving committer is removed by
// its successor once the roster says it is gone).
func (m *Manager) LeaveChannel(ctx context.Context, topic string) {
	m.mu.Lock()
	delete(m.want, topic)
	delete(m.pendCh, topic)
	gr := m.byTopic[topic]
	if gr != nil {
		m.drop(gr)
	}
	m.mu.Unlock()
	if gr == nil {
		return
	}
	gr.mu.Lock()
	c := gr.committer()
	gr.mu.Unlock()
	if c != m.node {
		m.send(ctx, c, Envelope{Kind: KindLeave, Name: topic})
	}
}

// onChannelKeyPackage: the committer adds a joining sidecar (replacing its
// old leaf if it had one) and sends the commit and the Welcome.
func (m *Manager) onChannelKeyPackage(ctx context.Context, from, topic string, kp []byte) error {
	gr := m.groupFor(from, topic)
	if gr == nil {
		// Tell the joiner, so that the lowest joining sidecar creates the
		// channel without waiting.
		m.mu.Lock()
		joining := byte(0)
		if m.want[topic] {
			joining = 1
		}
		m.mu.Unlock()
		m.send(ctx, from, Envelope{Kind: KindNoGroup, Name: topic, Body: []byte{joining}})
		return nil
	}
	if n, err := keyPackageNode(kp); err != nil || n != from {
		m.security(EventWrongSender, from, topic, fmt.Errorf("KeyPackage names node %q: %v", n, err))
		return ErrRefused
	}
	ref, err := mls.KeyPackageRef(kp)
	if err != nil {
		m.security(EventMalformed, from, topic, err)
		return ErrRefused
	}
	gr.mu.Lock()
	defer gr.mu.Unlock()
	if c := gr.committer(); c != m.node {
		// A member that is not the committer names it.
		m.send(ctx, from, Envelope{Kind: KindInvite, Name: topic, Body: []byte(c)})
		return nil
	}
	if w := gr.welcomeFor(ref); w != nil {
		m.send(ctx, from, Envelope{Kind: KindWelcome, Name: topic, Body: w})
		return nil
	}
	if _, ok := gr.joinBy[from]; ok {
		gr.joinBy[from] = m.now().Add(m.cfg.JoinTimeout) // it is joining: senders wait for it again
	}
	add, err := mls.AddProposal(kp)
	if err != nil {
		m.security(EventMalformed, from, topic, err)
		return ErrRefused
	}
	props := []*wire.Proposal{add}
	if l := gr.leafOf(from); l >= 0 {
		props = append([]*wire.Proposal{mls.RemoveProposal(uint32(l))}, props...)
	}
	res, err := gr.g.Commit(props)
	if err != nil {
		gr.g.ClearPendingCommit()
		if errors.Is(err, mls.ErrInvalidKeyPackage) || errors.Is(err, mls.ErrInvalidLeafNode) || errors.Is(err, mls.ErrInvalidProposal) {
			gr.joinBy[from] = time.Time{} // refused: no sender waits for it
			m.security(EventCredential, from, topic, err)
			return fmt.Errorf("%w: %w", ErrRefused, err)
		}
		return err
	}
	// The Welcome goes before the commit to the other members: once they
	// apply it they may seal for the joiner, whose Welcome should be ahead.
	m.send(ctx, from, Envelope{Kind: KindWelcome, Name: topic, Body: res.Welcome})
	if err := m.commitAndSend(ctx, gr, res, from); err != nil {
		return err
	}
	gr.rememberWelcome(ref, res.Welcome)
	m.met.welcomes.Inc()
	m.log.Info("mls member added", "group", topic, "member", from, "epoch", gr.g.Epoch())
	return nil
}

// onInvite: the committer of a channel (from, or the committer a member
// names) asks this sidecar to join. Of two groups for one topic, the one
// with the lower committer wins: a member of the other drops it and joins.
// A group of this sidecar alone gives way to a committer a member names
// (whose group has at least two members, so two lonely sidecars never
// swap): it was created for want of a route, and the joiner, if lower,
// becomes the committer of the other.
func (m *Manager) onInvite(ctx context.Context, from, topic string, body []byte) error {
	committer, addr := parseInvite(body)
	named := len(committer) > 0
	if named {
		if len(committer) > MaxNameLen || string(committer) == m.node || len(addr) > MaxNameLen {
			return nil
		}
		from = string(committer)
	}
	m.mu.Lock()
	if !m.want[topic] {
		m.mu.Unlock()
		return nil
	}
	gr := m.byTopic[topic]
	m.mu.Unlock()
	if gr != nil {
		gr.mu.Lock()
		c, member, alone := gr.committer(), gr.leafOf(from) >= 0, named && len(gr.memberNodes(m.node)) == 0
		gr.mu.Unlock()
		if member || (c <= from && !alone) {
			return nil
		}
		m.mu.Lock()
		m.drop(gr)
		m.mu.Unlock()
		m.met.rejoins.Inc()
		m.log.Info("mls channel merged into the lower committer's", "group", topic, "committer", from)
	}
	m.mu.Lock()
	req := m.pendCh[topic]
	if req == nil {
		var err error
		if req, err = m.newJoinReq(); err != nil {
			m.mu.Unlock()
			return err
		}
		m.pendCh[topic] = req
	}
	if req.target != from {
		req.target, req.started = from, m.now()
	}
	kp := req.kpb.Bytes()
	m.mu.Unlock()
	if named {
		// The committer may be a sidecar this one has no route to.
		m.learnAddress(from, addr)
	}
	m.send(ctx, from, Envelope{Kind: KindKeyPackage, Name: topic, Body: kp})
	return nil
}

// onLeave: the committer removes a member that left.
func (m *Manager) onLeave(ctx context.Context, from, topic string) error {
	gr := m.groupFor(from, topic)
	if gr == nil {
		return nil
	}
	gr.mu.Lock()
	defer gr.mu.Unlock()
	if gr.committer() != m.node {
		return nil
	}
	return m.removeNodes(ctx, gr, []string{from})
}

// removeNodes commits the removal of the leaves of nodes; call with gr.mu
// held.
func (m *Manager) removeNodes(ctx context.Context, gr *group, nodes []string) error {
	var leaves []uint32
	for _, n := range nodes {
		if l := gr.leafOf(n); l >= 0 && n != m.node {
			leaves = append(leaves, uint32(l))
		}
	}
	return m.removeLeaves(ctx, gr, leaves)
}

func (m *Manager) removeLeaves(ctx context.Context, gr *group, leaves []uint32) error {
	if len(leaves) == 0 {
		return nil
	}
	res, err := gr.g.Remove(leaves)
	if err != nil {
		gr.g.ClearPendingCommit()
		return err
	}
	// The removed members get the commit too (commitAndSend sends to the
	// members of the epoch it ends): it tells them they are out.
	if err := m.commitAndSend(ctx, gr, res, ""); err != nil {
		return err
	}
	m.log.Info("mls members removed", "group", gr.name, "count", len(leaves), "epoch", gr.g.Epoch())
	return nil
}

// onNoGroup records that a participant does not hold the channel; if every
// lower participant is idle, this sidecar creates it.
func (m *Manager) onNoGroup(ctx context.Context, from, topic string, joining bool) error {
	m.mu.Lock()
	req := m.pendCh[topic]
	if req == nil || m.byTopic[topic] != nil {
		m.mu.Unlock()
		return nil
	}
	if req.idle == nil {
		req.idle = map[string]bool{}
	}
	req.idle[from] = !joining
	create := req.lowerIdle(m.node, m.others(topic))
	m.mu.Unlock()
	if create {
		return m.joinChannelOnce(ctx, topic)
	}
	return nil
}

// lowerIdle reports whether every participant with a lower id than node
// answered that it neither holds nor joins the channel.
func (r *joinReq) lowerIdle(node string, parts []string) bool {
	for _, p := range parts {
		if p < node && !r.idle[p] {
			return false
		}
	}
	return true
}

// onHandover: the committer asks this member (the next lowest) to replace
// its leaf with a fresh KeyPackage after a certificate rotation. This
// member commits the Remove and Add (the committer commits nothing until
// its Welcome) and the renewed committer, again the lowest, goes on.
func (m *Manager) onHandover(ctx context.Context, from, topic string, kp []byte) error {
	gr := m.groupFor(from, topic)
	if gr == nil {
		return nil
	}
	if n, err := keyPackageNode(kp); err != nil || n != from {
		m.security(EventWrongSender, from, topic, fmt.Errorf("handover KeyPackage names node %q: %v", n, err))
		return ErrRefused
	}
	gr.mu.Lock()
	defer gr.mu.Unlock()
	old := gr.leafOf(from)
	if old < 0 || gr.committer() != from || lowest(gr.memberNodes(from)) != m.node {
		return nil
	}
	add, err := mls.AddProposal(kp)
	if err != nil {
		m.security(EventMalformed, from, topic, err)
		return ErrRefused
	}
	res, err := gr.g.Commit([]*wire.Proposal{mls.RemoveProposal(uint32(old)), add})
	if err != nil {
		gr.g.ClearPendingCommit()
		m.security(EventCredential, from, topic, err)
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if err := m.commitAndSend(ctx, gr, res, from); err != nil {
		return err
	}
	m.met.welcomes.Inc()
	m.send(ctx, from, Envelope{Kind: KindWelcome, Name: topic, Body: res.Welcome})
	m.log.Info("mls committer's leaf renewed", "group", topic, "committer", from, "epoch", gr.g.Epoch())
	return nil
}
