package sidecar

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Drop reasons (label values of agw_sidecar_drops_total).
const (
	DropSlowConsumer  = "slow_consumer"
	DropPeerQueueFull = "peer_queue_full"
	DropPeerDown      = "peer_down"
	DropHopLimit      = "hop_limit"
	DropMalformed     = "malformed"
	DropTooLarge      = "too_large"
	DropNoSubscribers = "no_subscribers"
	DropShutdown      = "shutdown"
	// With a PeerCrypter: a peer message that was not sealed, could not be
	// opened (the crypter logs and counts the security event), or could not
	// be sealed for its targets.
	DropUnsealed  = "unsealed"
	DropOpen      = "open_failed"
	DropSealError = "seal_failed"
)

var dropReasons = []string{DropSlowConsumer, DropPeerQueueFull, DropPeerDown, DropHopLimit, DropMalformed, DropTooLarge, DropNoSubscribers, DropShutdown, DropUnsealed, DropOpen, DropSealError}

type metrics struct {
	msgsIn   map[ConnKind]prometheus.Counter
	msgsOut  map[ConnKind]prometheus.Counter
	drops    map[string]prometheus.Counter
	latency  prometheus.Histogram
	requests *prometheus.CounterVec
	pubOK    prometheus.Counter
	// sealRun: messages per sealed run (one MLS message), by kind of group.
	sealRun map[string]prometheus.Observer
}

func newMetrics(reg prometheus.Registerer, n *Node) (*metrics, error) {
	in := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agw_sidecar_messages_in_total", Help: "Messages received, by link kind.",
	}, []string{"kind"})
	out := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agw_sidecar_messages_out_total", Help: "Messages handed to a link's send queue and sent, by link kind.",
	}, []string{"kind"})
	drops := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agw_sidecar_drops_total", Help: "Messages dropped, by reason.",
	}, []string{"reason"})
	lat := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "agw_sidecar_forward_latency_seconds",
		Help:    "Time from a message's arrival at the node to its send on an outgoing link.",
		Buckets: []float64{10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1},
	})
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agw_sidecar_agent_requests_total", Help: "Agent requests, by kind and result code.",
	}, []string{"kind", "code"})
	runs := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "agw_sidecar_seal_run_messages",
		Help:    "Messages sealed together in one MLS message, by group kind (channel or session).",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
	}, []string{"group"})
	m := &metrics{
		msgsIn: map[ConnKind]prometheus.Counter{}, msgsOut: map[ConnKind]prometheus.Counter{},
		drops: map[string]prometheus.Counter{}, latency: lat, requests: reqs,
		pubOK:   reqs.WithLabelValues("publish", "OK"),
		sealRun: map[string]prometheus.Observer{"channel": runs.WithLabelValues("channel"), "session": runs.WithLabelValues("session")},
	}
	for _, k := range allKinds {
		m.msgsIn[k] = in.WithLabelValues(k.String())
		m.msgsOut[k] = out.WithLabelValues(k.String())
	}
	for _, r := range dropReasons {
		m.drops[r] = drops.WithLabelValues(r)
	}
	for _, c := range []prometheus.Collector{in, out, drops, lat, reqs, runs, &tableCollector{n: n}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) drop(reason string, n int) {
	if c := m.drops[reason]; c != nil {
		c.Add(float64(n))
	}
}

var (
	connsDesc = prometheus.NewDesc("agw_sidecar_connections", "Links in the connection table, by kind and status.", []string{"kind", "status"}, nil)
	depthDesc = prometheus.NewDesc("agw_sidecar_queue_depth", "Messages waiting in send queues, by link kind.", []string{"kind"}, nil)
	subsDesc  = prometheus.NewDesc("agw_sidecar_subscribed_topics", "Topics with at least one local subscriber.", nil, nil)
)

// tableCollector reports gauges computed from the tables at scrape time, so
// the hot path pays nothing for them.
type tableCollector struct{ n *Node }

func (c *tableCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- connsDesc
	ch <- depthDesc
	ch <- subsDesc
}

func (c *tableCollector) Collect(ch chan<- prometheus.Metric) {
	type ks struct {
		k ConnKind
		s ConnStatus
	}
	counts := map[ks]int{}
	depth := map[ConnKind]int{}
	for _, e := range c.n.conns.entries() {
		counts[ks{e.kind, e.Status()}]++
		if e.queueDepth != nil {
			depth[e.kind] += e.queueDepth()
		}
	}
	for _, k := range allKinds {
		for _, s := range allStatuses {
			ch <- prometheus.MustNewConstMetric(connsDesc, prometheus.GaugeValue, float64(counts[ks{k, s}]), k.String(), s.String())
		}
		ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(depth[k]), k.String())
	}
	c.n.subs.mu.RLock()
	nt := len(c.n.subs.topics)
	c.n.subs.mu.RUnlock()
	ch <- prometheus.MustNewConstMetric(subsDesc, prometheus.GaugeValue, float64(nt))
}
