package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
)

func init() {
	extraCommands = append(extraCommands, func(*globalFlags) *cobra.Command { return newBaselineServerCmd() })
}

// newBaselineServerCmd is the bare gRPC server whose idle memory is the
// baseline for the sidecar's.
func newBaselineServerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "baseline-server",
		Short:  "A bare gRPC server (agw bench's idle-memory baseline, in every build); prints its address and serves until interrupted",
		Hidden: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			srv := grpc.NewServer()
			agpv1.RegisterGatewayServer(srv, agpv1.UnimplementedGatewayServer{})
			fmt.Fprintf(cmd.OutOrStdout(), "listening %s\n", lis.Addr())
			go func() { <-cmd.Context().Done(); srv.Stop() }()
			return srv.Serve(lis)
		},
	}
}
