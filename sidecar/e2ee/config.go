package e2ee

import (
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/spf13/pflag"

	"github.com/agwproject/agw/mls/suite"
)

// Config configures a Manager. Fill it with DefaultConfig or ConfigFromEnv,
// let BindFlags override it, then Validate (New calls it too).
type Config struct {
	// Suite is the MLS cipher suite; it must match the SVID's key (2 for
	// ECDSA P-256, 1 or 3 for Ed25519).
	Suite uint16 `env:"AGW_MLS_SUITE" envDefault:"2"`
	// PaddingBlock pads application plaintexts to a multiple of this many
	// bytes (1 = no padding).
	PaddingBlock int `env:"AGW_MLS_PADDING_BLOCK" envDefault:"256"`
	// RotateInterval is how often a committer commits an Update (with path).
	RotateInterval time.Duration `env:"AGW_MLS_ROTATE_INTERVAL" envDefault:"1h"`
	// RotateMessages triggers an Update after this many messages sealed in a
	// group by this sidecar (0 = never).
	RotateMessages uint64 `env:"AGW_MLS_ROTATE_MESSAGES" envDefault:"100000"`
	// StateDir keeps group state across restarts, encrypted with StateKey.
	// Empty: no persistence; the sidecar rejoins after a restart.
	StateDir string `env:"AGW_MLS_STATE_DIR"`
	// StateKey is the AES-256 key of the state directory, 64 hex digits.
	StateKey string `env:"AGW_MLS_STATE_KEY"`
	// JoinTimeout bounds how long Seal waits for a session or channel.
	JoinTimeout time.Duration `env:"AGW_MLS_JOIN_TIMEOUT" envDefault:"10s"`
	// RetryInterval is how often a pending join resends its KeyPackage and
	// committers invite missing participants.
	RetryInterval time.Duration `env:"AGW_MLS_RETRY_INTERVAL" envDefault:"1s"`
	// EpochWait is how long Open waits for a commit or Welcome that a
	// message of a later epoch (or an unknown group) needs.
	EpochWait time.Duration `env:"AGW_MLS_EPOCH_WAIT" envDefault:"2s"`
	// EpochWindow is how many past epochs' messages are still opened
	// after their commits (a message sent just before a commit that
	// arrives after it); older ones are refused as old_epoch. Their keys
	// are kept that long, which delays forward secrecy as much.
	EpochWindow int `env:"AGW_MLS_EPOCH_WINDOW" envDefault:"1"`
	// LeaveGrace delays leaving a channel after the agent's last
	// subscription to it ends, so a reconnecting agent or a restarting
	// sidecar keeps its membership.
	LeaveGrace time.Duration `env:"AGW_MLS_LEAVE_GRACE" envDefault:"5s"`
}

// DefaultConfig returns the defaults, ignoring the environment.
func DefaultConfig() Config {
	c, _ := env.ParseAsWithOptions[Config](env.Options{Environment: map[string]string{}})
	return c
}

// ConfigFromEnv returns the defaults overridden by AGW_MLS_* variables.
func ConfigFromEnv() (Config, error) {
	c, err := env.ParseAs[Config]()
	if err != nil {
		return Config{}, fmt.Errorf("e2ee config: %w", err)
	}
	return c, nil
}

