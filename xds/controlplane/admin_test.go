package controlplane_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agwproject/agw/xds/controlplane"
	"github.com/agwproject/agw/xds/xdstest"
)

func TestAdminEndpoints(t *testing.T) {
	cfg := xdstest.Config()
	cfg.Warmup = 300 * time.Millisecond
	cp := xdstest.StartControlPlane(t, cfg)
	if resp, err := http.Get(cp.AdminURL + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz during warm-up: %v %v, want 503", resp, err)
	} else {
		resp.Body.Close()
	}
	if got := get(t, cp.AdminURL+"/healthz"); got != "ok\n" {
		t.Fatalf("healthz %q", got)
	}
	xdstest.Eventually(t, wait, "ready after warm-up", func() bool {
		resp, err := http.Get(cp.AdminURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	a := xdstest.StartClient(t, xdstest.ClientConfig(cp.Addr, "node-a"))
	b := xdstest.StartClient(t, xdstest.ClientConfig(cp.Addr, "node-b"))
	b.Watch("acme/prod/x")
	xdstest.Eventually(t, wait, "node-b's subscription reaches the control plane", func() bool {
		for _, n := range cp.DebugNodes() {
			if n.NodeID == "node-b" && len(n.Streams) == 1 && len(n.Streams[0].Subscribed) == 1 {
				return true
			}
		}
		return false
	})
	a.TopicAdded("acme/prod/x")
	xdstest.Eventually(t, wait, "route", func() bool { return len(b.Endpoints("acme/prod/x")) == 1 })

	var routes []controlplane.DebugRoute
	if err := json.Unmarshal([]byte(get(t, cp.AdminURL+"/debug/routes")), &routes); err != nil {
		t.Fatal(err)
	}
	if len(routes) != 1 || routes[0].Topic != "acme/prod/x" || routes[0].Endpoints[0].NodeID != "node-a" || routes[0].Endpoints[0].Status != "STATUS_ACTIVE" {
		t.Fatalf("debug routes %+v", routes)
	}
	xdstest.Eventually(t, wait, "node-b's ACK recorded", func() bool {
		var nodes []controlplane.DebugNode
		if err := json.Unmarshal([]byte(get(t, cp.AdminURL+"/debug/nodes")), &nodes); err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if n.NodeID == "node-b" && n.Mirror == "connected" && len(n.Streams) == 1 && n.Streams[0].Acked["acme/prod/x"] != "" && n.Streams[0].Subscribed[0] == "acme/prod/x" {
				return true
			}
		}
		return false
	})
	m := get(t, cp.AdminURL+"/metrics")
	for _, want := range []string{"agw_cp_connected_nodes 2", "agw_cp_xds_streams 2", "agw_cp_convergence_seconds_count 1", "agw_cp_routes 1", "go_goroutines"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics miss %q:\n%s", want, grepLines(m, "agw_cp"))
		}
	}
	if !strings.Contains(m, "agw_cp_xds_acks_total") || !strings.Contains(m, "agw_cp_xds_pushes_total") {
		t.Error("metrics miss ACK or push counters")
	}
	// A node that subscribes after the change is not counted as converging.
	c := xdstest.StartClient(t, xdstest.ClientConfig(cp.Addr, "node-c"))
	c.Watch("acme/prod/x")
	xdstest.Eventually(t, wait, "late subscriber ACKs", func() bool {
		for _, n := range cp.DebugNodes() {
			if n.NodeID == "node-c" && len(n.Streams) == 1 && n.Streams[0].ACKs > 0 {
				return true
			}
		}
		return false
	})
	if m := get(t, cp.AdminURL+"/metrics"); !strings.Contains(m, "agw_cp_convergence_seconds_count 1") {
		t.Errorf("late subscriber counted in convergence:\n%s", grepLines(m, "convergence_seconds_count"))
	}
	heap := get(t, cp.AdminURL+"/debug/heap")
	if !strings.Contains(heap, "heap_inuse") {
		t.Fatalf("debug/heap %q", heap)
	}
}

func TestServerCloseIdempotentAndRunOnce(t *testing.T) {
	srv, err := controlplane.New(xdstest.Config())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(t.Context()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after Close: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Run after Close did not return")
	}
	if err := srv.Run(t.Context()); err == nil {
		t.Fatal("second Run accepted")
	}
	cfg := xdstest.Config()
	cfg.Listen = "256.0.0.1:0"
	srv2, err := controlplane.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv2.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "AGW_CP_LISTEN") {
		t.Fatalf("bad listen address: %v", err)
	}
}
