package sidecar

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if c.AgentListen != "127.0.0.1:46357" || c.PeerListen != ":46358" || c.AdminListen != ":15000" ||
		c.QueueSize != 1024 || c.MaxMessageBytes != 4<<20 || c.PeerQueueWait != 100*time.Millisecond ||
		c.ReconnectMin != 100*time.Millisecond || c.ReconnectMax != 10*time.Second || c.DefaultHopLimit != 8 {
		t.Fatalf("defaults %+v", c)
	}
	c.NodeID = "a"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigEnvThenFlags(t *testing.T) {
	t.Setenv("AGW_NODE_ID", "envnode")
	t.Setenv("AGW_QUEUE_SIZE", "5")
	t.Setenv("AGW_STATIC_PEERS", "b=10.0.0.2:46358,c=10.0.0.3:46358")
	t.Setenv("AGW_PEER_QUEUE_WAIT", "250ms")
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeID != "envnode" || c.QueueSize != 5 || len(c.StaticPeers) != 2 || c.PeerQueueWait != 250*time.Millisecond {
		t.Fatalf("from env %+v", c)
	}
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	c.BindFlags(fs)
	if err := fs.Parse([]string{"--queue-size=7", "--static-route=o/n/s=b", "--allow-remote-agents"}); err != nil {
		t.Fatal(err)
	}
	if c.QueueSize != 7 || c.NodeID != "envnode" || len(c.StaticRoutes) != 1 || !c.AllowRemoteAgents {
		t.Fatalf("after flags %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AGW_QUEUE_SIZE", "many")
	if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "AGW_QUEUE_SIZE") {
		t.Fatalf("bad env: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"node id", func(c *Config) { c.NodeID = "" }, "AGW_NODE_ID"},
		{"peer listen port", func(c *Config) { c.PeerListen = "foo" }, `AGW_PEER_LISTEN "foo": missing port; use host:port such as :46358`},
		{"remote agents", func(c *Config) { c.AgentListen = "0.0.0.0:46357" }, "AGW_ALLOW_REMOTE_AGENTS=true"},
		{"static peer", func(c *Config) { c.StaticPeers = []string{"b"} }, "want node=host:port"},
		{"static peer self", func(c *Config) { c.StaticPeers = []string{"a=h:1"} }, "names this node itself"},
		{"static route", func(c *Config) { c.StaticRoutes = []string{"Bad=b"} }, "AGW_STATIC_ROUTES"},
		{"queue", func(c *Config) { c.QueueSize = 0 }, "AGW_QUEUE_SIZE 0"},
		{"max message", func(c *Config) { c.MaxMessageBytes = 10 }, "AGW_MAX_MESSAGE_BYTES"},
		{"hop limit", func(c *Config) { c.DefaultHopLimit = 0 }, "AGW_DEFAULT_HOP_LIMIT"},
		{"backoff", func(c *Config) { c.ReconnectMax = time.Millisecond }, "AGW_RECONNECT_MAX"},
		{"identity without key", func(c *Config) { c.Identity.CertFile = "x.pem" }, "AGW_IDENTITY_KEY_FILE is empty"},
		{"identity without bundle", func(c *Config) { c.Identity.CertFile, c.Identity.KeyFile = "x.pem", "x.key" }, "AGW_IDENTITY_BUNDLE_FILE is empty"},
		{"identity reload", func(c *Config) { c.Identity.Dir, c.Identity.ReloadInterval = "/id", 0 }, "AGW_IDENTITY_RELOAD_INTERVAL"},
		{"identity trust domain", func(c *Config) { c.Identity.Dir, c.Identity.TrustDomains = "/id", []string{"Bad Domain"} }, "AGW_IDENTITY_TRUST_DOMAINS"},
		{"node binding", func(c *Config) { c.PeerNodeBinding = "pod" }, "AGW_PEER_NODE_BINDING"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.NodeID = "a"
			tc.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want it to contain %q", err, tc.want)
			}
			if _, err := New(c); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
	c := DefaultConfig()
	c.NodeID = "a"
	c.AgentListen = "0.0.0.0:46357"
	c.AllowRemoteAgents = true
	if err := c.Validate(); err != nil {
		t.Fatalf("remote agents allowed: %v", err)
	}
	c.Identity.Dir = t.TempDir() // empty: no tls.crt
	if err := c.Validate(); err != nil {
		t.Fatalf("identity dir: %v", err)
	}
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "AGW_IDENTITY") {
		t.Fatalf("missing identity files: %v", err)
	}
	// The namespace binding needs an identity.
	c = DefaultConfig()
	c.NodeID = "a"
	c.PeerNodeBinding = BindingNamespace
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "needs an identity") {
		t.Fatalf("binding without identity: %v", err)
	}
}

func TestConfigIdentityEnvAndFlags(t *testing.T) {
	t.Setenv("AGW_NODE_ID", "envnode")
	t.Setenv("AGW_IDENTITY_DIR", "/var/run/agw/identity")
	t.Setenv("AGW_IDENTITY_TRUST_DOMAINS", "a.example,b.example")
	t.Setenv("AGW_PEER_NODE_BINDING", "namespace")
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.Identity.Dir != "/var/run/agw/identity" || len(c.Identity.TrustDomains) != 2 || c.PeerNodeBinding != BindingNamespace ||
		c.Identity.ReloadInterval != 5*time.Second || !c.Identity.Enabled() {
		t.Fatalf("from env %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	c.BindFlags(fs)
	if err := fs.Parse([]string{"--identity-dir=/other", "--identity-reload-interval=1s", "--peer-node-binding=none"}); err != nil {
		t.Fatal(err)
	}
	if c.Identity.Dir != "/other" || c.Identity.ReloadInterval != time.Second || c.PeerNodeBinding != BindingNone {
		t.Fatalf("after flags %+v", c)
	}
	if d := DefaultConfig(); d.Identity.Enabled() || d.Identity.ReloadInterval != 5*time.Second || d.PeerNodeBinding != BindingNone {
		t.Fatalf("defaults %+v", d)
	}
	t.Setenv("AGW_IDENTITY_RELOAD_INTERVAL", "often")
	if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "AGW_IDENTITY_RELOAD_INTERVAL") {
		t.Fatalf("bad env: %v", err)
	}
	for _, name := range []string{"AGW_TLS_CERT_FILE", "AGW_TLS_KEY_FILE", "AGW_TLS_CA_FILE", "AGW_TLS_SERVER_NAME"} {
		if fs.Lookup(strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "AGW_"), "_", "-"))) != nil {
			t.Errorf("flag for removed %s still registered", name)
		}
	}
}
