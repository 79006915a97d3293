package e2ee

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/agwproject/agw/internal/identity"
)

// AdmissionResult is the time to admit one more sidecar into a channel of
// Size members (MeasureAdmission).
type AdmissionResult struct {
	Size int
	// Joined: from JoinChannel until the new member holds the group.
	Joined time.Duration
	// Applied: until every existing member applied the commit too.
	Applied time.Duration
}

// MeasureAdmission builds, for each size, a channel of that many Managers
// (real MLS, real X.509 identities from a throwaway CA) over an in-memory
// transport, then measures the admission of one more. It is the benchmark
// harness behind `agw bench` (MLS column); it is not used by a sidecar.
func MeasureAdmission(ctx context.Context, sizes []int) ([]AdmissionResult, error) {
	var out []AdmissionResult
	for _, n := range sizes {
		if n < 1 {
			return nil, fmt.Errorf("channel size %d: must be at least 1", n)
		}
		r, err := measureAdmission(ctx, n)
		if err != nil {
			return out, fmt.Errorf("channel of %d: %w", n, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func measureAdmission(ctx context.Context, n int) (AdmissionResult, error) {
	ca, err := identity.NewCA("bench.example")
	if err != nil {
		return AdmissionResult{}, err
	}
	net := newMemNet()
	defer net.close()
	const topic = "bench/mls/channel"
	ids := make([]string, n+1)
	for i := range ids {
		ids[i] = fmt.Sprintf("node-%04d", i)
	}
	ros := &staticRoster{parts: ids[:n]}
	cfg := DefaultConfig()
	cfg.RetryInterval, cfg.JoinTimeout, cfg.EpochWait = 50*time.Millisecond, 10*time.Minute, 5*time.Second
	var ms []*Manager
	defer func() {
		for _, m := range ms {
			_ = m.Close()
		}
	}()
	for _, id := range ids {
		src, err := ca.MemorySource(identity.MustParseID("spiffe://bench.example/ns/bench/sa/"+id), time.Hour)
		if err != nil {
			return AdmissionResult{}, err
		}
		defer src.Close()
		m, err := New(cfg, id, src, net.endpoint(id), WithRoster(ros))
		if err != nil {
			return AdmissionResult{}, err
		}
		net.attach(m)
		ms = append(ms, m)
	}
	// Members join one by one (the committer adds each in its own commit).
	for _, m := range ms[:n] {
		if err := m.JoinChannel(ctx, topic); err != nil {
			return AdmissionResult{}, err
		}
	}
	epoch := func(m *Manager) uint64 {
		m.mu.Lock()
		gr := m.byTopic[topic]
		m.mu.Unlock()
		if gr == nil {
			return 0
		}
		gr.mu.Lock()
		defer gr.mu.Unlock()
		return gr.g.Epoch()
	}
	want := uint64(n - 1)
	if err := pollUntil(ctx, func() bool {
		for _, m := range ms[:n] {
			if epoch(m) != want {
				return false
			}
		}
		return true
	}); err != nil {
		return AdmissionResult{}, errors.New("channel did not settle")
	}
	ros.set(ids)
	t0 := time.Now()
	if err := ms[n].JoinChannel(ctx, topic); err != nil {
		return AdmissionResult{}, err
	}
	r := AdmissionResult{Size: n, Joined: time.Since(t0)}
	if err := pollUntil(ctx, func() bool {
		for _, m := range ms[:n] {
			if epoch(m) != want+1 {
				return false
			}
		}
		return true
	}); err != nil {
		return r, errors.New("members did not apply the commit")
	}
	r.Applied = time.Since(t0)
	return r, nil
}

func pollUntil(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

type staticRoster struct {
	mu    sync.Mutex
	parts []string
}

func (r *staticRoster) set(p []string) { r.mu.Lock(); r.parts = p; r.mu.Unlock() }
func (r *staticRoster) Participants(string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.parts)
}
func (r *staticRoster) Gone(string) bool { return false }

// memNet is an in-memory Transport: one ordered queue and worker per node.
type memNet struct {
	mu     sync.Mutex
	cond   *sync.Cond
	nodes  map[string]*Manager
	queues map[string][]memMsg
	closed bool
	wg     sync.WaitGroup
}

type memMsg struct {
	from string
	b    []byte
}

func newMemNet() *memNet {
	n := &memNet{nodes: map[string]*Manager{}, queues: map[string][]memMsg{}}
	n.cond = sync.NewCond(&n.mu)
	return n
}

func (n *memNet) endpoint(from string) Transport {
	return TransportFunc(func(_ context.Context, to string, msg []byte) error {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.closed {
			return errors.New("closed")
		}
		n.queues[to] = append(n.queues[to], memMsg{from: from, b: slices.Clone(msg)})
		n.cond.Broadcast()
		return nil
	})
}

func (n *memNet) attach(m *Manager) {
	n.mu.Lock()
	n.nodes[m.node] = m
	n.mu.Unlock()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for {
			n.mu.Lock()
			for !n.closed && len(n.queues[m.node]) == 0 {
				n.cond.Wait()
			}
			if n.closed {
				n.mu.Unlock()
				return
			}
			msg := n.queues[m.node][0]
			n.queues[m.node] = n.queues[m.node][1:]
			n.mu.Unlock()
			_ = m.HandleHandshake(context.Background(), msg.from, msg.b)
		}
	}()
}

func (n *memNet) close() {
	n.mu.Lock()
	n.closed = true
	n.cond.Broadcast()
	n.mu.Unlock()
	n.wg.Wait()
}
