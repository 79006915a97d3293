package rpc

import (
	"strings"
	"testing"
	"time"

	"github.com/agwproject/agw/interceptors"
	"github.com/agwproject/agw/sidecar"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"google.golang.org/grpc/metadata"
)

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	if c.InterceptListen != "127.0.0.1:46359" || c.Window != 32 || c.AcceptTimeout != 5*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	if err := c.Validate(); err != nil || c.Enabled() {
		t.Fatalf("empty agent name: off and valid, got %v", err)
	}
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.AgentName = ""; c.AppAddr = "127.0.0.1:50051" }, "AGW_AGENT_NAME is empty"},
		{func(c *Config) { c.AgentName = "acme/demo/echo" }, "names a service"},
		{func(c *Config) { c.AgentName = "Acme/demo/echo/1" }, "AGW_AGENT_NAME"},
		{func(c *Config) { c.AgentName = "agwrpc.acme/demo/echo/1" }, "reserved"},
		{func(c *Config) { c.InterceptListen = "0.0.0.0:46359" }, "not a loopback"},
		{func(c *Config) { c.InterceptListen = "127.0.0.1" }, "AGW_INTERCEPT_LISTEN"},
		{func(c *Config) { c.AppAddr = "nowhere" }, "AGW_APP_ADDR"},
		{func(c *Config) { c.AuthorityMap = []string{"x"} }, "AGW_AUTHORITY_MAP entry"},
		{func(c *Config) { c.AuthorityMap = []string{"x=bad"} }, "AGW_AUTHORITY_MAP entry"},
		{func(c *Config) { c.AuthorityMap = []string{"x=a/b/c", "x=a/b/d"} }, "twice"},
		{func(c *Config) { c.Channels = []string{"nope"} }, "AGW_RPC_CHANNELS"},
		{func(c *Config) { c.Window = 1 }, "AGW_RPC_WINDOW"},
		{func(c *Config) { c.MaxMessageBytes = 10 }, "AGW_RPC_MAX_MESSAGE_BYTES"},
		{func(c *Config) { c.MaxConcurrentCalls = 0 }, "AGW_RPC_MAX_CONCURRENT_CALLS"},
		{func(c *Config) { c.RateLimit = -1 }, "AGW_RPC_RATE_LIMIT"},
		{func(c *Config) { c.AcceptTimeout = 0 }, "AGW_RPC_ACCEPT_TIMEOUT"},
	} {
		c := DefaultConfig()
		c.AgentName = "acme/demo/echo/1"
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error with %q, got %v", tc.want, err)
		}
	}
	c.AgentName = "acme/demo/echo/1"
	c.AuthorityMap = []string{"echo:80=acme/demo/echo"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigEnvAndFlags(t *testing.T) {
	t.Setenv("AGW_AGENT_NAME", "acme/demo/echo/1")
	t.Setenv("AGW_AUTHORITY_MAP", "a=acme/x/a,b=acme/x/b")
	t.Setenv("AGW_RPC_WINDOW", "64")
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.AgentName != "acme/demo/echo/1" || len(c.AuthorityMap) != 2 || c.Window != 64 {
		t.Fatalf("from env: %+v", c)
	}
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	c.BindFlags(fs)
	if err := fs.Parse([]string{"--rpc-window=16", "--app-addr=127.0.0.1:50051"}); err != nil {
		t.Fatal(err)
	}
	if c.Window != 16 || c.AppAddr != "127.0.0.1:50051" || c.AgentName != "acme/demo/echo/1" {
		t.Fatalf("flags: %+v", c)
	}
}

func TestResolve(t *testing.T) {
	r := Resolver{Org: "acme", Map: map[string]string{"search": "acme/prod/search", "db:5432": "acme/prod/db/1"}}
	for in, want := range map[string]string{
		"search":                            "acme/prod/search",
		"search:443":                        "acme/prod/search",
		"db:5432":                           "acme/prod/db/1",
		"writer.research":                   "acme/research/writer",
		"writer.research:80":                "acme/research/writer",
		"writer.research.svc.cluster.local": "acme/research/writer",
		"other/ns/svc/2":                    "other/ns/svc/2",
	} {
		got, err := r.Resolve(in)
		if err != nil || got != want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "nodots", "Bad/Name/x", "agwrpc.acme/a/b", "UPPER.case"} {
		if got, err := r.Resolve(in); err == nil {
			t.Errorf("Resolve(%q) = %q, want an error", in, got)
		}
	}
}

func TestTopic(t *testing.T) {
	if got, err := Topic("acme/demo/echo/1"); err != nil || got != "agwrpc.acme/demo/echo/1" {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := Topic(strings.Repeat("a", 60) + "/b/c"); err == nil {
		t.Fatal("an org too long for the prefix was accepted")
	}
	if _, err := Topic("agwrpc.acme/b/c"); err == nil {
		t.Fatal("a reserved name got a topic")
	}
}

func TestMetadataFilter(t *testing.T) {
	md := metadata.MD{
		":authority": {"x"}, "content-type": {"application/grpc"}, "grpc-timeout": {"1S"},
		"traceparent": {"00-..."}, "agw-target": {"a/b/c"}, "x-keep": {"1", "2"}, "x-bin": {"\x00\xff"},
	}
	back := fromWire(toWire(md))
	if len(back) != 2 || len(back["x-keep"]) != 2 || back["x-bin"][0] != "\x00\xff" {
		t.Fatalf("round trip: %v", back)
	}
}

// cmd/agw puts these flags next to the node's on one flag set.
func TestFlagsBesideSidecarFlags(t *testing.T) {
	fs := pflag.NewFlagSet("sidecar", pflag.ContinueOnError)
	nc := sidecar.DefaultConfig()
	nc.BindFlags(fs)
	c := DefaultConfig()
	c.BindFlags(fs) // pflag panics on a name defined twice
	if fs.Lookup("agent-name") == nil || fs.Lookup("intercept-listen") == nil {
		t.Fatal("rpc flags missing")
	}
}

func TestNewErrors(t *testing.T) {
	c := DefaultConfig()
	if _, err := New(c, "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "AGW_AGENT_NAME") {
		t.Fatalf("disabled layer: %v", err)
	}
	c.AgentName = "acme/demo/echo/1"
	if _, err := New(c, ""); err == nil {
		t.Fatal("empty agent address accepted")
	}
	if _, err := NewForNode(c, nil); err == nil {
		t.Fatal("nil node accepted")
	}
	reg := prometheus.NewRegistry()
	if _, err := New(c, "127.0.0.1:1", WithRegisterer(reg)); err != nil {
		t.Fatal(err)
	}
	if _, err := New(c, "127.0.0.1:1", WithRegisterer(reg)); err == nil {
		t.Fatal("two layers on one registry: want an error, not a panic")
	}
	// Beside the node's listener metrics on the sidecar's one registry.
	shared := prometheus.NewRegistry()
	interceptors.NewMetrics(shared, "agent")
	interceptors.NewMetrics(shared, "peer")
	if _, err := New(c, "127.0.0.1:1", WithRegisterer(shared)); err != nil {
		t.Fatalf("next to the node's metrics: %v", err)
	}
}
