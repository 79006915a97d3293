//go:build !agwsidecar

package main

import (
	"fmt"

	"github.com/caarlos0/env/v11"
	"github.com/spf13/cobra"

	"github.com/agwproject/agw/interceptors"
	"github.com/agwproject/agw/xds/controlplane"
)

func init() { extraCommands = append(extraCommands, newControlPlaneCmd) }

func newControlPlaneCmd(g *globalFlags) *cobra.Command {
	cfg := controlplane.DefaultConfig()
	envErr := env.Parse(&cfg)
	var check bool
	cmd := &cobra.Command{
		Use:   "control-plane",
		Short: "Run the xDS control plane: subscription mirror, route index, delta ADS",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if envErr != nil {
				return fmt.Errorf("control plane environment: %w", envErr)
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			if err := g.log.Validate(); err != nil {
				return err
			}
			if check {
				fmt.Fprintf(cmd.OutOrStdout(), "configuration OK: xDS on %s, admin on %s, grace period %s\n",
					cfg.Listen, cfg.AdminListen, cfg.GracePeriod)
				return nil
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			reg := newRegistry()
			srv, err := controlplane.New(cfg,
				controlplane.WithLogger(log),
				controlplane.WithRegisterer(reg),
				controlplane.WithGRPCServerOptions(interceptors.ServerChain(log, interceptors.NewMetrics(reg, "control-plane"))...),
			)
			if err != nil {
				return err
			}
			return srv.Run(cmd.Context())
		},
	}
	cfg.BindFlags(cmd.Flags())
	cmd.Flags().BoolVar(&check, "check-config", false, "validate the configuration and exit")
	return cmd
}
