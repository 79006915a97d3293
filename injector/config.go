package injector

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/agwproject/agw/internal/logging"
)

// Config configures the webhook server and the sidecar it injects. Fill it
// with DefaultConfig or ConfigFromEnv (AGW_INJECT_*), let BindFlags override
// it, then call Validate (New calls it too).
type Config struct {
	// Listen is the HTTPS address of the webhook, /healthz and /readyz.
	Listen string `env:"AGW_INJECT_LISTEN" envDefault:":9443"`
	// CertFile and KeyFile are the webhook's PEM certificate and key,
	// reloaded when they change.
	CertFile string `env:"AGW_INJECT_TLS_CERT_FILE" envDefault:"/var/run/agw/webhook/tls.crt"`
	KeyFile  string `env:"AGW_INJECT_TLS_KEY_FILE" envDefault:"/var/run/agw/webhook/tls.key"`
	// CertReloadInterval is how often the certificate files are checked.
	CertReloadInterval time.Duration `env:"AGW_INJECT_CERT_RELOAD_INTERVAL" envDefault:"10s"`
	// ShutdownTimeout bounds the graceful stop.
	ShutdownTimeout time.Duration `env:"AGW_INJECT_SHUTDOWN_TIMEOUT" envDefault:"10s"`
	// MaxRequestBytes bounds one AdmissionReview request body.
	MaxRequestBytes int `env:"AGW_INJECT_MAX_REQUEST_BYTES" envDefault:"4194304"`

	// Image is the agw image run by the sidecar (its entrypoint is agw).
	Image string `env:"AGW_INJECT_IMAGE" envDefault:"agw:latest"`
	// ImagePullPolicy is the sidecar's pull policy: Always, IfNotPresent or Never.
	ImagePullPolicy string `env:"AGW_INJECT_IMAGE_PULL_POLICY" envDefault:"IfNotPresent"`
	// XDSServer is the control plane address given to sidecars
	// (AGW_XDS_SERVER); annotation agw.io/xds-server overrides it.
	XDSServer string `env:"AGW_INJECT_XDS_SERVER" envDefault:"agw-control-plane.agw-system.svc:18000"`
	// SidecarLogLevel is the sidecar's AGW_LOG_LEVEL; annotation
	// agw.io/log-level overrides it.
	SidecarLogLevel string `env:"AGW_INJECT_SIDECAR_LOG_LEVEL" envDefault:"info"`
	// Default sidecar resources (Kubernetes quantities; empty = not set);
	// annotations agw.io/sidecar-{cpu,memory}-{request,limit} override them.
	CPURequest    string `env:"AGW_INJECT_CPU_REQUEST" envDefault:"50m"`
	MemoryRequest string `env:"AGW_INJECT_MEMORY_REQUEST" envDefault:"64Mi"`
	CPULimit      string `env:"AGW_INJECT_CPU_LIMIT"`
	MemoryLimit   string `env:"AGW_INJECT_MEMORY_LIMIT" envDefault:"256Mi"`
	// IdentitySecret names the Secret in the pod's namespace holding the
	// sidecar's identity: an X.509 SVID (a certificate whose URI SAN is the
	// SPIFFE id spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>)
	// and its trust bundle, as tls.crt, tls.key and ca.crt (the layout
	// cert-manager writes). It is mounted at /var/run/agw/identity
	// (AGW_IDENTITY_DIR), secures peer links with mutual TLS and is the
	// MLS credential; empty makes sidecars local only (no peers, no
	// control plane). Annotation agw.io/identity-secret overrides it
	// ("none": local only for that pod).
	IdentitySecret string `env:"AGW_INJECT_IDENTITY_SECRET" envDefault:"agw-identity"`
	// IdentityTrustDomains are the SPIFFE trust domains the sidecars accept
	// peers from (AGW_IDENTITY_TRUST_DOMAINS); empty: each sidecar's own.
	IdentityTrustDomains []string `env:"AGW_INJECT_IDENTITY_TRUST_DOMAINS" envSeparator:","`
	// PeerNodeBinding is the sidecars' AGW_PEER_NODE_BINDING: "namespace"
	// (the default) lets a peer whose SPIFFE id is in namespace ns claim
	// only node ids ns.<pod>, the ids injected sidecars derive from
	// POD_NAMESPACE and POD_NAME; "none" lets any identity of the bundle
	// claim any node id.
	PeerNodeBinding string `env:"AGW_INJECT_PEER_NODE_BINDING" envDefault:"namespace"`
}

