package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/internal/identity"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// frameOverhead is the room a gRPC frame needs beyond its message.
const frameOverhead = 16 << 10

// HTTP/2 windows of the agent API.
const (
	agentWindow     = 1 << 20
	agentConnWindow = 16 << 20
)

// HTTP/2 windows of the peer links (server and dial side). Fixed windows
// turn off gRPC's bandwidth-delay estimation, whose PING round trips cost
// about two per unary call carried over a link. A link is one stream, so
// its window bounds the bytes in flight between two sidecars: 8 MiB keeps
// ~80 MB/s per 100 ms of round trip.
const (
	peerWindow     = 8 << 20
	peerConnWindow = 16 << 20
)

// ErrClosed is returned by Run after Close, or when Run is called twice.
var ErrClosed = errors.New("sidecar: node closed")

// Node is an AGP gateway node.
type Node struct {
	cfg      Config
	opts     options
	log      *slog.Logger
	gatherer prometheus.Gatherer
	m        *metrics

	conns  *ConnTable
	subs   *SubTable
	routes RouteSource
	ids    *idGen

	staticPeers map[string]string
	watched     sync.Map // topic -> *topicState

	peersMu sync.RWMutex
	// sealers: the channel sealers of multicasts (chanseal.go).
	sealMu  sync.RWMutex
	sealers map[string]*chanSealer
	sealLog atomic.Int64
	peers   map[string]*peer

	serverCreds, clientCreds credentials.TransportCredentials
	identity                 *identity.Source // nil: plaintext peer links
	ownedIdentity            bool             // built from cfg.Identity: run and closed here

	adminMux *http.ServeMux

	ctx    context.Context // node lifetime; cancelled when Run ends or Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the node starts

	ready    chan struct{}
	draining atomic.Bool
	running  atomic.Bool
	stop     chan struct{}
	stopOnce sync.Once
	runDone  chan struct{}

	addrMu                        sync.Mutex
	agentAddr, peerAddr, adminAdr net.Addr
	advertise                     string

	trustToken string         // credential of trusted in-process agent connections
	inproc     inprocListener // the agent API in memory, for in-process layers
}

