package controlplane

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
)

// lease is a node's claim, held by its open mirror stream.
type lease struct {
	nodeID  string
	address string
	gen     uint64 // bumped at every acquire
	active  bool
	since   time.Time
	timer   *time.Timer // grace timer while inactive
}

// Mirror implements agpv1.RegistryServer: one stream per node, its lease.
// It receives and answers on the handler's goroutine (no helper goroutine
// per node): shutdown ends a blocked Recv through the stream context, which
// the control plane cancels at shutdown (see tapStream); gRPC then ends the
// stream with Canceled.
func (s *Server) Mirror(stream grpc.BidiStreamingServer[agpv1.MirrorRequest, agpv1.MirrorResponse]) error {
	ctx := stream.Context()
	var remote net.Addr
	if p, ok := peer.FromContext(ctx); ok {
		remote = p.Addr
	}
	untrack := s.trackMirror(ctx)
	if untrack == nil {
		return errShuttingDown
	}
	defer untrack()

	first, err := stream.Recv()
	if err != nil {
		return s.endErr(ctx, err)
	}
	if err := validateMirrorRequest(first, true, 0, s.cfg.MaxTopicsPerNode, s.validTop); err != nil {
		s.rejectMirror(err, first.GetNodeId(), remote)
		return status.Error(codes.InvalidArgument, err.Error())
	}
	nodeID := first.GetNodeId()
	l, err := s.acquire(ctx, nodeID, first.GetPeerAddress(), first.GetChanges())
	if err != nil {
		if status.Code(err) == codes.AlreadyExists {
			s.metrics.mirrorRejected.WithLabelValues("duplicate_node").Inc()
			s.log.Warn("mirror refused: node id already connected", "node", nodeID, "remote", addrString(remote))
		} else {
			s.log.Error("mirror: cannot register node", "node", nodeID, "err", err)
		}
		return err
	}
	defer s.release(l)
	s.log.Info("node connected", "node", nodeID, "address", first.GetPeerAddress(), "remote", addrString(remote), "topics", len(first.GetChanges()))
	lastSeq := first.GetSequence()
	if err := stream.Send(&agpv1.MirrorResponse{AckedSequence: lastSeq}); err != nil {
		return s.endErr(ctx, err)
	}

	for {
		req, err := stream.Recv()
		if err != nil {
			return s.endErr(ctx, err)
		}
		if err := validateMirrorRequest(req, false, lastSeq, s.cfg.MaxTopicsPerNode, s.validTop); err != nil {
			s.rejectMirror(err, nodeID, remote)
			return status.Error(codes.InvalidArgument, err.Error())
		}
		if err := s.applyChanges(ctx, l, req); err != nil {
			if st, ok := status.FromError(err); ok {
				return st.Err()
			}
			s.log.Error("mirror: store update failed", "node", nodeID, "err", err)
			return status.Error(codes.Internal, "route index update failed")
		}
		lastSeq = req.GetSequence()
		if err := stream.Send(&agpv1.MirrorResponse{AckedSequence: lastSeq}); err != nil {
			return s.endErr(ctx, err)
		}
	}
}

// errShuttingDown ends the streams of a control plane that is stopping.
var errShuttingDown = status.Error(codes.Unavailable, "control plane shutting down")

// endErr is what a mirror stream returns when Recv or Send failed: nothing
// when the sidecar closed or cancelled it, Unavailable when the control
// plane is shutting down, otherwise the error.
func (s *Server) endErr(ctx context.Context, err error) error {
	if s.serveCtx.Err() != nil {
		return errShuttingDown
	}
	if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) || ctx.Err() != nil {
		return nil
	}
	return err
}

// mirrorCancelKey holds, in a mirror stream's context, the function that
// cancels it.
type mirrorCancelKey struct{}

