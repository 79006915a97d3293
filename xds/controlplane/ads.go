package controlplane

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/delta/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/agwproject/agw/xds"
)

// adsServer serves delta ADS through go-control-plane's delta server, after
// the warm-up; state-of-the-world is not offered (it cannot remove resources).
type adsServer struct {
	discovery.UnimplementedAggregatedDiscoveryServiceServer
	s     *Server
	delta delta.Server
}

func (a *adsServer) StreamAggregatedResources(discovery.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	return status.Error(codes.Unimplemented, "agw serves delta ADS only (DeltaAggregatedResources)")
}

func (a *adsServer) DeltaAggregatedResources(str discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	select {
	case <-a.s.warm:
	case <-str.Context().Done():
		return str.Context().Err()
	case <-a.s.serveCtx.Done():
		return status.Error(codes.Unavailable, "control plane shutting down")
	}
	return a.delta.DeltaStreamHandler(str, resource.AnyType)
}

// maxSubscriptionsPerStream bounds what one client can make the control
// plane track.
const maxSubscriptionsPerStream = 100000

// sent is one resource (or removal: version "") of a response.
type sent struct {
	name    string
	version string
}

// pendingResponse is what one response carried: first and, when it
// carried more than one resource or removal, rest.
type pendingResponse struct {
	nonce int64
	first sent
	rest  []sent
}

// streamState is what the control plane tracks of one ADS stream.
type streamState struct {
	mu         sync.Mutex
	id         int64
	nodeID     string
	remote     net.Addr
	opened     time.Time
	subscribed smallMap[time.Time] // resource name (or "*") -> when subscribed
	acked      smallMap[string]    // resource -> last ACKed version
	pending    []pendingResponse   // sent, not yet ACKed or NACKed, oldest first
	lastNACK   string
	lastNACKAt time.Time
	acks       uint64
	nacks      uint64
}

// callbacks implements go-control-plane's delta.Callbacks.
type callbacks struct{ s *Server }

func (c *callbacks) OnDeltaStreamOpen(ctx context.Context, id int64, _ string) error {
	st := &streamState{id: id, opened: time.Now()}
	if p, ok := peer.FromContext(ctx); ok {
		st.remote = p.Addr // the connection's, not a copy
	}
	c.s.streamsMu.Lock()
	c.s.streams[id] = st
	c.s.streamsMu.Unlock()
	c.s.metrics.xdsStreams.Inc()
	return nil
}

func (c *callbacks) OnDeltaStreamClosed(id int64, _ *core.Node) {
	c.s.streamsMu.Lock()
	_, ok := c.s.streams[id]
	delete(c.s.streams, id)
	c.s.streamsMu.Unlock()
	if ok {
		c.s.metrics.xdsStreams.Dec()
	}
}

func (c *callbacks) stream(id int64) *streamState {
	c.s.streamsMu.RLock()
	defer c.s.streamsMu.RUnlock()
	return c.s.streams[id]
}

func (c *callbacks) OnStreamDeltaRequest(id int64, req *discovery.DeltaDiscoveryRequest) error {
	st := c.stream(id)
	if st == nil {
		return status.Error(codes.Internal, "unknown stream")
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.nodeID == "" {
		if err := xds.ValidateNodeID(req.GetNode().GetId()); err != nil {
			c.s.log.Warn("xds stream refused: bad node id", "remote", addrString(st.remote), "err", err)
			return status.Errorf(codes.InvalidArgument, "first delta request: node.id: %v", err)
		}
		st.nodeID = req.GetNode().GetId()
	}
	if req.GetTypeUrl() != xds.TypeURL {
		return status.Errorf(codes.InvalidArgument, "type URL %q not served; agw serves %s", req.GetTypeUrl(), xds.TypeURL)
	}
	now := time.Now()
	for _, n := range req.GetResourceNamesSubscribe() {
		if n != xds.WildcardName {
			if err := xds.ValidateTopic(n); err != nil {
				return status.Errorf(codes.InvalidArgument, "resource_names_subscribe: %v", err)
			}
		}
		if _, ok := st.subscribed.Get(n); !ok {
			st.subscribed.Set(n, now)
		}
	}
	if st.subscribed.Len() > maxSubscriptionsPerStream {
		return status.Errorf(codes.ResourceExhausted, "more than %d subscribed resources on one stream; use a wildcard subscription", maxSubscriptionsPerStream)
	}
	for _, n := range req.GetResourceNamesUnsubscribe() {
		st.subscribed.Delete(n)
		st.acked.Delete(n)
	}
	if req.GetResponseNonce() == "" {
		if st.acked.Len() == 0 && len(req.GetInitialResourceVersions()) > 0 {
			for n, v := range req.GetInitialResourceVersions() {
				st.acked.Set(n, v)
			}
		}
		return nil
	}
	nonce, err := strconv.ParseInt(req.GetResponseNonce(), 10, 64)
	if err != nil {
		return nil // not one of ours; the cache ignores it too
	}
	// The ACK or NACK of nonce settles it and every older response.
	var settled pendingResponse
	found := false
	k := 0
	for ; k < len(st.pending) && st.pending[k].nonce <= nonce; k++ {
		if st.pending[k].nonce == nonce {
			settled, found = st.pending[k], true
		}
	}
	st.pending = append(st.pending[:0], st.pending[k:]...)
	if req.GetErrorDetail() != nil {
		st.nacks++
		st.lastNACK = req.GetErrorDetail().GetMessage()
		st.lastNACKAt = time.Now()
		c.s.metrics.nacks.Inc()
		c.s.log.Warn("xds update rejected by node", "node", st.nodeID, "nonce", nonce, "error", truncateID(st.lastNACK))
		return nil
	}
	st.acks++
	c.s.metrics.acks.Inc()
	if !found {
		return nil
	}
	apply := func(it sent) {
		if it.version == "" {
			st.acked.Delete(it.name)
		} else {
			st.acked.Set(it.name, it.version)
		}
		// Convergence counts nodes that were already interested when the
		// change was applied (a later subscriber is not "converging").
		subAt, ok := st.subscribed.Get(it.name)
		if !ok {
			subAt, ok = st.subscribed.Get(xds.WildcardName)
		}
		if !ok {
			return
		}
		if ch, found := c.s.changeFor(it.name); found && ch.version == it.version && !subAt.After(ch.at) {
			c.s.metrics.convergence.Observe(now.Sub(ch.at).Seconds())
		}
	}
	apply(settled.first)
	for _, it := range settled.rest {
		apply(it)
	}
	return nil
}

func (c *callbacks) OnStreamDeltaResponse(id int64, _ *discovery.DeltaDiscoveryRequest, resp *discovery.DeltaDiscoveryResponse) {
	c.s.metrics.pushes.Inc()
	st := c.stream(id)
	if st == nil {
		return
	}
	nonce, err := strconv.ParseInt(resp.GetNonce(), 10, 64)
	if err != nil {
		return
	}
	var p pendingResponse
	p.nonce = nonce
	n := 0
	add := func(it sent) {
		if n == 0 {
			p.first = it
		} else {
			p.rest = append(p.rest, it)
		}
		n++
	}
	for _, r := range resp.GetResources() {
		add(sent{name: r.GetName(), version: r.GetVersion()})
	}
	for _, name := range resp.GetRemovedResources() {
		add(sent{name: name})
	}
	if n == 0 {
		return
	}
	st.mu.Lock()
	st.pending = append(st.pending, p)
	st.mu.Unlock()
}

func (st *streamState) String() string { return fmt.Sprintf("stream %d node %s", st.id, st.nodeID) }