// New validates cfg and returns a Node; Run starts it.
func New(cfg Config, opts ...Option) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sidecar config: %w", err)
	}
	var o options
	for _, f := range opts {
		f(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.registerer == nil {
		o.registerer = prometheus.NewRegistry()
	}
	n := &Node{
		cfg:      cfg,
		opts:     o,
		log:      o.logger.With("node", cfg.NodeID),
		conns:    newConnTable(),
		subs:     newSubTable(o.sink),
		ids:      newIDGen(cfg.NodeID),
		peers:    make(map[string]*peer),
		adminMux: http.NewServeMux(),
		ready:    make(chan struct{}),
		stop:     make(chan struct{}),
		runDone:  make(chan struct{}),

		trustToken: newTrustToken(),
		inproc:     newInProcListener(),
	}
	if g, ok := o.registerer.(prometheus.Gatherer); ok {
		n.gatherer = g
	} else {
		n.gatherer = prometheus.DefaultGatherer
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	var err error
	n.staticPeers, _ = parseStaticPeers(cfg.StaticPeers, cfg.NodeID) // validated above
	if o.routes != nil {
		n.routes = o.routes
	} else {
		routes, _ := parseStaticRoutes(cfg.StaticRoutes)
		n.routes = newStaticRoutes(routes, n.staticPeers)
	}
	if n.m, err = newMetrics(o.registerer, n); err != nil {
		return nil, fmt.Errorf("sidecar metrics: %w", err)
	}
	if err := n.setupIdentity(); err != nil {
		return nil, err
	}
	if !isLoopbackHost(cfg.AgentListen) {
		n.log.Warn("agent API listens on a non-loopback address; any host that reaches it can publish as this node's agent",
			"agent_listen", cfg.AgentListen)
	}
	n.installAdmin()
	if o.crypter != nil {
		o.crypter.BindTransport(n.sendHandshake)
		if ab, ok := o.crypter.(addressUser); ok {
			ab.BindAddresses(n.peerAddress, n.learnPeerAddress)
		}
	}
	return n, nil
}

// NodeID returns the node's id.
func (n *Node) NodeID() string { return n.cfg.NodeID }

// Config returns the node's configuration.
func (n *Node) Config() Config { return n.cfg }

// Ready is closed once all listeners are up.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Done is closed when Run has returned.
func (n *Node) Done() <-chan struct{} { return n.runDone }

// AgentAddr returns the bound agent API address (nil before Ready).
func (n *Node) AgentAddr() net.Addr { n.addrMu.Lock(); defer n.addrMu.Unlock(); return n.agentAddr }

// PeerAddr returns the bound peer address (nil before Ready).
func (n *Node) PeerAddr() net.Addr { n.addrMu.Lock(); defer n.addrMu.Unlock(); return n.peerAddr }

// AdminAddr returns the bound admin address (nil before Ready or when the
// admin server is disabled).
func (n *Node) AdminAddr() net.Addr { n.addrMu.Lock(); defer n.addrMu.Unlock(); return n.adminAdr }

// AdvertiseAddress returns the address sent to peers in the handshake.
func (n *Node) AdvertiseAddress() string {
	n.addrMu.Lock()
	defer n.addrMu.Unlock()
	return n.advertise
}

// Connections dumps the connection table.
func (n *Node) Connections() []ConnInfo { return n.conns.Snapshot() }

// IsReady reports whether the node serves and is not draining.
func (n *Node) IsReady() bool {
	select {
	case <-n.ready:
		return !n.draining.Load()
	default:
		return false
	}
}

// Close shuts the node down (as cancelling Run's context does) and waits for
// Run to return. It is idempotent.
func (n *Node) Close() error {
	n.stopOnce.Do(func() { close(n.stop) })
	if n.running.Load() {
		<-n.runDone
	} else {
		n.cancel()
		n.wg.Wait()
		n.closeIdentity()
	}
	return nil
}

// Run binds the listeners, serves until ctx is done or Close is called, then
// shuts down gracefully: unready, stop accepting, Goodbye to peers, drain
// queues within ShutdownTimeout, close. It returns nil after a clean
// shutdown.
func (n *Node) Run(ctx context.Context) (err error) {
	if !n.running.CompareAndSwap(false, true) {
		return fmt.Errorf("sidecar: Run called twice: %w", ErrClosed)
	}
	defer close(n.runDone)
	defer func() {
		n.cancel()
		n.wg.Wait()
		n.closeIdentity()
	}()
	select {
	case <-n.stop:
		return ErrClosed
	default:
	}

	var lc net.ListenConfig
	agentLn, err := lc.Listen(ctx, "tcp", n.cfg.AgentListen)
	if err != nil {
		return fmt.Errorf("agent listener %s: %w", n.cfg.AgentListen, err)
	}
	peerLn, err := lc.Listen(ctx, "tcp", n.cfg.PeerListen)
	if err != nil {
		agentLn.Close()
		return fmt.Errorf("peer listener %s: %w", n.cfg.PeerListen, err)
	}
	var adminLn net.Listener
	if n.cfg.AdminListen != "" {
		if adminLn, err = lc.Listen(ctx, "tcp", n.cfg.AdminListen); err != nil {
			agentLn.Close()
			peerLn.Close()
			return fmt.Errorf("admin listener %s: %w", n.cfg.AdminListen, err)
		}
	}
	n.addrMu.Lock()
	n.agentAddr, n.peerAddr = agentLn.Addr(), peerLn.Addr()
	if adminLn != nil {
		n.adminAdr = adminLn.Addr()
	}
	n.advertise = n.computeAdvertise(peerLn.Addr())
	n.addrMu.Unlock()

	limit := n.cfg.MaxMessageBytes + frameOverhead
	agentSrv := grpc.NewServer(append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(limit), grpc.MaxSendMsgSize(limit), grpc.WaitForHandlers(true),
		grpc.ForceServerCodecV2(wireCodec{}),
		// The agent is in the pod: fixed windows, no BDP pings after
		// every publish.
		grpc.InitialWindowSize(agentWindow), grpc.InitialConnWindowSize(agentConnWindow),
	}, n.opts.agentOpts...)...)
	agpv1.RegisterGatewayServer(agentSrv, &gatewayServer{n: n})
	peerSrv := grpc.NewServer(append([]grpc.ServerOption{
		grpc.Creds(n.serverCreds),
		grpc.MaxRecvMsgSize(limit), grpc.MaxSendMsgSize(limit), grpc.WaitForHandlers(true),
		grpc.ForceServerCodecV2(wireCodec{}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.InitialWindowSize(peerWindow), grpc.InitialConnWindowSize(peerConnWindow),
	}, n.opts.peerOpts...)...)
	agpv1.RegisterPeerServer(peerSrv, &peerServer{n: n})
	var adminSrv *http.Server
	if adminLn != nil {
		adminSrv = &http.Server{Handler: n.adminMux, ReadHeaderTimeout: 5 * time.Second}
	}

	// Static peers exist before any inbound link can create them as
	// learnt peers.
	for node, addr := range n.staticPeers {
		n.peerFor(node, addr, true)
	}
	serveErr := make(chan error, 3)
	var serveWG sync.WaitGroup
	serve := func(name string, f func() error) {
		serveWG.Go(func() {
			if err := f(); err != nil && !errors.Is(err, grpc.ErrServerStopped) && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("%s server: %w", name, err)
			}
		})
	}
	serve("agent", func() error { return agentSrv.Serve(agentLn) })
	serve("in-process agent", func() error { return agentSrv.Serve(n.inproc) })
	serve("peer", func() error { return peerSrv.Serve(peerLn) })
	if adminSrv != nil {
		serve("admin", func() error { return adminSrv.Serve(adminLn) })
	}
	n.wg.Go(n.gcLoop)
	n.runIdentity()
	close(n.ready)
	n.log.Info("sidecar up", "agent", agentLn.Addr().String(), "peer", peerLn.Addr().String(),
		"admin", addrString(adminLn), "advertise", n.AdvertiseAddress(), "mtls", n.identity != nil, "identity", n.identityString())

	select {
	case <-ctx.Done():
	case <-n.stop:
	case err = <-serveErr:
		n.log.Error("server failed; shutting down", "err", err)
	}
	n.shutdown(agentSrv, peerSrv, adminSrv)
	serveWG.Wait()
	return err
}

