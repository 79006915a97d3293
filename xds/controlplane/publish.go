package controlplane

import (
	"context"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
)

// changeRecord remembers when a topic's route last changed and the resource
// version that change produced ("" for a removal), to measure convergence.
type changeRecord struct {
	version string
	at      time.Time
}

// publishLocked rebuilds the routes of changed topics from the store and
// pushes them to the xDS cache in one update. Called with indexMu held.
func (s *Server) publishLocked(ctx context.Context, changed []string) {
	if len(changed) == 0 {
		return
	}
	update := make(map[string]types.Resource, len(changed))
	versions := make(map[string]string, len(changed))
	var del []string
	for _, t := range changed {
		r, err := s.store.Route(ctx, t)
		if err != nil {
			s.log.Error("route lookup failed", "topic", t, "err", err)
			continue
		}
		if r == nil {
			del = append(del, t)
			versions[t] = ""
			continue
		}
		update[t] = r
		// Same deterministic marshalling and hash as the cache's resource
		// versions, so an ACK can be matched to this change.
		if b, err := cachev3.MarshalResource(r); err == nil {
			versions[t] = cachev3.HashResource(b)
		}
	}
	// Record before the cache update (ACKs can only follow it), and without
	// holding changesMu across it: the cache hands responses to stream
	// goroutines whose callbacks take changesMu.
	now := time.Now()
	s.changesMu.Lock()
	for t, v := range versions {
		s.changes[t] = changeRecord{version: v, at: now}
	}
	s.changesMu.Unlock()
	if err := s.cache.UpdateResources(update, del); err != nil {
		s.log.Error("xds cache update failed", "err", err)
	}
	s.metrics.routes.Set(float64(s.cache.NumResources()))
}

// pruneChanges forgets change records older than age.
func (s *Server) pruneChanges(age time.Duration) {
	s.changesMu.Lock()
	defer s.changesMu.Unlock()
	cut := time.Now().Add(-age)
	for t, c := range s.changes {
		if c.at.Before(cut) {
			delete(s.changes, t)
		}
	}
}

// changeFor returns the change record of topic.
func (s *Server) changeFor(topic string) (changeRecord, bool) {
	s.changesMu.Lock()
	defer s.changesMu.Unlock()
	c, ok := s.changes[topic]
	return c, ok
}
