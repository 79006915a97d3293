package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"

	"log/slog"

	"github.com/caarlos0/env/v11"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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
	nodeSet bool // node id given by flag or AGW_NODE_ID
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
	if s.xds.Server == "" {
		return nil
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
	errs := []error{s.node.Validate(), s.rpc.Validate(), s.mls.Validate()}
	if s.xds.Server != "" {
		errs = append(errs, s.xds.Validate())
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
	s.nodeSet = os.Getenv("AGW_NODE_ID") != ""
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
			if err := errors.Join(s.validate(), g.log.Validate()); err != nil {
				return err
			}
			if check {
				cp := "none (static routes)"
				if s.xds.Server != "" {
					cp = s.xds.Server
				}
				fmt.Fprintf(cmd.OutOrStdout(), "configuration OK: node %s, agents on %s, peers on %s, admin on %s, control plane %s\n",
					s.node.NodeID, s.node.AgentListen, s.node.PeerListen, s.node.AdminListen, cp)
				return nil
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
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
		sinks = append(sinks, mgr)
	} else {
		log.Warn("no workload identity configured (AGW_IDENTITY_*): peer links are plaintext and messages between sidecars are NOT end-to-end encrypted; for development only")
	}
	if len(sinks) > 0 {
		opts = append(opts, sidecar.WithSubscriptionSink(sinks))
	}
	node, err := sidecar.New(s.node, opts...)
	if err != nil {
		return nil, err
	}
	roster.Endpoints = node.RouteSource().Endpoints
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
