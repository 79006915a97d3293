//go:build !agwsidecar

package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/agwproject/agw/injector"
)

func init() { extraCommands = append(extraCommands, newInjectCmd) }

func newInjectCmd(g *globalFlags) *cobra.Command {
	cfg, envErr := injector.ConfigFromEnv()
	var check bool
	cmd := &cobra.Command{
		Use:   "inject",
		Short: "Run the sidecar injector: the mutating admission webhook that adds the agw sidecar to pods",
		Long: `Run the sidecar injector, a Kubernetes mutating admission webhook (HTTPS).

Pods of namespaces labelled agw.io/inject=enabled, and pods labelled or
annotated agw.io/inject: "true", get the agw sidecar as a native sidecar
(an init container with restartPolicy Always). See deploy/ for the webhook
configuration and the pod annotations that tune the sidecar.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if envErr != nil {
				return envErr
			}
			if err := errors.Join(cfg.Validate(), g.log.Validate()); err != nil {
				return err
			}
			if check {
				fmt.Fprintf(cmd.OutOrStdout(), "configuration OK: webhook on %s, sidecar image %s, control plane %s\n",
					cfg.Listen, cfg.Image, cfg.XDSServer)
				return nil
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			srv, err := injector.New(cfg, injector.WithLogger(log), injector.WithRegisterer(newRegistry()))
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