// BindFlags registers one flag per field on fs, defaulting to the current
// values, so flags parsed after the environment override it.
func (c *Config) BindFlags(fs *pflag.FlagSet) {
	fs.Uint16Var(&c.Suite, "mls-suite", c.Suite, "MLS cipher suite: 2 for ECDSA P-256 SVIDs, 1 or 3 for Ed25519 (AGW_MLS_SUITE)")
	fs.IntVar(&c.PaddingBlock, "mls-padding-block", c.PaddingBlock, "pad application messages to a multiple of this many bytes (AGW_MLS_PADDING_BLOCK)")
	fs.DurationVar(&c.RotateInterval, "mls-rotate-interval", c.RotateInterval, "commit an Update in every group this often (AGW_MLS_ROTATE_INTERVAL)")
	fs.Uint64Var(&c.RotateMessages, "mls-rotate-messages", c.RotateMessages, "commit an Update after this many messages sent in a group, 0 never (AGW_MLS_ROTATE_MESSAGES)")
	fs.StringVar(&c.StateDir, "mls-state-dir", c.StateDir, "directory keeping MLS group state across restarts, encrypted (AGW_MLS_STATE_DIR)")
	fs.StringVar(&c.StateKey, "mls-state-key", c.StateKey, "AES-256 key of the state directory, 64 hex digits (AGW_MLS_STATE_KEY)")
	fs.DurationVar(&c.JoinTimeout, "mls-join-timeout", c.JoinTimeout, "how long a send waits for its MLS session or channel (AGW_MLS_JOIN_TIMEOUT)")
	fs.DurationVar(&c.RetryInterval, "mls-retry-interval", c.RetryInterval, "resend interval of pending joins and invites (AGW_MLS_RETRY_INTERVAL)")
	fs.DurationVar(&c.LeaveGrace, "mls-leave-grace", c.LeaveGrace, "delay before leaving a channel the agent unsubscribed from (AGW_MLS_LEAVE_GRACE)")
	fs.DurationVar(&c.EpochWait, "mls-epoch-wait", c.EpochWait, "how long a message of a later epoch waits for its commit (AGW_MLS_EPOCH_WAIT)")
	fs.IntVar(&c.EpochWindow, "mls-epoch-window", c.EpochWindow, "past epochs whose late messages are still opened, 0 to 16 (AGW_MLS_EPOCH_WINDOW)")
}

// Validate checks c and says what to change.
func (c *Config) Validate() error {
	var errs []error
	if _, err := suite.Get(suite.ID(c.Suite)); err != nil {
		errs = append(errs, fmt.Errorf("AGW_MLS_SUITE %d: unsupported; use 2 (P-256) or 1/3 (Ed25519)", c.Suite))
	}
	if c.PaddingBlock < 1 || c.PaddingBlock > 65536 {
		errs = append(errs, fmt.Errorf("AGW_MLS_PADDING_BLOCK %d: must be 1..65536, such as 256", c.PaddingBlock))
	}
	if c.RotateInterval < time.Second {
		errs = append(errs, fmt.Errorf("AGW_MLS_ROTATE_INTERVAL %s: must be at least 1s, such as 1h", c.RotateInterval))
	}
	if c.JoinTimeout <= 0 {
		errs = append(errs, fmt.Errorf("AGW_MLS_JOIN_TIMEOUT %s: must be positive, such as 10s", c.JoinTimeout))
	}
	if c.RetryInterval < time.Millisecond {
		errs = append(errs, fmt.Errorf("AGW_MLS_RETRY_INTERVAL %s: must be at least 1ms, such as 1s", c.RetryInterval))
	}
	if c.LeaveGrace < 0 {
		errs = append(errs, fmt.Errorf("AGW_MLS_LEAVE_GRACE %s: must not be negative", c.LeaveGrace))
	}
	if c.EpochWait < 0 {
		errs = append(errs, fmt.Errorf("AGW_MLS_EPOCH_WAIT %s: must not be negative", c.EpochWait))
	}
	if c.EpochWindow < 0 || c.EpochWindow > 16 {
		errs = append(errs, fmt.Errorf("AGW_MLS_EPOCH_WINDOW %d: must be 0 to 16 past epochs (1, the default, opens messages that cross one commit)", c.EpochWindow))
	}
	if c.StateDir != "" || c.StateKey != "" {
		if c.StateDir == "" {
			errs = append(errs, errors.New("AGW_MLS_STATE_KEY is set but AGW_MLS_STATE_DIR is empty: set both or neither"))
		}
		if _, err := c.stateKey(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Config) stateKey() ([]byte, error) {
	k, err := hex.DecodeString(c.StateKey)
	if err != nil || len(k) != 32 {
		return nil, errors.New("AGW_MLS_STATE_KEY: must be 64 hex digits (32 bytes), e.g. from `openssl rand -hex 32`")
	}
	return k, nil
}
