//go:build !agwsidecar

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/agwproject/agw/sidecar/e2ee"
	"github.com/agwproject/agw/test/bench"
)

func init() { extraCommands = append(extraCommands, newBenchCmd) }

func newBenchCmd(g *globalFlags) *cobra.Command {
	var (
		opts       bench.Options
		noRSS      bool
		settle     time.Duration
		sidecarExe string
		admit      []int
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the data plane against direct gRPC in one run, and a sidecar's idle memory",
		Long: `bench runs, on loopback in this process:
  direct:   agent A -> agent B over one gRPC stream (the baseline)
  sidecars: agent A -> sidecar A -> sidecar B -> agent B
  MLS:      the same, every message between the sidecars sealed with MLS
            (the plaintext sidecar path exists only in this harness)
with 1 KiB messages: throughput (messages in flight bounded by --window) and
latency at a fixed rate (--rate). It then starts a sidecar process and a bare
gRPC server process and compares their resident memory when idle.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			restore, err := applySidecarGC(cmd)
			if err != nil {
				return err
			}
			defer restore()
			fmt.Fprintf(out, "data plane: %d-byte messages, %s per throughput phase, window %d, latency at %d msg/s for %s\n",
				opts.MessageSize, opts.Duration, opts.Window, opts.Rate, opts.RateFor)
			rep, err := bench.RunDataPlane(ctx, opts)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "path\tmsg/s\tp50\tp99\tmax\tsamples\t")
			for _, row := range []struct {
				name string
				f    bench.Figures
			}{{"direct gRPC", rep.Direct}, {"via 2 sidecars", rep.Sidecars}, {"via 2 sidecars, MLS", rep.MLS}} {
				fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%d\t\n", row.name, row.f.Throughput,
					us(row.f.P50), us(row.f.P99), us(row.f.Max), row.f.Samples)
			}
			tw.Flush()
			fmt.Fprintf(out, "throughput ratio (sidecars/direct): %.2f   added p99 at %d msg/s: %s\n",
				rep.ThroughputRatio(), rep.Options.Rate, us(rep.AddedP99()))
			fmt.Fprintf(out, "MLS: throughput ratio (MLS/plaintext sidecars): %.2f (target 0.70)   added p99 at %d msg/s: %s   cpu/msg %s vs %s\n",
				rep.MLSRatio(), rep.Options.Rate, us(rep.MLSAddedP99()), us(rep.MLS.CPUPerMsg), us(rep.Sidecars.CPUPerMsg))
			if len(admit) > 0 {
				adm, err := e2ee.MeasureAdmission(ctx, admit)
				if err != nil {
					return fmt.Errorf("MLS admission: %w", err)
				}
				for _, a := range adm {
					fmt.Fprintf(out, "MLS: admit a member into a channel of %d sidecars: joined %s, all members applied %s\n",
						a.Size, a.Joined.Round(10*time.Microsecond), a.Applied.Round(10*time.Microsecond))
				}
			}
			if noRSS {
				return nil
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			if sidecarExe == "" {
				sidecarExe = exe
				if slim := filepath.Join(filepath.Dir(exe), "agw-sidecar"); fileExists(slim) {
					sidecarExe = slim
				}
			}
			rss, err := bench.MeasureIdleRSS(ctx, sidecarExe, settle)
			if err != nil {
				return fmt.Errorf("idle memory: %w", err)
			}
			fmt.Fprintf(out, "idle RSS: sidecar %.1f MiB (%s), bare gRPC server %.1f MiB, ratio %.2f\n",
				mib(rss.Sidecar), filepath.Base(sidecarExe), mib(rss.Baseline), float64(rss.Sidecar)/float64(rss.Baseline))
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.MessageSize, "size", 1024, "payload bytes")
	f.DurationVar(&opts.Duration, "duration", 3*time.Second, "length of each throughput phase")
	f.IntVar(&opts.Window, "window", 256, "messages in flight during the throughput phase")
	f.IntVar(&opts.Rate, "rate", 1000, "messages per second during the latency phase")
	f.DurationVar(&opts.RateFor, "rate-for", 3*time.Second, "length of each latency phase")
	f.BoolVar(&noRSS, "no-rss", false, "skip the idle memory measurement")
	f.IntSliceVar(&admit, "mls-admit", []int{2, 16, 128}, "channel sizes for the MLS admission time (empty: skip)")
	f.DurationVar(&settle, "settle", 2*time.Second, "how long a process idles before its memory is read")
	f.StringVar(&sidecarExe, "sidecar-binary", "", "binary whose `sidecar` subcommand is measured (default: agw-sidecar beside this binary, else this binary)")
	cmd.AddCommand(newBenchConvergenceCmd(), newBenchMLSInteropCmd(), newBenchRPCCmd(), newBenchE2EECmd())
	return cmd
}

// applySidecarGC applies the sidecar binary's garbage collector policy
// (defaultGOGC, or AGW_GOGC and AGW_MEMORY_LIMIT as the sidecar reads them)
// to this process, whose in-process sidecars are measured, and says so in
// the output. The returned function restores the previous policy.
func applySidecarGC(cmd *cobra.Command) (restore func(), err error) {
	p, err := gcConfigFromEnv(os.Getenv).policy(os.Getenv)
	if err != nil {
		return nil, err
	}
	restore = p.apply()
	fmt.Fprintf(cmd.OutOrStdout(), "garbage collector: %s, as in the sidecar binary (AGW_GOGC, AGW_MEMORY_LIMIT)\n", p)
	return restore, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func us(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond)) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }
