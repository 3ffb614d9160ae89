package benchreport

import "testing"

func TestThousands(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {1234567.8, "1,234,568"}, {-45000, "-45,000"}, {100, "100"}} {
		if got := Thousands(tc.v); got != tc.want {
			t.Errorf("Thousands(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
	if Verdict(true) != "met" || Verdict(false) != "NOT met" {
		t.Error("Verdict")
	}
}

func TestBestByEvery(t *testing.T) {
	rs := []float64{3, 5, 5, 1}
	id := func(v float64) float64 { return v }
	if got := BestBy(rs, id); got != 5 {
		t.Errorf("BestBy = %v", got)
	}
	if got := BestBy(rs, func(v float64) float64 { return -v }); got != 1 {
		t.Errorf("BestBy lowest = %v", got)
	}
	if got := Every(rs, func(v float64) string { return Thousands(v * 1000) }); got != "3,000, 5,000, 5,000, 1,000" {
		t.Errorf("Every = %q", got)
	}
}
