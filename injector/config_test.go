package injector

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestConfigDefaultsValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if c.Listen != ":9443" || c.XDSServer != "agw-control-plane.agw-system.svc:18000" || c.IdentitySecret != "agw-identity" {
		t.Errorf("defaults %+v", c)
	}
}

func TestConfigFromEnvAndFlags(t *testing.T) {
	t.Setenv("AGW_INJECT_IMAGE", "agw:from-env")
	t.Setenv("AGW_INJECT_CERT_RELOAD_INTERVAL", "3s")
	t.Setenv("AGW_INJECT_XDS_SERVER", "cp.example:18000")
	t.Setenv("AGW_INJECT_IDENTITY_TRUST_DOMAINS", "a.example,b.example")
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.Image != "agw:from-env" || c.CertReloadInterval != 3*time.Second || c.XDSServer != "cp.example:18000" ||
		strings.Join(c.IdentityTrustDomains, ",") != "a.example,b.example" || c.PeerNodeBinding != "namespace" {
		t.Fatalf("env not applied: %+v", c)
	}
	fs := pflag.NewFlagSet("inject", pflag.ContinueOnError)
	c.BindFlags(fs)
	if err := fs.Parse([]string{"--image", "agw:from-flag", "--memory-limit", ""}); err != nil {
		t.Fatal(err)
	}
	if c.Image != "agw:from-flag" || c.MemoryLimit != "" || c.XDSServer != "cp.example:18000" {
		t.Fatalf("flags: %+v", c)
	}
	// Every field has a flag that names its variable.
	n := 0
	fs.VisitAll(func(f *pflag.Flag) {
		n++
		if !strings.Contains(f.Usage, "(AGW_INJECT_") {
			t.Errorf("flag --%s does not name its variable: %q", f.Name, f.Usage)
		}
	})
	if want := reflect.TypeFor[Config]().NumField(); n != want {
		t.Errorf("%d flags, want one per Config field (%d)", n, want)
	}

	t.Setenv("AGW_INJECT_SHUTDOWN_TIMEOUT", "soon")
	if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "ShutdownTimeout") {
		t.Errorf("bad duration: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"listen", func(c *Config) { c.Listen = "9443" }, "AGW_INJECT_LISTEN"},
		{"listen port", func(c *Config) { c.Listen = ":http" }, "port must be"},
		{"cert", func(c *Config) { c.CertFile = "" }, "AGW_INJECT_TLS_CERT_FILE"},
		{"reload", func(c *Config) { c.CertReloadInterval = time.Millisecond }, "AGW_INJECT_CERT_RELOAD_INTERVAL"},
		{"shutdown", func(c *Config) { c.ShutdownTimeout = -time.Second }, "AGW_INJECT_SHUTDOWN_TIMEOUT"},
		{"body", func(c *Config) { c.MaxRequestBytes = 10 }, "AGW_INJECT_MAX_REQUEST_BYTES"},
		{"image", func(c *Config) { c.Image = "" }, "AGW_INJECT_IMAGE"},
		{"pull", func(c *Config) { c.ImagePullPolicy = "Sometimes" }, "AGW_INJECT_IMAGE_PULL_POLICY"},
		{"xds", func(c *Config) { c.XDSServer = ":18000" }, "AGW_INJECT_XDS_SERVER"},
		{"xds port", func(c *Config) { c.XDSServer = "cp:0" }, "AGW_INJECT_XDS_SERVER"},
		{"level", func(c *Config) { c.SidecarLogLevel = "loud" }, "AGW_INJECT_SIDECAR_LOG_LEVEL"},
		{"cpu", func(c *Config) { c.CPURequest = "fast" }, "AGW_INJECT_CPU_REQUEST"},
		{"memory", func(c *Config) { c.MemoryLimit = "12 GB" }, "AGW_INJECT_MEMORY_LIMIT"},
		{"request above limit", func(c *Config) { c.MemoryRequest = "1Gi" }, "memory request 1Gi is above its limit 256Mi"},
		{"secret", func(c *Config) { c.IdentitySecret = "Not_A_Name" }, "AGW_INJECT_IDENTITY_SECRET"},
		{"trust domain", func(c *Config) { c.IdentityTrustDomains = []string{"Example.org"} }, "AGW_INJECT_IDENTITY_TRUST_DOMAINS"},
		{"node binding", func(c *Config) { c.PeerNodeBinding = "pod" }, "AGW_INJECT_PEER_NODE_BINDING"},
	} {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
	c := DefaultConfig()
	c.Listen, c.CPULimit, c.IdentitySecret, c.PeerNodeBinding = "127.0.0.1:0", "1", "", "none"
	c.IdentityTrustDomains = []string{"example.org", "partner.example"}
	if err := c.Validate(); err != nil {
		t.Errorf("valid variant: %v", err)
	}
}
