package client

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/spf13/pflag"

	"github.com/agwproject/agw/xds"
)

// Config is the xDS client's configuration (environment AGW_XDS_*; flags
// bound with BindFlags override it).
type Config struct {
	// Server is the control plane's gRPC address (xDS and mirror).
	Server string `env:"AGW_XDS_SERVER"`
	// NodeID is this sidecar's node id (see xds.NodeID to derive it from
	// POD_NAMESPACE and POD_NAME).
	NodeID string `env:"AGW_XDS_NODE_ID"`
	// AdvertiseAddress is the peer address other sidecars dial (see
	// xds.AdvertiseAddress to derive it from POD_IP).
	AdvertiseAddress string `env:"AGW_XDS_ADVERTISE_ADDRESS"`
	// Wildcard subscribes to every topic's route instead of on demand
	// (fine for small meshes).
	Wildcard bool `env:"AGW_XDS_WILDCARD" envDefault:"false"`
	// DisableMirror turns the subscription mirror off (a node that only
	// publishes).
	DisableMirror bool `env:"AGW_XDS_DISABLE_MIRROR" envDefault:"false"`
	// BackoffInitial and BackoffMax bound the reconnect delay (jittered,
	// doubling from initial up to max).
	BackoffInitial time.Duration `env:"AGW_XDS_BACKOFF_INITIAL" envDefault:"200ms"`
	BackoffMax     time.Duration `env:"AGW_XDS_BACKOFF_MAX" envDefault:"10s"`
	// MaxMessageBytes bounds a received xDS response.
	MaxMessageBytes int `env:"AGW_XDS_MAX_MESSAGE_BYTES" envDefault:"16777216"`
}

// DefaultConfig returns the defaults the env tags declare (Server, NodeID and
// AdvertiseAddress have none).
func DefaultConfig() Config {
	return Config{BackoffInitial: 200 * time.Millisecond, BackoffMax: 10 * time.Second, MaxMessageBytes: 16 << 20}
}

// BindFlags registers one flag per field on fs, with the current values as
// defaults.
func (c *Config) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Server, "xds-server", c.Server, "control plane address host:port (AGW_XDS_SERVER)")
	fs.StringVar(&c.NodeID, "node-id", c.NodeID, "node id, default <POD_NAMESPACE>.<POD_NAME> (AGW_XDS_NODE_ID)")
	fs.StringVar(&c.AdvertiseAddress, "advertise-address", c.AdvertiseAddress, "peer address other sidecars dial, default POD_IP:peer-port (AGW_XDS_ADVERTISE_ADDRESS)")
	fs.BoolVar(&c.Wildcard, "xds-wildcard", c.Wildcard, "receive every topic's route instead of on demand (AGW_XDS_WILDCARD)")
	fs.BoolVar(&c.DisableMirror, "xds-disable-mirror", c.DisableMirror, "do not mirror local subscriptions (AGW_XDS_DISABLE_MIRROR)")
	fs.DurationVar(&c.BackoffInitial, "xds-backoff-initial", c.BackoffInitial, "first reconnect delay (AGW_XDS_BACKOFF_INITIAL)")
	fs.DurationVar(&c.BackoffMax, "xds-backoff-max", c.BackoffMax, "largest reconnect delay (AGW_XDS_BACKOFF_MAX)")
	fs.IntVar(&c.MaxMessageBytes, "xds-max-message-bytes", c.MaxMessageBytes, "largest xDS response accepted (AGW_XDS_MAX_MESSAGE_BYTES)")
}

// Validate reports every setting the user must change.
func (c Config) Validate() error {
	var errs []error
	if c.Server == "" {
		errs = append(errs, errors.New("AGW_XDS_SERVER: empty; set the control plane address such as agw-control-plane.agw-system:18000"))
	} else if _, _, err := net.SplitHostPort(c.Server); err != nil {
		errs = append(errs, fmt.Errorf("AGW_XDS_SERVER %q: %v; use host:port such as agw-control-plane.agw-system:18000", c.Server, err))
	}
	if err := xds.ValidateNodeID(c.NodeID); err != nil {
		errs = append(errs, fmt.Errorf("AGW_XDS_NODE_ID: %w", err))
	}
	if !c.DisableMirror {
		if err := xds.ValidateAddress(c.AdvertiseAddress); err != nil {
			errs = append(errs, fmt.Errorf("AGW_XDS_ADVERTISE_ADDRESS: %w", err))
		}
	}
	if c.BackoffInitial <= 0 {
		errs = append(errs, fmt.Errorf("AGW_XDS_BACKOFF_INITIAL %s: must be positive; use e.g. 200ms", c.BackoffInitial))
	}
	if c.BackoffMax < c.BackoffInitial {
		errs = append(errs, fmt.Errorf("AGW_XDS_BACKOFF_MAX %s: must be at least AGW_XDS_BACKOFF_INITIAL (%s); use e.g. 10s", c.BackoffMax, c.BackoffInitial))
	}
	if c.MaxMessageBytes < 1024 {
		errs = append(errs, fmt.Errorf("AGW_XDS_MAX_MESSAGE_BYTES %d: must be at least 1024; use e.g. 16777216", c.MaxMessageBytes))
	}
	return errors.Join(errs...)
}
