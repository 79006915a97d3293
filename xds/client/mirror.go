package client

import (
	"context"
	"fmt"
	"slices"

	"google.golang.org/grpc"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
)

// mirrorSession runs one Registry.Mirror stream: the full table first, then
// the pending changes as sequenced deltas. It reports whether the control
// plane acknowledged anything.
func (c *Client) mirrorSession(ctx context.Context, conn *grpc.ClientConn) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := agpv1.NewRegistryClient(conn).Mirror(ctx)
	if err != nil {
		return false, fmt.Errorf("open mirror stream: %w", err)
	}
	// Snapshot the table and drop pending changes: the full table covers them.
	c.mmu.Lock()
	topics := make([]string, 0, len(c.topics))
	for t := range c.topics {
		topics = append(topics, t)
	}
	clear(c.pending)
	c.mmu.Unlock()
	slices.Sort(topics)
	full := &agpv1.MirrorRequest{NodeId: c.cfg.NodeID, PeerAddress: c.cfg.AdvertiseAddress, Sequence: 1, Full: true, Changes: make([]*agpv1.SubscriptionChange, 0, len(topics))}
	for _, t := range topics {
		full.Changes = append(full.Changes, &agpv1.SubscriptionChange{Op: agpv1.SubscriptionChange_OP_ADD, Topic: t})
	}
	if err := stream.Send(full); err != nil {
		return false, fmt.Errorf("send mirror table: %w", err)
	}
	c.mirrorSent.Store(1)
	c.mirrorAcked.Store(0)

	errc := make(chan error, 1)
	acked := make(chan struct{}, 1)
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			c.mirrorAcked.Store(resp.GetAckedSequence())
			signal(acked)
		}
	}()

	progressed := false
	seq := uint64(1)
	for {
		select {
		case <-ctx.Done():
			return progressed, ctx.Err()
		case err := <-errc:
			return progressed, err
		case <-acked:
			if !progressed {
				progressed = true
				c.mirrorUp.Store(true)
				c.metrics.connected.WithLabelValues("mirror").Set(1)
				defer func() {
					c.mirrorUp.Store(false)
					c.metrics.connected.WithLabelValues("mirror").Set(0)
				}()
				c.log.Info("subscription mirror connected", "topics", len(topics))
			}
		case <-c.mirrorCh:
			c.mmu.Lock()
			if len(c.pending) == 0 {
				c.mmu.Unlock()
				continue
			}
			changes := make([]*agpv1.SubscriptionChange, 0, len(c.pending))
			for _, t := range slices.Sorted(mapsKeys(c.pending)) {
				changes = append(changes, &agpv1.SubscriptionChange{Op: c.pending[t], Topic: t})
			}
			clear(c.pending)
			c.mmu.Unlock()
			seq++
			if err := stream.Send(&agpv1.MirrorRequest{Sequence: seq, Changes: changes}); err != nil {
				return progressed, fmt.Errorf("send mirror delta: %w", err)
			}
			c.mirrorSent.Store(seq)
		}
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
