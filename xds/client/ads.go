package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/xds"
)

// adsSession runs one delta ADS stream. It reports whether it received at
// least one response (so the caller resets its backoff).
func (c *Client) adsSession(ctx context.Context, conn *grpc.ClientConn) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		return false, fmt.Errorf("open delta ADS stream: %w", err)
	}

	// First request: everything watched, with the versions held.
	c.mu.Lock()
	sentSubs := make(map[string]struct{}, len(c.watched))
	var names []string
	if c.cfg.Wildcard {
		names = []string{xds.WildcardName}
	}
	for t := range c.watched {
		sentSubs[t] = struct{}{}
		if !c.cfg.Wildcard {
			names = append(names, t)
		}
	}
	initial := make(map[string]string, len(c.resources))
	for n, r := range c.resources {
		if r.version != "" {
			initial[n] = r.version
		}
	}
	c.mu.Unlock()
	slices.Sort(names)
	first := &discovery.DeltaDiscoveryRequest{
		Node:                    &core.Node{Id: c.cfg.NodeID, UserAgentName: "agw"},
		TypeUrl:                 xds.TypeURL,
		ResourceNamesSubscribe:  names,
		InitialResourceVersions: initial,
	}
	if err := stream.Send(first); err != nil {
		return false, fmt.Errorf("send first delta request: %w", err)
	}
	c.adsUp.Store(true)
	c.metrics.connected.WithLabelValues("ads").Set(1)
	defer func() {
		c.adsUp.Store(false)
		c.metrics.connected.WithLabelValues("ads").Set(0)
	}()

	// Responses are handled on this goroutine (no hand-off per response);
	// subscription changes are sent from a second one. sendMu serialises
	// Send, as gRPC requires.
	var sendMu sync.Mutex
	send := func(req *discovery.DeltaDiscoveryRequest) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(req)
	}
	subErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-c.subCh:
			}
			c.mu.Lock()
			var add []string
			for t := range c.watched {
				if _, ok := sentSubs[t]; !ok {
					sentSubs[t] = struct{}{}
					if !c.cfg.Wildcard {
						add = append(add, t)
					}
				}
			}
			c.mu.Unlock()
			if len(add) == 0 {
				continue
			}
			slices.Sort(add)
			if err := send(&discovery.DeltaDiscoveryRequest{TypeUrl: xds.TypeURL, ResourceNamesSubscribe: add}); err != nil {
				subErr <- fmt.Errorf("send subscription: %w", err)
				cancel()
				return
			}
		}
	}()
	defer wg.Wait()
	defer cancel()

	progressed := false
	for {
		resp, err := stream.Recv()
		if err != nil {
			select {
			case e := <-subErr:
				return progressed, e
			default:
			}
			return progressed, err
		}
		progressed = true
		if err := c.handleResponse(send, resp); err != nil {
			return progressed, err
		}
	}
}

// decodeResource validates one resource of a response.
func decodeResource(r *discovery.Resource) (*agpv1.TopicRoute, error) {
	if r == nil {
		return nil, errors.New("nil resource")
	}
	if r.GetResource() == nil {
		return nil, fmt.Errorf("resource %q: no body", r.GetName())
	}
	if r.GetResource().GetTypeUrl() != xds.TypeURL {
		return nil, fmt.Errorf("resource %q: type %q, want %s", r.GetName(), r.GetResource().GetTypeUrl(), xds.TypeURL)
	}
	route := &agpv1.TopicRoute{}
	if err := proto.Unmarshal(r.GetResource().GetValue(), route); err != nil {
		return nil, fmt.Errorf("resource %q: decode: %w", r.GetName(), err)
	}
	if err := xds.ValidateRoute(r.GetName(), route); err != nil {
		return nil, err
	}
	return route, nil
}

