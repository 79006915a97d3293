package rpc

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/agwproject/agw/internal/names"
	"github.com/caarlos0/env/v11"
	"github.com/spf13/pflag"
)

// Config configures a Layer. Fill it with DefaultConfig or ConfigFromEnv,
// let BindFlags override it, then Validate (New does too).
type Config struct {
	// InterceptListen is the interception listener (loopback only).
	InterceptListen string `env:"AGW_INTERCEPT_LISTEN" envDefault:"127.0.0.1:46359"`
	// AppAddr is the agent's own gRPC server, where calls for it are
	// replayed; empty: this agent only makes calls.
	AppAddr string `env:"AGW_APP_ADDR"`
	// AgentName is this pod's agent, org/namespace/service/instance: the
	// caller name of its calls and the instance whose calls are replayed.
	// Empty disables the RPC layer.
	AgentName string `env:"AGW_AGENT_NAME"`
	// AuthorityMap holds authority=name entries.
	AuthorityMap []string `env:"AGW_AUTHORITY_MAP" envSeparator:","`
	// Channels lists the channels (AGP names) whose multicast calls this
	// agent answers, besides its service name.
	Channels []string `env:"AGW_RPC_CHANNELS" envSeparator:","`
	// MaxMessageBytes bounds one request or response message; keep it at
	// least 16 KiB below the node's AGW_MAX_MESSAGE_BYTES.
	MaxMessageBytes int `env:"AGW_RPC_MAX_MESSAGE_BYTES" envDefault:"4177920"`
	// MaxConcurrentCalls bounds the calls in flight on the interception
	// listener, and separately the calls replayed to the app.
	MaxConcurrentCalls int `env:"AGW_RPC_MAX_CONCURRENT_CALLS" envDefault:"1024"`
	// RateLimit bounds new calls per second on the interception listener
	// (0 = unlimited), with bursts of RateBurst.
	RateLimit float64 `env:"AGW_RPC_RATE_LIMIT" envDefault:"0"`
	RateBurst int     `env:"AGW_RPC_RATE_BURST" envDefault:"100"`
	// Window is the per-call, per-direction flow-control window in messages.
	Window int `env:"AGW_RPC_WINDOW" envDefault:"32"`
	// AcceptTimeout is how long a caller waits for the target's sidecar to
	// take the call before it fails with UNAVAILABLE.
	AcceptTimeout time.Duration `env:"AGW_RPC_ACCEPT_TIMEOUT" envDefault:"5s"`
	// RouteWait is how long a call's first frame to a topic is retried
	// while no sidecar takes it: routes are fetched on demand, so the first
	// frame to a new target may find none yet.
	RouteWait time.Duration `env:"AGW_RPC_ROUTE_WAIT" envDefault:"2s"`
	// ProbeInterval: a side that heard nothing on a call for this long
	// pings the other; no answer within another interval fails the call
	// with UNAVAILABLE (a lost last frame, a vanished sidecar). 0 disables.
	ProbeInterval time.Duration `env:"AGW_RPC_PROBE_INTERVAL" envDefault:"15s"`
	// ShutdownTimeout is how long in-flight calls may run after shutdown
	// starts before they are cancelled.
	ShutdownTimeout time.Duration `env:"AGW_RPC_SHUTDOWN_TIMEOUT" envDefault:"10s"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	var c Config
	_ = env.ParseWithOptions(&c, env.Options{Environment: map[string]string{}})
	return c
}

// ConfigFromEnv reads the AGW_* environment over the defaults.
func ConfigFromEnv() (Config, error) {
	var c Config
	if err := env.Parse(&c); err != nil {
		return c, fmt.Errorf("rpc config: %w", err)
	}
	return c, nil
}

// Enabled reports whether the layer should run (AGW_AGENT_NAME is set).
func (c *Config) Enabled() bool { return c.AgentName != "" }

// BindFlags registers a flag per setting on fs, defaulting to c's values.
func (c *Config) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.InterceptListen, "intercept-listen", c.InterceptListen, "gRPC interception listener, loopback only (AGW_INTERCEPT_LISTEN)")
	fs.StringVar(&c.AppAddr, "app-addr", c.AppAddr, "the agent's own gRPC server, where calls for it are replayed (AGW_APP_ADDR)")
	fs.StringVar(&c.AgentName, "agent-name", c.AgentName, "this pod's agent, org/namespace/service/instance; empty disables RPC (AGW_AGENT_NAME)")
	fs.StringSliceVar(&c.AuthorityMap, "authority-map", c.AuthorityMap, "authority=org/namespace/service[/instance], repeatable (AGW_AUTHORITY_MAP)")
	fs.StringSliceVar(&c.Channels, "rpc-channel", c.Channels, "channel whose multicast calls this agent answers, repeatable (AGW_RPC_CHANNELS)")
	fs.IntVar(&c.MaxMessageBytes, "rpc-max-message-bytes", c.MaxMessageBytes, "largest request or response message (AGW_RPC_MAX_MESSAGE_BYTES)")
	fs.IntVar(&c.MaxConcurrentCalls, "rpc-max-concurrent-calls", c.MaxConcurrentCalls, "calls in flight per direction (AGW_RPC_MAX_CONCURRENT_CALLS)")
	fs.Float64Var(&c.RateLimit, "rpc-rate-limit", c.RateLimit, "new calls per second from the agent, 0 = unlimited (AGW_RPC_RATE_LIMIT)")
	fs.IntVar(&c.RateBurst, "rpc-rate-burst", c.RateBurst, "burst of new calls above the rate (AGW_RPC_RATE_BURST)")
	fs.IntVar(&c.Window, "rpc-window", c.Window, "per-call flow-control window in messages (AGW_RPC_WINDOW)")
	fs.DurationVar(&c.AcceptTimeout, "rpc-accept-timeout", c.AcceptTimeout, "how long to wait for the target to take a call (AGW_RPC_ACCEPT_TIMEOUT)")
	fs.DurationVar(&c.RouteWait, "rpc-route-wait", c.RouteWait, "how long a call's first frame waits for a route (AGW_RPC_ROUTE_WAIT)")
	fs.DurationVar(&c.ProbeInterval, "rpc-probe-interval", c.ProbeInterval, "ping the other side of a call silent this long, 0 = never (AGW_RPC_PROBE_INTERVAL)")
	fs.DurationVar(&c.ShutdownTimeout, "rpc-shutdown-timeout", c.ShutdownTimeout, "how long in-flight calls may finish at shutdown (AGW_RPC_SHUTDOWN_TIMEOUT)")
}

// Validate checks c and says what to change.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.AgentName == "" {
		if c.AppAddr != "" {
			add("AGW_APP_ADDR is set but AGW_AGENT_NAME is empty; set AGW_AGENT_NAME to this agent's org/namespace/service/instance")
		}
		return errors.Join(errs...)
	}
	if n, err := names.Parse(c.AgentName); err != nil {
		add("AGW_AGENT_NAME: %v", err)
	} else if !n.IsInstance() {
		add("AGW_AGENT_NAME %q names a service; add the instance: %s/<instance> (such as the pod name)", c.AgentName, c.AgentName)
	} else if _, err := Topic(c.AgentName); err != nil {
		add("AGW_AGENT_NAME: %v", err)
	}
	if c.InterceptListen != "" {
		host, port, err := net.SplitHostPort(c.InterceptListen)
		switch {
		case err != nil:
			add("AGW_INTERCEPT_LISTEN %q: %v; use host:port such as 127.0.0.1:46359", c.InterceptListen, err)
		case port == "":
			add("AGW_INTERCEPT_LISTEN %q: empty port; use host:port such as 127.0.0.1:46359", c.InterceptListen)
		case !isLoopback(host):
			add("AGW_INTERCEPT_LISTEN %q is not a loopback address; use 127.0.0.1:46359", c.InterceptListen)
		}
	}
	if c.AppAddr != "" {
		if _, port, err := net.SplitHostPort(c.AppAddr); err != nil || port == "" {
			add("AGW_APP_ADDR %q: want host:port of the agent's gRPC server such as 127.0.0.1:50051", c.AppAddr)
		}
	}
	if _, err := parseAuthorityMap(c.AuthorityMap); err != nil {
		errs = append(errs, err)
	}
	for _, ch := range c.Channels {
		if _, err := Topic(ch); err != nil {
			add("AGW_RPC_CHANNELS entry %q: %v", ch, err)
		}
	}
	if c.MaxMessageBytes < 1024 || c.MaxMessageBytes > 64<<20 {
		add("AGW_RPC_MAX_MESSAGE_BYTES %d: want 1024..67108864 (default 4177920)", c.MaxMessageBytes)
	}
	if c.MaxConcurrentCalls < 1 {
		add("AGW_RPC_MAX_CONCURRENT_CALLS %d: want at least 1 (default 1024)", c.MaxConcurrentCalls)
	}
	if c.RateLimit < 0 {
		add("AGW_RPC_RATE_LIMIT %v: want 0 (unlimited) or more", c.RateLimit)
	}
	if c.RateLimit > 0 && c.RateBurst < 1 {
		add("AGW_RPC_RATE_BURST %d: want at least 1 with a rate limit", c.RateBurst)
	}
	if c.Window < 2 || c.Window > 4096 {
		add("AGW_RPC_WINDOW %d: want 2..4096 messages (default 32)", c.Window)
	}
	if c.AcceptTimeout < time.Millisecond {
		add("AGW_RPC_ACCEPT_TIMEOUT %s: want at least 1ms (default 5s)", c.AcceptTimeout)
	}
	if c.RouteWait < 0 {
		add("AGW_RPC_ROUTE_WAIT %s: want 0 or more (default 2s)", c.RouteWait)
	}
	if c.ProbeInterval != 0 && c.ProbeInterval < 10*time.Millisecond {
		add("AGW_RPC_PROBE_INTERVAL %s: want 0 (off) or at least 10ms (default 15s)", c.ProbeInterval)
	}
	if c.ShutdownTimeout < 0 {
		add("AGW_RPC_SHUTDOWN_TIMEOUT %s: want 0 or more (default 10s)", c.ShutdownTimeout)
	}
	return errors.Join(errs...)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseAuthorityMap parses authority=name entries.
func parseAuthorityMap(entries []string) (map[string]string, error) {
	m := make(map[string]string, len(entries))
	for _, e := range entries {
		k, v, ok := strings.Cut(strings.TrimSpace(e), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("AGW_AUTHORITY_MAP entry %q: want authority=org/namespace/service such as search.prod=acme/prod/search", e)
		}
		if _, err := Topic(v); err != nil {
			return nil, fmt.Errorf("AGW_AUTHORITY_MAP entry %q: %w", e, err)
		}
		if old, dup := m[k]; dup && old != v {
			return nil, fmt.Errorf("AGW_AUTHORITY_MAP maps %q twice (%s and %s); keep one", k, old, v)
		}
		m[k] = v
	}
	return m, nil
}
