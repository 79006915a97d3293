package identity

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/spf13/pflag"
)

// Config says where the workload's identity files are. Fill it with
// DefaultConfig or ConfigFromEnv, let BindFlags override it, then Validate
// (NewSource calls it too).
//
// Dir is the short form for a mounted Kubernetes TLS secret or cert-manager
// certificate: it stands for Dir/tls.crt, Dir/tls.key and Dir/ca.crt where
// the individual file settings are empty.
type Config struct {
	// Dir holds tls.crt, tls.key and ca.crt.
	Dir string `env:"AGW_IDENTITY_DIR"`
	// CertFile is the PEM certificate chain, leaf (the X.509 SVID) first.
	CertFile string `env:"AGW_IDENTITY_CERT_FILE"`
	// KeyFile is the leaf's PEM private key (PKCS#8, SEC 1 or PKCS#1).
	KeyFile string `env:"AGW_IDENTITY_KEY_FILE"`
	// BundleFile is the PEM trust bundle: the CA certificates peers'
	// chains must lead to.
	BundleFile string `env:"AGW_IDENTITY_BUNDLE_FILE"`
	// DenyFile is an optional deny list (see DenyList), reloaded on change.
	DenyFile string `env:"AGW_IDENTITY_DENY_FILE"`
	// Deny lists deny entries inline (comma-separated), added to DenyFile's.
	Deny []string `env:"AGW_IDENTITY_DENY" envSeparator:","`
	// TrustDomains are the SPIFFE trust domains peers may belong to; empty
	// means the workload's own trust domain only.
	TrustDomains []string `env:"AGW_IDENTITY_TRUST_DOMAINS" envSeparator:","`
	// ReloadInterval is how often the files are checked for changes.
	ReloadInterval time.Duration `env:"AGW_IDENTITY_RELOAD_INTERVAL" envDefault:"5s"`
}

// Reload interval bounds.
const (
	MinReloadInterval = 10 * time.Millisecond
	MaxReloadInterval = time.Hour
)

// DefaultConfig returns the defaults, ignoring the environment.
func DefaultConfig() Config {
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Environment: map[string]string{}}); err != nil {
		panic(fmt.Sprintf("identity: bad envDefault tags: %v", err))
	}
	return c
}

// ConfigFromEnv returns the defaults overridden by AGW_IDENTITY_* variables.
func ConfigFromEnv() (Config, error) {
	var c Config
	if err := env.Parse(&c); err != nil {
		return c, fmt.Errorf("identity config from environment: %w", err)
	}
	return c, nil
}

// BindFlags registers one flag per field on fs, defaulting to the current
// values, so flags parsed after the environment override it.
func (c *Config) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Dir, "identity-dir", c.Dir, "directory holding tls.crt, tls.key and ca.crt, e.g. a mounted cert-manager secret (AGW_IDENTITY_DIR)")
	fs.StringVar(&c.CertFile, "identity-cert-file", c.CertFile, "PEM certificate chain of this workload, SPIFFE X.509 SVID first (AGW_IDENTITY_CERT_FILE)")
	fs.StringVar(&c.KeyFile, "identity-key-file", c.KeyFile, "PEM private key of the certificate (AGW_IDENTITY_KEY_FILE)")
	fs.StringVar(&c.BundleFile, "identity-bundle-file", c.BundleFile, "PEM trust bundle of CA certificates (AGW_IDENTITY_BUNDLE_FILE)")
	fs.StringVar(&c.DenyFile, "identity-deny-file", c.DenyFile, "deny list file: spiffe://..., serial:<hex> or sha256:<hex> per line (AGW_IDENTITY_DENY_FILE)")
	fs.StringSliceVar(&c.Deny, "identity-deny", c.Deny, "deny list entry, repeatable (AGW_IDENTITY_DENY)")
	fs.StringSliceVar(&c.TrustDomains, "identity-trust-domains", c.TrustDomains, "SPIFFE trust domains peers may belong to; default the own one (AGW_IDENTITY_TRUST_DOMAINS)")
	fs.DurationVar(&c.ReloadInterval, "identity-reload-interval", c.ReloadInterval, "how often identity files are checked for changes (AGW_IDENTITY_RELOAD_INTERVAL)")
}

// Enabled reports whether an identity is configured at all.
func (c *Config) Enabled() bool {
	return c.Dir != "" || c.CertFile != "" || c.KeyFile != "" || c.BundleFile != ""
}

// Paths returns the certificate, key and bundle paths with Dir applied.
func (c *Config) Paths() (cert, key, bundle string) {
	cert, key, bundle = c.CertFile, c.KeyFile, c.BundleFile
	if c.Dir != "" {
		if cert == "" {
			cert = filepath.Join(c.Dir, CertFileName)
		}
		if key == "" {
			key = filepath.Join(c.Dir, KeyFileName)
		}
		if bundle == "" {
			bundle = filepath.Join(c.Dir, BundleFileName)
		}
	}
	return cert, key, bundle
}

// Validate checks c and says what to change. It does not read the files
// (NewSource does, and names the setting of a file it cannot use).
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	cert, key, bundle := c.Paths()
	switch {
	case cert == "" && key == "" && bundle == "":
		add("no identity configured: set AGW_IDENTITY_DIR to a directory with tls.crt, tls.key and ca.crt, or AGW_IDENTITY_CERT_FILE, AGW_IDENTITY_KEY_FILE and AGW_IDENTITY_BUNDLE_FILE")
	default:
		if cert == "" {
			add("AGW_IDENTITY_CERT_FILE is empty; set it to the PEM certificate chain (tls.crt) or set AGW_IDENTITY_DIR")
		}
		if key == "" {
			add("AGW_IDENTITY_KEY_FILE is empty; set it to the PEM private key (tls.key) or set AGW_IDENTITY_DIR")
		}
		if bundle == "" {
			add("AGW_IDENTITY_BUNDLE_FILE is empty; set it to the PEM CA bundle (ca.crt) that peers' certificates chain to, or set AGW_IDENTITY_DIR")
		}
	}
	for _, td := range c.TrustDomains {
		if _, err := TrustDomainID(td); err != nil {
			add("AGW_IDENTITY_TRUST_DOMAINS entry %q: %v; use a name such as example.org (no scheme, lower case)", truncate(td), err)
		}
	}
	if _, err := NewDenyList(c.Deny...); err != nil {
		add("AGW_IDENTITY_DENY: %v", err)
	}
	if c.ReloadInterval < MinReloadInterval || c.ReloadInterval > MaxReloadInterval {
		add("AGW_IDENTITY_RELOAD_INTERVAL %s: want %s..%s (default 5s)", c.ReloadInterval, MinReloadInterval, MaxReloadInterval)
	}
	return errors.Join(errs...)
}
