package controlplane

import (
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/spf13/pflag"
)

func TestConfigEnvDefaultsMatchDefaultConfig(t *testing.T) {
	cfg, err := env.ParseAsWithOptions[Config](env.Options{Environment: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg != DefaultConfig() {
		t.Fatalf("env defaults %+v differ from DefaultConfig %+v", cfg, DefaultConfig())
	}
}

func TestConfigEnvThenFlags(t *testing.T) {
	cfg, err := env.ParseAsWithOptions[Config](env.Options{Environment: map[string]string{
		"AGW_CP_LISTEN": "127.0.0.1:18001", "AGW_CP_GRACE_PERIOD": "2s", "AGW_CP_REPLICA_ID": "r1",
	}})
	if err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("cp", pflag.ContinueOnError)
	cfg.BindFlags(fs)
	if err := fs.Parse([]string{"--grace-period=5s", "--admin-listen="}); err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:18001" || cfg.GracePeriod != 5*time.Second || cfg.AdminListen != "" || cfg.ReplicaID != "r1" {
		t.Fatalf("got %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}
