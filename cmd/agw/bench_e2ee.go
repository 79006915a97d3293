//go:build !agwsidecar

package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/agwproject/agw/sidecar/e2ee"
	"github.com/agwproject/agw/sidecar/e2ee/e2eebench"
)

func newBenchE2EECmd() *cobra.Command {
	var (
		opts  e2eebench.Options
		sizes []int
	)
	cmd := &cobra.Command{
		Use:   "mls",
		Short: "Throughput and p99 between two sidecars with MLS against the plaintext path, and the time to admit a member into a channel",
		Long: `mls measures, in one run on loopback, sidecar-to-sidecar delivery with every
message an MLS PrivateMessage against the same path in plaintext (a baseline
that exists only inside this harness: a running sidecar has no plaintext
switch), then the time to admit a new member into channels of several sizes.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			restore, err := applySidecarGC(cmd)
			if err != nil {
				return err
			}
			defer restore()
			for _, fan := range []uint32{0, 1} {
				o := opts
				o.Fanout = fan
				r, err := e2eebench.Run(cmd.Context(), o)
				if err != nil {
					return err
				}
				kind := "multicast (channel group)"
				if fan == 1 {
					kind = "anycast (point-to-point session)"
				}
				tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
				fmt.Fprintf(out, "%s, %d-byte messages:\n", kind, o.PayloadSize)
				fmt.Fprintln(tw, "path\tmsg/s\tp50\tp99\t")
				for _, x := range []e2eebench.Result{r.Plaintext, r.Encrypted} {
					fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t\n", x.Mode, x.MsgsPerSec, us(x.P50), us(x.P99))
				}
				tw.Flush()
				fmt.Fprintf(out, "encrypted/plaintext throughput: %.2f (target 0.70)\n\n", r.Ratio)
			}
			adm, err := e2ee.MeasureAdmission(cmd.Context(), sizes)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "channel size\tnew member joined\tall members applied\t")
			for _, a := range adm {
				fmt.Fprintf(tw, "%d\t%s\t%s\t\n", a.Size, a.Joined.Round(10*time.Microsecond), a.Applied.Round(10*time.Microsecond))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&opts.Messages, "messages", 20000, "messages per path")
	cmd.Flags().IntVar(&opts.PayloadSize, "size", 1024, "payload bytes")
	cmd.Flags().IntSliceVar(&sizes, "admit", []int{2, 16, 128}, "channel sizes for the admission time")
	return cmd
}
