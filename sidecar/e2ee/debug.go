package e2ee

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// GroupInfo describes one group for /debug/groups. It holds no secret.
type GroupInfo struct {
	GroupID      string       `json:"group_id"`
	Kind         string       `json:"kind"`
	Name         string       `json:"name"`
	Epoch        uint64       `json:"epoch"`
	Committer    string       `json:"committer"`
	Members      []MemberInfo `json:"members"`
	LastRotation time.Time    `json:"last_rotation"`
	Restored     bool         `json:"restored,omitempty"`
}

// MemberInfo is one member: its node id and SPIFFE id.
type MemberInfo struct {
	Leaf     uint32 `json:"leaf"`
	NodeID   string `json:"node_id"`
	Identity string `json:"identity"`
}

// Groups describes every group, sorted by kind and name.
func (m *Manager) Groups() []GroupInfo {
	groups, _ := m.snapshot()
	out := make([]GroupInfo, 0, len(groups))
	for _, gr := range groups {
		gr.mu.Lock()
		gi := GroupInfo{
			GroupID: hex.EncodeToString([]byte(gr.gid)), Kind: gr.kind.String(), Name: gr.name,
			Epoch: gr.g.Epoch(), Committer: gr.committer(), LastRotation: gr.lastRotation,
			Restored: gr.restored && gr.g.Epoch() <= gr.minEpoch,
		}
		for i, n := range gr.nodes {
			if n != "" {
				gi.Members = append(gi.Members, MemberInfo{Leaf: uint32(i), NodeID: n, Identity: gr.ids[i]})
			}
		}
		gr.mu.Unlock()
		out = append(out, gi)
	}
	slices.SortFunc(out, func(a, b GroupInfo) int {
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// DebugHandler serves Groups as JSON (GET only); the integrator mounts it
// at /debug/groups on the admin server.
func (m *Manager) DebugHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			Node   string      `json:"node_id"`
			Groups []GroupInfo `json:"groups"`
		}{m.node, m.Groups()})
	})
}
