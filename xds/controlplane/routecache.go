package controlplane

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// RouteCache is the xDS cache behind go-control-plane's delta server: one
// type URL, resources versioned by a hash of their deterministic encoding,
// as LinearCache does, but each resource version is marshalled and wrapped
// in a discovery.Resource once and that same message is shared by the
// responses of every stream (LinearCache builds a Resource and Any per
// stream), and a change notifies the interested watches without per-watch
// logging or allocation beyond the response itself. It serves delta
// watches only (agw refuses state of the world).
type RouteCache struct {
	typeURL string
	prefix  string
	// req is the request every response names (DeltaResponse.GetDeltaRequest):
	// go-control-plane's server only reads its type URL, so the watches do
	// not keep each client's last request alive.
	req *discovery.DeltaDiscoveryRequest

	mu        sync.Mutex
	version   uint64
	resources map[string]*discovery.Resource // shared, never modified once stored
	byName    map[string]map[uint64]*routeWatch
	wildcard  map[uint64]*routeWatch
	nextID    uint64
}

type routeWatch struct {
	id  uint64
	sub cachev3.Subscription
	ch  chan cachev3.DeltaResponse
}

var _ cachev3.Cache = (*RouteCache)(nil)

// NewRouteCache returns an empty cache for typeURL whose system versions
// start with prefix.
func NewRouteCache(typeURL, prefix string) *RouteCache {
	return &RouteCache{
		typeURL:   typeURL,
		prefix:    prefix,
		req:       &discovery.DeltaDiscoveryRequest{TypeUrl: typeURL},
		resources: make(map[string]*discovery.Resource),
		byName:    make(map[string]map[uint64]*routeWatch),
		wildcard:  make(map[uint64]*routeWatch),
	}
}

// prepare marshals res once into the Resource every stream will share.
func (c *RouteCache) prepare(name string, res types.Resource) (*discovery.Resource, error) {
	if res == nil {
		return nil, fmt.Errorf("resource %q: nil", name)
	}
	b, err := cachev3.MarshalResource(res)
	if err != nil {
		return nil, fmt.Errorf("resource %q: marshal: %w", name, err)
	}
	return &discovery.Resource{
		Name:     name,
		Version:  cachev3.HashResource(b),
		Resource: &anypb.Any{TypeUrl: c.typeURL, Value: b},
	}, nil
}

// UpdateResource sets one resource.
func (c *RouteCache) UpdateResource(name string, res types.Resource) error {
	_, err := c.UpdateResources(map[string]types.Resource{name: res}, nil)
	return err
}

// UpdateResources sets and deletes resources in one version and notifies
// the watches concerned. It returns the new resource versions by name. A
// resource that cannot be marshalled is left as it was (and reported).
func (c *RouteCache) UpdateResources(update map[string]types.Resource, del []string) (map[string]string, error) {
	return c.update(update, del, nil)
}

