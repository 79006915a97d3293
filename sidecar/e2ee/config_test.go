package e2ee

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestConfigDefaultsValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Suite != 2 || c.PaddingBlock != 256 || c.StateDir != "" {
		t.Fatalf("%+v", c)
	}
}

func TestConfigEnvAndFlags(t *testing.T) {
	t.Setenv("AGW_MLS_PADDING_BLOCK", "64")
	t.Setenv("AGW_MLS_STATE_DIR", "/tmp/x")
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.PaddingBlock != 64 || c.StateDir != "/tmp/x" {
		t.Fatalf("%+v", c)
	}
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	c.BindFlags(fs)
	if err := fs.Parse([]string{"--mls-padding-block=32", "--mls-state-key=" + testStateKey}); err != nil {
		t.Fatal(err)
	}
	if c.PaddingBlock != 32 || c.StateKey != testStateKey || c.StateDir != "/tmp/x" {
		t.Fatalf("%+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"suite":        {func(c *Config) { c.Suite = 4 }, "AGW_MLS_SUITE"},
		"padding":      {func(c *Config) { c.PaddingBlock = 0 }, "AGW_MLS_PADDING_BLOCK"},
		"rotate":       {func(c *Config) { c.RotateInterval = 0 }, "AGW_MLS_ROTATE_INTERVAL"},
		"key no dir":   {func(c *Config) { c.StateKey = testStateKey }, "AGW_MLS_STATE_DIR is empty"},
		"dir no key":   {func(c *Config) { c.StateDir = "/tmp/s" }, "64 hex digits"},
		"short key":    {func(c *Config) { c.StateDir, c.StateKey = "/tmp/s", "abcd" }, "64 hex digits"},
		"join":         {func(c *Config) { c.JoinTimeout = 0 }, "AGW_MLS_JOIN_TIMEOUT"},
		"retry":        {func(c *Config) { c.RetryInterval = 0 }, "AGW_MLS_RETRY_INTERVAL"},
		"epoch wait":   {func(c *Config) { c.EpochWait = -1 }, "AGW_MLS_EPOCH_WAIT"},
		"epoch window": {func(c *Config) { c.EpochWindow = 17 }, "AGW_MLS_EPOCH_WINDOW"},
	} {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestNewRefusesBadArguments(t *testing.T) {
	f := newFixture(t)
	src := f.source(f.ca, "x")
	if _, err := New(DefaultConfig(), "", src, endpoint{f.hub, "x"}); err == nil {
		t.Fatal("empty node id accepted")
	}
	if _, err := New(DefaultConfig(), "x", nil, endpoint{f.hub, "x"}); err == nil {
		t.Fatal("nil source accepted")
	}
	bad := DefaultConfig()
	bad.PaddingBlock = -1
	if _, err := New(bad, "x", src, endpoint{f.hub, "x"}); err == nil {
		t.Fatal("bad config accepted")
	}
}