// handleResponse validates and applies one response, then ACKs or NACKs it.
// Valid resources and removals are applied; an invalid resource keeps its
// last good route and makes the whole response NACKed.
func (c *Client) handleResponse(send func(*discovery.DeltaDiscoveryRequest) error, resp *discovery.DeltaDiscoveryResponse) error {
	var problems []string
	if resp.GetTypeUrl() != xds.TypeURL {
		problems = append(problems, fmt.Sprintf("response type %q, want %s", resp.GetTypeUrl(), xds.TypeURL))
	}
	good := map[string]*agpv1.TopicRoute{}
	versions := map[string]string{}
	bad := map[string]string{}
	if len(problems) == 0 {
		for _, r := range resp.GetResources() {
			route, err := decodeResource(r)
			if err != nil {
				problems = append(problems, err.Error())
				bad[r.GetName()] = r.GetVersion()
				continue
			}
			good[r.GetName()] = route
			versions[r.GetName()] = r.GetVersion()
		}
	}
	var removed []string
	if len(problems) == 0 || resp.GetTypeUrl() == xds.TypeURL {
		removed = resp.GetRemovedResources()
	}
	now := time.Now()
	var nackErr error
	if len(problems) > 0 {
		nackErr = errors.New(truncateMsg(strings.Join(problems, "; ")))
	}

	c.mu.Lock()
	for n, route := range good {
		rs := c.resources[n]
		if rs == nil {
			rs = &resourceState{}
			c.resources[n] = rs
		}
		rs.version, rs.route, rs.ackedAt = versions[n], route, now
	}
	for n, v := range bad {
		rs := c.resources[n]
		if rs == nil {
			rs = &resourceState{}
			c.resources[n] = rs
		}
		rs.lastNACK, rs.lastNACKAt, rs.badVersion = nackErr.Error(), now, v
	}
	for _, n := range removed {
		delete(c.resources, n)
	}
	if len(good) > 0 || len(removed) > 0 {
		old := *c.routes.Load()
		next := make(routeTable, len(old)+len(good))
		maps.Copy(next, old)
		for n, route := range good {
			next[n] = route.GetEndpoints()
		}
		for _, n := range removed {
			delete(next, n)
		}
		c.routes.Store(&next)
		c.metrics.routes.Set(float64(len(next)))
	}
	c.mu.Unlock()

	req := &discovery.DeltaDiscoveryRequest{TypeUrl: xds.TypeURL, ResponseNonce: resp.GetNonce()}
	if nackErr != nil {
		req.ErrorDetail = &status.Status{Code: int32(codes.InvalidArgument), Message: nackErr.Error()}
		c.metrics.nacks.Inc()
		c.log.Warn("xds response rejected", "nonce", resp.GetNonce(), "err", nackErr)
	} else {
		c.metrics.updates.Inc()
	}
	if err := send(req); err != nil {
		return fmt.Errorf("send ACK: %w", err)
	}
	if f := c.opts.onUpdate; f != nil {
		f(Update{Nonce: resp.GetNonce(), Updated: versions, Removed: removed, NACK: nackErr, At: time.Now()})
	}
	return nil
}

func truncateMsg(s string) string {
	const max = 1024
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// RouteState is what the client holds of one resource, for /debug/routes.
type RouteState struct {
	Name      string                 `json:"name"`
	Version   string                 `json:"version"`
	Endpoints []*agpv1.RouteEndpoint `json:"endpoints"`
	Watched   bool                   `json:"watched"`
	AckedAt   time.Time              `json:"acked_at,omitzero"`
	// LastNACK is the error of the last rejected version of this resource,
	// BadVersion that version.
	LastNACK   string    `json:"last_nack,omitempty"`
	LastNACKAt time.Time `json:"last_nack_at,omitzero"`
	BadVersion string    `json:"bad_version,omitempty"`
}

// DebugRoutes returns what the client received and ACKed, sorted by name,
// including watched topics that have no route yet.
func (c *Client) DebugRoutes() []RouteState {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make(map[string]struct{}, len(c.resources)+len(c.watched))
	for n := range c.resources {
		names[n] = struct{}{}
	}
	for n := range c.watched {
		names[n] = struct{}{}
	}
	out := make([]RouteState, 0, len(names))
	for _, n := range slices.Sorted(maps.Keys(names)) {
		_, w := c.watched[n]
		st := RouteState{Name: n, Watched: w}
		if rs := c.resources[n]; rs != nil {
			st.Version, st.AckedAt = rs.version, rs.ackedAt
			st.Endpoints = rs.route.GetEndpoints()
			st.LastNACK, st.LastNACKAt, st.BadVersion = rs.lastNACK, rs.lastNACKAt, rs.badVersion
		}
		out = append(out, st)
	}
	return out
}
