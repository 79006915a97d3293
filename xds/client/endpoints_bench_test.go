package client

import (
	"fmt"
	"testing"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
)

// BenchmarkEndpoints is the sidecar's hot path: a lock-free lookup.
func BenchmarkEndpoints(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Server, cfg.NodeID, cfg.AdvertiseAddress = "127.0.0.1:1", "node-a", "127.0.0.1:2"
	c, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	rt := routeTable{}
	for i := range 10000 {
		rt[fmt.Sprintf("acme/prod/svc-%d", i)] = []*agpv1.RouteEndpoint{{NodeId: "node-b", Address: "10.0.0.2:46358", Status: agpv1.RouteEndpoint_STATUS_ACTIVE}}
	}
	c.routes.Store(&rt)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Watch("acme/prod/svc-42")
			if len(c.Endpoints("acme/prod/svc-42")) != 1 {
				b.Fatal("missing route")
			}
		}
	})
}
