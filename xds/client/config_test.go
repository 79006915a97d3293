package client

import (
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/spf13/pflag"
)

func TestConfigEnvThenFlags(t *testing.T) {
	cfg, err := env.ParseAsWithOptions[Config](env.Options{Environment: map[string]string{
		"AGW_XDS_SERVER": "cp:18000", "AGW_XDS_NODE_ID": "default.agent-0", "AGW_XDS_ADVERTISE_ADDRESS": "10.0.0.1:46358",
	}})
	if err != nil {
		t.Fatal(err)
	}
	d := DefaultConfig()
	if cfg.BackoffInitial != d.BackoffInitial || cfg.BackoffMax != d.BackoffMax || cfg.MaxMessageBytes != d.MaxMessageBytes {
		t.Fatalf("env defaults %+v differ from DefaultConfig %+v", cfg, d)
	}
	fs := pflag.NewFlagSet("sidecar", pflag.ContinueOnError)
	cfg.BindFlags(fs)
	if err := fs.Parse([]string{"--xds-wildcard", "--xds-backoff-max=3s"}); err != nil {
		t.Fatal(err)
	}
	if !cfg.Wildcard || cfg.BackoffMax != 3*time.Second || cfg.Server != "cp:18000" {
		t.Fatalf("got %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}
