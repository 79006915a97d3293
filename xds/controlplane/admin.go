package controlplane

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
)

func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.isReady() {
			http.Error(w, "not ready (starting, warming up or shutting down)", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /debug/nodes", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.DebugNodes())
	})
	mux.HandleFunc("GET /debug/routes", func(w http.ResponseWriter, r *http.Request) {
		routes, err := s.store.Routes(r.Context())
		if err != nil {
			http.Error(w, "route index unavailable", http.StatusInternalServerError)
			return
		}
		out := make([]DebugRoute, 0, len(routes))
		for _, rt := range routes {
			out = append(out, debugRoute(rt))
		}
		writeJSON(w, out)
	})
	// Heap in use after a GC; loopback callers only (the benchmark uses it
	// to measure memory per node of an out-of-process control plane).
	mux.Handle("GET /debug/heap", loopbackOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		runtime.GC() // the second GC empties sync.Pool victim caches
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		writeJSON(w, map[string]uint64{"heap_inuse": ms.HeapInuse, "heap_alloc": ms.HeapAlloc, "stack_inuse": ms.StackInuse, "goroutines": uint64(runtime.NumGoroutine())})
	})))
	// Go profiles (heap, goroutine, CPU...), loopback callers only: reach
	// them with kubectl port-forward.
	mux.Handle("GET /debug/pprof/", loopbackOnly(http.HandlerFunc(pprof.Index)))
	mux.Handle("GET /debug/pprof/cmdline", loopbackOnly(http.HandlerFunc(pprof.Cmdline)))
	mux.Handle("GET /debug/pprof/profile", loopbackOnly(http.HandlerFunc(pprof.Profile)))
	mux.Handle("GET /debug/pprof/symbol", loopbackOnly(http.HandlerFunc(pprof.Symbol)))
	mux.Handle("GET /debug/pprof/trace", loopbackOnly(http.HandlerFunc(pprof.Trace)))
	return mux
}

// loopbackOnly refuses callers that are not on this host.
func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			http.Error(w, "loopback only", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// DebugRoute is one topic of /debug/routes.
type DebugRoute struct {
	Topic     string          `json:"topic"`
	Endpoints []DebugEndpoint `json:"endpoints"`
}

// DebugEndpoint is one endpoint of a DebugRoute.
type DebugEndpoint struct {
	NodeID  string `json:"node_id"`
	Address string `json:"address"`
	Status  string `json:"status"`
}

func debugRoute(r *agpv1.TopicRoute) DebugRoute {
	d := DebugRoute{Topic: r.GetTopic(), Endpoints: make([]DebugEndpoint, 0, len(r.GetEndpoints()))}
	for _, ep := range r.GetEndpoints() {
		d.Endpoints = append(d.Endpoints, DebugEndpoint{NodeID: ep.GetNodeId(), Address: ep.GetAddress(), Status: ep.GetStatus().String()})
	}
	return d
}

// DebugNode is one node of /debug/nodes: its lease (mirror) and its ADS
// streams with their subscriptions and last ACKed versions.
type DebugNode struct {
	NodeID  string        `json:"node_id"`
	Address string        `json:"address,omitempty"`
	Mirror  string        `json:"mirror"` // connected, grace, none
	Since   string        `json:"since,omitempty"`
	Topics  int           `json:"subscribed_topics"`
	Streams []DebugStream `json:"xds_streams"`
}

// DebugStream is one ADS stream of a node.
type DebugStream struct {
	StreamID   int64             `json:"stream_id"`
	Remote     string            `json:"remote"`
	Opened     string            `json:"opened"`
	Subscribed []string          `json:"subscribed"`
	Acked      map[string]string `json:"acked_versions"`
	ACKs       uint64            `json:"acks"`
	NACKs      uint64            `json:"nacks"`
	LastNACK   string            `json:"last_nack,omitempty"`
}

// DebugNodes returns what /debug/nodes serves, sorted by node id.
func (s *Server) DebugNodes() []DebugNode {
	byID := map[string]*DebugNode{}
	get := func(id string) *DebugNode {
		d := byID[id]
		if d == nil {
			d = &DebugNode{NodeID: id, Mirror: "none", Streams: []DebugStream{}}
			byID[id] = d
		}
		return d
	}
	s.indexMu.Lock()
	for id, l := range s.leases {
		d := get(id)
		d.Address = l.address
		d.Since = l.since.UTC().Format(time.RFC3339)
		if l.active {
			d.Mirror = "connected"
		} else {
			d.Mirror = "grace"
		}
	}
	s.indexMu.Unlock()
	if recs, err := s.store.Nodes(context.Background()); err == nil {
		for _, r := range recs {
			d := get(r.NodeID)
			d.Topics = len(r.Topics)
			if d.Address == "" {
				d.Address = r.Address
			}
		}
	}
	s.streamsMu.Lock()
	states := make([]*streamState, 0, len(s.streams))
	for _, st := range s.streams {
		states = append(states, st)
	}
	s.streamsMu.Unlock()
	for _, st := range states {
		st.mu.Lock()
		ds := DebugStream{StreamID: st.id, Remote: addrString(st.remote), Opened: st.opened.UTC().Format(time.RFC3339), ACKs: st.acks, NACKs: st.nacks, LastNACK: st.lastNACK, Acked: make(map[string]string, st.acked.Len())}
		for n := range st.subscribed.All() {
			ds.Subscribed = append(ds.Subscribed, n)
		}
		for n, v := range st.acked.All() {
			ds.Acked[n] = v
		}
		id := st.nodeID
		st.mu.Unlock()
		slices.Sort(ds.Subscribed)
		d := get(id)
		d.Streams = append(d.Streams, ds)
	}
	out := make([]DebugNode, 0, len(byID))
	for _, id := range sortedKeys(byID) {
		d := byID[id]
		slices.SortFunc(d.Streams, func(a, b DebugStream) int { return int(a.StreamID - b.StreamID) })
		out = append(out, *d)
	}
	return out
}
