package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agwproject/agw/internal/identity"
	"github.com/agwproject/agw/internal/logging"
	"github.com/agwproject/agw/xds/controlplane"
)

// TestDemoRPC runs demoRPC on a control plane and three sidecars set up as
// runDemo does, and checks the calls it narrates really happened.
func TestDemoRPC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	d := &demo{out: &out, log: logging.Discard(), sidecars: map[string]*sidecarProcess{}}
	defer d.shutdown()
	cpCfg := controlplane.DefaultConfig()
	cpCfg.Listen, cpCfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cpCfg.Warmup, cpCfg.GracePeriod = 0, 2*time.Second
	cp, err := controlplane.New(cpCfg)
	if err != nil {
		t.Fatal(err)
	}
	d.cp = cp
	d.background("control-plane", cp.Run)
	if err := waitReady(ctx, cp.Ready(), "control plane"); err != nil {
		t.Fatal(err)
	}
	if d.ca, err = identity.NewCA(demoTrustDomain); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"pod-a", "pod-b", "pod-c"} {
		if _, err := d.startSidecar(ctx, name, cp.Addr().String()); err != nil {
			t.Fatal(err)
		}
	}
	if err := demoRPC(ctx, d); err != nil {
		t.Fatalf("demoRPC: %v\noutput so far:\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		`Say("draft the summary") -> "draft the summary" from writer-`,
		"Count(5) to instance acme/research/writer/1 (metadata agw-target) -> 1 2 3 4 5 from writer-1",
		"multicast Say with agw-fanout: all -> answers from writer-",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("output:\n%s", text)
	}
}
