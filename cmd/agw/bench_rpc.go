//go:build !agwsidecar

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/agwproject/agw/sidecar/rpc"
)

func newBenchRPCCmd() *cobra.Command {
	cfg := rpc.DefaultBenchConfig()
	return &cobra.Command{
		Use:   "rpc",
		Short: "Unary calls and streaming through two sidecars against the same client calling the server directly",
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := rpc.Bench(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), r)
			return nil
		},
	}
}
