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
