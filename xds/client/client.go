package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/xds"
)

// Option configures a Client.
type Option func(*options)

type options struct {
	logger   *slog.Logger
	reg      prometheus.Registerer
	dialOpts []grpc.DialOption
	onUpdate func(Update)
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithRegisterer sets where metrics are registered (default: a fresh
// registry per client).
func WithRegisterer(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

// WithDialOptions adds gRPC dial options; without transport credentials
// among them the client dials in plaintext.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOpts = append(o.dialOpts, opts...) }
}

// WithOnUpdate sets a function called after each xDS response has been
// applied and its ACK or NACK sent. It runs on the client's receive
// goroutine and must not block.
func WithOnUpdate(f func(Update)) Option { return func(o *options) { o.onUpdate = f } }

// Update describes one applied xDS response.
type Update struct {
	// Nonce of the response.
	Nonce string
	// Updated are the resources accepted (name -> version).
	Updated map[string]string
	// Removed are the resource names the control plane removed.
	Removed []string
	// NACK is the error sent back, nil for an ACK.
	NACK error
	// At is when the ACK or NACK was sent.
	At time.Time
}

// routeTable is an immutable topic -> endpoints map, swapped atomically.
type routeTable map[string][]*agpv1.RouteEndpoint

// resourceState is what the client holds of one resource.
type resourceState struct {
	version    string // version of the last good route ("" if none)
	route      *agpv1.TopicRoute
	ackedAt    time.Time
	lastNACK   string
	lastNACKAt time.Time
	badVersion string
}

// Client is the sidecar's control plane client. Create it with New and start
// it with Run; it is safe for concurrent use.
type Client struct {
	cfg     Config
	log     *slog.Logger
	opts    options
	metrics *clientMetrics

	routes atomic.Pointer[routeTable]

	// ADS state.
	mu        sync.Mutex
	watched   map[string]struct{}
	watchSnap atomic.Pointer[map[string]struct{}] // immutable copy of watched, lock-free reads
	resources map[string]*resourceState
	subCh     chan struct{}

	// Mirror state.
	mmu      sync.Mutex
	topics   map[string]struct{}
	pending  map[string]agpv1.SubscriptionChange_Op
	mirrorCh chan struct{}

	adsUp       atomic.Bool
	mirrorUp    atomic.Bool
	mirrorAcked atomic.Uint64
	mirrorSent  atomic.Uint64
	runCalled   atomic.Bool
	closeOnce   sync.Once
	closed      chan struct{}
	done        chan struct{}
}

// New validates cfg and builds a Client.
func New(cfg Config, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("xds client config: %w", err)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.reg == nil {
		o.reg = prometheus.NewRegistry()
	}
	m, err := newClientMetrics(o.reg)
	if err != nil {
		return nil, fmt.Errorf("xds client metrics: %w", err)
	}
	c := &Client{
		cfg:       cfg,
		log:       o.logger.With("component", "xds-client", "node", cfg.NodeID),
		opts:      o,
		metrics:   m,
		watched:   make(map[string]struct{}),
		resources: make(map[string]*resourceState),
		subCh:     make(chan struct{}, 1),
		topics:    make(map[string]struct{}),
		pending:   make(map[string]agpv1.SubscriptionChange_Op),
		mirrorCh:  make(chan struct{}, 1),
		closed:    make(chan struct{}),
		done:      make(chan struct{}),
	}
	empty := routeTable{}
	c.routes.Store(&empty)
	noWatch := map[string]struct{}{}
	c.watchSnap.Store(&noWatch)
	return c, nil
}

// NodeID is the client's node id.
func (c *Client) NodeID() string { return c.cfg.NodeID }

// Endpoints returns the endpoints of topic's last good route (nil if none).
// Lock-free; the slice and its elements must not be modified.
func (c *Client) Endpoints(topic string) []*agpv1.RouteEndpoint {
	return (*c.routes.Load())[topic]
}

// Watch declares interest in topic's route (on-demand subscription). Cheap
// and idempotent; a no-op in wildcard mode beyond bookkeeping.
func (c *Client) Watch(topic string) {
	if _, ok := (*c.watchSnap.Load())[topic]; ok {
		return
	}
	c.mu.Lock()
	if _, ok := c.watched[topic]; !ok {
		c.watched[topic] = struct{}{}
		snap := make(map[string]struct{}, len(c.watched))
		for t := range c.watched {
			snap[t] = struct{}{}
		}
		c.watchSnap.Store(&snap)
	}
	c.mu.Unlock()
	signal(c.subCh)
}

// TopicAdded records that the node gained its first local subscriber for
// topic and mirrors it to the control plane. It never blocks on the network.
func (c *Client) TopicAdded(topic string) { c.topicChange(topic, agpv1.SubscriptionChange_OP_ADD) }

// TopicRemoved records that the node lost its last local subscriber for topic.
func (c *Client) TopicRemoved(topic string) {
	c.topicChange(topic, agpv1.SubscriptionChange_OP_REMOVE)
}

func (c *Client) topicChange(topic string, op agpv1.SubscriptionChange_Op) {
	if err := xds.ValidateTopic(topic); err != nil {
		// The control plane would refuse the whole mirror stream for it.
		c.metrics.droppedTopics.Inc()
		c.log.Warn("topic not mirrored", "err", err)
		return
	}
	c.mmu.Lock()
	if op == agpv1.SubscriptionChange_OP_ADD {
		c.topics[topic] = struct{}{}
	} else {
		delete(c.topics, topic)
	}
	c.pending[topic] = op
	c.mmu.Unlock()
	signal(c.mirrorCh)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run connects to the control plane and keeps both streams up (reconnecting
// with backoff) until ctx is done or Close is called. It may be called once.
func (c *Client) Run(ctx context.Context) error {
	if c.runCalled.Swap(true) {
		return errors.New("xds client: Run called twice")
	}
	defer close(c.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	dopts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(c.cfg.MaxMessageBytes)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.WithReadBufferSize(8 << 10),
		grpc.WithWriteBufferSize(8 << 10),
		grpc.WithSharedWriteBuffer(true),
		// Static flow-control windows: no BDP pings (one extra frame each
		// way per response otherwise); responses are small.
		grpc.WithInitialWindowSize(1 << 20),
		grpc.WithInitialConnWindowSize(1 << 20),
		// gRPC's own reconnect backoff follows ours (its default starts at 1s).
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           grpcbackoff.Config{BaseDelay: c.cfg.BackoffInitial, Multiplier: 2, Jitter: 0.2, MaxDelay: c.cfg.BackoffMax},
			MinConnectTimeout: 5 * time.Second,
		}),
	}, c.opts.dialOpts...)
	conn, err := grpc.NewClient(c.cfg.Server, dopts...)
	if err != nil {
		return fmt.Errorf("xds client: dial %s (AGW_XDS_SERVER): %w", c.cfg.Server, err)
	}
	defer conn.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.loop(ctx, "ads", func(ctx context.Context) (bool, error) { return c.adsSession(ctx, conn) })
	}()
	if !c.cfg.DisableMirror {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.loop(ctx, "mirror", func(ctx context.Context) (bool, error) { return c.mirrorSession(ctx, conn) })
		}()
	}
	wg.Wait()
	return nil
}

