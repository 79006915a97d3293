package e2ee

import (
	"testing"
)

func TestMeasureAdmission(t *testing.T) {
	rs, err := MeasureAdmission(ctxT(t), []int{1, 2, 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 || rs[2].Size != 5 {
		t.Fatalf("%+v", rs)
	}
	for _, r := range rs {
		if r.Joined <= 0 || r.Applied < r.Joined/2 {
			t.Fatalf("%+v", r)
		}
		t.Logf("admit into %d: joined %v, applied %v", r.Size, r.Joined, r.Applied)
	}
	if _, err := MeasureAdmission(ctxT(t), []int{0}); err == nil {
		t.Fatal("size 0 accepted")
	}
}
