//go:build !agwsidecar

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/client"
	"github.com/agwproject/agw/internal/identity"
	"github.com/agwproject/agw/internal/logging"
	"github.com/agwproject/agw/sidecar"
	"github.com/agwproject/agw/sidecar/e2ee"
	"github.com/agwproject/agw/sidecar/rpc"
	xdsclient "github.com/agwproject/agw/xds/client"
	"github.com/agwproject/agw/xds/controlplane"
)

func init() { extraCommands = append(extraCommands, newDemoCmd) }

func newDemoCmd(g *globalFlags) *cobra.Command {
	var stay bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a control plane, three sidecars and sample agents on loopback, and narrate pub/sub through them",
		RunE: func(cmd *cobra.Command, _ []string) error {
			lc := g.log
			if !cmd.Flags().Changed("log-format") {
				lc.Format = "text"
			}
			if !cmd.Flags().Changed("log-level") {
				lc.Level = "warn"
			}
			log, err := logging.New(os.Stderr, lc)
			if err != nil {
				return err
			}
			return runDemo(cmd.Context(), cmd.OutOrStdout(), log, stay)
		},
	}
	cmd.Flags().BoolVar(&stay, "stay", false, "keep everything running after the walkthrough (Ctrl-C to stop), to poke the admin endpoints")
	return cmd
}

// demo is the running system: its parts and a narrator.
type demo struct {
	out      io.Writer
	log      *slog.Logger
	cp       *controlplane.Server
	sidecars map[string]*sidecarProcess
	ca       *identity.CA // issues the sidecars' throwaway identities
	stops    []func()
	step     int
}

func (d *demo) say(format string, a ...any) { fmt.Fprintf(d.out, format+"\n", a...) }

func (d *demo) section(title string) {
	d.step++
	fmt.Fprintf(d.out, "\n[%d] %s\n", d.step, title)
}

// background runs f until the demo ends and waits for it on shutdown.
func (d *demo) background(name string, f func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
			d.log.Error("demo component stopped", "component", name, "error", err)
		}
	}()
	d.stops = append(d.stops, func() { cancel(); <-done })
}

func (d *demo) shutdown() {
	for i := len(d.stops) - 1; i >= 0; i-- {
		d.stops[i]()
	}
}

