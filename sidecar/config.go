package sidecar

import (
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/spf13/pflag"

	"github.com/agwproject/agw/internal/identity"
)

// ProtocolVersion is the peer protocol version this node speaks.
const ProtocolVersion = 1

// MaxHopLimit is the largest hop limit a Publish may ask for.
const MaxHopLimit = 255

// Config configures a Node. Fill it with DefaultConfig or ConfigFromEnv, let
// BindFlags override it, then call Validate (New calls it too).
type Config struct {
	// NodeID names this node among its peers; unique in the mesh.
	NodeID string `env:"AGW_NODE_ID"`
	// AgentListen is the agent API address; loopback unless AllowRemoteAgents.
	AgentListen string `env:"AGW_AGENT_LISTEN" envDefault:"127.0.0.1:46357"`
	// PeerListen is the peer data plane address.
	PeerListen string `env:"AGW_PEER_LISTEN" envDefault:":46358"`
	// AdminListen is the admin HTTP address; empty disables it.
	AdminListen string `env:"AGW_ADMIN_LISTEN" envDefault:":15000"`
	// AdvertiseAddress is the host:port other nodes dial to reach this one;
	// empty = derived from PeerListen's bound address.
	AdvertiseAddress string `env:"AGW_ADVERTISE_ADDRESS"`
	// StaticPeers lists node=host:port entries dialled at start and kept up.
	StaticPeers []string `env:"AGW_STATIC_PEERS" envSeparator:","`
	// StaticRoutes lists topic=node entries used as the default RouteSource.
	StaticRoutes []string `env:"AGW_STATIC_ROUTES" envSeparator:","`
	// QueueSize bounds every per-connection send queue, in messages.
	QueueSize int `env:"AGW_QUEUE_SIZE" envDefault:"1024"`
	// MaxMessageBytes bounds one message on every listener.
	MaxMessageBytes int `env:"AGW_MAX_MESSAGE_BYTES" envDefault:"4194304"`
	// DefaultHopLimit is used for a Publish whose hop_limit is 0.
	DefaultHopLimit uint32 `env:"AGW_DEFAULT_HOP_LIMIT" envDefault:"8"`
	// MaxSubscriptionsPerConn bounds the topics one agent stream subscribes to.
	MaxSubscriptionsPerConn int `env:"AGW_MAX_SUBSCRIPTIONS_PER_CONN" envDefault:"10000"`
	// AllowRemoteAgents lets AgentListen bind a non-loopback address.
	AllowRemoteAgents bool `env:"AGW_ALLOW_REMOTE_AGENTS" envDefault:"false"`
	// PeerQueueWait is how long a publisher waits on a full peer queue.
	PeerQueueWait time.Duration `env:"AGW_PEER_QUEUE_WAIT" envDefault:"100ms"`
	// HandshakeTimeout bounds the peer handshake.
	HandshakeTimeout time.Duration `env:"AGW_HANDSHAKE_TIMEOUT" envDefault:"5s"`
	// ReconnectMin and ReconnectMax bound the peer reconnect backoff.
	ReconnectMin time.Duration `env:"AGW_RECONNECT_MIN" envDefault:"100ms"`
	ReconnectMax time.Duration `env:"AGW_RECONNECT_MAX" envDefault:"10s"`
	// PeerIdleTimeout drops a dynamically learnt peer with no traffic.
	PeerIdleTimeout time.Duration `env:"AGW_PEER_IDLE_TIMEOUT" envDefault:"5m"`
	// PeerNodeBinding says which node ids a peer's SPIFFE id may claim in
	// its handshake: "none" (any identity the trust bundle accepts may
	// claim any node id) or "namespace" (a peer with the id
	// spiffe://<td>/ns/<ns>/sa/<sa> may only claim node ids of the form
	// <ns>.<name>, as sidecars derive them from POD_NAMESPACE and
	// POD_NAME in Kubernetes). Needs an identity.
	PeerNodeBinding string `env:"AGW_PEER_NODE_BINDING" envDefault:"none"`
	// ShutdownTimeout bounds the drain on shutdown.
	ShutdownTimeout time.Duration `env:"AGW_SHUTDOWN_TIMEOUT" envDefault:"10s"`
	// Identity is the node's X.509 SVID and trust bundle (AGW_IDENTITY_*):
	// when set, peer links are mutual TLS 1.3 between SPIFFE identities of
	// the bundle; when empty, peer links are plaintext. WithIdentitySource
	// replaces it.
	Identity identity.Config
}

