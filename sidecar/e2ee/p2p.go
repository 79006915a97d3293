package e2ee

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agwproject/agw/mls"
)

// session returns the point-to-point group with peer, setting it up the
// first time: the higher node id sends a KeyPackage to the lower, which
// creates the group and answers with the Welcome (the lower one asks with a
// hello). It waits at most JoinTimeout.
func (m *Manager) session(ctx context.Context, peer string) (*group, error) {
	if peer == m.node || peer == "" {
		return nil, fmt.Errorf("e2ee: no session with node %q", peer)
	}
	m.mu.Lock()
	gr, closed := m.byPeer[peer], m.closed
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
		if gr := m.byPeer[peer]; gr != nil {
			m.mu.Unlock()
			return gr, nil
		}
		ch := m.changed
		m.mu.Unlock()
		if now := time.Now(); now.Sub(last) >= m.cfg.RetryInterval {
			last = now
			if err := m.startSession(ctx, peer); err != nil {
				return nil, err
			}
		}
		if err := m.waitChange(ctx, ch, m.cfg.RetryInterval); err != nil {
			return nil, fmt.Errorf("e2ee: no MLS session with %s: %w", peer, err)
		}
	}
}

// startSession sends the hello (lower id) or the KeyPackage (higher id).
func (m *Manager) startSession(ctx context.Context, peer string) error {
	if m.node < peer {
		m.send(ctx, peer, Envelope{Kind: KindHello})
		return nil
	}
	kp, err := m.p2pKeyPackage(peer, false)
	if err != nil {
		return err
	}
	m.send(ctx, peer, Envelope{Kind: KindKeyPackage, Body: kp})
	return nil
}

// p2pKeyPackage returns the pending KeyPackage for peer, making one if
// there is none (or fresh is set).
func (m *Manager) p2pKeyPackage(peer string, fresh bool) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.pendP2P[peer]; r != nil && !fresh && r.gen == m.src.Current().Generation() {
		return r.kpb.Bytes(), nil
	}
	req, err := m.newJoinReq()
	if err != nil {
		return nil, err
	}
	m.pendP2P[peer] = req
	return req.kpb.Bytes(), nil
}

// onHello: the lower node asks this (higher) node for a KeyPackage, because
// it has no session (or lost it).
func (m *Manager) onHello(ctx context.Context, from string) error {
	if m.node < from {
		m.security(EventWrongSender, from, "", errors.New("hello from a higher node id"))
		return ErrRefused
	}
	kp, err := m.p2pKeyPackage(from, false)
	if err != nil {
		return err
	}
	m.send(ctx, from, Envelope{Kind: KindKeyPackage, Body: kp})
	return nil
}

// onP2PKeyPackage: the higher node asks this (lower) node for a session.
// The same KeyPackage sent again gets the same Welcome again.
func (m *Manager) onP2PKeyPackage(ctx context.Context, from string, kp []byte) error {
	if m.node > from {
		m.security(EventWrongSender, from, "", errors.New("session KeyPackage from a lower node id"))
		return ErrRefused
	}
	if n, err := keyPackageNode(kp); err != nil || n != from {
		m.security(EventWrongSender, from, "", fmt.Errorf("KeyPackage names node %q: %v", n, err))
		return ErrRefused
	}
	ref, err := mls.KeyPackageRef(kp)
	if err != nil {
		m.security(EventMalformed, from, "", err)
		return ErrRefused
	}
	if gr := m.groupFor(from, ""); gr != nil {
		gr.mu.Lock()
		w := gr.welcomeFor(ref)
		gr.mu.Unlock()
		if w != nil {
			m.send(ctx, from, Envelope{Kind: KindWelcome, Body: w})
			return nil
		}
	}
	g, err := m.newMLSGroup()
	if err != nil {
		return err
	}
	res, err := g.Add([][]byte{kp})
	if err != nil {
		m.security(EventCredential, from, "", err)
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if _, err := g.MergePendingCommit(); err != nil {
		return err
	}
	gr, err := newGroup(kindP2P, from, g)
	if err != nil {
		return err
	}
	gr.lastRotation = m.now()
	gr.rememberWelcome(ref, res.Welcome)
	// The group is installed before the Welcome goes out, so that a message
	// the peer seals once it has joined finds it here (Open waits for an
	// unknown group only while a join is pending); gr.mu is held until the
	// Welcome is queued, so no message sealed here overtakes it on the link.
	// (Lock order: gr.mu, then m.mu; nothing takes them the other way.)
	gr.mu.Lock()
	m.mu.Lock()
	m.install(gr)
	m.mu.Unlock()
	m.send(ctx, from, Envelope{Kind: KindWelcome, Body: res.Welcome})
	m.saveGroup(gr)
	gr.mu.Unlock()
	m.met.welcomes.Inc()
	m.met.commits.Inc()
	m.log.Info("mls session created", "peer", from)
	return nil
}
