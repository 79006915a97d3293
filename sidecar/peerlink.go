package sidecar

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

var (
	errShuttingDown    = status.Error(codes.Unavailable, "node is shutting down")
	errSecondHandshake = status.Error(codes.FailedPrecondition, "peer sent a second Handshake on an established link")
	errLinkClosed      = errors.New("link closed by this node")
)

// linkRejectError is why attach refused a link.
type linkRejectError struct {
	duplicate bool
	nodeID    string
	remote    string
	kept      string
}

func (e *linkRejectError) Error() string {
	if e.duplicate {
		return fmt.Sprintf("duplicate node id %q: a link from that node id is already up (from %s); every node needs a unique AGW_NODE_ID", e.nodeID, e.remote)
	}
	return fmt.Sprintf("a link with node %q is already up (both sides dialled; the link dialled by %q, the lower node id, is kept)", e.nodeID, e.kept)
}

// GRPCStatus makes the error a gRPC AlreadyExists status.
func (e *linkRejectError) GRPCStatus() *status.Status {
	return status.New(codes.AlreadyExists, e.Error())
}

// checkHandshake validates a remote handshake.
func (n *Node) checkHandshake(hs *agpv1.Handshake) error {
	if hs == nil {
		return status.Error(codes.InvalidArgument, "the first frame on a peer link must be a Handshake")
	}
	if hs.ProtocolVersion != ProtocolVersion {
		return status.Errorf(codes.FailedPrecondition, "protocol version mismatch: peer %q speaks version %d, this node (%s) speaks version %d",
			hs.NodeId, hs.ProtocolVersion, n.cfg.NodeID, ProtocolVersion)
	}
	if !validNodeID(hs.NodeId) {
		return status.Errorf(codes.InvalidArgument, "handshake node id %q: want 1-128 characters of A-Z a-z 0-9 . _ -", hs.NodeId)
	}
	if hs.NodeId == n.cfg.NodeID {
		return status.Errorf(codes.AlreadyExists, "duplicate node id %q: the peer claims this node's own id; every node needs a unique AGW_NODE_ID", hs.NodeId)
	}
	return nil
}

type peerServer struct {
	agpv1.UnimplementedPeerServer
	n *Node
}

type recvResult struct {
	f   *agpv1.PeerFrame
	err error
}

// Link serves an inbound peer link: handshake, then frames both ways.
func (s *peerServer) Link(stream grpc.BidiStreamingServer[agpv1.PeerFrame, agpv1.PeerFrame]) error {
	n := s.n
	if n.draining.Load() {
		return errShuttingDown
	}
	ctx := stream.Context()
	first := make(chan recvResult, 1)
	n.wg.Go(func() {
		f, err := stream.Recv()
		first <- recvResult{f, err}
	})
	t := time.NewTimer(n.cfg.HandshakeTimeout)
	defer t.Stop()
	var r recvResult
	select {
	case r = <-first:
	case <-t.C:
		return status.Errorf(codes.DeadlineExceeded, "no Handshake within %s", n.cfg.HandshakeTimeout)
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
	if r.err != nil {
		return r.err
	}
	hs := r.f.GetHandshake()
	if err := n.checkHandshake(hs); err != nil {
		n.log.Warn("rejected peer handshake", "err", err)
		return err
	}
	pid, err := n.checkPeerIdentity(ctx, hs.NodeId)
	if err != nil {
		n.log.Warn("rejected peer handshake", "peer", hs.NodeId, "err", err, "security_event", "peer_identity")
		return err
	}
	remote := ""
	if pr, ok := grpcpeer.FromContext(ctx); ok && pr.Addr != nil {
		remote = pr.Addr.String()
	}
	p := n.peerFor(hs.NodeId, "", false)
	if p == nil {
		return errShuttingDown
	}
	l := &peerLink{
		p: p, dialer: hs.NodeId, remote: remote, send: stream.Send, sendMsg: stream.SendMsg,
		done: make(chan struct{}), goodbye: make(chan struct{}), writerDone: make(chan struct{}),
	}
	if err := n.attach(p, l, hs, pid); err != nil {
		level := slog.LevelWarn
		if rej, ok := err.(*linkRejectError); ok && !rej.duplicate {
			level = slog.LevelDebug // both sides dialled; expected
		}
		n.log.Log(ctx, level, "rejected peer link", "peer", hs.NodeId, "remote", remote, "err", err)
		return err
	}
	if err := stream.Send(&agpv1.PeerFrame{Kind: &agpv1.PeerFrame_Handshake{Handshake: n.handshake()}}); err != nil {
		l.close()
		n.detach(p, l)
		return err
	}
	err = n.runLink(l, func(r *rawFrame) error { return stream.RecvMsg(r) })
	if errors.Is(err, io.EOF) || errors.Is(err, errLinkClosed) {
		return nil
	}
	return err
}

// dialLoop keeps a link to p while p lives: it dials when p has no link,
// with exponential backoff and jitter between failed attempts.
func (n *Node) dialLoop(p *peer) {
	defer p.dialing.Store(false)
	backoff := n.cfg.ReconnectMin
	for {
		for n.hasLink(p) {
			select {
			case <-p.kick:
			case <-p.ctx.Done():
				return
			}
		}
		if p.ctx.Err() != nil || n.draining.Load() {
			return
		}
		addr := p.address()
		up, err := n.dialOnce(p, addr)
		if p.ctx.Err() != nil {
			return
		}
		var delay time.Duration
		if up {
			backoff = n.cfg.ReconnectMin
			delay = jitter(n.cfg.ReconnectMin)
		} else {
			var rej *linkRejectError
			switch {
			case errors.As(err, &rej) && !rej.duplicate:
				n.log.Debug("peer dial superseded by the other side's link", "peer", p.nodeID)
			default:
				n.log.Warn("peer dial failed", "peer", p.nodeID, "addr", addr, "retry_in", backoff, "err", err)
			}
			if !n.hasLink(p) {
				p.setStatus(StatusDown)
			}
			delay = jitter(backoff)
			backoff = min(backoff*2, n.cfg.ReconnectMax)
		}
		delay = max(min(delay, n.cfg.ReconnectMax), n.cfg.ReconnectMin)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-p.ctx.Done():
			t.Stop()
			return
		}
	}
}

