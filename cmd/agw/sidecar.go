package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"log/slog"

	"github.com/caarlos0/env/v11"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/agwproject/agw/interceptors"
	"github.com/agwproject/agw/internal/identity"
	"github.com/agwproject/agw/internal/logging"
	"github.com/agwproject/agw/sidecar"
	"github.com/agwproject/agw/sidecar/e2ee"
	"github.com/agwproject/agw/sidecar/rpc"
	"github.com/agwproject/agw/xds"
	xdsclient "github.com/agwproject/agw/xds/client"
)

func init() { extraCommands = append(extraCommands, newSidecarCmd) }

// sidecarSetup is the sidecar's configuration and that of its control
// plane client, after env and flags.
type sidecarSetup struct {
	rpc     rpc.Config
	mls     e2ee.Config
	node    sidecar.Config
	xds     xdsclient.Config
	gc      gcConfig // the garbage collector's policy (AGW_GOGC, AGW_MEMORY_LIMIT)
	nodeSet bool     // node id given by flag or AGW_NODE_ID
	// identity, when set, replaces node.Identity (the demo's in-memory
	// certificates); its owner closes it after the node.
	identity *identity.Source
}

// resolve fills what the two configurations share: the node id (flag,
// AGW_NODE_ID, POD_NAMESPACE.POD_NAME, host name) and, with a control plane,
// the address other sidecars dial (flag, POD_IP:peer port, or the peer
// listen address when it names a host).
func (s *sidecarSetup) resolve(getenv func(string) string) error {
	if !s.nodeSet && getenv("POD_NAME") != "" {
		id, err := xds.NodeID("", getenv)
		if err != nil {
			return err
		}
		s.node.NodeID = id
	}
	if s.xds.Server == "" || s.localOnly() {
		return nil // (validate refuses a local-only sidecar with a control plane)
	}
	s.xds.NodeID = s.node.NodeID
	if s.node.AdvertiseAddress == "" {
		host, port, err := net.SplitHostPort(s.node.PeerListen)
		if err != nil {
			return fmt.Errorf("AGW_PEER_LISTEN %q: %w", s.node.PeerListen, err)
		}
		p, _ := strconv.Atoi(port)
		switch addr, err := xds.AdvertiseAddress("", p, getenv); {
		case err == nil:
			s.node.AdvertiseAddress = addr
		case host != "" && p != 0 && !net.ParseIP(host).IsUnspecified():
			s.node.AdvertiseAddress = s.node.PeerListen
		default:
			return fmt.Errorf("with a control plane, other sidecars need this one's address: set --advertise-address (AGW_ADVERTISE_ADDRESS), POD_IP, or a peer listen address with a host: %w", err)
		}
	}
	s.xds.AdvertiseAddress = s.node.AdvertiseAddress
	return nil
}

func (s *sidecarSetup) validate() error {
	node := s.nodeConfig()
	errs := []error{node.Validate(), s.rpc.Validate(), s.mls.Validate(), s.checkPeers()}
	if s.xds.Server != "" && !s.localOnly() {
		errs = append(errs, s.xds.Validate())
	}
	return errors.Join(errs...)
}

// localOnly reports whether this sidecar has no peers: an empty peer listen
// address (AGW_PEER_LISTEN= or --peer-listen=). Its agents talk only to
// each other; nothing leaves the sidecar.
func (s *sidecarSetup) localOnly() bool { return strings.TrimSpace(s.node.PeerListen) == "" }

// hasIdentity reports whether a workload identity is configured.
func (s *sidecarSetup) hasIdentity() bool { return s.identity != nil || s.node.Identity.Enabled() }

// localPeerListen is where a local-only node's peer listener binds (the
// node always has one); it refuses every peer (refusePeers).
const localPeerListen = "127.0.0.1:0"

// nodeConfig is the node's configuration: that of the setup, with a
// loopback peer listener for a local-only sidecar.
func (s *sidecarSetup) nodeConfig() sidecar.Config {
	c := s.node
	if s.localOnly() {
		c.PeerListen = localPeerListen
	}
	return c
}

// errNeedIdentity explains the one way to run a sidecar with peers.
var errNeedIdentity = errors.New("a workload identity is required: traffic between sidecars is always MLS-encrypted and there is no plaintext mode; " +
	"set AGW_IDENTITY_DIR to a directory with tls.crt, tls.key and ca.crt (or AGW_IDENTITY_CERT_FILE, AGW_IDENTITY_KEY_FILE and AGW_IDENTITY_BUNDLE_FILE); " +
	"for a single sidecar whose agents only talk to each other, set AGW_PEER_LISTEN= (empty) and no AGW_STATIC_PEERS, AGW_STATIC_ROUTES to other nodes or AGW_XDS_SERVER")