// loop runs session until ctx ends, waiting a jittered backoff between
// attempts (reset after a session that made progress).
func (c *Client) loop(ctx context.Context, name string, session func(context.Context) (bool, error)) {
	b := newBackoff(c.cfg.BackoffInitial, c.cfg.BackoffMax)
	for {
		sctx, release := streamContext(ctx)
		progressed, err := session(sctx)
		release()
		if ctx.Err() != nil {
			return
		}
		if progressed {
			b.reset()
		}
		d := b.next()
		c.metrics.reconnects.WithLabelValues(name).Inc()
		c.log.Warn("control plane stream ended; reconnecting", "stream", name, "err", err, "retry_in", d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// streamContext is ctx without its deadline, cancelled with it or by
// release: the streams are leases that live until cancelled, and a deadline
// would be sent as grpc-timeout and cost the control plane a timer and a
// context per stream.
func streamContext(ctx context.Context) (context.Context, func()) {
	if _, ok := ctx.Deadline(); !ok {
		return ctx, func() {}
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	return sctx, func() { stop(); cancel() }
}

// Close stops the client and waits for Run to return. Idempotent; routes
// stay readable after Close.
func (c *Client) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	if c.runCalled.Load() {
		<-c.done
	}
	return nil
}

// Status is a summary of the client's connection state.
type Status struct {
	ADSConnected        bool   `json:"ads_connected"`
	MirrorConnected     bool   `json:"mirror_connected"`
	MirrorSentSequence  uint64 `json:"mirror_sent_sequence"`
	MirrorAckedSequence uint64 `json:"mirror_acked_sequence"`
	Watched             int    `json:"watched"`
	Routes              int    `json:"routes"`
}

// Status returns the current connection state.
func (c *Client) Status() Status {
	c.mu.Lock()
	w := len(c.watched)
	c.mu.Unlock()
	return Status{
		ADSConnected: c.adsUp.Load(), MirrorConnected: c.mirrorUp.Load(),
		MirrorSentSequence: c.mirrorSent.Load(), MirrorAckedSequence: c.mirrorAcked.Load(),
		Watched: w, Routes: len(*c.routes.Load()),
	}
}