// DefaultConfig returns the defaults, ignoring the environment. NodeID is
// the host name.
func DefaultConfig() Config {
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Environment: map[string]string{}}); err != nil {
		panic(fmt.Sprintf("sidecar: bad envDefault tags: %v", err))
	}
	c.NodeID = hostNodeID()
	return c
}

// ConfigFromEnv returns the defaults overridden by AGW_* variables. An empty
// AGW_NODE_ID becomes the host name.
func ConfigFromEnv() (Config, error) {
	var c Config
	if err := env.Parse(&c); err != nil {
		return c, fmt.Errorf("sidecar config from environment: %w", explainEnvError(err))
	}
	if c.NodeID == "" {
		c.NodeID = hostNodeID()
	}
	return c, nil
}

func hostNodeID() string {
	h, err := os.Hostname()
	if err != nil || !validNodeID(h) {
		return ""
	}
	return h
}

// BindFlags registers one flag per field on fs, defaulting to the current
// values, so flags parsed after env override it.
func (c *Config) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.NodeID, "node-id", c.NodeID, "unique id of this node among its peers (AGW_NODE_ID)")
	fs.StringVar(&c.AgentListen, "agent-listen", c.AgentListen, "agent API address, loopback unless --allow-remote-agents (AGW_AGENT_LISTEN)")
	fs.StringVar(&c.PeerListen, "peer-listen", c.PeerListen, "peer data plane address (AGW_PEER_LISTEN)")
	fs.StringVar(&c.AdminListen, "admin-listen", c.AdminListen, "admin HTTP address, empty to disable (AGW_ADMIN_LISTEN)")
	fs.StringVar(&c.AdvertiseAddress, "advertise-address", c.AdvertiseAddress, "host:port peers dial to reach this node (AGW_ADVERTISE_ADDRESS)")
	fs.StringSliceVar(&c.StaticPeers, "static-peer", c.StaticPeers, "node=host:port of a peer to keep linked, repeatable (AGW_STATIC_PEERS)")
	fs.StringSliceVar(&c.StaticRoutes, "static-route", c.StaticRoutes, "topic=node route used without a control plane, repeatable (AGW_STATIC_ROUTES)")
	fs.IntVar(&c.QueueSize, "queue-size", c.QueueSize, "messages per connection send queue (AGW_QUEUE_SIZE)")
	fs.IntVar(&c.MaxMessageBytes, "max-message-bytes", c.MaxMessageBytes, "largest message accepted (AGW_MAX_MESSAGE_BYTES)")
	fs.Uint32Var(&c.DefaultHopLimit, "default-hop-limit", c.DefaultHopLimit, "hop limit of a publish that sets none (AGW_DEFAULT_HOP_LIMIT)")
	fs.IntVar(&c.MaxSubscriptionsPerConn, "max-subscriptions-per-conn", c.MaxSubscriptionsPerConn, "topics one agent stream may subscribe to (AGW_MAX_SUBSCRIPTIONS_PER_CONN)")
	fs.BoolVar(&c.AllowRemoteAgents, "allow-remote-agents", c.AllowRemoteAgents, "let the agent API listen on a non-loopback address (AGW_ALLOW_REMOTE_AGENTS)")
	fs.DurationVar(&c.PeerQueueWait, "peer-queue-wait", c.PeerQueueWait, "how long a publisher waits on a full peer queue (AGW_PEER_QUEUE_WAIT)")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", c.HandshakeTimeout, "peer handshake timeout (AGW_HANDSHAKE_TIMEOUT)")
	fs.DurationVar(&c.ReconnectMin, "reconnect-min", c.ReconnectMin, "first peer reconnect delay (AGW_RECONNECT_MIN)")
	fs.DurationVar(&c.ReconnectMax, "reconnect-max", c.ReconnectMax, "largest peer reconnect delay (AGW_RECONNECT_MAX)")
	fs.DurationVar(&c.PeerIdleTimeout, "peer-idle-timeout", c.PeerIdleTimeout, "drop a learnt peer idle this long (AGW_PEER_IDLE_TIMEOUT)")
	fs.StringVar(&c.PeerNodeBinding, "peer-node-binding", c.PeerNodeBinding, "node ids a peer's SPIFFE id may claim: none or namespace (AGW_PEER_NODE_BINDING)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long shutdown drains queues (AGW_SHUTDOWN_TIMEOUT)")
	c.Identity.BindFlags(fs)
}

