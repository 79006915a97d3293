package e2ee

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Option configures a Manager.
type Option func(*options)

type options struct {
	logger     *slog.Logger
	registerer prometheus.Registerer
	roster     Roster
	now        func() time.Time
}

// WithLogger sets the logger (default: discard). Logs carry node ids,
// topics, SPIFFE ids and epochs, never key material.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithRegisterer sets where metrics are registered (default: a fresh
// registry per Manager).
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.registerer = r } }

// WithRoster sets where channel participants come from (default: none
// known, so a sidecar that opens a channel first creates it).
func WithRoster(r Roster) Option { return func(o *options) { o.roster = r } }

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }
