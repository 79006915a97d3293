package e2ee

import "github.com/prometheus/client_golang/prometheus"

// Security event reasons: the label values of
// agw_mls_security_events_total and the log field security_event.
const (
	EventDecrypt       = "decrypt"        // AEAD or signature failure of a PrivateMessage
	EventReplay        = "replay"         // key generation already used
	EventOldEpoch      = "old_epoch"      // epoch older than the window
	EventFutureEpoch   = "future_epoch"   // epoch never reached within EpochWait
	EventUnknownGroup  = "unknown_group"  // no such group here
	EventWrongSender   = "wrong_sender"   // sender leaf is not the node that sent it
	EventRoutingHeader = "routing_header" // routing header does not match the authenticated digest
	EventRemoved       = "removed_member" // message from a member that is no longer in the group
	EventForgedCommit  = "forged_commit"  // a commit or Welcome that failed verification
	EventCredential    = "credential"     // a credential refused by the trust bundle or deny list
	EventMalformed     = "malformed"      // undecodable envelope or message
)

type metrics struct {
	commits   prometheus.Counter
	welcomes  prometheus.Counter
	rejoins   prometheus.Counter
	rotations prometheus.Counter
	sealed    prometheus.Counter
	opened    prometheus.Counter
	decryptF  prometheus.Counter
	security  *prometheus.CounterVec
	groups    prometheus.GaugeFunc
}

func newMetrics(r prometheus.Registerer, groups func() float64) (*metrics, error) {
	m := &metrics{
		commits:   prometheus.NewCounter(prometheus.CounterOpts{Name: "agw_mls_commits_total", Help: "MLS commits created or applied."}),
		welcomes:  prometheus.NewCounter(prometheus.CounterOpts{Name: "agw_mls_welcomes_total", Help: "MLS Welcomes sent or joined."}),
		rejoins:   prometheus.NewCounter(prometheus.CounterOpts{Name: "agw_mls_rejoins_total", Help: "Groups rejoined after losing state or membership."}),
		rotations: prometheus.NewCounter(prometheus.CounterOpts{Name: "agw_mls_rotations_total", Help: "Update commits (key rotation) created."}),
		sealed:    prometheus.NewCounter(prometheus.CounterOpts{Name: "agw_mls_sealed_total", Help: "Application messages encrypted."}),
		opened:    prometheus.NewCounter(prometheus.CounterOpts{Name: "agw_mls_opened_total", Help: "Application messages decrypted."}),
		decryptF:  prometheus.NewCounter(prometheus.CounterOpts{Name: "agw_mls_decrypt_failures_total", Help: "Application messages refused."}),
		security:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agw_mls_security_events_total", Help: "Refused MLS messages and credentials, by reason."}, []string{"reason"}),
		groups:    prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "agw_mls_groups", Help: "MLS groups held."}, groups),
	}
	for _, c := range []prometheus.Collector{m.commits, m.welcomes, m.rejoins, m.rotations, m.sealed, m.opened, m.decryptF, m.security, m.groups} {
		if err := r.Register(c); err != nil {
			return nil, err
		}
	}
	for _, r := range []string{EventDecrypt, EventReplay, EventOldEpoch, EventFutureEpoch, EventUnknownGroup, EventWrongSender, EventRoutingHeader, EventRemoved, EventForgedCommit, EventCredential, EventMalformed} {
		m.security.WithLabelValues(r)
	}
	return m, nil
}