// Validate checks c and says what to change.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !validNodeID(c.NodeID) {
		add("AGW_NODE_ID %q: want 1-128 characters of A-Z a-z 0-9 . _ - such as the pod name", c.NodeID)
	}
	if err := checkHostPort(c.AgentListen, "AGW_AGENT_LISTEN", "127.0.0.1:46357"); err != nil {
		errs = append(errs, err)
	} else if !c.AllowRemoteAgents && !isLoopbackHost(c.AgentListen) {
		add("AGW_AGENT_LISTEN %q is not a loopback address; use 127.0.0.1:46357 or set AGW_ALLOW_REMOTE_AGENTS=true", c.AgentListen)
	}
	if err := checkHostPort(c.PeerListen, "AGW_PEER_LISTEN", ":46358"); err != nil {
		errs = append(errs, err)
	}
	if c.AdminListen != "" {
		if err := checkHostPort(c.AdminListen, "AGW_ADMIN_LISTEN", ":15000"); err != nil {
			errs = append(errs, err)
		}
	}
	if c.AdvertiseAddress != "" {
		if err := checkHostPort(c.AdvertiseAddress, "AGW_ADVERTISE_ADDRESS", "10.0.0.7:46358"); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := parseStaticPeers(c.StaticPeers, c.NodeID); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseStaticRoutes(c.StaticRoutes); err != nil {
		errs = append(errs, err)
	}
	if c.QueueSize < 1 || c.QueueSize > 1<<20 {
		add("AGW_QUEUE_SIZE %d: want 1..1048576 (default 1024)", c.QueueSize)
	}
	if c.MaxMessageBytes < 1024 || c.MaxMessageBytes > 64<<20 {
		add("AGW_MAX_MESSAGE_BYTES %d: want 1024..67108864 (default 4194304)", c.MaxMessageBytes)
	}
	if c.DefaultHopLimit < 1 || c.DefaultHopLimit > MaxHopLimit {
		add("AGW_DEFAULT_HOP_LIMIT %d: want 1..%d (default 8)", c.DefaultHopLimit, MaxHopLimit)
	}
	if c.MaxSubscriptionsPerConn < 1 {
		add("AGW_MAX_SUBSCRIPTIONS_PER_CONN %d: want at least 1 (default 10000)", c.MaxSubscriptionsPerConn)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		min  time.Duration
	}{
		{"AGW_PEER_QUEUE_WAIT", c.PeerQueueWait, 0},
		{"AGW_HANDSHAKE_TIMEOUT", c.HandshakeTimeout, time.Millisecond},
		{"AGW_RECONNECT_MIN", c.ReconnectMin, time.Millisecond},
		{"AGW_RECONNECT_MAX", c.ReconnectMax, time.Millisecond},
		{"AGW_PEER_IDLE_TIMEOUT", c.PeerIdleTimeout, time.Second},
		{"AGW_SHUTDOWN_TIMEOUT", c.ShutdownTimeout, 0},
	} {
		if d.v < d.min {
			add("%s %s: want at least %s", d.name, d.v, d.min)
		}
	}
	if c.ReconnectMax < c.ReconnectMin {
		add("AGW_RECONNECT_MAX %s is below AGW_RECONNECT_MIN %s", c.ReconnectMax, c.ReconnectMin)
	}
	switch c.PeerNodeBinding {
	case BindingNone:
	case BindingNamespace: // New checks that the node has an identity
	default:
		add("AGW_PEER_NODE_BINDING %q: want %s or %s (default %s)", c.PeerNodeBinding, BindingNone, BindingNamespace, BindingNone)
	}
	if c.Identity.Enabled() {
		if err := c.Identity.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Peer node bindings (Config.PeerNodeBinding).
const (
	BindingNone      = "none"
	BindingNamespace = "namespace"
)

// validNodeID: 1-128 of [A-Za-z0-9._-].
func validNodeID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '.', b == '_', b == '-':
		default:
			return false
		}
	}
	return true
}

