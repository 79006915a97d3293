package injector

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agwproject/agw/internal/logging"
)

// Server is the webhook's HTTPS server: PathNamespace and PathPod answer
// AdmissionReviews; /healthz, /readyz and /metrics serve the kubelet and
// Prometheus.
type Server struct {
	cfg   Config
	log   *slog.Logger
	reg   prometheus.Registerer
	certs *certReloader
	mux   *http.ServeMux

	reviews *prometheus.CounterVec
	reloads *prometheus.CounterVec

	started  atomic.Bool
	serving  atomic.Bool // listening and not shutting down
	ready    chan struct{}
	addrMu   sync.Mutex
	addr     net.Addr
	reloadCh chan struct{} // tests: a reload check happened
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(s *Server) {
		if l != nil {
			s.log = l
		}
	}
}

// WithRegisterer sets the Prometheus registerer (default: a fresh registry).
// When it is also a Gatherer, /metrics serves it.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(s *Server) {
		if r != nil {
			s.reg = r
		}
	}
}

// New validates cfg, loads the certificate and returns a Server ready to Run.
func New(cfg Config, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: logging.Discard(), ready: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	s.log = logging.Component(s.log, "injector")
	certs, err := newCertReloader(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	s.certs = certs
	s.reviews = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agw_injector_reviews_total",
		Help: "Admission reviews answered, by verdict (injected, skipped, denied, ignored, bad_request).",
	}, []string{"verdict"})
	s.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agw_injector_cert_reloads_total",
		Help: "Webhook certificate reloads, by result (ok, error).",
	}, []string{"result"})
	expiry := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "agw_injector_cert_expiry_timestamp_seconds",
		Help: "Expiry of the served webhook certificate, in Unix seconds.",
	}, func() float64 { return float64(s.certs.notAfter().Unix()) })
	for _, c := range []prometheus.Collector{s.reviews, s.reloads, expiry} {
		if err := s.reg.Register(c); err != nil {
			return nil, fmt.Errorf("injector metrics: %w", err)
		}
	}
	s.mux = http.NewServeMux()
	s.mux.Handle("POST "+PathNamespace, s.admit(true))
	s.mux.Handle("POST "+PathPod, s.admit(false))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !s.serving.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "not serving\n")
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	if g, ok := s.reg.(prometheus.Gatherer); ok {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	}
	return s, nil
}

// Handler returns the server's routes (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.mux }

// Ready is closed once Run listens.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the bound address once Ready is closed, else nil.
func (s *Server) Addr() net.Addr {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	return s.addr
}

// Run serves HTTPS on cfg.Listen until ctx ends, reloading the certificate
// when its files change, then stops gracefully (readiness fails first,
// in-flight reviews finish within ShutdownTimeout). Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("injector: Run called twice")
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("injector listen %s: %w", s.cfg.Listen, err)
	}
	srv := &http.Server{
		Handler: s.mux,
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: s.certs.getCertificate,
		},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.addrMu.Lock()
	s.addr = ln.Addr()
	s.addrMu.Unlock()

	reloadCtx, stopReload := context.WithCancel(ctx)
	defer stopReload()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.reloadLoop(reloadCtx)
	}()

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ServeTLS(ln, "", "") }()
	s.serving.Store(true)
	close(s.ready)
	s.log.Info("webhook serving", "addr", ln.Addr().String(), "paths", []string{PathNamespace, PathPod})

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("injector serve: %w", err)
	}
	s.serving.Store(false)
	stopReload()
	wg.Wait()
	if runErr != nil {
		_ = srv.Close()
		return runErr
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-serveErr // http.ErrServerClosed
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("injector shutdown: %w", err)
	}
	s.log.Info("webhook stopped")
	return nil
}

// reloadLoop checks the certificate files every CertReloadInterval.
func (s *Server) reloadLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.CertReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := s.certs.reload()
		switch {
		case err != nil:
			s.reloads.WithLabelValues("error").Inc()
			s.log.Warn("webhook certificate reload failed; still serving the previous one", "err", err)
		case changed:
			s.reloads.WithLabelValues("ok").Inc()
			s.log.Info("webhook certificate reloaded", "not_after", s.certs.notAfter())
		}
		if s.reloadCh != nil {
			select {
			case s.reloadCh <- struct{}{}:
			default:
			}
		}
	}
}

// admit serves one AdmissionReview.
func (s *Server) admit(namespaceOptIn bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			s.reviews.WithLabelValues("bad_request").Inc()
			http.Error(w, "Content-Type must be application/json", http.StatusUnsupportedMediaType)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.cfg.MaxRequestBytes)))
		if err != nil {
			s.reviews.WithLabelValues("bad_request").Inc()
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, fmt.Sprintf("request body over %d bytes", s.cfg.MaxRequestBytes), http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "reading request body failed", http.StatusBadRequest)
			return
		}
		res, err := s.cfg.review(body, namespaceOptIn)
		if err != nil {
			s.reviews.WithLabelValues("bad_request").Inc()
			s.log.Warn("bad admission request", "err", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.reviews.WithLabelValues(string(res.verdict)).Inc()
		s.logReview(res)
		out, err := json.Marshal(res.review)
		if err != nil {
			http.Error(w, "encoding the response failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	})
}

func (s *Server) logReview(res reviewed) {
	level := slog.LevelDebug
	switch res.verdict {
	case verdictInjected, verdictDenied:
		level = slog.LevelInfo
	case verdictIgnored:
		level = slog.LevelWarn
	}
	// Names only: the pod itself (its env, its annotations) is not logged.
	s.log.Log(context.Background(), level, "admission review", "verdict", string(res.verdict),
		"uid", string(res.review.Response.UID), "namespace", res.namespace, "pod", truncate(res.pod), "detail", res.detail)
}
