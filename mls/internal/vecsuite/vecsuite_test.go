package vecsuite

import (
	"testing"

	"github.com/agwproject/agw/mls/internal/testvec"
)

func TestFor(t *testing.T) {
	c := testvec.Counter{File: "none"}
	if s := For(t, &c, 1); s == nil || s.ID() != 1 {
		t.Fatalf("suite 1: %v", s)
	}
	for _, id := range []uint16{4, 6} {
		if s := For(t, &c, id); s != nil {
			t.Errorf("suite %d: got a suite", id)
		}
	}
	if s := ForHeavy(t, &c, 2); (s == nil) != testing.Short() {
		t.Errorf("ForHeavy suite 2 with short=%v: %v", testing.Short(), s)
	}
	if s := ForHeavy(t, &c, 1); s == nil {
		t.Error("ForHeavy suite 1 skipped")
	}
	if c.Skipped["suite 4 unsupported (X448/Ed448)"] != 1 || c.Skipped["suite 6 unsupported (X448/Ed448)"] != 1 {
		t.Errorf("unsupported suites counted %v", c.Skipped)
	}
	if n := c.Skipped[testvec.ShortReason]; n != map[bool]int{true: 1}[testing.Short()] {
		t.Errorf("%d entries skipped for -short", n)
	}
}
