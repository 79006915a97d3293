//go:build !agwsidecar

package main

import (
	"github.com/spf13/cobra"

	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/test/mlsinterop"
)

func newBenchMLSInteropCmd() *cobra.Command {
	var (
		dir     string
		suiteID uint16
		sizes   []int
	)
	cmd := &cobra.Command{
		Use:   "mls-interop",
		Short: "Time the same MLS operations in agw's mls/ and in ts-mls (Node.js), side by side with the ratio",
		Long: `mls-interop times group creation, adding a member to groups of 16, 128 and
512, processing that commit, joining from the Welcome, and encrypting and
decrypting 1 KiB, in Go's mls/ and in ts-mls 1.6.4 driven over stdin/stdout.
Needs Node.js and the npm packages of test/ (make test-deps); run it from the
repository root or point --driver-dir at test/mlsinterop.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			node, err := mlsinterop.FindDeps(dir)
			if err != nil {
				return err
			}
			opts := mlsinterop.BenchOptions{Suite: suite.ID(suiteID), Sizes: sizes}
			rows, err := mlsinterop.Compare(cmd.Context(), node, dir, opts)
			if err != nil {
				return err
			}
			return mlsinterop.PrintTable(cmd.OutOrStdout(), opts, rows)
		},
	}
	cmd.Flags().StringVar(&dir, "driver-dir", "test/mlsinterop", "directory of the ts-mls driver")
	cmd.Flags().Uint16Var(&suiteID, "suite", 1, "MLS cipher suite: 1, 2 or 3")
	cmd.Flags().IntSliceVar(&sizes, "sizes", []int{16, 128, 512}, "group sizes")
	return cmd
}