func addrString(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

func (n *Node) computeAdvertise(bound net.Addr) string {
	if n.cfg.AdvertiseAddress != "" {
		return n.cfg.AdvertiseAddress
	}
	host, _, _ := net.SplitHostPort(n.cfg.PeerListen)
	_, port, _ := net.SplitHostPort(bound.String())
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		h, err := os.Hostname()
		if err != nil {
			h = "localhost"
		}
		host = h
	}
	return net.JoinHostPort(host, port)
}

// shutdown runs the graceful shutdown sequence.
func (n *Node) shutdown(agentSrv, peerSrv *grpc.Server, adminSrv *http.Server) {
	start := time.Now()
	n.log.Info("sidecar shutting down", "timeout", n.cfg.ShutdownTimeout)
	// 1. Unready; agent streams become draining.
	n.draining.Store(true)
	for _, e := range n.conns.entries() {
		if e.kind == KindAgent {
			e.setStatus(StatusDraining)
		}
	}
	// 2. Stop accepting: GracefulStop closes the listeners at once and then
	// waits for the open streams, which step 5 ends.
	var stopWG sync.WaitGroup
	stopWG.Go(agentSrv.GracefulStop)
	stopWG.Go(peerSrv.GracefulStop)
	// 3. Goodbye to peers: each link writer sends Goodbye, drains its queue
	// and closes the link; first the channel sealers queue what they hold.
	deadline := time.Now().Add(n.cfg.ShutdownTimeout)
	for time.Now().Before(deadline) && !n.sealersIdle() {
		time.Sleep(time.Millisecond)
	}
	for _, p := range n.peerList() {
		p.sayGoodbye()
	}
	// 4. Drain: wait for agent queues to empty and peer links to close.
	for time.Now().Before(deadline) && !n.drained() {
		time.Sleep(5 * time.Millisecond)
	}
	// 5. Close everything.
	n.cancel() // stops dial loops and outbound links
	agentSrv.Stop()
	peerSrv.Stop()
	stopWG.Wait()
	if adminSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = adminSrv.Shutdown(ctx)
		cancel()
		_ = adminSrv.Close()
	}
	n.log.Info("sidecar stopped", "took", time.Since(start).Round(time.Millisecond).String())
}

// drained reports whether every agent queue is empty and every peer link
// has closed.
func (n *Node) drained() bool {
	for _, e := range n.conns.entries() {
		if e.kind == KindAgent && e.queueDepth != nil && e.queueDepth() > 0 {
			return false
		}
	}
	for _, p := range n.peerList() {
		if p.currentLink() != nil {
			return false
		}
	}
	return true
}

func (n *Node) String() string {
	return "sidecar(" + n.cfg.NodeID + ")"
}
