// Package benchreport formats the figures of the benchmark drivers'
// markdown reports the same way in every table.
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