// update is UpdateResources calling before with the new versions (removals
// as "") before any watch is notified.
func (c *RouteCache) update(update map[string]types.Resource, del []string, before func(map[string]string)) (map[string]string, error) {
	prepared := make(map[string]*discovery.Resource, len(update))
	versions := make(map[string]string, len(update)+len(del))
	var errs []error
	for name, res := range update {
		r, err := c.prepare(name, res)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		prepared[name] = r
		versions[name] = r.GetVersion()
	}
	for _, name := range del {
		versions[name] = ""
	}
	if before != nil {
		before(versions)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.version++
	modified := make([]string, 0, len(prepared)+len(del))
	for name, r := range prepared {
		c.resources[name] = r
		modified = append(modified, name)
	}
	for _, name := range del {
		delete(c.resources, name)
		modified = append(modified, name)
	}
	c.notifyLocked(modified)
	return versions, errors.Join(errs...)
}

// notifyLocked answers every watch that a change to modified concerns.
// Responses are sent with mu held (the channel has room for it: a watch
// gets at most one response), so that a stream never sees an older state
// after a newer one.
func (c *RouteCache) notifyLocked(modified []string) {
	var hit []*routeWatch
	seen := make(map[uint64]struct{})
	for _, name := range modified {
		for id, w := range c.byName[name] {
			if _, dup := seen[id]; !dup {
				seen[id] = struct{}{}
				hit = append(hit, w)
			}
		}
	}
	for _, w := range hit {
		if resp := c.respond(w, false); resp != nil {
			c.untrackLocked(w)
			w.ch <- resp
		}
	}
	for _, w := range c.wildcard {
		if resp := c.respond(w, false); resp != nil {
			c.untrackLocked(w)
			w.ch <- resp
		}
	}
}

// respond computes w's response against the current resources, nil when
// there is nothing to send. Called with mu held.
func (c *RouteCache) respond(w *routeWatch, evenIfEmpty bool) cachev3.DeltaResponse {
	known := w.sub.ReturnedResources()
	var updated []*discovery.Resource
	var removed []string
	if w.sub.IsWildcard() {
		for name, r := range c.resources {
			if v, ok := known[name]; !ok || v != r.GetVersion() {
				updated = append(updated, r)
			}
		}
		for name := range known {
			if _, ok := c.resources[name]; !ok {
				removed = append(removed, name)
			}
		}
	} else {
		subscribed := w.sub.SubscribedResources()
		for name := range subscribed {
			r, exists := c.resources[name]
			v, ok := known[name]
			switch {
			case !exists:
				if ok {
					removed = append(removed, name)
				}
			case !ok || v != r.GetVersion():
				updated = append(updated, r)
			}
		}
		// Known but no longer subscribed: forget it, so that a later
		// subscription sends it again.
		for name := range known {
			if _, ok := subscribed[name]; !ok {
				removed = append(removed, name)
			}
		}
	}
	if len(updated) == 0 && len(removed) == 0 && !evenIfEmpty {
		return nil
	}
	next := maps.Clone(known)
	if next == nil {
		next = make(map[string]string, len(updated))
	}
	for _, r := range updated {
		next[r.GetName()] = r.GetVersion()
	}
	for _, name := range removed {
		delete(next, name)
	}
	return &cachev3.DeltaPassthroughResponse{
		DeltaRequest:   c.req,
		NextVersionMap: next,
		// A fresh response per stream (the server sets its nonce); the
		// Resources in it are shared.
		DeltaDiscoveryResponse: &discovery.DeltaDiscoveryResponse{
			Resources:         updated,
			RemovedResources:  removed,
			TypeUrl:           c.typeURL,
			SystemVersionInfo: c.prefix + strconv.FormatUint(c.version, 10),
		},
	}
}

// CreateDeltaWatch implements cache.ConfigWatcher: it answers at once when
// the client is behind, otherwise waits for a change.
func (c *RouteCache) CreateDeltaWatch(req *cachev3.DeltaRequest, sub cachev3.Subscription, ch chan cachev3.DeltaResponse) (func(), error) {
	if req.GetTypeUrl() != c.typeURL {
		return nil, fmt.Errorf("request type %s does not match cache type %s", req.GetTypeUrl(), c.typeURL)
	}
	w := &routeWatch{sub: sub, ch: ch}
	// A first wildcard request is answered even when empty, so that the
	// client knows it has the (empty) state.
	evenIfEmpty := sub.IsWildcard() && req.GetResponseNonce() == ""
	c.mu.Lock()
	defer c.mu.Unlock()
	if resp := c.respond(w, evenIfEmpty); resp != nil {
		ch <- resp
		return nil, nil
	}
	c.nextID++
	w.id = c.nextID
	if sub.IsWildcard() {
		c.wildcard[w.id] = w
	} else {
		for name := range sub.SubscribedResources() {
			ws := c.byName[name]
			if ws == nil {
				ws = make(map[uint64]*routeWatch, 1)
				c.byName[name] = ws
			}
			ws[w.id] = w
		}
	}
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.untrackLocked(w)
	}, nil
}

// untrackLocked removes w from the indexes (idempotent).
func (c *RouteCache) untrackLocked(w *routeWatch) {
	if w.sub.IsWildcard() {
		delete(c.wildcard, w.id)
		return
	}
	for name := range w.sub.SubscribedResources() {
		if ws := c.byName[name]; ws != nil {
			delete(ws, w.id)
			if len(ws) == 0 {
				delete(c.byName, name)
			}
		}
	}
}

// CreateWatch implements cache.ConfigWatcher; state of the world is not
// served.
func (c *RouteCache) CreateWatch(*cachev3.Request, cachev3.Subscription, chan cachev3.Response) (func(), error) {
	return nil, errors.New("agw serves delta xDS only")
}

// Fetch implements cache.ConfigFetcher; not served.
func (c *RouteCache) Fetch(context.Context, *cachev3.Request) (cachev3.Response, error) {
	return nil, errors.New("agw serves delta xDS only")
}

// NumResources is the number of resources held.
func (c *RouteCache) NumResources() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.resources)
}

// NumWatches is the number of open watches (named and wildcard).
func (c *RouteCache) NumWatches() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make(map[uint64]struct{}, len(c.wildcard))
	for id := range c.wildcard {
		ids[id] = struct{}{}
	}
	for _, ws := range c.byName {
		for id := range ws {
			ids[id] = struct{}{}
		}
	}
	return len(ids)
}

// Version returns a resource's current version ("" when absent).
func (c *RouteCache) Version(name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resources[name].GetVersion()
}
