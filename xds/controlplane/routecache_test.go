package controlplane

import (
	"slices"
	"testing"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/xds"
)

func testRoute(topic, node string) *agpv1.TopicRoute {
	return &agpv1.TopicRoute{Topic: topic, Endpoints: []*agpv1.RouteEndpoint{{NodeId: node, Address: "127.0.0.1:1", Status: agpv1.RouteEndpoint_STATUS_ACTIVE}}}
}

func deltaReq(nonce string) *discovery.DeltaDiscoveryRequest {
	return &discovery.DeltaDiscoveryRequest{TypeUrl: xds.TypeURL, ResponseNonce: nonce}
}

// recv returns the response waiting on ch, or nil.
func recv(t *testing.T, ch chan cachev3.DeltaResponse) *discovery.DeltaDiscoveryResponse {
	t.Helper()
	select {
	case r := <-ch:
		resp, err := r.GetDeltaDiscoveryResponse()
		if err != nil {
			t.Fatal(err)
		}
		return resp
	default:
		return nil
	}
}

func names(resp *discovery.DeltaDiscoveryResponse) []string {
	var out []string
	for _, r := range resp.GetResources() {
		out = append(out, r.GetName())
	}
	slices.Sort(out)
	return out
}

func routes(kv ...string) map[string]types.Resource {
	m := map[string]types.Resource{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = testRoute(kv[i], kv[i+1])
	}
	return m
}

func TestRouteCacheNamedWatch(t *testing.T) {
	c := NewRouteCache(xds.TypeURL, "p-")
	if _, err := c.UpdateResources(routes("a/b/c", "n1", "x/y/z", "n1"), nil); err != nil {
		t.Fatal(err)
	}
	ch := make(chan cachev3.DeltaResponse, 2)
	sub := stream.NewDeltaSubscription([]string{"a/b/c", "a/b/missing"}, nil, nil, false)

	// Behind: answered at once with the subscribed resource only.
	cancel, err := c.CreateDeltaWatch(deltaReq(""), sub, ch)
	if err != nil || cancel != nil {
		t.Fatalf("immediate answer: cancel %v err %v", cancel != nil, err)
	}
	r := <-ch
	resp, _ := r.GetDeltaDiscoveryResponse()
	if got := names(resp); !slices.Equal(got, []string{"a/b/c"}) || resp.GetTypeUrl() != xds.TypeURL || resp.GetSystemVersionInfo() != "p-1" {
		t.Fatalf("first response %v", resp)
	}
	if v := c.Version("a/b/c"); v == "" || resp.GetResources()[0].GetVersion() != v || r.GetNextVersionMap()["a/b/c"] != v {
		t.Fatalf("versions: cache %q response %q next %v", v, resp.GetResources()[0].GetVersion(), r.GetNextVersionMap())
	}
	sub.SetReturnedResources(r.GetNextVersionMap())

	// Up to date: the watch waits; a change to another resource does not
	// wake it; the same content again does not either.
	cancel, err = c.CreateDeltaWatch(deltaReq("1"), sub, ch)
	if err != nil || cancel == nil {
		t.Fatalf("open watch: %v", err)
	}
	if _, err := c.UpdateResources(routes("x/y/z", "n2", "a/b/c", "n1"), nil); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, ch); got != nil {
		t.Fatalf("unexpected response %v", got)
	}
	if c.NumWatches() != 1 {
		t.Fatalf("watches %d, want 1", c.NumWatches())
	}

	// A change answers the watch and closes it.
	if _, err := c.UpdateResources(routes("a/b/c", "n2"), nil); err != nil {
		t.Fatal(err)
	}
	got := recv(t, ch)
	if got == nil || !slices.Equal(names(got), []string{"a/b/c"}) || got.GetResources()[0].GetResource().GetTypeUrl() != xds.TypeURL {
		t.Fatalf("update response %v", got)
	}
	if c.NumWatches() != 0 {
		t.Fatalf("answered watch still tracked")
	}
	cancel() // idempotent after the answer
	sub.SetReturnedResources(map[string]string{"a/b/c": got.GetResources()[0].GetVersion()})

	// A removal is sent as such; cancel stops notifications.
	cancel, _ = c.CreateDeltaWatch(deltaReq("2"), sub, ch)
	if _, err := c.UpdateResources(nil, []string{"a/b/c"}); err != nil {
		t.Fatal(err)
	}
	got = recv(t, ch)
	if got == nil || len(got.GetResources()) != 0 || !slices.Equal(got.GetRemovedResources(), []string{"a/b/c"}) {
		t.Fatalf("removal response %v", got)
	}
	sub.SetReturnedResources(map[string]string{})
	cancel, _ = c.CreateDeltaWatch(deltaReq("3"), sub, ch)
	cancel()
	if _, err := c.UpdateResources(routes("a/b/c", "n3"), nil); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, ch); got != nil {
		t.Fatalf("cancelled watch answered: %v", got)
	}
}

