package injector

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
)

func newTestServer(t *testing.T, mod func(*Config), opts ...Option) (*Server, string) {
	t.Helper()
	dir := t.TempDir()
	testCert(t, dir, 100)
	cfg := testConfig(t, dir)
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func readRequest(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/requests", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, _ := newTestServer(t, nil, WithRegisterer(reg))
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)

	post := func(path, ctype string, body []byte) (*http.Response, []byte) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", ctype)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	decode := func(b []byte) *admissionv1.AdmissionResponse {
		t.Helper()
		var r admissionv1.AdmissionReview
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("response %q: %v", b, err)
		}
		if r.Response == nil {
			t.Fatalf("no response in %s", b)
		}
		return r.Response
	}

	// The namespace path injects a plain pod; the pod path does not.
	plain := readRequest(t, "pod-not-asking")
	resp, b := post(PathNamespace, "application/json", plain)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	if r := decode(b); !r.Allowed || len(r.Patch) == 0 {
		t.Errorf("namespace path: want a patch, got %+v", r)
	}
	resp, b = post(PathPod, "application/json; charset=utf-8", plain)
	if r := decode(b); resp.StatusCode != 200 || !r.Allowed || len(r.Patch) != 0 {
		t.Errorf("pod path: want allowed unchanged, got %d %+v", resp.StatusCode, r)
	}
	resp, b = post(PathNamespace, "application/json", readRequest(t, "malformed-spec"))
	if r := decode(b); resp.StatusCode != 200 || r.Allowed || r.Result == nil || !strings.Contains(r.Result.Message, "spec") {
		t.Errorf("malformed: want a denial, got %d %+v", resp.StatusCode, r)
	}

	// Not a review at all: HTTP errors, never a panic.
	for _, tc := range []struct {
		name, path, ctype, body string
		status                  int
	}{
		{"not json", PathPod, "application/json", "{", 400},
		{"wrong type", PathPod, "application/json", `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}`, 400},
		{"no request", PathPod, "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, 400},
		{"no uid", PathPod, "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`, 400},
		{"yaml", PathPod, "application/yaml", "a: b", 415},
		{"too big", PathPod, "application/json", `{"x":"` + strings.Repeat("a", 5<<20) + `"}`, 413},
	} {
		resp, b := post(tc.path, tc.ctype, []byte(tc.body))
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d (%s), want %d", tc.name, resp.StatusCode, bytes.TrimSpace(b), tc.status)
		}
	}
	// GET on a review path is not routed.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+PathPod, nil)
	if r, err := ts.Client().Do(req); err != nil {
		t.Fatal(err)
	} else {
		r.Body.Close()
		if r.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET %s: %d, want 405", PathPod, r.StatusCode)
		}
	}

	if got := testutil.ToFloat64(s.reviews.WithLabelValues("injected")); got != 1 {
		t.Errorf("injected counter %v, want 1", got)
	}
	if got := testutil.ToFloat64(s.reviews.WithLabelValues("bad_request")); got != 6 {
		t.Errorf("bad_request counter %v, want 6", got)
	}
	if got := testutil.ToFloat64(s.reviews.WithLabelValues("denied")); got != 1 {
		t.Errorf("denied counter %v, want 1", got)
	}
}

// TestHTTPS runs the real server on 127.0.0.1:0: reviews over TLS, probes,
// certificate reload, graceful shutdown.
func TestHTTPS(t *testing.T) {
	dir := t.TempDir()
	pool, serial := testCert(t, dir, 100)
	cfg := testConfig(t, dir)
	cfg.CertReloadInterval = 100 * time.Millisecond
	var logs syncBuffer
	s, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	s.reloadCh = make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("not ready")
	}
	addr := s.Addr().String()

	client := func(roots *x509.CertPool) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: "agw-injector.agw-system.svc"},
			DisableKeepAlives: true,
		}}
	}
	c := client(pool)
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := c.Get("https://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
	resp, err := c.Post("https://"+addr+PathNamespace, "application/json", bytes.NewReader(readRequest(t, "namespace-plain")))
	if err != nil {
		t.Fatal(err)
	}
	var review admissionv1.AdmissionReview
	err = json.NewDecoder(resp.Body).Decode(&review)
	resp.Body.Close()
	if err != nil || review.Response == nil || !review.Response.Allowed || len(review.Response.Patch) == 0 {
		t.Fatalf("review over HTTPS: %v %+v", err, review.Response)
	}
	if !strings.Contains(logs.String(), "verdict=injected") {
		t.Errorf("no injection logged:\n%s", logs.String())
	}

	served := func() string {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	if got := served(); got != serial.String() {
		t.Fatalf("serving serial %s, want %s", got, serial)
	}

	// A broken pair is refused and the old certificate stays.
	writeAtomic(t, cfg.KeyFile, []byte("not a key"))
	waitReload(t, s)
	waitReload(t, s)
	if got := served(); got != serial.String() {
		t.Fatalf("after a bad key: serving %s, want still %s", got, serial)
	}
	if !strings.Contains(logs.String(), "reload failed") || strings.Contains(logs.String(), "not a key") {
		t.Errorf("want a reload failure logged without the key contents:\n%s", logs.String())
	}

	// A new pair is picked up.
	pool2, serial2 := testCert(t, dir, 200)
	deadline := time.Now().Add(10 * time.Second)
	for served() != serial2.String() {
		if time.Now().After(deadline) {
			t.Fatal("new certificate not served within 10s")
		}
		waitReload(t, s)
	}
	resp, err = client(pool2).Get("https://" + addr + "/readyz")
	if err != nil {
		t.Fatalf("with the new CA: %v", err)
	}
	resp.Body.Close()
	if got := testutil.ToFloat64(s.reloads.WithLabelValues("ok")); got < 1 {
		t.Errorf("reloads ok %v", got)
	}

	// Graceful shutdown: Run returns nil and the port closes.
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}); err == nil {
		t.Error("still accepting after shutdown")
	}
	if err := s.Run(context.Background()); err == nil {
		t.Error("second Run did not fail")
	}
}

func waitReload(t *testing.T, s *Server) {
	t.Helper()
	select {
	case <-s.reloadCh:
	case <-time.After(5 * time.Second):
		t.Fatal("no reload check within 5s")
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "tls.crt") {
		t.Errorf("missing certificate: %v", err)
	}
	testCert(t, dir, 1)
	other := t.TempDir()
	testCert(t, other, 2)
	cfg.KeyFile = filepath.Join(other, "tls.key")
	_, err := New(cfg)
	if err == nil || !strings.Contains(err.Error(), "private key does not match") {
		t.Errorf("mismatched pair: %v", err)
	}
	cfg = testConfig(t, dir)
	cfg.Listen = "nonsense"
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "AGW_INJECT_LISTEN") {
		t.Errorf("bad config: %v", err)
	}
	// Listening on a taken port is a Run error, not a hang.
	s1, err := New(testConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s1.Run(ctx) }()
	<-s1.Ready()
	cfg = testConfig(t, dir)
	cfg.Listen = s1.Addr().String()
	s2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Run(ctx); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("taken port: %v", err)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v", err)
	}
}
