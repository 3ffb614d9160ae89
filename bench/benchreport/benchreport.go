// Package benchreport runs the benchmark drivers' commands (Driver: flags,
// timeout, the report to stdout and --out, exit codes) and formats the
// figures of their markdown reports the same way in every table.
package benchreport

import (
	"fmt"
	"strings"
)

// Verdict renders whether a target was met.
func Verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// Thousands formats a number rounded to an integer with comma separators:
// 1234567.8 -> "1,234,568".
func Thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i, c := range []byte(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, c)
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// BestBy returns the run with the highest f, the first on ties (negate f
// for the lowest). rs must not be empty.
func BestBy[R any](rs []R, f func(R) float64) R {
	best := rs[0]
	for _, r := range rs[1:] {
		if f(r) > f(best) {
			best = r
		}
	}
	return best
}

// Every lists f of every run, in run order, separated by ", ".
func Every[R any](rs []R, f func(R) string) string {
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		parts = append(parts, f(r))
	}
	return strings.Join(parts, ", ")
}