// checkPeers refuses a sidecar that could exchange messages with other
// sidecars without an identity (hence without MLS), and a local-only one
// that names peers.
func (s *sidecarSetup) checkPeers() error {
	if !s.localOnly() {
		if !s.hasIdentity() {
			return errNeedIdentity
		}
		return nil
	}
	var errs []error
	if len(s.node.StaticPeers) > 0 {
		errs = append(errs, errors.New("AGW_STATIC_PEERS is set but AGW_PEER_LISTEN is empty (a local-only sidecar has no peers): set a peer listen address such as :46358, with an identity, or remove the static peers"))
	}
	for _, r := range s.node.StaticRoutes {
		if _, node, ok := strings.Cut(strings.TrimSpace(r), "="); ok && node != s.node.NodeID {
			errs = append(errs, fmt.Errorf("AGW_STATIC_ROUTES entry %q names another node but AGW_PEER_LISTEN is empty (a local-only sidecar has no peers): set a peer listen address such as :46358, with an identity, or remove the route", r))
		}
	}
	if s.xds.Server != "" {
		errs = append(errs, errors.New("AGW_XDS_SERVER is set but AGW_PEER_LISTEN is empty (a local-only sidecar has no peers): set a peer listen address such as :46358, with an identity, or remove the control plane address"))
	}
	return errors.Join(errs...)
}

func newSidecarCmd(g *globalFlags) *cobra.Command {
	s := &sidecarSetup{}
	var envErr error
	s.node, envErr = sidecar.ConfigFromEnv()
	s.xds = xdsclient.DefaultConfig()
	envErr = errors.Join(envErr, env.Parse(&s.xds))
	var rpcErr, mlsErr error
	s.rpc, rpcErr = rpc.ConfigFromEnv()
	s.mls, mlsErr = e2ee.ConfigFromEnv()
	envErr = errors.Join(envErr, rpcErr, mlsErr)
	s.gc = gcConfigFromEnv(os.Getenv)
	s.nodeSet = os.Getenv("AGW_NODE_ID") != ""
	if v, ok := os.LookupEnv("AGW_PEER_LISTEN"); ok && strings.TrimSpace(v) == "" {
		// Set and empty means "no peers" (the env parser would apply the
		// default instead).
		s.node.PeerListen = ""
	}
	var check bool
	cmd := &cobra.Command{
		Use:   "sidecar",
		Short: "Run the sidecar: the agent's gateway node, linked to its peers and the control plane",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if envErr != nil {
				return envErr
			}
			s.nodeSet = s.nodeSet || cmd.Flags().Changed("node-id")
			if err := s.resolve(os.Getenv); err != nil {
				return err
			}
			gcp, gcErr := s.gc.policy(os.Getenv)
			if err := errors.Join(s.validate(), gcErr, g.log.Validate()); err != nil {
				return err
			}
			if check {
				cp := "none (static routes)"
				if s.xds.Server != "" {
					cp = s.xds.Server
				}
				peers := "peers on " + s.node.PeerListen + " (MLS)"
				if s.localOnly() {
					peers = "no peers (local only)"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "configuration OK: node %s, agents on %s, %s, admin on %s, control plane %s\n",
					s.node.NodeID, s.node.AgentListen, peers, s.node.AdminListen, cp)
				return nil
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			// Applied for the life of the process (restored when the
			// command returns, for tests running it in process).
			defer gcp.apply()()
			log.Info("garbage collector", "policy", gcp.String())
			return runSidecar(cmd.Context(), s, log)
		},
	}
	s.node.BindFlags(cmd.Flags())
	s.rpc.BindFlags(cmd.Flags())
	s.mls.BindFlags(cmd.Flags())
	// The control plane client shares node id and advertised address with
	// the node; its other flags are added as they are.
	xfs := pflag.NewFlagSet("xds", pflag.ContinueOnError)
	s.xds.BindFlags(xfs)
	xfs.VisitAll(func(f *pflag.Flag) {
		if cmd.Flags().Lookup(f.Name) == nil {
			cmd.Flags().AddFlag(f)
		}
	})
	cmd.Flags().StringVar(&s.gc.GOGC, "gogc", s.gc.GOGC, fmt.Sprintf("garbage collector target percentage or \"off\" (AGW_GOGC; empty: GOGC if set, else %d)", defaultGOGC))
	cmd.Flags().StringVar(&s.gc.MemoryLimit, "memory-limit", s.gc.MemoryLimit, "soft memory limit such as 400MiB, about 90% of the container's (AGW_MEMORY_LIMIT; empty: GOMEMLIMIT if set, else none)")
	cmd.Flags().BoolVar(&check, "check-config", false, "validate the configuration and exit")
	return cmd
}