// DefaultConfig returns the defaults, ignoring the environment.
func DefaultConfig() Config {
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Environment: map[string]string{}}); err != nil {
		panic(fmt.Sprintf("injector: bad envDefault tags: %v", err))
	}
	return c
}

// ConfigFromEnv returns the defaults overridden by AGW_INJECT_* variables.
func ConfigFromEnv() (Config, error) {
	var c Config
	if err := env.Parse(&c); err != nil {
		return c, fmt.Errorf("injector config from environment: %w", err)
	}
	return c, nil
}

// BindFlags registers one flag per field on fs, defaulting to the current
// values, so flags parsed after the environment override it.
func (c *Config) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", c.Listen, "HTTPS address of the webhook (AGW_INJECT_LISTEN)")
	fs.StringVar(&c.CertFile, "tls-cert-file", c.CertFile, "PEM certificate of the webhook, reloaded on change (AGW_INJECT_TLS_CERT_FILE)")
	fs.StringVar(&c.KeyFile, "tls-key-file", c.KeyFile, "PEM private key of the webhook, reloaded on change (AGW_INJECT_TLS_KEY_FILE)")
	fs.DurationVar(&c.CertReloadInterval, "cert-reload-interval", c.CertReloadInterval, "how often the certificate files are checked (AGW_INJECT_CERT_RELOAD_INTERVAL)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "graceful stop bound (AGW_INJECT_SHUTDOWN_TIMEOUT)")
	fs.IntVar(&c.MaxRequestBytes, "max-request-bytes", c.MaxRequestBytes, "largest AdmissionReview accepted (AGW_INJECT_MAX_REQUEST_BYTES)")
	fs.StringVar(&c.Image, "image", c.Image, "agw image of the injected sidecar (AGW_INJECT_IMAGE)")
	fs.StringVar(&c.ImagePullPolicy, "image-pull-policy", c.ImagePullPolicy, "sidecar image pull policy: Always, IfNotPresent, Never (AGW_INJECT_IMAGE_PULL_POLICY)")
	fs.StringVar(&c.XDSServer, "xds-server", c.XDSServer, "control plane address given to sidecars (AGW_INJECT_XDS_SERVER)")
	fs.StringVar(&c.SidecarLogLevel, "sidecar-log-level", c.SidecarLogLevel, "sidecar log level: debug, info, warn, error (AGW_INJECT_SIDECAR_LOG_LEVEL)")
	fs.StringVar(&c.CPURequest, "cpu-request", c.CPURequest, "sidecar CPU request, empty for none (AGW_INJECT_CPU_REQUEST)")
	fs.StringVar(&c.MemoryRequest, "memory-request", c.MemoryRequest, "sidecar memory request, empty for none (AGW_INJECT_MEMORY_REQUEST)")
	fs.StringVar(&c.CPULimit, "cpu-limit", c.CPULimit, "sidecar CPU limit, empty for none (AGW_INJECT_CPU_LIMIT)")
	fs.StringVar(&c.MemoryLimit, "memory-limit", c.MemoryLimit, "sidecar memory limit, empty for none (AGW_INJECT_MEMORY_LIMIT)")
	fs.StringVar(&c.IdentitySecret, "identity-secret", c.IdentitySecret, "Secret with the sidecar's SPIFFE certificate (tls.crt, tls.key, ca.crt) for peer mutual TLS and MLS; empty: sidecars are local only, without peers (AGW_INJECT_IDENTITY_SECRET)")
	fs.StringSliceVar(&c.IdentityTrustDomains, "identity-trust-domains", c.IdentityTrustDomains, "SPIFFE trust domains sidecars accept peers from; default each sidecar's own (AGW_INJECT_IDENTITY_TRUST_DOMAINS)")
	fs.StringVar(&c.PeerNodeBinding, "peer-node-binding", c.PeerNodeBinding, "node ids a peer's SPIFFE id may claim: namespace or none (AGW_INJECT_PEER_NODE_BINDING)")
}

