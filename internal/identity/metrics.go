package identity

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type validatorMetrics struct {
	accepted   prometheus.Counter
	rejections map[string]prometheus.Counter
}

func newValidatorMetrics() (*validatorMetrics, []prometheus.Collector) {
	acc := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "agw_identity_validations_accepted_total", Help: "Peer credentials accepted by the identity validator.",
	})
	rej := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agw_identity_rejections_total", Help: "Peer credentials refused by the identity validator, by reason (a security event).",
	}, []string{"reason"})
	m := &validatorMetrics{accepted: acc, rejections: map[string]prometheus.Counter{}}
	for _, r := range reasons {
		m.rejections[r.reason] = rej.WithLabelValues(r.reason)
	}
	return m, []prometheus.Collector{acc, rej}
}

type sourceMetrics struct {
	reloads      prometheus.Counter
	reloadErrors prometheus.Counter
}

func newSourceMetrics(s *Source) (*sourceMetrics, []prometheus.Collector) {
	m := &sourceMetrics{
		reloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "agw_identity_reloads_total", Help: "Changes of certificate, key, trust bundle or deny list applied without restart.",
		}),
		reloadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "agw_identity_reload_errors_total", Help: "Changed identity files that could not be applied (the previous credentials stay in use).",
		}),
	}
	expiry := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "agw_identity_certificate_expiry_seconds", Help: "Seconds until the current workload certificate expires (negative once expired).",
	}, func() float64 {
		snap := s.Current()
		if snap == nil {
			return 0
		}
		return snap.NotAfter().Sub(s.opts.now()).Seconds()
	})
	return m, []prometheus.Collector{m.reloads, m.reloadErrors, expiry}
}

// register registers all collectors or, on failure, none of them (so a
// constructor that fails can be retried with the same registerer).
func register(reg prometheus.Registerer, cs []prometheus.Collector) error {
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return fmt.Errorf("identity metrics: %w", err)
		}
	}
	return nil
}
