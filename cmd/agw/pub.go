package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/client"
)

const defaultAgentAddr = "127.0.0.1:46357"

func newPubCmd() *cobra.Command {
	var (
		addr, source, contentType string
		fanout                    uint32
		timeout                   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "pub TOPIC [MESSAGE...]",
		Short: "Publish messages to a topic through the local sidecar (one per argument, or one per stdin line)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			c, err := client.Dial(ctx, addr)
			if err != nil {
				return err
			}
			defer c.Close()
			publish := func(text string) error {
				ack, err := c.Publish(ctx, &agpv1.Message{
					Header:  &agpv1.Header{Source: source, Destination: args[0], Fanout: fanout, ContentType: contentType},
					Payload: []byte(text),
				})
				if err != nil {
					return fmt.Errorf("publish to %s: %w", args[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "published %s to %s: %d local, %d remote\n",
					ack.GetMessageId(), args[0], ack.GetLocalDeliveries(), ack.GetRemoteDeliveries())
				return nil
			}
			if len(args) > 1 {
				for _, m := range args[1:] {
					if err := publish(m); err != nil {
						return err
					}
				}
				return nil
			}
			sc := bufio.NewScanner(os.Stdin)
			for sc.Scan() {
				if err := publish(strings.TrimRight(sc.Text(), "\r")); err != nil {
					return err
				}
			}
			return sc.Err()
		},
	}
	cmd.Flags().StringVar(&addr, "sidecar", envOr("AGW_SIDECAR_ADDR", defaultAgentAddr), "the sidecar's agent address (AGW_SIDECAR_ADDR)")
	cmd.Flags().StringVar(&source, "source", os.Getenv("AGW_AGENT_NAME"), "this agent's AGP name, org/namespace/service[/instance] (AGW_AGENT_NAME)")
	cmd.Flags().Uint32Var(&fanout, "fanout", 0, "0 = every subscriber, 1 = anycast (one), N = at most N")
	cmd.Flags().StringVar(&contentType, "content-type", "text/plain", "payload content type")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	return cmd
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
