package controlplane

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
)

func TestMemoryStore(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	check := func(got []string, err error, want ...string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("changed %v, want %v", got, want)
		}
	}
	ch, err := s.PutNode(ctx, NodeRecord{NodeID: "b", Address: "h:2", Status: agpv1.RouteEndpoint_STATUS_ACTIVE, Topics: []string{"x", "y"}})
	check(ch, err, "x", "y")
	ch, err = s.PutNode(ctx, NodeRecord{NodeID: "a", Address: "h:1", Status: agpv1.RouteEndpoint_STATUS_ACTIVE, Topics: []string{"x"}})
	check(ch, err, "x")
	r, _ := s.Route(ctx, "x")
	if len(r.Endpoints) != 2 || r.Endpoints[0].NodeId != "a" || r.Endpoints[1].NodeId != "b" {
		t.Fatalf("route x %v: want a, b sorted", r)
	}
	// Same table again: nothing changes.
	ch, err = s.PutNode(ctx, NodeRecord{NodeID: "a", Address: "h:1", Status: agpv1.RouteEndpoint_STATUS_ACTIVE, Topics: []string{"x"}})
	check(ch, err)
	// New address: every topic of the node changes.
	ch, err = s.PutNode(ctx, NodeRecord{NodeID: "b", Address: "h:3", Status: agpv1.RouteEndpoint_STATUS_ACTIVE, Topics: []string{"y", "z"}})
	check(ch, err, "x", "y", "z")
	ch, err = s.UpdateTopics(ctx, "a", []string{"z", "x"}, []string{"nope"})
	check(ch, err, "z")
	ch, err = s.UpdateTopics(ctx, "a", nil, []string{"x"})
	check(ch, err, "x")
	if r, _ := s.Route(ctx, "x"); r != nil {
		t.Fatalf("route x should be gone: %v", r)
	}
	ch, err = s.SetStatus(ctx, "b", agpv1.RouteEndpoint_STATUS_PENDING_WITHDRAWAL)
	check(ch, err, "y", "z")
	ch, err = s.SetStatus(ctx, "b", agpv1.RouteEndpoint_STATUS_PENDING_WITHDRAWAL)
	check(ch, err)
	if _, err := s.UpdateTopics(ctx, "nobody", []string{"x"}, nil); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("unknown node: %v", err)
	}
	ch, err = s.DeleteNode(ctx, "b")
	check(ch, err, "y", "z")
	routes, _ := s.Routes(ctx)
	if len(routes) != 1 || routes[0].Topic != "z" || len(routes[0].Endpoints) != 1 {
		t.Fatalf("routes %v", routes)
	}
	nodes, _ := s.Nodes(ctx)
	if len(nodes) != 1 || nodes[0].NodeID != "a" || !slices.Equal(nodes[0].Topics, []string{"z"}) {
		t.Fatalf("nodes %+v", nodes)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bad := DefaultConfig()
	bad.Listen = "18000"
	bad.GracePeriod = -1
	bad.MaxTopicsPerNode = 0
	err := bad.Validate()
	for _, want := range []string{"AGW_CP_LISTEN \"18000\"", "AGW_CP_GRACE_PERIOD", "AGW_CP_MAX_TOPICS_PER_NODE"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want mention of %s", err, want)
		}
	}
	if _, err := New(bad); err == nil {
		t.Fatal("New accepted a bad config")
	}
}

// TestMemoryStoreMatchesModel applies random tables and updates to the store
// and to a plain model (node -> topic set), and checks the changed topics,
// the node records and the routes after every step.
func TestMemoryStoreMatchesModel(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	s := NewMemoryStore()
	model := map[string]map[string]bool{}
	topic := func() string { return fmt.Sprintf("t/%d", r.IntN(30)) }
	topicsOf := func(k int) []string {
		var out []string
		for range k {
			out = append(out, topic())
		}
		return out
	}
	for step := range 3000 {
		node := fmt.Sprintf("n%d", r.IntN(6))
		before := maps.Clone(model[node])
		var changed []string
		var err error
		switch r.IntN(3) {
		case 0:
			ts := topicsOf(r.IntN(12))
			changed, err = s.PutNode(ctx, NodeRecord{NodeID: node, Address: "h:1", Status: agpv1.RouteEndpoint_STATUS_ACTIVE, Topics: ts})
			model[node] = map[string]bool{}
			for _, t := range ts {
				model[node][t] = true
			}
		default:
			add, remove := topicsOf(r.IntN(5)), topicsOf(r.IntN(5))
			changed, err = s.UpdateTopics(ctx, node, add, remove)
			if before == nil {
				if !errors.Is(err, ErrUnknownNode) {
					t.Fatalf("step %d: update of unknown node: %v", step, err)
				}
				continue
			}
			for _, tp := range add {
				model[node][tp] = true
			}
			for _, tp := range remove {
				delete(model[node], tp)
			}
		}
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		var want []string
		for tp := range model[node] {
			if !before[tp] {
				want = append(want, tp)
			}
		}
		for tp := range before {
			if !model[node][tp] {
				want = append(want, tp)
			}
		}
		slices.Sort(want)
		if !slices.IsSorted(changed) || !slices.Equal(slices.Compact(slices.Clone(changed)), want) {
			t.Fatalf("step %d: changed %v, want %v", step, changed, want)
		}
		rec, ok, _ := s.Node(ctx, node)
		if !ok || !slices.Equal(rec.Topics, slices.Sorted(maps.Keys(model[node]))) {
			t.Fatalf("step %d: node %s topics %v, want %v", step, node, rec.Topics, slices.Sorted(maps.Keys(model[node])))
		}
	}
	routes, _ := s.Routes(ctx)
	routed := map[string]bool{}
	for _, ts := range model {
		for tp := range ts {
			routed[tp] = true
		}
	}
	if len(routes) != len(routed) {
		t.Fatalf("%d routes, want %d", len(routes), len(routed))
	}
	for _, rt := range routes {
		var want []string
		for n, ts := range model {
			if ts[rt.Topic] {
				want = append(want, n)
			}
		}
		slices.Sort(want)
		var got []string
		for _, ep := range rt.Endpoints {
			got = append(got, ep.NodeId)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("route %s: %v, want %v", rt.Topic, got, want)
		}
	}
}
