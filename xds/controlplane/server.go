package controlplane

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/delta/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/xds"
)

// Option configures a Server.
type Option func(*options)

type options struct {
	logger     *slog.Logger
	reg        prometheus.Registerer
	gatherer   prometheus.Gatherer
	store      Store
	validTopic func(string) error
	grpcOpts   []grpc.ServerOption
	now        func() time.Time
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithRegisterer sets where metrics are registered (default: a fresh registry
// per server). When reg is also a prometheus.Gatherer, /metrics serves it.
func WithRegisterer(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

// WithStore replaces the in-memory route index.
func WithStore(s Store) Option { return func(o *options) { o.store = s } }

// WithTopicValidator replaces xds.ValidateTopic for mirrored topics (e.g. a
// stricter AGP name check).
func WithTopicValidator(f func(string) error) Option { return func(o *options) { o.validTopic = f } }

// WithGRPCServerOptions adds gRPC server options (e.g. transport credentials).
// The control plane sets grpc.InTapHandle itself: passing another one panics.
func WithGRPCServerOptions(opts ...grpc.ServerOption) Option {
	return func(o *options) { o.grpcOpts = append(o.grpcOpts, opts...) }
}

// Server is a control plane. Create it with New, start it with Run.
type Server struct {
	agpv1.UnimplementedRegistryServer

	cfg      Config
	log      *slog.Logger
	store    Store
	validTop func(string) error
	metrics  *metrics
	gatherer prometheus.Gatherer
	grpcOpts []grpc.ServerOption

	cache  *RouteCache
	prefix string

	// indexMu serialises lease changes, store mutations and cache updates,
	// so that the cache always reflects the store in order.
	indexMu  sync.Mutex
	leases   map[string]*lease
	leaseGen uint64

	changesMu sync.RWMutex
	changes   map[string]changeRecord // topic -> latest change, for convergence

	streamsMu sync.RWMutex
	streams   map[int64]*streamState

	// Running mirror streams, cancelled at shutdown (see trackMirror).
	mirrorsMu     sync.Mutex
	mirrors       map[uint64]context.CancelFunc
	mirrorSeq     uint64
	mirrorsClosed bool

	ready     chan struct{}
	warm      chan struct{}
	runCalled atomic.Bool
	serveCtx  context.Context
	serveStop context.CancelFunc
	closeOnce sync.Once
	closed    chan struct{}
	done      chan struct{}

	addrMu    sync.Mutex
	addr      net.Addr
	adminAddr net.Addr
	grpcSrv   *grpc.Server
	httpSrv   *http.Server
}

// New validates cfg and builds a Server.
func New(cfg Config, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("control plane config: %w", err)
	}
	o := options{validTopic: xds.ValidateTopic}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.reg == nil {
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		o.reg = r
	}
	if g, ok := o.reg.(prometheus.Gatherer); ok {
		o.gatherer = g
	} else {
		o.gatherer = prometheus.DefaultGatherer
	}
	if o.store == nil {
		o.store = NewMemoryStore()
	}
	m, err := newMetrics(o.reg)
	if err != nil {
		return nil, fmt.Errorf("control plane metrics: %w", err)
	}
	prefix := cfg.ReplicaID
	if prefix == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		prefix = hex.EncodeToString(b[:])
	}
	prefix += "-"
	s := &Server{
		cfg:      cfg,
		log:      o.logger.With("component", "control-plane"),
		store:    o.store,
		validTop: o.validTopic,
		metrics:  m,
		gatherer: o.gatherer,
		grpcOpts: o.grpcOpts,
		cache:    NewRouteCache(xds.TypeURL, prefix),
		prefix:   prefix,
		leases:   make(map[string]*lease),
		changes:  make(map[string]changeRecord),
		streams:  make(map[int64]*streamState),
		mirrors:  make(map[uint64]context.CancelFunc),
		ready:    make(chan struct{}),
		warm:     make(chan struct{}),
		closed:   make(chan struct{}),
		done:     make(chan struct{}),
	}
	s.serveCtx, s.serveStop = context.WithCancel(context.Background())
	return s, nil
}

// Ready is closed once the gRPC (and admin) listeners are bound.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the bound gRPC address (nil before Ready).
func (s *Server) Addr() net.Addr { s.addrMu.Lock(); defer s.addrMu.Unlock(); return s.addr }

// AdminAddr is the bound admin address (nil before Ready or when disabled).
func (s *Server) AdminAddr() net.Addr {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	return s.adminAddr
}

// VersionPrefix is the system version prefix of this replica.
func (s *Server) VersionPrefix() string { return s.prefix }

// Cache is the xDS cache that serves TopicRoute resources. Tests use it to
// inject resources; production code leaves it alone.
func (s *Server) Cache() *RouteCache { return s.cache }

// Store is the route index.
func (s *Server) Store() Store { return s.store }

// Run listens, serves until ctx is done or Close is called, then shuts down
// in order: readiness off, streams ended, gRPC stopped (gracefully within
// ShutdownTimeout), grace timers stopped, admin stopped. It may be called once.
func (s *Server) Run(ctx context.Context) error {
	if s.runCalled.Swap(true) {
		return errors.New("control plane: Run called twice")
	}
	defer close(s.done)
	lis, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("control plane: listen %s (AGW_CP_LISTEN): %w", s.cfg.Listen, err)
	}
	var adminLis net.Listener
	if s.cfg.AdminListen != "" {
		adminLis, err = net.Listen("tcp", s.cfg.AdminListen)
		if err != nil {
			lis.Close()
			return fmt.Errorf("control plane: listen %s (AGW_CP_ADMIN_LISTEN): %w", s.cfg.AdminListen, err)
		}
	}

	gopts := append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(s.cfg.MaxMessageBytes),
		// Small per-connection buffers: the control plane holds one
		// connection per node, and its messages are small.
		grpc.ReadBufferSize(4 << 10),
		grpc.WriteBufferSize(4 << 10),
		grpc.SharedWriteBuffer(true),
		grpc.InitialWindowSize(64 << 10),
		grpc.InitialConnWindowSize(64 << 10),
		// No HPACK dynamic table for what clients send: each connection
		// carries two long-lived streams, so indexing their headers saves
		// nothing on the wire but keeps ~1 KB per connection alive.
		grpc.HeaderTableSize(0),
		grpc.InTapHandle(s.tapStream),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	}, s.grpcOpts...)
	gs := grpc.NewServer(gopts...)
	ds := delta.NewServer(s.serveCtx, s.cache, &callbacks{s: s}, delta.DeactivateLegacyWildcard())
	discovery.RegisterAggregatedDiscoveryServiceServer(gs, &adsServer{s: s, delta: ds})
	agpv1.RegisterRegistryServer(gs, s)

	s.addrMu.Lock()
	s.addr = lis.Addr()
	s.grpcSrv = gs
	if adminLis != nil {
		s.adminAddr = adminLis.Addr()
		s.httpSrv = &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 5 * time.Second}
	}
	s.addrMu.Unlock()

	errc := make(chan error, 2)
	go func() {
		if err := gs.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			errc <- fmt.Errorf("control plane: grpc serve: %w", err)
		}
	}()
	if adminLis != nil {
		go func() {
			if err := s.httpSrv.Serve(adminLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("control plane: admin serve: %w", err)
			}
		}()
	}
	warmTimer := time.AfterFunc(s.cfg.Warmup, func() { close(s.warm) })
	pruneTicker := time.NewTicker(time.Minute)
	defer pruneTicker.Stop()
	close(s.ready)
	s.log.Info("control plane serving", "grpc", lis.Addr().String(), "admin", addrString(s.adminAddr), "version_prefix", s.prefix, "grace_period", s.cfg.GracePeriod)

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-s.closed:
			break loop
		case err := <-errc:
			runErr = err
			break loop
		case <-pruneTicker.C:
			s.pruneChanges(5 * time.Minute)
		}
	}

	// Ordered shutdown.
	s.log.Info("control plane shutting down")
	warmTimer.Stop()
	s.serveStop() // ends ADS streams (readiness follows serveCtx)
	s.cancelMirrors()
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	t := time.NewTimer(s.cfg.ShutdownTimeout)
	select {
	case <-stopped:
	case <-t.C:
		gs.Stop()
		<-stopped
	}
	t.Stop()
	s.stopLeaseTimers()
	if s.httpSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		_ = s.httpSrv.Shutdown(sctx)
		cancel()
	}
	s.log.Info("control plane stopped")
	return runErr
}

// Close stops a running server and waits for Run to return. It is idempotent
// and safe to call when Run was never called.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	if s.runCalled.Load() {
		<-s.done
	}
	return nil
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// isReady reports whether the server answers xDS: listening, warmed up and
// not shutting down.
func (s *Server) isReady() bool {
	select {
	case <-s.serveCtx.Done():
		return false
	default:
	}
	select {
	case <-s.ready:
	default:
		return false
	}
	select {
	case <-s.warm:
		return true
	default:
		return false
	}
}