func TestRouteCacheSharesResources(t *testing.T) {
	c := NewRouteCache(xds.TypeURL, "p-")
	chs := []chan cachev3.DeltaResponse{make(chan cachev3.DeltaResponse, 1), make(chan cachev3.DeltaResponse, 1)}
	for _, ch := range chs {
		if _, err := c.CreateDeltaWatch(deltaReq(""), stream.NewDeltaSubscription([]string{"a/b/c"}, nil, nil, false), ch); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.UpdateResources(routes("a/b/c", "n1"), nil); err != nil {
		t.Fatal(err)
	}
	r0, r1 := recv(t, chs[0]), recv(t, chs[1])
	if r0 == nil || r1 == nil || r0 == r1 {
		t.Fatalf("want one response per stream: %v %v", r0, r1)
	}
	if r0.GetResources()[0] != r1.GetResources()[0] {
		t.Fatal("the resource was not shared between streams")
	}
}

func TestRouteCacheWildcardAndUnsubscribe(t *testing.T) {
	c := NewRouteCache(xds.TypeURL, "p-")
	ch := make(chan cachev3.DeltaResponse, 1)
	wild := stream.NewDeltaSubscription([]string{xds.WildcardName}, nil, nil, false)
	if _, err := c.CreateDeltaWatch(deltaReq(""), wild, ch); err != nil {
		t.Fatal(err)
	}
	r := <-ch // a first wildcard request is answered even when empty
	if resp, _ := r.GetDeltaDiscoveryResponse(); len(resp.GetResources()) != 0 {
		t.Fatalf("empty first response %v", resp)
	}
	wild.SetReturnedResources(r.GetNextVersionMap())
	if _, err := c.CreateDeltaWatch(deltaReq("1"), wild, ch); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateResources(routes("a/b/c", "n1", "d/e/f", "n1"), nil); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, ch); got == nil || !slices.Equal(names(got), []string{"a/b/c", "d/e/f"}) {
		t.Fatalf("wildcard update %v", got)
	}

	// Initial versions that match are not resent; a known resource that is
	// no longer subscribed is forgotten (so a new subscription resends it).
	v := c.Version("a/b/c")
	sub := stream.NewDeltaSubscription([]string{"a/b/c"}, nil, map[string]string{"a/b/c": v}, false)
	cancel, err := c.CreateDeltaWatch(deltaReq(""), sub, ch)
	if err != nil || cancel == nil || recv(t, ch) != nil {
		t.Fatalf("up-to-date initial versions answered (err %v)", err)
	}
	cancel()
	other := stream.NewDeltaSubscription([]string{"d/e/f"}, nil, map[string]string{"a/b/c": v}, false)
	if _, err := c.CreateDeltaWatch(deltaReq(""), other, ch); err != nil {
		t.Fatal(err)
	}
	r = <-ch
	resp, _ := r.GetDeltaDiscoveryResponse()
	if !slices.Equal(resp.GetRemovedResources(), []string{"a/b/c"}) || !slices.Equal(names(resp), []string{"d/e/f"}) || len(r.GetNextVersionMap()) != 1 {
		t.Fatalf("known-but-unsubscribed response %v next %v", resp, r.GetNextVersionMap())
	}

	if _, err := c.CreateDeltaWatch(&discovery.DeltaDiscoveryRequest{TypeUrl: "other"}, sub, ch); err == nil {
		t.Fatal("other type URL accepted")
	}
	if _, err := c.CreateWatch(&cachev3.Request{TypeUrl: xds.TypeURL}, sub, nil); err == nil {
		t.Fatal("state of the world accepted")
	}
	if _, err := c.UpdateResources(map[string]types.Resource{"a/b/c": nil}, nil); err == nil {
		t.Fatal("nil resource accepted")
	}
}
