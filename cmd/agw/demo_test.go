//go:build !agwsidecar

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agwproject/agw/internal/logging"
)

// TestDemo runs the README's main job end to end and checks that each step
// it narrates really happened.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := runDemo(ctx, &out, logging.Discard(), false); err != nil {
		t.Fatalf("demo failed: %v\noutput so far:\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"peer links: mutual TLS with SPIFFE identities from a throwaway CA (spiffe://demo.agw/ns/demo/sa/pod-a, ...)",
		"the sidecar acks 2 remote deliveries",
		`acme/research/writer/1     (pod-b) received "quarterly numbers are in"`,
		`acme/research/writer/2     (pod-c) received "quarterly numbers are in"`,
		"spread: summarizer/1 got 2, summarizer/2 got 2",
		"nobody subscribes yet",
		`acme/ops/auditor/1 (pod-c) received "disk almost full (again)"`,
		`Say("draft the summary") -> "draft the summary" from writer-`,
		"Count(5) to instance acme/research/writer/1 (metadata agw-target) -> 1 2 3 4 5 from writer-1",
		"multicast Say with agw-fanout: all -> answers from writer-",
		"left its pod as an MLS (RFC 9420) PrivateMessage",
		"demo complete.",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", text)
	}
}
