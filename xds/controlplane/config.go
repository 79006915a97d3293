package controlplane

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/spf13/pflag"
)

// Config is the control plane's configuration. Environment variables
// (AGW_CP_*) fill it through github.com/caarlos0/env; flags bound with
// BindFlags override them.
type Config struct {
	// Listen is the gRPC address for xDS (delta ADS) and Registry.Mirror.
	Listen string `env:"AGW_CP_LISTEN" envDefault:":18000"`
	// AdminListen serves /healthz, /readyz, /metrics and /debug/*; empty disables it.
	AdminListen string `env:"AGW_CP_ADMIN_LISTEN" envDefault:":15010"`
	// GracePeriod is how long a node's subscriptions outlive its mirror stream.
	GracePeriod time.Duration `env:"AGW_CP_GRACE_PERIOD" envDefault:"30s"`
	// Warmup holds back xDS answers after start so that sidecars can resend
	// their tables first (a restarted control plane then never tells clients
	// to drop routes it simply has not relearned yet).
	Warmup time.Duration `env:"AGW_CP_WARMUP" envDefault:"5s"`
	// ReplicaID prefixes the xDS system versions of this replica
	// (go-control-plane WithVersionPrefix). Empty: a random id at start.
	ReplicaID string `env:"AGW_CP_REPLICA_ID"`
	// MaxTopicsPerNode bounds one node's subscription table.
	MaxTopicsPerNode int `env:"AGW_CP_MAX_TOPICS_PER_NODE" envDefault:"10000"`
	// MaxMessageBytes bounds a received gRPC message.
	MaxMessageBytes int `env:"AGW_CP_MAX_MESSAGE_BYTES" envDefault:"4194304"`
	// ShutdownTimeout bounds the graceful stop of the gRPC and admin servers.
	ShutdownTimeout time.Duration `env:"AGW_CP_SHUTDOWN_TIMEOUT" envDefault:"10s"`
}

// DefaultConfig returns the defaults the env tags declare.
func DefaultConfig() Config {
	return Config{
		Listen:           ":18000",
		AdminListen:      ":15010",
		GracePeriod:      30 * time.Second,
		Warmup:           5 * time.Second,
		MaxTopicsPerNode: 10000,
		MaxMessageBytes:  4 << 20,
		ShutdownTimeout:  10 * time.Second,
	}
}

// BindFlags registers one flag per field on fs, with the current values as
// defaults (call it after reading the environment so flags override env).
func (c *Config) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", c.Listen, "gRPC address for xDS and the subscription mirror (AGW_CP_LISTEN)")
	fs.StringVar(&c.AdminListen, "admin-listen", c.AdminListen, "admin HTTP address, empty to disable (AGW_CP_ADMIN_LISTEN)")
	fs.DurationVar(&c.GracePeriod, "grace-period", c.GracePeriod, "how long a disconnected node keeps its routes (AGW_CP_GRACE_PERIOD)")
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "delay before answering xDS after start (AGW_CP_WARMUP)")
	fs.StringVar(&c.ReplicaID, "replica-id", c.ReplicaID, "xDS version prefix of this replica, random if empty (AGW_CP_REPLICA_ID)")
	fs.IntVar(&c.MaxTopicsPerNode, "max-topics-per-node", c.MaxTopicsPerNode, "largest subscription table of one node (AGW_CP_MAX_TOPICS_PER_NODE)")
	fs.IntVar(&c.MaxMessageBytes, "max-message-bytes", c.MaxMessageBytes, "largest gRPC message received (AGW_CP_MAX_MESSAGE_BYTES)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "graceful stop bound (AGW_CP_SHUTDOWN_TIMEOUT)")
}

// Validate reports every setting the user must change.
func (c Config) Validate() error {
	var errs []error
	if err := validateListen("AGW_CP_LISTEN", c.Listen, ":18000"); err != nil {
		errs = append(errs, err)
	}
	if c.AdminListen != "" {
		if err := validateListen("AGW_CP_ADMIN_LISTEN", c.AdminListen, ":15010"); err != nil {
			errs = append(errs, err)
		}
	}
	if c.GracePeriod < 0 {
		errs = append(errs, fmt.Errorf("AGW_CP_GRACE_PERIOD %s: must not be negative; use e.g. 30s", c.GracePeriod))
	}
	if c.Warmup < 0 {
		errs = append(errs, fmt.Errorf("AGW_CP_WARMUP %s: must not be negative; use e.g. 5s or 0", c.Warmup))
	}
	if len(c.ReplicaID) > 64 {
		errs = append(errs, fmt.Errorf("AGW_CP_REPLICA_ID: %d characters; use at most 64", len(c.ReplicaID)))
	}
	if c.MaxTopicsPerNode < 1 {
		errs = append(errs, fmt.Errorf("AGW_CP_MAX_TOPICS_PER_NODE %d: must be at least 1; use e.g. 10000", c.MaxTopicsPerNode))
	}
	if c.MaxMessageBytes < 1024 {
		errs = append(errs, fmt.Errorf("AGW_CP_MAX_MESSAGE_BYTES %d: must be at least 1024; use e.g. 4194304", c.MaxMessageBytes))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("AGW_CP_SHUTDOWN_TIMEOUT %s: must be positive; use e.g. 10s", c.ShutdownTimeout))
	}
	return errors.Join(errs...)
}

func validateListen(name, addr, example string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: %v; use host:port such as %s", name, addr, err, example)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%s %q: port must be 0-65535; use host:port such as %s", name, addr, example)
	}
	return nil
}
