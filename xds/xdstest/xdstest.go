// Package xdstest starts real control planes and xDS clients on 127.0.0.1
// for tests, stopping them with t.Cleanup.
package xdstest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agwproject/agw/xds/client"
	"github.com/agwproject/agw/xds/controlplane"
)

// Config returns a control plane configuration for tests: gRPC and admin on
// 127.0.0.1:0, a 300ms grace period, no warm-up, short shutdown.
func Config() controlplane.Config {
	cfg := controlplane.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.AdminListen = "127.0.0.1:0"
	cfg.GracePeriod = 300 * time.Millisecond
	cfg.Warmup = 0
	cfg.ShutdownTimeout = 2 * time.Second
	return cfg
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	*controlplane.Server
	// Addr is the gRPC address (host:port).
	Addr string
	// AdminURL is the admin base URL (http://host:port).
	AdminURL string
	cancel   context.CancelFunc
	errc     chan error
	stopOnce sync.Once
	stopErr  error
}

// Stop stops the control plane, waits for it and returns what Run returned
// (idempotent).
func (cp *ControlPlane) Stop() error {
	cp.stopOnce.Do(func() {
		cp.cancel()
		_ = cp.Server.Close()
		cp.stopErr = <-cp.errc
	})
	return cp.stopErr
}

// StartControlPlane starts a control plane with cfg (use Config() and adjust)
// and stops it at the end of the test.
func StartControlPlane(t testing.TB, cfg controlplane.Config, opts ...controlplane.Option) *ControlPlane {
	t.Helper()
	cp, err := Start(cfg, opts...)
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Errorf("control plane: %v", err)
		}
	})
	return cp
}

// Start starts a control plane without a testing.TB (benchmarks, commands);
// the caller calls Stop.
func Start(cfg controlplane.Config, opts ...controlplane.Option) (*ControlPlane, error) {
	srv, err := controlplane.New(cfg, opts...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-errc:
		cancel()
		return nil, fmt.Errorf("control plane did not start: %w", err)
	case <-time.After(10 * time.Second):
		cancel()
		return nil, fmt.Errorf("control plane did not start within 10s")
	}
	cp := &ControlPlane{Server: srv, Addr: srv.Addr().String(), cancel: cancel, errc: errc}
	if a := srv.AdminAddr(); a != nil {
		cp.AdminURL = "http://" + a.String()
	}
	return cp, nil
}

// ClientConfig returns a client configuration for node id against addr,
// with an advertised address 127.0.0.1:<port derived from the id> and fast
// reconnects.
func ClientConfig(addr, nodeID string) client.Config {
	cfg := client.DefaultConfig()
	cfg.Server = addr
	cfg.NodeID = nodeID
	port := 20000
	for _, c := range nodeID {
		port = (port*31 + int(c)) % 40000
	}
	cfg.AdvertiseAddress = fmt.Sprintf("127.0.0.1:%d", 20000+port)
	cfg.BackoffInitial = 20 * time.Millisecond
	cfg.BackoffMax = 200 * time.Millisecond
	return cfg
}

// StartClient starts an xDS client with cfg and closes it at the end of the
// test.
func StartClient(t testing.TB, cfg client.Config, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(cfg, opts...)
	if err != nil {
		t.Fatalf("new xds client: %v", err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(context.Background()) }()
	t.Cleanup(func() {
		_ = c.Close()
		<-done
	})
	return c
}

// Eventually polls cond every 5ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
