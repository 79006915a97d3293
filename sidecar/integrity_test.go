package sidecar_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"

	"github.com/agwproject/agw/sidecar/sidecartest"
)

// payloadFor is a payload that proves its own integrity: a header
// (publisher, seq) followed by filler derived from it.
func payloadFor(pub, seq uint32) []byte {
	b := make([]byte, 2048+int(seq%512)) // varied sizes, above gRPC's pooling threshold
	binary.BigEndian.PutUint32(b[0:], pub)
	binary.BigEndian.PutUint32(b[4:], seq)
	for i := 8; i < len(b); i++ {
		b[i] = byte(uint32(i)*31 + pub*7 + seq*13)
	}
	return b
}

func checkPayload(b []byte) error {
	if len(b) < 8 {
		return fmt.Errorf("payload of %d bytes", len(b))
	}
	pub, seq := binary.BigEndian.Uint32(b[0:]), binary.BigEndian.Uint32(b[4:])
	if want := payloadFor(pub, seq); !bytes.Equal(b, want) {
		return fmt.Errorf("payload of publisher %d seq %d corrupted", pub, seq)
	}
	return nil
}

// TestPayloadIntegrityUnderLoad multicasts from several publishers to local
// and remote subscribers at once and checks every byte of every delivery:
// message bodies are pooled and shared between sends, so a body released
// too early would show up here as a corrupted payload.
func TestPayloadIntegrityUnderLoad(t *testing.T) {
	ctx := ctxT(t)
	nodes := mesh(t, []string{"a", "b"}, map[string][]string{topic: {"b"}}, nil)
	a, b := nodes[0], nodes[1]
	var subs []*sidecartest.Agent
	for range 3 {
		subs = append(subs, subscribe(t, ctx, a, topic))
	}
	for range 2 {
		subs = append(subs, subscribe(t, ctx, b, topic))
	}
	const publishers, each = 4, 150
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		pub := sidecartest.DialAgent(t, a.Node)
		wg.Go(func() {
			for i := range each {
				ack, err := pub.PublishTo(ctx, topic, 0, payloadFor(uint32(p), uint32(i)))
				if err != nil {
					errs <- err
					return
				}
				if ack.LocalDeliveries != 3 || ack.RemoteDeliveries != 1 {
					errs <- fmt.Errorf("ack %v", ack)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, s := range subs {
		seen := map[[2]uint32]bool{}
		for range publishers * each {
			m, err := s.Next(ctx)
			if err != nil {
				t.Fatalf("subscriber %d got %d of %d: %v", i, len(seen), publishers*each, err)
			}
			if err := checkPayload(m.Payload); err != nil {
				t.Fatalf("subscriber %d: %v", i, err)
			}
			k := [2]uint32{binary.BigEndian.Uint32(m.Payload), binary.BigEndian.Uint32(m.Payload[4:])}
			if seen[k] {
				t.Fatalf("subscriber %d: duplicate %v", i, k)
			}
			seen[k] = true
		}
	}
}
