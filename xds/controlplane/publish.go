package controlplane

import (
	"context"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
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
	var del []string
	for _, t := range changed {
		r, err := s.store.Route(ctx, t)
		if err != nil {
			s.log.Error("route lookup failed", "topic", t, "err", err)
			continue
		}
		if r == nil {
			del = append(del, t)
			continue
		}
		update[t] = r
	}
	// The change records are written before any stream is notified (ACKs
	// can only follow), and changesMu is not held across the notification:
	// stream goroutines take it in their callbacks.
	record := func(versions map[string]string) {
		now := time.Now()
		s.changesMu.Lock()
		for t, v := range versions {
			s.changes[t] = changeRecord{version: v, at: now}
		}
		s.changesMu.Unlock()
	}
	if _, err := s.cache.update(update, del, record); err != nil {
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
	s.changesMu.RLock()
	defer s.changesMu.RUnlock()
	c, ok := s.changes[topic]
	return c, ok
}
