package client

import (
	"encoding/json"
	"net/http"
	"time"
)

// debugEndpoint is an endpoint as /debug/routes shows it.
type debugEndpoint struct {
	NodeID  string `json:"node_id"`
	Address string `json:"address"`
	Status  string `json:"status"`
}

type debugRoute struct {
	Name       string          `json:"name"`
	Version    string          `json:"version,omitempty"`
	Watched    bool            `json:"watched"`
	Endpoints  []debugEndpoint `json:"endpoints"`
	AckedAt    time.Time       `json:"acked_at,omitzero"`
	LastNACK   string          `json:"last_nack,omitempty"`
	LastNACKAt time.Time       `json:"last_nack_at,omitzero"`
	BadVersion string          `json:"bad_version,omitempty"`
}

// DebugHandler serves the client's status and routes as JSON (for the
// sidecar's /debug/routes): {"status": Status, "routes": [...]}.
func (c *Client) DebugHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		rs := c.DebugRoutes()
		out := struct {
			Status Status       `json:"status"`
			Routes []debugRoute `json:"routes"`
		}{Status: c.Status(), Routes: make([]debugRoute, 0, len(rs))}
		for _, r := range rs {
			d := debugRoute{Name: r.Name, Version: r.Version, Watched: r.Watched, AckedAt: r.AckedAt, LastNACK: r.LastNACK, LastNACKAt: r.LastNACKAt, BadVersion: r.BadVersion, Endpoints: []debugEndpoint{}}
			for _, ep := range r.Endpoints {
				d.Endpoints = append(d.Endpoints, debugEndpoint{NodeID: ep.GetNodeId(), Address: ep.GetAddress(), Status: ep.GetStatus().String()})
			}
			out.Routes = append(out.Routes, d)
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	})
}
