package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/agwproject/agw/client"
)

func newSubCmd() *cobra.Command {
	var (
		addr   string
		count  int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "sub TOPIC...",
		Short: "Subscribe to topics through the local sidecar and print what arrives",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := client.Dial(ctx, addr)
			if err != nil {
				return err
			}
			defer c.Close()
			for _, topic := range args {
				if err := c.Subscribe(ctx, topic); err != nil {
					return fmt.Errorf("subscribe to %s: %w", topic, err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "subscribed to %s\n", topic)
			}
			out := cmd.OutOrStdout()
			for n := 0; count == 0 || n < count; n++ {
				select {
				case <-ctx.Done():
					return nil
				case m, ok := <-c.Deliveries():
					if !ok {
						if err := c.Err(); err != nil && ctx.Err() == nil {
							return fmt.Errorf("stream ended: %w", err)
						}
						return nil
					}
					h := m.GetHeader()
					if asJSON {
						b, _ := json.Marshal(map[string]any{
							"source": h.GetSource(), "destination": h.GetDestination(), "message_id": h.GetMessageId(),
							"content_type": h.GetContentType(), "metadata": h.GetMetadata(), "payload": string(m.GetPayload()),
						})
						fmt.Fprintln(out, string(b))
					} else {
						fmt.Fprintf(out, "%s <- %s: %s\n", h.GetDestination(), h.GetSource(), m.GetPayload())
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "sidecar", envOr("AGW_SIDECAR_ADDR", defaultAgentAddr), "the sidecar's agent address (AGW_SIDECAR_ADDR)")
	cmd.Flags().IntVar(&count, "count", 0, "exit after this many messages (0 = run until interrupted)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per message")
	return cmd
}
