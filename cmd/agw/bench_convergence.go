//go:build !agwsidecar

package main

import (
	"fmt"
	"os"
	"os/exec"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/agwproject/agw/xds/xdsbench"
)

func newBenchConvergenceCmd() *cobra.Command {
	var (
		nodes   []int
		changes int
		inProc  bool
		profDir string
	)
	cmd := &cobra.Command{
		Use:   "convergence",
		Short: "Time from a subscription change at one sidecar until every interested sidecar has ACKed the new route",
		Long: `convergence connects N sidecar xDS clients (mirror + delta ADS, in this
process) to one control plane (a separate agw process, so that its memory is
measured alone), makes subscription changes at one node, and measures until
every client has ACKed the route that reflects each change.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			if len(nodes) == 0 {
				return fmt.Errorf("--nodes: give at least one number of nodes, e.g. --nodes 100,1000")
			}
			out := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "nodes\tchanges\tp50\tp99\tmax\tclient p99\tconnect\tcp heap B/node\tcp stacks B/node\tcp total B/node\tgoroutines/node\tCPU/change (cp)\t")
			var results []xdsbench.Result
			for _, n := range nodes {
				opts := xdsbench.Options{Changes: changes, ProfileDir: profDir}
				if !inProc {
					opts.ControlPlaneCommand = func(_, _ string) *exec.Cmd {
						return exec.CommandContext(cmd.Context(), exe, "control-plane", "--log-level", "error")
					}
				}
				r, err := xdsbench.RunConvergenceBench(cmd.Context(), n, opts)
				if err != nil {
					return fmt.Errorf("%d nodes: %w", n, err)
				}
				results = append(results, r)
				fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%.0f\t%.0f\t%.0f\t%.1f\t%s\t\n", r.Nodes, r.Changes, ms(r.P50), ms(r.P99), ms(r.Max),
					ms(r.ClientP99), r.ConnectTime.Round(time.Millisecond), r.BytesPerNode, r.StackBytesPerNode, r.TotalBytesPerNode(), r.GoroutinesPerNode,
					r.ControlPlaneCPUPerChange.Round(10*time.Microsecond))
			}
			tw.Flush()
			last := results[len(results)-1]
			fmt.Fprintf(out, "\ncontrol plane goroutines per node at %d nodes (%s):\n", last.Nodes, last.MemoryScope)
			for _, k := range last.GoroutineKinds {
				fmt.Fprintf(out, "  %4.1f  %s\n", k.PerNode, k.Kind)
			}
			fmt.Fprintf(out, "\ntargets at 1,000 nodes: p99 under %s; under %d B of control-plane memory per node (heap in use after GC + goroutine stacks)\n",
				xdsbench.TargetP99, xdsbench.TargetBytesPerNode)
			for _, r := range results {
				if r.Nodes != 1000 {
					continue
				}
				fmt.Fprintf(out, "  p99 %s: %s\n", ms(r.P99), verdict(r.P99 < xdsbench.TargetP99))
				fmt.Fprintf(out, "  memory %.0f B/node (%.0f heap + %.0f stacks): %s\n", r.TotalBytesPerNode(), r.BytesPerNode, r.StackBytesPerNode,
					verdict(r.TotalBytesPerNode() < xdsbench.TargetBytesPerNode))
			}
			return nil
		},
	}
	cmd.Flags().IntSliceVar(&nodes, "nodes", []int{100, 1000}, "numbers of sidecar clients to measure")
	cmd.Flags().IntVar(&changes, "changes", 20, "subscription changes measured per run")
	cmd.Flags().StringVar(&profDir, "profile-dir", "", "write the control plane's heap profile and goroutine dump (N nodes connected) into this directory")
	cmd.Flags().BoolVar(&inProc, "in-process", false, "run the control plane in this process (memory then includes the clients)")
	return cmd
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "NOT met"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }
