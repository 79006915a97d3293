package e2ee

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

const topic = "org/ns/news"

// joinAll has every manager join topic concurrently.
func joinAll(t *testing.T, ms ...*Manager) {
	t.Helper()
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make([]error, len(ms))
	for i, m := range ms {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = m.JoinChannel(ctx, topic) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// converged waits until every manager holds the same group of topic with
// exactly want as members, in the same epoch.
func converged(t *testing.T, want []string, ms ...*Manager) GroupInfo {
	t.Helper()
	var g0 GroupInfo
	defer func() {
		if t.Failed() {
			for _, m := range ms {
				m.mu.Lock()
				var pend []string
				for k, r := range m.pendCh {
					pend = append(pend, fmt.Sprintf("%s(idle %v)", k, r.idle))
				}
				m.mu.Unlock()
				t.Logf("%s: %+v pending %v events %v", m.node, m.Groups(), pend, dumpEvents(m))
			}
		}
	}()
	eventually(t, fmt.Sprintf("channel with members %v", want), func() bool {
		for i, m := range ms {
			g, ok := groupOf(m, topic)
			if !ok || !slices.Equal(memberNodes(g), want) {
				return false
			}
			if i == 0 {
				g0 = g
			} else if g.GroupID != g0.GroupID || g.Epoch != g0.Epoch {
				return false
			}
		}
		return true
	})
	return g0
}

// broadcast seals at from and checks every other manager opens it.
func broadcast(t *testing.T, from *Manager, msg string, to ...*Manager) {
	t.Helper()
	ctx := ctxT(t)
	ct, err := from.SealChannel(ctx, topic, nil, []byte(topic), []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range to {
		got, err := m.Open(ctx, from.node, []byte(topic), ct)
		if err != nil || string(got) != msg {
			t.Fatalf("%s opens %s's message: %q %v", m.node, from.node, got, err)
		}
	}
}

func TestChannelJoinAndBroadcast(t *testing.T) {
	f := newFixture(t)
	nodes := []string{"n1", "n2", "n3", "n4"}
	f.roster.set(topic, nodes...)
	var ms []*Manager
	for _, n := range nodes {
		ms = append(ms, f.manager(n))
	}
	joinAll(t, ms...)
	g := converged(t, nodes, ms...)
	if g.Committer != "n1" {
		t.Fatalf("committer %q", g.Committer)
	}
	for _, m := range ms {
		var others []*Manager
		for _, o := range ms {
			if o != m {
				others = append(others, o)
			}
		}
		broadcast(t, m, "from "+m.node, others...)
	}
}

// A lower node joins later: it is added and becomes the committer.
func TestChannelLateLowerNode(t *testing.T) {
	f := newFixture(t)
	f.roster.set(topic, "n2", "n3")
	b, c := f.manager("n2"), f.manager("n3")
	joinAll(t, b, c)
	converged(t, []string{"n2", "n3"}, b, c)
	f.roster.set(topic, "n1", "n2", "n3")
	a := f.manager("n1")
	joinAll(t, a)
	g := converged(t, []string{"n1", "n2", "n3"}, a, b, c)
	if g.Committer != "n1" {
		t.Fatalf("committer %q", g.Committer)
	}
	broadcast(t, c, "hi", a, b)
}

// Two groups made without knowing of each other merge into the one with
// the lower committer.
func TestChannelForkMerges(t *testing.T) {
	f := newFixture(t)
	a, b := f.manager("n1"), f.manager("n2")
	joinAll(t, a, b) // empty roster: each creates its own
	ga, _ := groupOf(a, topic)
	gb, _ := groupOf(b, topic)
	if ga.GroupID == gb.GroupID {
		t.Fatal("expected two groups")
	}
	f.roster.set(topic, "n1", "n2")
	converged(t, []string{"n1", "n2"}, a, b)
	broadcast(t, b, "merged", a)
}

func TestChannelRemovedMemberCannotDecrypt(t *testing.T) {
	f := newFixture(t)
	nodes := []string{"n1", "n2", "n3"}
	f.roster.set(topic, nodes...)
	a, b, c := f.manager("n1"), f.manager("n2"), f.manager("n3")
	joinAll(t, a, b, c)
	converged(t, nodes, a, b, c)
	broadcast(t, a, "before", b, c)

	// n3's lease ends: the committer removes it. The commit to n3 is lost,
	// so n3 keeps its old epoch and tries to read what follows.
	f.hub.mu.Lock()
	f.hub.dropFn = func(from, to string, e Envelope) bool { return to == "n3" && e.Kind == KindCommit }
	f.hub.mu.Unlock()
	f.roster.setGone("n3")
	converged(t, []string{"n1", "n2"}, a, b)
	ct, err := a.SealChannel(ctxT(t), topic, nil, []byte(topic), []byte("after removal"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Open(ctxT(t), "n1", []byte(topic), ct); err != nil || string(got) != "after removal" {
		t.Fatalf("n2: %q %v", got, err)
	}
	if got, err := c.Open(ctxT(t), "n1", []byte(topic), ct); !errors.Is(err, ErrRefused) {
		t.Fatalf("removed n3 opened %q (%v)", got, err)
	}
	if events(c, EventFutureEpoch) != 1 {
		t.Fatal("n3's refusal not counted")
	}
	// A message n3 seals in its stale epoch is refused by the others.
	old, err := c.SealChannel(ctxT(t), topic, nil, []byte(topic), []byte("from the removed"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(ctxT(t), "n3", []byte(topic), old); !errors.Is(err, ErrRefused) {
		t.Fatalf("message of a removed member accepted: %v", err)
	}
}

func TestChannelLeave(t *testing.T) {
	f := newFixture(t)
	nodes := []string{"n1", "n2", "n3"}
	f.roster.set(topic, nodes...)
	a, b, c := f.manager("n1"), f.manager("n2"), f.manager("n3")
	joinAll(t, a, b, c)
	converged(t, nodes, a, b, c)
	f.roster.set(topic, "n1", "n2")
	c.LeaveChannel(ctxT(t), topic)
	converged(t, []string{"n1", "n2"}, a, b)
	if _, ok := groupOf(c, topic); ok {
		t.Fatal("n3 still holds the group")
	}
}

// The committer disappears: the next lowest member removes it and
// commits from then on, and nobody forks.
func TestChannelCommitterHandover(t *testing.T) {
	f := newFixture(t)
	nodes := []string{"n1", "n2", "n3"}
	f.roster.set(topic, nodes...)
	a, b, c := f.manager("n1"), f.manager("n2"), f.manager("n3")
	joinAll(t, a, b, c)
	converged(t, nodes, a, b, c)
	_ = a.Close()
	f.roster.set(topic, "n2", "n3", "n4")
	f.roster.setGone("n1")
	g := converged(t, []string{"n2", "n3"}, b, c)
	if g.Committer != "n2" {
		t.Fatalf("successor %q", g.Committer)
	}
	d := f.manager("n4")
	joinAll(t, d)
	converged(t, []string{"n2", "n3", "n4"}, b, c, d)
	broadcast(t, d, "new member", b, c)
}

func TestChannelForeignCANeverAdmitted(t *testing.T) {
	f := newFixture(t)
	f.roster.set(topic, "n1", "n2", "n3")
	a, b := f.manager("n1"), f.manager("n2")
	other, err := newCA("example.org")
	if err != nil {
		t.Fatal(err)
	}
	evil := f.managerWith("n3", f.source(other, "n3"), func(c *Config) { c.JoinTimeout = 500 * time.Millisecond })
	joinAll(t, a, b)
	if err := evil.JoinChannel(ctxT(t), topic); err == nil {
		// It may create its own group after waiting; it must never be in ours.
		if g, _ := groupOf(evil, topic); slices.Contains(memberNodes(g), "n1") {
			t.Fatal("foreign sidecar admitted")
		}
	}
	eventually(t, "credential refusals counted", func() bool { return events(a, EventCredential) > 0 })
	g := converged(t, []string{"n1", "n2"}, a, b)
	if slices.Contains(memberNodes(g), "n3") {
		t.Fatal("n3 admitted")
	}
}