// tapStream is the gRPC server's tap handle: it gives each mirror stream a
// context that the control plane can cancel, so that shutdown ends a handler
// blocked in Recv without a goroutine per stream waiting for it (see
// trackMirror). Delta ADS streams need nothing: go-control-plane's handler
// watches the server context.
func (s *Server) tapStream(ctx context.Context, info *tap.Info) (context.Context, error) {
	if info.FullMethodName != agpv1.Registry_Mirror_FullMethodName {
		return ctx, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	return context.WithValue(ctx, mirrorCancelKey{}, cancel), nil
}

// trackMirror registers the running mirror stream of ctx for cancellation at
// shutdown; it returns nil when the server is already shutting down. The
// caller calls the returned function when the stream ends. A stream whose
// handler never runs needs nothing: its context ends with the stream.
func (s *Server) trackMirror(ctx context.Context) (untrack func()) {
	cancel, _ := ctx.Value(mirrorCancelKey{}).(context.CancelFunc)
	if cancel == nil {
		return func() {} // not served through Run (no tap handle)
	}
	s.mirrorsMu.Lock()
	defer s.mirrorsMu.Unlock()
	if s.mirrorsClosed {
		return nil
	}
	s.mirrorSeq++
	id := s.mirrorSeq
	s.mirrors[id] = cancel
	return func() {
		s.mirrorsMu.Lock()
		delete(s.mirrors, id)
		s.mirrorsMu.Unlock()
	}
}

// cancelMirrors ends every mirror stream, and those that start later.
func (s *Server) cancelMirrors() {
	s.mirrorsMu.Lock()
	defer s.mirrorsMu.Unlock()
	s.mirrorsClosed = true
	for _, cancel := range s.mirrors {
		cancel()
	}
	clear(s.mirrors)
}

func (s *Server) rejectMirror(err error, nodeID string, remote net.Addr) {
	reason := "invalid"
	var me *mirrorError
	if errors.As(err, &me) {
		reason = me.reason
	}
	s.metrics.mirrorRejected.WithLabelValues(reason).Inc()
	s.log.Warn("mirror message rejected", "node", truncateID(nodeID), "remote", addrString(remote), "reason", reason, "err", err)
}

func truncateID(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// acquire takes the node's lease (refusing a second live stream) and installs
// its full table.
func (s *Server) acquire(ctx context.Context, nodeID, addr string, full []*agpv1.SubscriptionChange) (*lease, error) {
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	l := s.leases[nodeID]
	if l != nil && l.active {
		return nil, status.Errorf(codes.AlreadyExists, "node id %q is already connected (since %s); each sidecar needs its own node id", nodeID, l.since.UTC().Format(time.RFC3339))
	}
	if l != nil && l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	if l == nil {
		l = &lease{nodeID: nodeID}
		s.leases[nodeID] = l
	}
	s.leaseGen++
	l.gen = s.leaseGen
	l.active = true
	l.address = addr
	l.since = time.Now()
	topics := make([]string, 0, len(full))
	for _, ch := range full {
		topics = append(topics, ch.GetTopic())
	}
	start := time.Now()
	changed, err := s.store.PutNode(ctx, NodeRecord{NodeID: nodeID, Address: addr, Status: agpv1.RouteEndpoint_STATUS_ACTIVE, Topics: dedupe(topics)})
	if err != nil {
		l.active = false
		s.startGraceLocked(l)
		return nil, status.Error(codes.Internal, "route index update failed")
	}
	s.publishLocked(ctx, changed)
	s.metrics.connectedNodes.Inc()
	s.metrics.mirrorMessages.Inc()
	s.metrics.indexUpdateTime.Observe(time.Since(start).Seconds())
	return l, nil
}

func dedupe(ts []string) []string {
	seen := make(map[string]struct{}, len(ts))
	out := ts[:0:0]
	for _, t := range ts {
		if _, ok := seen[t]; ok {
			continue
		}
		seen[t] = struct{}{}
		out = append(out, t)
	}
	return out
}

// applyChanges applies one validated, non-first mirror message.
func (s *Server) applyChanges(ctx context.Context, l *lease, req *agpv1.MirrorRequest) error {
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	start := time.Now()
	var changed []string
	var err error
	if req.GetFull() {
		topics := make([]string, 0, len(req.GetChanges()))
		for _, ch := range req.GetChanges() {
			topics = append(topics, ch.GetTopic())
		}
		changed, err = s.store.PutNode(ctx, NodeRecord{NodeID: l.nodeID, Address: l.address, Status: agpv1.RouteEndpoint_STATUS_ACTIVE, Topics: dedupe(topics)})
	} else {
		// Apply in order: the last op for a topic wins.
		final := make(map[string]agpv1.SubscriptionChange_Op, len(req.GetChanges()))
		for _, ch := range req.GetChanges() {
			final[ch.GetTopic()] = ch.GetOp()
		}
		var add, remove []string
		for t, op := range final {
			if op == agpv1.SubscriptionChange_OP_ADD {
				add = append(add, t)
			} else {
				remove = append(remove, t)
			}
		}
		if len(add) > 0 {
			rec, ok, err := s.store.Node(ctx, l.nodeID)
			if err != nil {
				return err
			}
			if ok && len(rec.Topics)+len(add) > s.cfg.MaxTopicsPerNode {
				n := 0
				for _, t := range add {
					if !containsSorted(rec.Topics, t) {
						n++
					}
				}
				if len(rec.Topics)-len(remove)+n > s.cfg.MaxTopicsPerNode {
					s.metrics.mirrorRejected.WithLabelValues("too_many_topics").Inc()
					return status.Errorf(codes.ResourceExhausted, "node %q would hold more than %d topics (AGW_CP_MAX_TOPICS_PER_NODE)", l.nodeID, s.cfg.MaxTopicsPerNode)
				}
			}
		}
		changed, err = s.store.UpdateTopics(ctx, l.nodeID, add, remove)
	}
	if err != nil {
		return err
	}
	s.publishLocked(ctx, changed)
	s.metrics.mirrorMessages.Inc()
	s.metrics.indexUpdateTime.Observe(time.Since(start).Seconds())
	return nil
}

func containsSorted(sorted []string, t string) bool {
	lo, hi := 0, len(sorted)
	for lo < hi {
		m := (lo + hi) / 2
		if sorted[m] < t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(sorted) && sorted[lo] == t
}

// release ends the stream's hold on the lease: the node's endpoints turn
// PENDING_WITHDRAWAL and are withdrawn when the grace period runs out,
// unless the node reconnects first.
func (s *Server) release(l *lease) {
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	if !l.active {
		return
	}
	l.active = false
	s.metrics.connectedNodes.Dec()
	s.log.Info("node disconnected; grace period started", "node", l.nodeID, "grace_period", s.cfg.GracePeriod)
	select {
	case <-s.serveCtx.Done():
		// Shutting down: nothing is withdrawn (the next instance relearns it).
		return
	default:
	}
	ctx := context.Background()
	if changed, err := s.store.SetStatus(ctx, l.nodeID, agpv1.RouteEndpoint_STATUS_PENDING_WITHDRAWAL); err == nil {
		s.publishLocked(ctx, changed)
	}
	s.startGraceLocked(l)
}

func (s *Server) startGraceLocked(l *lease) {
	gen := l.gen
	l.timer = time.AfterFunc(s.cfg.GracePeriod, func() { s.withdraw(l, gen) })
}

func (s *Server) withdraw(l *lease, gen uint64) {
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	if l.gen != gen || l.active || s.leases[l.nodeID] != l {
		return // reconnected meanwhile
	}
	select {
	case <-s.serveCtx.Done():
		return
	default:
	}
	delete(s.leases, l.nodeID)
	ctx := context.Background()
	changed, err := s.store.DeleteNode(ctx, l.nodeID)
	if err != nil {
		s.log.Error("withdraw failed", "node", l.nodeID, "err", err)
		return
	}
	s.publishLocked(ctx, changed)
	s.metrics.withdrawals.Inc()
	s.log.Info("node withdrawn after grace period", "node", l.nodeID, "topics", len(changed))
}

func (s *Server) stopLeaseTimers() {
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	for _, l := range s.leases {
		if l.timer != nil {
			l.timer.Stop()
		}
	}
}
