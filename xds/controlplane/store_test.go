package controlplane

import (
	"context"
	"errors"
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