// Validate checks c and says what to change.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if err := checkHostPort(c.Listen, "AGW_INJECT_LISTEN", ":9443", true); err != nil {
		errs = append(errs, err)
	}
	if c.CertFile == "" || c.KeyFile == "" {
		add("AGW_INJECT_TLS_CERT_FILE and AGW_INJECT_TLS_KEY_FILE are required: the API server calls webhooks over HTTPS only")
	}
	if c.CertReloadInterval < 100*time.Millisecond {
		add("AGW_INJECT_CERT_RELOAD_INTERVAL %s: want at least 100ms (default 10s)", c.CertReloadInterval)
	}
	if c.ShutdownTimeout < 0 {
		add("AGW_INJECT_SHUTDOWN_TIMEOUT %s: must not be negative (default 10s)", c.ShutdownTimeout)
	}
	if c.MaxRequestBytes < 64<<10 || c.MaxRequestBytes > 64<<20 {
		add("AGW_INJECT_MAX_REQUEST_BYTES %d: want 65536..67108864 (default 4194304)", c.MaxRequestBytes)
	}
	if c.Image == "" {
		add("AGW_INJECT_IMAGE: empty; set the agw image such as registry.example/agw:v1.0.0")
	}
	switch corev1.PullPolicy(c.ImagePullPolicy) {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		add("AGW_INJECT_IMAGE_PULL_POLICY %q: use Always, IfNotPresent or Never", c.ImagePullPolicy)
	}
	if err := checkHostPort(c.XDSServer, "AGW_INJECT_XDS_SERVER", "agw-control-plane.agw-system.svc:18000", false); err != nil {
		errs = append(errs, err)
	}
	if _, err := logging.ParseLevel(c.SidecarLogLevel); err != nil {
		add("AGW_INJECT_SIDECAR_LOG_LEVEL %q: use debug, info, warn or error", c.SidecarLogLevel)
	}
	for _, q := range []struct{ name, v string }{
		{"AGW_INJECT_CPU_REQUEST", c.CPURequest},
		{"AGW_INJECT_MEMORY_REQUEST", c.MemoryRequest},
		{"AGW_INJECT_CPU_LIMIT", c.CPULimit},
		{"AGW_INJECT_MEMORY_LIMIT", c.MemoryLimit},
	} {
		if q.v == "" {
			continue
		}
		if _, err := resource.ParseQuantity(q.v); err != nil {
			add("%s %q: not a Kubernetes quantity; use e.g. 100m for CPU or 128Mi for memory", q.name, q.v)
		}
	}
	if _, err := c.resources(nil); err != nil && len(errs) == 0 {
		errs = append(errs, err)
	}
	if c.IdentitySecret != "" {
		if msgs := validation.IsDNS1123Subdomain(c.IdentitySecret); len(msgs) > 0 {
			add("AGW_INJECT_IDENTITY_SECRET %q: not a Secret name (%s)", c.IdentitySecret, msgs[0])
		}
	}
	for _, td := range c.IdentityTrustDomains {
		if !validTrustDomain(td) {
			add("AGW_INJECT_IDENTITY_TRUST_DOMAINS entry %q: not a SPIFFE trust domain; use a name such as example.org (lower case, no scheme)", td)
		}
	}
	switch c.PeerNodeBinding {
	case "namespace", "none":
	default:
		add("AGW_INJECT_PEER_NODE_BINDING %q: use namespace or none", c.PeerNodeBinding)
	}
	return errors.Join(errs...)
}

// checkHostPort checks host:port with a numeric port; listen allows an
// empty host (":9443") and port 0 (any free port).
func checkHostPort(addr, name, example string, listen bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: %v; use host:port such as %s", name, addr, err, example)
	}
	if host == "" && !listen {
		return fmt.Errorf("%s %q: empty host; use host:port such as %s", name, addr, example)
	}
	lo := 1
	if listen {
		lo = 0
	}
	if p, err := strconv.Atoi(port); err != nil || p < lo || p > 65535 {
		return fmt.Errorf("%s %q: port must be 1..65535; use host:port such as %s", name, addr, example)
	}
	return nil
}

// validTrustDomain checks a SPIFFE trust domain name: 1-255 characters of
// a-z 0-9 . - _ (the SPIFFE standard; the sidecar checks it the same way).
func validTrustDomain(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '.' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}