func checkHostPort(addr, name, example string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return fmt.Errorf("%s %q: missing port; use host:port such as %s", name, addr, example)
		}
		return fmt.Errorf("%s %q: %v; use host:port such as %s", name, addr, err, example)
	}
	_ = host
	if port == "" {
		return fmt.Errorf("%s %q: empty port; use host:port such as %s", name, addr, example)
	}
	return nil
}

func isLoopbackHost(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseStaticPeers parses node=host:port entries.
func parseStaticPeers(entries []string, self string) (map[string]string, error) {
	m := make(map[string]string, len(entries))
	for _, e := range entries {
		node, addr, ok := strings.Cut(strings.TrimSpace(e), "=")
		if !ok || !validNodeID(node) {
			return nil, fmt.Errorf("AGW_STATIC_PEERS entry %q: want node=host:port such as b=10.0.0.8:46358", e)
		}
		if err := checkHostPort(addr, "AGW_STATIC_PEERS entry "+node, "10.0.0.8:46358"); err != nil {
			return nil, err
		}
		if node == self {
			return nil, fmt.Errorf("AGW_STATIC_PEERS entry %q names this node itself; remove it", e)
		}
		if old, dup := m[node]; dup && old != addr {
			return nil, fmt.Errorf("AGW_STATIC_PEERS names node %q twice (%s and %s); keep one", node, old, addr)
		}
		m[node] = addr
	}
	return m, nil
}

// parseStaticRoutes parses topic=node entries.
func parseStaticRoutes(entries []string) (map[string][]string, error) {
	m := make(map[string][]string)
	for _, e := range entries {
		topic, node, ok := strings.Cut(strings.TrimSpace(e), "=")
		if !ok || !validNodeID(node) {
			return nil, fmt.Errorf("AGW_STATIC_ROUTES entry %q: want topic=node such as acme/prod/search=b", e)
		}
		if err := validateName(topic); err != nil {
			return nil, fmt.Errorf("AGW_STATIC_ROUTES entry %q: %w", e, err)
		}
		m[topic] = append(m[topic], node)
	}
	return m, nil
}

// explainEnvError names the variable behind each parse error.
func explainEnvError(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	types := []reflect.Type{reflect.TypeFor[Config](), reflect.TypeFor[identity.Config]()}
	var out []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := fieldByName(types, pe.Name); ok {
				out = append(out, fmt.Errorf("%s: want a %s: %w", f.Tag.Get("env"), pe.Type, pe.Err))
				continue
			}
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

func fieldByName(types []reflect.Type, name string) (reflect.StructField, bool) {
	for _, t := range types {
		if f, ok := t.FieldByName(name); ok && f.Tag.Get("env") != "" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
