package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/agwproject/agw/sidecar"
)

// meshSpec is one sidecar of a loopback mesh with its RPC layer.
type meshSpec struct {
	node     string
	agent    string   // AGW_AGENT_NAME
	app      string   // AGW_APP_ADDR, may be empty
	channels []string // AGW_RPC_CHANNELS
	// overGRPC: the layer uses the node's agent API over gRPC (New), as a
	// layer in another process would, instead of attaching in memory.
	overGRPC bool
}

type meshNode struct {
	spec  meshSpec
	node  *sidecar.Node
	layer *Layer
}

// mesh is a set of sidecars on loopback, each with an RPC layer, linked by
// static peers and static routes for every RPC topic.
type mesh struct {
	nodes []*meshNode
	stops []func()
}

// rpcTopics returns the topics a layer with this spec subscribes to.
func (s meshSpec) rpcTopics() []string {
	t, _ := Topic(s.agent)
	out := []string{t}
	if s.app != "" {
		svc := s.agent[:lastSlash(s.agent)]
		st, _ := Topic(svc)
		out = append(out, st)
		for _, ch := range s.channels {
			ct, _ := Topic(ch)
			out = append(out, ct)
		}
	}
	return out
}

func lastSlash(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return i
		}
	}
	return len(s)
}

// startMesh starts the sidecars and layers and waits until every peer link
// is up. cfg adjusts each layer's config; Close stops everything.
func startMesh(ctx context.Context, log *slog.Logger, specs []meshSpec, cfg func(*Config), opts ...Option) (*mesh, error) {
	m := &mesh{nodes: make([]*meshNode, len(specs))}
	// Start the last node first: each node dials only the nodes after it,
	// at their bound addresses (so there is no both-sides-dialled link
	// replacement, which would lose the frames in flight on the replaced
	// link).
	for i := len(specs) - 1; i >= 0; i-- {
		s := specs[i]
		c := sidecar.DefaultConfig()
		c.NodeID = s.node
		c.AgentListen, c.PeerListen, c.AdminListen = "127.0.0.1:0", "127.0.0.1:0", ""
		c.ReconnectMin, c.ReconnectMax = 20*time.Millisecond, 200*time.Millisecond
		c.HandshakeTimeout, c.ShutdownTimeout = 2*time.Second, 2*time.Second
		for j, o := range specs {
			if j == i {
				continue
			}
			if j > i {
				c.StaticPeers = append(c.StaticPeers, o.node+"="+m.nodes[j].node.PeerAddr().String())
			}
			for _, t := range o.rpcTopics() {
				c.StaticRoutes = append(c.StaticRoutes, t+"="+o.node)
			}
		}
		n, err := sidecar.New(c, sidecar.WithLogger(log))
		if err != nil {
			m.Close()
			return nil, err
		}
		mn := &meshNode{spec: s, node: n}
		m.nodes[i] = mn
		nctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		var runErr error
		go func() { defer close(done); runErr = n.Run(nctx) }()
		m.stops = append(m.stops, func() { cancel(); <-done })
		select {
		case <-n.Ready():
		case <-done:
			m.Close()
			return nil, fmt.Errorf("sidecar %s did not start: %w", s.node, runErr)
		case <-ctx.Done():
			m.Close()
			return nil, ctx.Err()
		}
	}
	for _, mn := range m.nodes {
		lc := DefaultConfig()
		lc.InterceptListen = "127.0.0.1:0"
		lc.AgentName = mn.spec.agent
		lc.AppAddr = mn.spec.app
		lc.Channels = mn.spec.channels
		lc.ShutdownTimeout = 2 * time.Second
		if cfg != nil {
			cfg(&lc)
		}
		lopts := append([]Option{WithLogger(log.With("layer", mn.spec.node))}, opts...)
		var l *Layer
		var err error
		if mn.spec.overGRPC {
			l, err = New(lc, mn.node.AgentAddr().String(), append(lopts, WithAgentDialOptions(mn.node.TrustedAgentDialOption()))...)
		} else {
			l, err = NewForNode(lc, mn.node, lopts...)
		}
		if err != nil {
			m.Close()
			return nil, err
		}
		mn.layer = l
		lctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = l.Run(lctx) }()
		m.stops = append(m.stops, func() { cancel(); <-done })
		select {
		case <-l.Ready():
		case <-done:
			m.Close()
			return nil, fmt.Errorf("rpc layer of %s did not start", mn.spec.node)
		case <-ctx.Done():
			m.Close()
			return nil, ctx.Err()
		}
	}
	if err := m.waitLinks(ctx); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// waitLinks waits until every node has an up link to every other.
func (m *mesh) waitLinks(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok := true
		for _, a := range m.nodes {
			up := map[string]bool{}
			for _, ci := range a.node.Connections() {
				if ci.Kind == sidecar.KindPeer && ci.Status == sidecar.StatusUp {
					up[ci.NodeID] = true
				}
			}
			for _, b := range m.nodes {
				if b != a && !up[b.spec.node] {
					ok = false
				}
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("peer links not up after 10s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Close stops the layers, then the sidecars.
func (m *mesh) Close() {
	for i := len(m.stops) - 1; i >= 0; i-- {
		m.stops[i]()
	}
	m.stops = nil
}
