package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestGCPolicy(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    gcConfig
		env  map[string]string
		want gcPolicy
	}{
		{"default", gcConfig{}, nil, gcPolicy{Percent: defaultGOGC, SetPercent: true, Source: "default"}},
		{"GOGC respected", gcConfig{}, map[string]string{"GOGC": "150"}, gcPolicy{Source: "GOGC"}},
		{"AGW_GOGC over GOGC", gcConfig{GOGC: "200"}, map[string]string{"GOGC": "150"}, gcPolicy{Percent: 200, SetPercent: true, Source: "AGW_GOGC"}},
		{"limit", gcConfig{MemoryLimit: "400MiB"}, nil, gcPolicy{Percent: defaultGOGC, SetPercent: true, Source: "default", MemoryLimit: 400 << 20}},
		{"off with limit", gcConfig{GOGC: "OFF", MemoryLimit: "1GB"}, nil, gcPolicy{Percent: -1, SetPercent: true, Source: "AGW_GOGC", MemoryLimit: 1e9}},
		{"off with GOMEMLIMIT", gcConfig{GOGC: "off"}, map[string]string{"GOMEMLIMIT": "1GiB"}, gcPolicy{Percent: -1, SetPercent: true, Source: "AGW_GOGC"}},
	} {
		got, err := tc.c.policy(envOf(tc.env))
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.name, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		c    gcConfig
		want string
	}{
		{gcConfig{GOGC: "0"}, "AGW_GOGC"},
		{gcConfig{GOGC: "-5"}, "AGW_GOGC"},
		{gcConfig{GOGC: "lots"}, "AGW_GOGC"},
		{gcConfig{GOGC: "off"}, "needs a memory limit"},
		{gcConfig{MemoryLimit: "12 parsecs"}, "AGW_MEMORY_LIMIT"},
		{gcConfig{MemoryLimit: "-1MiB"}, "AGW_MEMORY_LIMIT"},
		{gcConfig{MemoryLimit: "99999999999TiB"}, "too large"},
	} {
		if _, err := tc.c.policy(envOf(nil)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", tc.c, err, tc.want)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{
		"": 0, "0": 0, "1048576": 1 << 20, "512MiB": 512 << 20, "512 mib": 512 << 20, "2GiB": 2 << 30,
		"3KiB": 3 << 10, "1TiB": 1 << 40, "500MB": 500e6, "7KB": 7000, "9GB": 9e9, "100B": 100, " 64MiB ": 64 << 20,
	} {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"MiB", "1.5GiB", "x", "-3", "1PiB"} {
		if _, err := parseByteSize(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestGCPolicyApply(t *testing.T) {
	before := debug.SetGCPercent(-1)
	debug.SetGCPercent(before)
	beforeLimit := debug.SetMemoryLimit(-1)
	p := gcPolicy{Percent: 321, SetPercent: true, Source: "AGW_GOGC", MemoryLimit: 3 << 30}
	restore := p.apply()
	if got := debug.SetGCPercent(321); got != 321 {
		t.Errorf("GC percent %d after apply", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 3<<30 {
		t.Errorf("memory limit %d after apply", got)
	}
	if s := p.String(); s != "GOGC=321 (AGW_GOGC), memory limit 3072 MiB" {
		t.Errorf("String: %q", s)
	}
	restore()
	if got := debug.SetGCPercent(before); got != before {
		t.Errorf("GC percent %d after restore, want %d", got, before)
	}
	if got := debug.SetMemoryLimit(-1); got != beforeLimit {
		t.Errorf("memory limit %d after restore, want %d", got, beforeLimit)
	}
	// Nothing set: nothing changed.
	gcPolicy{Source: "GOGC"}.apply()()
	if got := debug.SetGCPercent(before); got != before {
		t.Errorf("GC percent %d after an empty policy", got)
	}
}

// The sidecar command validates its garbage collector settings from the
// environment and from flags.
func TestSidecarGCConfig(t *testing.T) {
	t.Setenv("AGW_GOGC", "")
	t.Setenv("AGW_MEMORY_LIMIT", "")
	local := map[string]string{"AGW_PEER_LISTEN": ""}
	if out, err := runSidecarCheck(t, local, "--gogc", "300", "--memory-limit", "256MiB"); err != nil {
		t.Fatalf("valid flags: %v\n%s", err, out)
	}
	if _, err := runSidecarCheck(t, local, "--gogc", "none"); err == nil || !strings.Contains(err.Error(), "AGW_GOGC") {
		t.Fatalf("--gogc none: %v", err)
	}
	if _, err := runSidecarCheck(t, local, "--gogc", "off"); err == nil || !strings.Contains(err.Error(), "memory limit") {
		t.Fatalf("--gogc off without a limit: %v", err)
	}
	t.Setenv("AGW_MEMORY_LIMIT", "lots")
	if _, err := runSidecarCheck(t, local); err == nil || !strings.Contains(err.Error(), "AGW_MEMORY_LIMIT") {
		t.Fatalf("AGW_MEMORY_LIMIT=lots: %v", err)
	}
}