func runDemo(ctx context.Context, out io.Writer, log *slog.Logger, stay bool) error {
	d := &demo{out: out, log: log, sidecars: map[string]*sidecarProcess{}}
	defer d.shutdown()
	d.say("agw demo: a control plane, three sidecars and five agents, all in this process on 127.0.0.1.")
	d.say("Agents speak plain gRPC to their own sidecar; sidecars carry messages between pods;")
	d.say("the control plane learns every sidecar's subscriptions and tells the others where to send.")

	// 1. Control plane.
	d.section("control plane")
	cpCfg := controlplane.DefaultConfig()
	cpCfg.Listen, cpCfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cpCfg.Warmup, cpCfg.GracePeriod = 0, 2*time.Second
	cp, err := controlplane.New(cpCfg, controlplane.WithLogger(logging.Component(log, "control-plane")))
	if err != nil {
		return err
	}
	d.cp = cp
	d.background("control-plane", cp.Run)
	if err := waitReady(ctx, cp.Ready(), "control plane"); err != nil {
		return err
	}
	d.say("    xDS (delta ADS) and subscription mirror on %s, admin http://%s/debug/routes", cp.Addr(), cp.AdminAddr())

	// 2. Sidecars.
	d.section("three sidecars, one per agent pod")
	for _, name := range []string{"pod-a", "pod-b", "pod-c"} {
		p, err := d.startSidecar(ctx, name, cp.Addr().String())
		if err != nil {
			return err
		}
		d.say("    sidecar %s: agents connect to %s, peers to %s, admin http://%s",
			name, p.node.AgentAddr(), p.node.AdvertiseAddress(), p.node.AdminAddr())
	}
	d.say("    peer links: mutual TLS with SPIFFE identities from a throwaway CA (%s, ...)",
		d.sidecars["pod-a"].node.Identity().Current().ID())

	// 3. Agents and subscriptions.
	d.section("agents connect to their sidecars and subscribe")
	agents := map[string]*demoAgent{}
	for _, a := range []struct{ name, pod string }{
		{"acme/research/planner/1", "pod-a"},
		{"acme/research/writer/1", "pod-b"},
		{"acme/research/writer/2", "pod-c"},
		{"acme/research/summarizer/1", "pod-b"},
		{"acme/research/summarizer/2", "pod-c"},
	} {
		ag, err := d.connect(ctx, a.name, a.pod)
		if err != nil {
			return err
		}
		agents[a.name] = ag
	}
	const news = "acme/research/news"
	const summarizer = "acme/research/summarizer"
	for _, s := range []struct{ agent, topic string }{
		{"acme/research/writer/1", news},
		{"acme/research/writer/2", news},
		{"acme/research/summarizer/1", summarizer},
		{"acme/research/summarizer/2", summarizer},
	} {
		ag := agents[s.agent]
		if err := ag.c.Subscribe(ctx, s.topic); err != nil {
			return fmt.Errorf("%s subscribes to %s: %w", s.agent, s.topic, err)
		}
		d.say("    %-28s (%s) subscribes to %s", s.agent, ag.pod, s.topic)
	}
	planner := agents["acme/research/planner/1"]
	for _, topic := range []string{news, summarizer} {
		took, err := d.awaitRoute(ctx, "pod-a", topic, "pod-b", "pod-c")
		if err != nil {
			return err
		}
		d.say("    pod-a learnt the route of %s from the control plane: pod-b, pod-c (%s)", topic, took.Round(time.Millisecond))
	}

	// 4. Multicast.
	d.section("multicast: fanout 0 reaches every subscriber")
	ack, err := planner.publish(ctx, news, 0, "quarterly numbers are in")
	if err != nil {
		return err
	}
	d.say("    planner/1 publishes %q to %s: the sidecar acks %d remote deliveries", "quarterly numbers are in", news, ack.GetRemoteDeliveries())
	for _, name := range []string{"acme/research/writer/1", "acme/research/writer/2"} {
		m, err := agents[name].receive(ctx)
		if err != nil {
			return err
		}
		d.say("    -> %-26s (%s) received %q from %s", name, agents[name].pod, m.GetPayload(), m.GetHeader().GetSource())
	}

	// 5. Anycast.
	d.section("anycast: fanout 1 hands each message to exactly one instance of a service")
	counts := map[string]int{}
	for i := 1; i <= 4; i++ {
		task := fmt.Sprintf("summarize report #%d", i)
		if _, err := planner.publish(ctx, summarizer, 1, task); err != nil {
			return err
		}
		who, m, err := receiveAny(ctx, agents["acme/research/summarizer/1"], agents["acme/research/summarizer/2"])
		if err != nil {
			return err
		}
		counts[who.name]++
		d.say("    %q -> %s (%s)", m.GetPayload(), who.name, who.pod)
	}
	d.say("    spread: summarizer/1 got %d, summarizer/2 got %d (local first, then round robin over pods)",
		counts["acme/research/summarizer/1"], counts["acme/research/summarizer/2"])

	// 6. A new subscriber appears.
	d.section("a new subscriber appears, and the others start delivering to it")
	const alerts = "acme/ops/alerts"
	ack, err = planner.publish(ctx, alerts, 0, "disk almost full")
	if err != nil {
		return err
	}
	d.say("    planner/1 publishes to %s: %d deliveries, nobody subscribes yet", alerts, ack.GetLocalDeliveries()+ack.GetRemoteDeliveries())
	auditor, err := d.connect(ctx, "acme/ops/auditor/1", "pod-c")
	if err != nil {
		return err
	}
	start := time.Now()
	if err := auditor.c.Subscribe(ctx, alerts); err != nil {
		return err
	}
	d.say("    acme/ops/auditor/1 (pod-c) subscribes to %s; pod-c mirrors it to the control plane", alerts)
	if _, err := d.awaitRoute(ctx, "pod-a", alerts, "pod-c"); err != nil {
		return err
	}
	d.say("    the control plane pushed the new route to pod-a %s after the subscribe", time.Since(start).Round(time.Millisecond))
	if _, err := planner.publish(ctx, alerts, 0, "disk almost full (again)"); err != nil {
		return err
	}
	m, err := auditor.receive(ctx)
	if err != nil {
		return err
	}
	d.say("    -> acme/ops/auditor/1 (pod-c) received %q", m.GetPayload())

	if err := demoRPC(ctx, d); err != nil {
		return err
	}

	d.section("MLS: what crossed between the pods was ciphertext")
	if mgr := d.sidecars["pod-a"].mls; mgr != nil {
		d.say("    every message and RPC frame above left its pod as an MLS (RFC 9420) PrivateMessage;")
		d.say("    pod-a's groups (members admitted only with a certificate from the trust bundle):")
		for _, g := range mgr.Groups() {
			var members []string
			for _, m := range g.Members {
				members = append(members, m.NodeID)
			}
			d.say("      %-8s %-28s epoch %d, committer %s, members %s", g.Kind, g.Name, g.Epoch, g.Committer, strings.Join(members, " "))
		}
		d.say("    (curl http://%s/debug/groups on any sidecar; no secret is shown there)", d.sidecars["pod-a"].node.AdminAddr())
	}

	d.section("look around")
	d.say("    control plane: curl http://%s/debug/routes   (and /debug/nodes, /metrics)", cp.AdminAddr())
	for _, name := range []string{"pod-a", "pod-b", "pod-c"} {
		d.say("    sidecar %s: curl http://%s/debug/subscriptions   (and /debug/connections, /debug/routes, /metrics)", name, d.sidecars[name].node.AdminAddr())
	}
	if stay {
		d.say("\nrunning until interrupted (Ctrl-C)")
		<-ctx.Done()
	}
	d.say("\ndemo complete.")
	return nil
}