// dialOnce dials p at addr and serves the link until it ends. up reports
// whether the link was established.
func (n *Node) dialOnce(p *peer, addr string) (up bool, err error) {
	limit := n.cfg.MaxMessageBytes + frameOverhead
	dopts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(n.clientCreds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(limit), grpc.MaxCallSendMsgSize(limit)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
		// Fixed windows: no BDP pings (see peerWindow).
		grpc.WithInitialWindowSize(peerWindow), grpc.WithInitialConnWindowSize(peerConnWindow),
	}, n.opts.peerDialOps...)
	cc, err := grpc.NewClient(addr, dopts...)
	if err != nil {
		return false, fmt.Errorf("dial %s: %w", addr, err)
	}
	defer cc.Close()
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	hsTimer := time.AfterFunc(n.cfg.HandshakeTimeout, cancel)
	stream, err := agpv1.NewPeerClient(cc).Link(ctx, grpc.WaitForReady(true), grpc.ForceCodecV2(wireCodec{}))
	if err != nil {
		hsTimer.Stop()
		return false, fmt.Errorf("open link to %s: %w", addr, err)
	}
	if err := stream.Send(&agpv1.PeerFrame{Kind: &agpv1.PeerFrame_Handshake{Handshake: n.handshake()}}); err != nil {
		hsTimer.Stop()
		_, rerr := stream.Recv() // the status explains a failed Send
		return false, fmt.Errorf("send handshake to %s: %w", addr, errors.Join(err, rerr))
	}
	f, err := stream.Recv()
	if !hsTimer.Stop() {
		return false, fmt.Errorf("handshake with %s: no answer within %s", addr, n.cfg.HandshakeTimeout)
	}
	if err != nil {
		return false, fmt.Errorf("handshake with %s: %w", addr, err)
	}
	hs := f.GetHandshake()
	if err := n.checkHandshake(hs); err != nil {
		return false, fmt.Errorf("handshake with %s: %w", addr, err)
	}
	if hs.NodeId != p.nodeID {
		return false, fmt.Errorf("handshake with %s: expected node %q but it says it is %q; fix the static peer or route", addr, p.nodeID, hs.NodeId)
	}
	pid, err := n.checkPeerIdentity(stream.Context(), hs.NodeId)
	if err != nil {
		n.log.Warn("refused peer", "peer", hs.NodeId, "addr", addr, "err", err, "security_event", "peer_identity")
		return false, fmt.Errorf("handshake with %s: %w", addr, err)
	}
	l := &peerLink{
		p: p, outbound: true, dialer: n.cfg.NodeID, remote: addr, send: stream.Send, sendMsg: stream.SendMsg, closeSnd: stream.CloseSend,
		cancel: cancel, done: make(chan struct{}), goodbye: make(chan struct{}), writerDone: make(chan struct{}),
	}
	if err := n.attach(p, l, hs, pid); err != nil {
		return false, err
	}
	err = n.runLink(l, func(r *rawFrame) error { return stream.RecvMsg(r) })
	return true, err
}
