//go:build !agwsidecar

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/agwproject/agw/sidecar/rpc"
)

func newBenchRPCCmd() *cobra.Command {
	cfg := rpc.DefaultBenchConfig()
	runs := 1
	cmd := &cobra.Command{
		Use:   "rpc",
		Short: "Unary calls and streaming through two sidecars against the same client calling the server directly",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runs < 1 {
				return fmt.Errorf("--runs %d: want at least 1", runs)
			}
			restore, err := applySidecarGC(cmd)
			if err != nil {
				return err
			}
			defer restore()
			var rs []*rpc.BenchResult
			for i := range runs {
				r, err := rpc.Bench(cmd.Context(), cfg)
				if err != nil {
					return err
				}
				if runs > 1 {
					fmt.Fprintf(cmd.OutOrStdout(), "run %d of %d\n", i+1, runs)
				}
				fmt.Fprint(cmd.OutOrStdout(), r)
				rs = append(rs, r)
			}
			if runs > 1 {
				fmt.Fprint(cmd.OutOrStdout(), rpc.Summarize(rs))
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&runs, "runs", runs, "repeat the benchmark and print the best and median ratios (the machine may be shared)")
	return cmd
}
