// Package vecsuite gives the MLS vector tests the cipher suite of a vector
// entry, counting the entries it leaves out as skipped with their reason:
// those of the X448/Ed448 suites 4 and 6, which package suite does not
// implement, and (ForHeavy, with -short) those of every suite but 1. It is
// apart from testvec because package suite's own tests use testvec.
package vecsuite

import (
	"errors"
	"fmt"
	"testing"

	"github.com/agwproject/agw/mls/internal/testvec"
	"github.com/agwproject/agw/mls/suite"
)

// For returns the suite with the given id, or nil after counting the entry
// as skipped when the suite is unsupported (X448/Ed448). Any other error
// fails the test.
func For(t testing.TB, c *testvec.Counter, id uint16) *suite.Suite {
	t.Helper()
	s, err := suite.Get(suite.ID(id))
	if errors.Is(err, suite.ErrUnsupported) {
		c.Skip(fmt.Sprintf("suite %d unsupported (X448/Ed448)", id))
		return nil
	}
	if err != nil {
		t.Fatalf("suite %d: %v", id, err)
	}
	return s
}

// ForHeavy is For for entries too slow to run for every suite under the
// race detector: with -short only suite 1 runs, and the others are counted
// as skipped with testvec.ShortReason.
func ForHeavy(t testing.TB, c *testvec.Counter, id uint16) *suite.Suite {
	t.Helper()
	s := For(t, c, id)
	if s == nil || c.SkipInShort(id) {
		return nil
	}
	return s
}