func runSidecar(ctx context.Context, s *sidecarSetup, log *slog.Logger) error {
	p, err := buildSidecar(s, log, newRegistry())
	if err != nil {
		return err
	}
	return p.Run(ctx)
}

// sidecarProcess is one sidecar: the gateway node and, when a control plane
// is configured, its xDS client.
type sidecarProcess struct {
	log  *slog.Logger
	node *sidecar.Node
	xds  *xdsclient.Client
	rpc  *rpc.Layer    // nil unless AGW_AGENT_NAME is set
	mls  *e2ee.Manager // nil without an identity
	// ownedIdentity is the identity source built from files, run and closed
	// here (the demo's in-memory sources belong to the demo).
	ownedIdentity *identity.Source
}

// multiSink hands local subscription changes to the xDS mirror and to the
// MLS layer (the node takes one sink).
type multiSink []sidecar.SubscriptionSink

func (m multiSink) TopicAdded(topic string) {
	for _, s := range m {
		s.TopicAdded(topic)
	}
}

func (m multiSink) TopicRemoved(topic string) {
	for _, s := range m {
		s.TopicRemoved(topic)
	}
}

func buildSidecar(s *sidecarSetup, log *slog.Logger, reg *prometheus.Registry) (*sidecarProcess, error) {
	// No plaintext mode: checked again here for callers that did not
	// validate.
	if err := s.checkPeers(); err != nil {
		return nil, err
	}
	opts := []sidecar.Option{
		sidecar.WithLogger(log),
		sidecar.WithRegisterer(reg),
		sidecar.WithAgentServerOptions(interceptors.AgentChain(interceptors.ChainConfig{
			Logger: log, Metrics: interceptors.NewMetrics(reg, "agent"), LocalOnly: !s.node.AllowRemoteAgents,
		})...),
		sidecar.WithPeerServerOptions(interceptors.PeerChain(interceptors.ChainConfig{
			Logger: log, Metrics: interceptors.NewMetrics(reg, "peer"),
		})...),
	}
	p := &sidecarProcess{log: log}
	src := s.identity
	if src == nil && s.node.Identity.Enabled() {
		// Built here rather than by the node, because the MLS layer needs it too.
		var err error
		if src, err = identity.NewSource(s.node.Identity, identity.WithLogger(logging.Component(log, "identity")), identity.WithRegisterer(reg)); err != nil {
			return nil, err
		}
		p.ownedIdentity = src
	}
	if src == nil && s.localOnly() {
		// A local-only sidecar without a configured identity gets one from
		// a throwaway CA that no other sidecar trusts: the node is built
		// like every other, with MLS, but has nobody to talk to.
		var err error
		if src, err = throwawayIdentity(); err != nil {
			return nil, err
		}
		p.ownedIdentity = src
	}
	var sinks multiSink
	if s.xds.Server != "" {
		xc, err := xdsclient.New(s.xds, xdsclient.WithLogger(log), xdsclient.WithRegisterer(reg))
		if err != nil {
			return nil, err
		}
		p.xds = xc
		opts = append(opts, sidecar.WithRouteSource(xc))
		sinks = append(sinks, xc)
	}
	roster := &e2ee.RouteRoster{}
	if src != nil {
		opts = append(opts, sidecar.WithIdentitySource(src))
		mgr, err := e2ee.New(s.mls, s.node.NodeID, src, nil,
			e2ee.WithRoster(roster), e2ee.WithLogger(logging.Component(log, "mls")), e2ee.WithRegisterer(reg))
		if err != nil {
			return nil, err
		}
		p.mls = mgr
		opts = append(opts, sidecar.WithPeerCrypter(mgr))
		if !s.localOnly() { // no channels without peers
			sinks = append(sinks, mgr)
		}
	}
	if s.localOnly() {
		// No peers at all: the peer listener (the node always has one)
		// refuses every call, and the node still seals with MLS (a
		// throwaway identity when none is configured, see below), so no
		// message could leave or enter in plaintext anyway.
		opts = append(opts, sidecar.WithPeerServerOptions(grpc.ChainUnaryInterceptor(refusePeerUnary), grpc.ChainStreamInterceptor(refusePeerStream)))
		log.Info("local-only sidecar: no peer links (AGW_PEER_LISTEN is empty)")
	}
	if len(sinks) > 0 {
		opts = append(opts, sidecar.WithSubscriptionSink(sinks))
	}
	node, err := sidecar.New(s.nodeConfig(), opts...)
	if err != nil {
		return nil, err
	}
	roster.Endpoints, roster.Watch = node.RouteSource().Endpoints, node.RouteSource().Watch
	if p.mls != nil {
		node.HandleAdmin("GET /debug/groups", p.mls.DebugHandler())
	}
	p.node = node
	if s.rpc.Enabled() {
		l, err := rpc.NewForNode(s.rpc, node, rpc.WithLogger(logging.Component(log, "rpc")), rpc.WithRegisterer(reg))
		if err != nil {
			return nil, err
		}
		p.rpc = l
	}
	if p.xds != nil {
		node.HandleAdmin("/debug/routes", p.xds.DebugHandler())
	}
	return p, nil
}

