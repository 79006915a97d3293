package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNewJSON(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, Config{Format: "json", Level: "warn"})
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	Component(l, "sidecar").Warn("shown", "k", 1)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("want exactly one JSON record, got %q: %v", buf.String(), err)
	}
	if rec["msg"] != "shown" || rec["component"] != "sidecar" {
		t.Fatalf("record: %v", rec)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{{Format: "xml", Level: "info"}, {Format: "json", Level: "loud"}} {
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "AGW_LOG_") {
			t.Errorf("%+v: got %v", c, err)
		}
	}
	if err := (Config{Format: "text", Level: "DEBUG"}).Validate(); err != nil {
		t.Fatal(err)
	}
}
