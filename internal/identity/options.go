package identity

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Option configures NewSource, NewMemorySource and NewValidator.
type Option func(*options)

type options struct {
	log *slog.Logger
	reg prometheus.Registerer
	now func() time.Time
}

func newOptions(opts []Option) options {
	o := options{}
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.reg == nil {
		o.reg = prometheus.NewRegistry()
	}
	if o.now == nil {
		o.now = time.Now
	}
	return o
}

// WithLogger sets the logger (default: discard). Logs carry SPIFFE ids,
// serials, fingerprints and file paths, never key material.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRegisterer sets where metrics are registered (default: a fresh
// registry per instance).
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.reg = r } }

// WithClock sets the clock used for validity checks and expiry metrics
// (default time.Now); for tests.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }
