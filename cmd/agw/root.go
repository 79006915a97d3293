package main

import (
	"log/slog"
	"os"

	"github.com/caarlos0/env/v11"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/agwproject/agw/internal/logging"
)

// globalFlags are shared by every subcommand.
type globalFlags struct {
	log logging.Config
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "agw",
		Short:         "agw: the Agent Gateway Protocol sidecar, control plane and tools",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	_ = env.Parse(&g.log) // defaults and AGW_LOG_*; Validate reports bad values at use
	root.PersistentFlags().StringVar(&g.log.Format, "log-format", g.log.Format, "log format: json or text (AGW_LOG_FORMAT)")
	root.PersistentFlags().StringVar(&g.log.Level, "log-level", g.log.Level, "log level: debug, info, warn, error (AGW_LOG_LEVEL)")
	root.AddCommand(newPubCmd(), newSubCmd())
	for _, add := range extraCommands {
		root.AddCommand(add(g))
	}
	return root
}

// extraCommands are the subcommands that need the global flags; each file
// registers its own in init.
var extraCommands []func(*globalFlags) *cobra.Command

func (g *globalFlags) logger() (*slog.Logger, error) {
	return logging.New(os.Stderr, g.log)
}

// newRegistry is a Prometheus registry with the Go runtime and process
// collectors, shared by every component of one process.
func newRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}