// Run runs the RPC layer, the node and its xDS client until ctx ends or one
// of them fails. Shutdown order: the RPC layer stops accepting calls and
// lets in-flight ones finish, then the node drains and says goodbye to its
// peers, then the xDS client ends its mirror stream.
func (p *sidecarProcess) Run(ctx context.Context) error {
	// The identity reload loop and the MLS layer outlive the node: they stop
	// after it has drained.
	auxCtx, stopAux := context.WithCancel(context.WithoutCancel(ctx))
	var aux sync.WaitGroup
	if p.ownedIdentity != nil {
		aux.Go(func() { _ = p.ownedIdentity.Run(auxCtx) })
	}
	if p.mls != nil {
		aux.Go(func() {
			if err := p.mls.Run(auxCtx); err != nil && !errors.Is(err, context.Canceled) {
				p.log.Error("MLS layer stopped", "error", err)
			}
		})
	}
	err := p.runAll(ctx)
	stopAux()
	aux.Wait()
	if p.mls != nil {
		_ = p.mls.Close()
	}
	if p.ownedIdentity != nil {
		_ = p.ownedIdentity.Close()
	}
	return err
}

func (p *sidecarProcess) runAll(ctx context.Context) error {
	if p.rpc == nil {
		return p.runNode(ctx)
	}
	nctx, stopNode := context.WithCancel(context.WithoutCancel(ctx))
	ndone := make(chan error, 1)
	go func() { ndone <- p.runNode(nctx) }()
	lctx, stopRPC := context.WithCancel(ctx)
	ldone := make(chan error, 1)
	go func() { ldone <- p.rpc.Run(lctx) }()
	var lerr, nerr error
	select {
	case lerr = <-ldone:
		stopNode()
		nerr = <-ndone
	case nerr = <-ndone:
		stopRPC()
		lerr = <-ldone
	}
	stopRPC()
	stopNode()
	if errors.Is(lerr, context.Canceled) {
		lerr = nil
	}
	return errors.Join(nerr, lerr)
}

// runNode runs the node and its xDS client; the node drains first, then the
// client ends its mirror stream.
func (p *sidecarProcess) runNode(ctx context.Context) error {
	if p.xds == nil {
		return p.node.Run(ctx)
	}
	xctx, stopXDS := context.WithCancel(context.WithoutCancel(ctx))
	xdone := make(chan error, 1)
	go func() { xdone <- p.xds.Run(xctx) }()
	nctx, stopNode := context.WithCancel(ctx)
	ndone := make(chan error, 1)
	go func() { ndone <- p.node.Run(nctx) }()
	var nerr, xerr error
	select {
	case nerr = <-ndone:
		stopXDS()
		xerr = <-xdone
	case xerr = <-xdone:
		stopNode()
		nerr = <-ndone
	}
	stopNode()
	stopXDS()
	if errors.Is(xerr, context.Canceled) {
		xerr = nil
	}
	return errors.Join(nerr, xerr)
}

// errLocalOnly is what a local-only sidecar answers to peers and to sends
// for them.
var errLocalOnly = errors.New("local-only sidecar (AGW_PEER_LISTEN is empty): no peer links")

func refusePeerUnary(context.Context, any, *grpc.UnaryServerInfo, grpc.UnaryHandler) (any, error) {
	return nil, status.Error(codes.FailedPrecondition, errLocalOnly.Error())
}

func refusePeerStream(any, grpc.ServerStream, *grpc.StreamServerInfo, grpc.StreamHandler) error {
	return status.Error(codes.FailedPrecondition, errLocalOnly.Error())
}

// throwawayTrustDomain is the trust domain of a local-only sidecar's
// throwaway identity.
const throwawayTrustDomain = "local-only.agw"

// throwawayIdentity is the in-memory identity of a local-only sidecar: an
// SVID of a CA made here and forgotten, valid as long as the CA.
func throwawayIdentity() (*identity.Source, error) {
	ca, err := identity.NewCA(throwawayTrustDomain)
	if err != nil {
		return nil, fmt.Errorf("local-only identity: %w", err)
	}
	id, err := identity.NewWorkloadID(throwawayTrustDomain, "local", "sidecar")
	if err != nil {
		return nil, fmt.Errorf("local-only identity: %w", err)
	}
	src, err := ca.MemorySource(id, 9*365*24*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("local-only identity: %w", err)
	}
	return src, nil
}
