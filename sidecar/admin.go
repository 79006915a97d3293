package sidecar

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminMux returns the admin server's mux, so callers can add handlers
// (e.g. /debug/routes). Mutating handlers should be POST and check
// LocalOnly.
func (n *Node) AdminMux() *http.ServeMux { return n.adminMux }

// HandleAdmin registers handler on the admin server.
func (n *Node) HandleAdmin(pattern string, handler http.Handler) { n.adminMux.Handle(pattern, handler) }

func (n *Node) installAdmin() {
	mux := n.adminMux
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !n.IsReady() {
			w.WriteHeader(http.StatusServiceUnavailable)
			if n.draining.Load() {
				_, _ = w.Write([]byte("draining\n"))
			} else {
				_, _ = w.Write([]byte("starting\n"))
			}
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /debug/connections", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, n.Connections())
	})
	mux.HandleFunc("GET /debug/subscriptions", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, n.Subscriptions())
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Subscriptions dumps the subscription table: every topic with local
// subscribers or published by the local agent, with its local subscriber
// connections and the remote subscriber nodes the RouteSource names.
func (n *Node) Subscriptions() []SubscriptionInfo {
	local := n.subs.localSnapshot()
	topics := make([]string, 0, len(local))
	for t := range local {
		topics = append(topics, t)
	}
	n.watched.Range(func(k, _ any) bool {
		if _, ok := local[k.(string)]; !ok {
			topics = append(topics, k.(string))
		}
		return true
	})
	sort.Strings(topics)
	out := make([]SubscriptionInfo, 0, len(topics))
	for _, t := range topics {
		si := SubscriptionInfo{Topic: t, Local: local[t], Remote: []RemoteSubscriber{}}
		if si.Local == nil {
			si.Local = []LocalSubscriber{}
		}
		for _, ep := range n.routes.Endpoints(t) {
			if ep == nil || ep.NodeId == n.cfg.NodeID {
				continue
			}
			st := SubActive
			if ep.Status == agpv1.RouteEndpoint_STATUS_PENDING_WITHDRAWAL {
				st = SubPending
			} else if p := n.peerIfKnown(ep.NodeId); p != nil && !p.usable() {
				st = SubWithdrawn
			}
			si.Remote = append(si.Remote, RemoteSubscriber{NodeID: ep.NodeId, Address: ep.Address, Status: st})
		}
		slices.SortFunc(si.Remote, func(a, b RemoteSubscriber) int {
			if a.NodeID < b.NodeID {
				return -1
			}
			return 1
		})
		out = append(out, si)
	}
	return out
}

func (n *Node) peerIfKnown(id string) *peer {
	n.peersMu.RLock()
	defer n.peersMu.RUnlock()
	return n.peers[id]
}

// LocalOnly wraps h so that only loopback clients may call it; use it for
// mutating admin handlers.
func LocalOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isLoopbackHost(r.RemoteAddr) {
			http.Error(w, "forbidden: admin mutations are accepted from localhost only", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
