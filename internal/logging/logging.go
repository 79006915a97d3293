// Package logging builds the *slog.Logger that each component receives:
// JSON for production, human-readable text for the demo and terminals.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Config selects the log format and level. Environment: AGW_LOG_FORMAT,
// AGW_LOG_LEVEL.
type Config struct {
	Format string `env:"AGW_LOG_FORMAT" envDefault:"json"`
	Level  string `env:"AGW_LOG_LEVEL" envDefault:"info"`
}

// Validate reports a setting the user must change.
func (c Config) Validate() error {
	switch c.Format {
	case "json", "text":
	default:
		return fmt.Errorf("AGW_LOG_FORMAT %q: use json or text", c.Format)
	}
	if _, err := ParseLevel(c.Level); err != nil {
		return err
	}
	return nil
}

// ParseLevel parses debug, info, warn or error.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("AGW_LOG_LEVEL %q: use debug, info, warn or error", s)
	}
	return l, nil
}

// New returns a logger writing to w in the configured format.
func New(w io.Writer, c Config) (*slog.Logger, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	lvl, _ := ParseLevel(c.Level)
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

// Discard returns a logger that drops everything (the default of every
// component constructor).
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Component returns l with a "component" attribute.
func Component(l *slog.Logger, name string) *slog.Logger { return l.With("component", name) }
