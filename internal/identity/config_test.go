package identity

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestConfigDefaultsAndEnv(t *testing.T) {
	c := DefaultConfig()
	if c.ReloadInterval != 5*time.Second {
		t.Errorf("default reload interval %s", c.ReloadInterval)
	}
	if c.Enabled() {
		t.Error("default config enabled")
	}
	t.Setenv("AGW_IDENTITY_DIR", "/var/run/secrets/agw")
	t.Setenv("AGW_IDENTITY_KEY_FILE", "/keys/k.pem")
	t.Setenv("AGW_IDENTITY_TRUST_DOMAINS", "example.org,partner.example")
	t.Setenv("AGW_IDENTITY_DENY", "serial:01,spiffe://example.org/a")
	t.Setenv("AGW_IDENTITY_RELOAD_INTERVAL", "2s")
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	cert, key, bundle := c.Paths()
	if cert != filepath.Join("/var/run/secrets/agw", CertFileName) || key != "/keys/k.pem" || bundle != filepath.Join("/var/run/secrets/agw", BundleFileName) {
		t.Errorf("paths %s %s %s", cert, key, bundle)
	}
	if !slices.Equal(c.TrustDomains, []string{"example.org", "partner.example"}) || len(c.Deny) != 2 || c.ReloadInterval != 2*time.Second {
		t.Errorf("env not applied: %+v", c)
	}
	t.Setenv("AGW_IDENTITY_RELOAD_INTERVAL", "soon")
	if _, err := ConfigFromEnv(); err == nil {
		t.Error("bad duration accepted")
	}
}

func TestConfigFlagsOverride(t *testing.T) {
	c := DefaultConfig()
	c.CertFile = "/env/cert"
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	c.BindFlags(fs)
	if err := fs.Parse([]string{"--identity-cert-file=/flag/cert", "--identity-key-file=/flag/key", "--identity-bundle-file=/flag/ca", "--identity-trust-domains=a.org,b.org", "--identity-reload-interval=1s"}); err != nil {
		t.Fatal(err)
	}
	if c.CertFile != "/flag/cert" || c.KeyFile != "/flag/key" || c.BundleFile != "/flag/ca" || len(c.TrustDomains) != 2 || c.ReloadInterval != time.Second {
		t.Errorf("flags not applied: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

func TestConfigValidateMessages(t *testing.T) {
	base := DefaultConfig()
	for _, c := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) {}, "set AGW_IDENTITY_DIR"},
		{func(c *Config) { c.CertFile = "/c" }, "AGW_IDENTITY_KEY_FILE is empty"},
		{func(c *Config) { c.CertFile, c.KeyFile = "/c", "/k" }, "AGW_IDENTITY_BUNDLE_FILE is empty"},
		{func(c *Config) { c.Dir = "/d"; c.TrustDomains = []string{"spiffe://example.org"} }, "AGW_IDENTITY_TRUST_DOMAINS entry"},
		{func(c *Config) { c.Dir = "/d"; c.Deny = []string{"nonsense"} }, "AGW_IDENTITY_DENY"},
		{func(c *Config) { c.Dir = "/d"; c.ReloadInterval = 0 }, "AGW_IDENTITY_RELOAD_INTERVAL 0s: want"},
		{func(c *Config) { c.Dir = "/d"; c.ReloadInterval = 2 * time.Hour }, "AGW_IDENTITY_RELOAD_INTERVAL"},
	} {
		cfg := base
		c.mod(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v; want %q", cfg, err, c.want)
		}
	}
	ok := base
	ok.Dir = "/d"
	if err := ok.Validate(); err != nil {
		t.Errorf("dir only: %v", err)
	}
}

func TestBundleRotation(t *testing.T) {
	ca := newCA(t, "example.org")
	next := newCA(t, "example.org")
	src, dir := fileSource(t, ca, idA, nil)
	// Trust-manager style: the new CA joins the bundle before it issues.
	both := must(NewBundle(ca.Certificate(), next.Certificate()))
	writeFile(t, dir, BundleFileName, both.PEM())
	if c, err := src.Reload(); c != ChangeBundle || err != nil {
		t.Fatalf("bundle change: %v, %v", c, err)
	}
	peer := issue(t, next, idB, time.Hour)
	if _, err := src.Validator().Validate(peer.Certificates, UsageClient, time.Time{}); err != nil {
		t.Errorf("peer of the new CA: %v", err)
	}
	// Dropping the CA of the own certificate is refused.
	writeFile(t, dir, BundleFileName, next.Bundle().PEM())
	if _, err := src.Reload(); err == nil {
		t.Error("bundle without the own CA accepted")
	}
	if src.Current().Bundle().Len() != 2 {
		t.Error("refused bundle replaced the current one")
	}
	// Then the certificate from the new CA and the new bundle together.
	if err := next.WriteFiles(dir, issue(t, next, idA, time.Hour)); err != nil {
		t.Fatal(err)
	}
	if c, err := src.Reload(); c != ChangeCertificate|ChangeBundle || err != nil {
		t.Fatalf("CA switch: %v, %v", c, err)
	}
	if _, err := src.Validator().Validate(issue(t, ca, idB, time.Hour).Certificates, UsageClient, time.Time{}); err == nil {
		t.Error("old CA still trusted after it left the bundle")
	}
}