func waitReady(ctx context.Context, ready <-chan struct{}, what string) error {
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(15 * time.Second):
		return fmt.Errorf("%s not ready after 15s", what)
	}
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// demoTrustDomain is the SPIFFE trust domain of the demo's throwaway CA.
const demoTrustDomain = "demo.agw"

func (d *demo) startSidecar(ctx context.Context, name, cpAddr string) (*sidecarProcess, error) {
	peer, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	if d.ca == nil {
		if d.ca, err = identity.NewCA(demoTrustDomain); err != nil {
			return nil, err
		}
	}
	id, err := identity.NewWorkloadID(demoTrustDomain, "demo", name)
	if err != nil {
		return nil, err
	}
	src, err := d.ca.MemorySource(id, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	d.stops = append(d.stops, func() { src.Close() }) // after the sidecar stops
	s := &sidecarSetup{node: sidecar.DefaultConfig(), xds: xdsclient.DefaultConfig(), mls: e2ee.DefaultConfig(), rpc: rpc.DefaultConfig(), nodeSet: true, identity: src}
	s.node.NodeID = name
	s.node.AgentListen, s.node.PeerListen, s.node.AdminListen = "127.0.0.1:0", peer, "127.0.0.1:0"
	s.xds.Server = cpAddr
	s.xds.BackoffInitial = 50 * time.Millisecond
	if err := s.resolve(func(string) string { return "" }); err != nil {
		return nil, err
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	p, err := buildSidecar(s, logging.Component(d.log, name), newRegistry())
	if err != nil {
		return nil, err
	}
	d.sidecars[name] = p
	d.background(name, p.Run)
	return p, waitReady(ctx, p.node.Ready(), "sidecar "+name)
}

// awaitRoute waits until sidecar pod's route for topic names every node in want.
func (d *demo) awaitRoute(ctx context.Context, pod, topic string, want ...string) (time.Duration, error) {
	start := time.Now()
	xc := d.sidecars[pod].xds
	xc.Watch(topic) // what the sidecar does on its agent's first publish
	deadline := start.Add(10 * time.Second)
	for {
		var have []string
		for _, ep := range xc.Endpoints(topic) {
			have = append(have, ep.GetNodeId())
		}
		ok := true
		for _, w := range want {
			ok = ok && slices.Contains(have, w)
		}
		if ok {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s never learnt the route of %s to %s (has %v)", pod, topic, strings.Join(want, ", "), have)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// demoAgent is a sample agent: an AGP client of its pod's sidecar.
type demoAgent struct {
	name, pod string
	c         *client.Client
}

func (d *demo) connect(ctx context.Context, name, pod string) (*demoAgent, error) {
	c, err := client.Dial(ctx, d.sidecars[pod].node.AgentAddr().String())
	if err != nil {
		return nil, err
	}
	d.stops = append(d.stops, func() { c.Close() })
	return &demoAgent{name: name, pod: pod, c: c}, nil
}

func (a *demoAgent) publish(ctx context.Context, topic string, fanout uint32, text string) (*agpv1.Ack, error) {
	ack, err := a.c.Publish(ctx, &agpv1.Message{
		Header:  &agpv1.Header{Source: a.name, Destination: topic, Fanout: fanout, ContentType: "text/plain"},
		Payload: []byte(text),
	})
	if err != nil {
		return nil, fmt.Errorf("%s publishes to %s: %w", a.name, topic, err)
	}
	return ack, nil
}

func (a *demoAgent) receive(ctx context.Context) (*agpv1.Message, error) {
	select {
	case m, ok := <-a.c.Deliveries():
		if !ok {
			return nil, fmt.Errorf("%s: stream ended: %v", a.name, a.c.Err())
		}
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(5 * time.Second):
		return nil, fmt.Errorf("%s received nothing within 5s", a.name)
	}
}

func receiveAny(ctx context.Context, agents ...*demoAgent) (*demoAgent, *agpv1.Message, error) {
	deadline := time.After(5 * time.Second)
	for {
		for _, a := range agents {
			select {
			case m, ok := <-a.c.Deliveries():
				if !ok {
					return nil, nil, fmt.Errorf("%s: stream ended: %v", a.name, a.c.Err())
				}
				return a, m, nil
			default:
			}
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-deadline:
			return nil, nil, errors.New("no instance received the anycast message within 5s")
		case <-time.After(2 * time.Millisecond):
		}
	}
}
