package transforms

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// dateFormat is a compiled subset of java.text.SimpleDateFormat, always in
// UTC and the English locale, as TimestampRouter and TimestampConverter use
// it. Supported letters:
//
//	y  year (yy: two digits)     M  month (MMM "Jan", MMMM "January")
//	d  day of month              E  day name (EEE "Mon", EEEE "Monday")
//	H  hour 0-23                 h  hour 1-12      a  AM/PM
//	m  minute                    s  second         S  millisecond
//	Z  zone "+0000"              X  zone "Z" (ISO 8601)
//	z  zone name "UTC"
//
// plus quoted literals ('T'; two single quotes for a quote) and any
// non-letter character.
// Other letters are rejected when the pattern is compiled.
type dateFormat struct {
	pattern string
	tokens  []dateToken
}

// dateToken is one element of a pattern: a field letter with its repeat
// count, or a literal (letter 0).
type dateToken struct {
	letter  byte
	count   int
	literal string
}

func (t dateToken) numeric() bool {
	switch t.letter {
	case 'y', 'd', 'H', 'h', 'm', 's', 'S':
		return true
	case 'M':
		return t.count <= 2
	}
	return false
}

// compileDateFormat parses a SimpleDateFormat pattern; errors are
// *ConfigError naming key.
func compileDateFormat(key, p string) (*dateFormat, error) {
	var out []dateToken
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == '\'':
			if i+1 < len(p) && p[i+1] == '\'' {
				out = append(out, dateToken{literal: "'"})
				i += 2
				continue
			}
			var lit strings.Builder
			j := i + 1
			for ; j < len(p); j++ {
				if p[j] == '\'' {
					if j+1 < len(p) && p[j+1] == '\'' {
						lit.WriteByte('\'')
						j++
						continue
					}
					break
				}
				lit.WriteByte(p[j])
			}
			if j >= len(p) {
				return nil, configErr(key, "unterminated quote in %q", p)
			}
			out = append(out, dateToken{literal: lit.String()})
			i = j + 1
		case (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
			j := i
			for j < len(p) && p[j] == c {
				j++
			}
			if !strings.ContainsRune("yMdEHhamsSZXz", rune(c)) {
				return nil, configErr(key, "pattern %q: letter %q is not supported (supported: y M d E H h a m s S Z X z and quoted literals)", p, string(c))
			}
			out = append(out, dateToken{letter: c, count: j - i})
			i = j
		default:
			out = append(out, dateToken{literal: string(c)})
			i++
		}
	}
	return &dateFormat{pattern: p, tokens: out}, nil
}

func pad(n, width int) string {
	s := strconv.Itoa(n)
	for len(s) < width {
		s = "0" + s
	}
	return s
}

// format renders t (in UTC).
func (f *dateFormat) format(t time.Time) string {
	t = t.UTC()
	var b strings.Builder
	for _, tk := range f.tokens {
		switch tk.letter {
		case 0:
			b.WriteString(tk.literal)
		case 'y':
			if tk.count == 2 {
				b.WriteString(pad(t.Year()%100, 2))
			} else {
				b.WriteString(pad(t.Year(), tk.count))
			}
		case 'M':
			switch {
			case tk.count >= 4:
				b.WriteString(t.Month().String())
			case tk.count == 3:
				b.WriteString(t.Month().String()[:3])
			default:
				b.WriteString(pad(int(t.Month()), tk.count))
			}
		case 'd':
			b.WriteString(pad(t.Day(), tk.count))
		case 'E':
			if tk.count >= 4 {
				b.WriteString(t.Weekday().String())
			} else {
				b.WriteString(t.Weekday().String()[:3])
			}
		case 'H':
			b.WriteString(pad(t.Hour(), tk.count))
		case 'h':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			b.WriteString(pad(h, tk.count))
		case 'a':
			if t.Hour() < 12 {
				b.WriteString("AM")
			} else {
				b.WriteString("PM")
			}
		case 'm':
			b.WriteString(pad(t.Minute(), tk.count))
		case 's':
			b.WriteString(pad(t.Second(), tk.count))
		case 'S':
			b.WriteString(pad(t.Nanosecond()/int(time.Millisecond), tk.count))
		case 'Z':
			b.WriteString("+0000")
		case 'X':
			b.WriteString("Z")
		case 'z':
			b.WriteString("UTC")
		}
	}
	return b.String()
}

// parse reads a time as SimpleDateFormat.parse does (leniently: out of
// range fields roll over, trailing text is ignored). A number directly
// followed by another numeric field takes exactly its pattern width.
func (f *dateFormat) parse(s string) (time.Time, error) {
	fail := func() (time.Time, error) {
		return time.Time{}, fmt.Errorf("value (%s) does not match pattern (%s)", s, f.pattern)
	}
	year, month, day, hour, minute, sec, ms := 1970, 1, 1, 0, 0, 0, 0
	pm, hour12 := -1, false
	offset := 0 // seconds east of UTC
	pos := 0
	for i, tk := range f.tokens {
		if tk.letter == 0 {
			if !strings.HasPrefix(s[pos:], tk.literal) {
				return fail()
			}
			pos += len(tk.literal)
			continue
		}
		if tk.numeric() {
			end := pos
			if pos < len(s) && (s[pos] == '-' || s[pos] == '+') && tk.letter == 'y' {
				end++
			}
			limit := len(s)
			if i+1 < len(f.tokens) && f.tokens[i+1].numeric() && pos+tk.count <= len(s) {
				limit = pos + tk.count
			}
			for end < limit && s[end] >= '0' && s[end] <= '9' {
				end++
			}
			n, err := strconv.Atoi(s[pos:end])
			if err != nil {
				return fail()
			}
			switch tk.letter {
			case 'y':
				if tk.count <= 2 && end-pos == 2 {
					// Two-digit years fall within 80 years before and 20 after now.
					start := time.Now().UTC().Year() - 80
					y := start/100*100 + n
					if y < start {
						y += 100
					}
					n = y
				}
				year = n
			case 'M':
				month = n
			case 'd':
				day = n
			case 'H':
				hour = n
			case 'h':
				hour, hour12 = n%12, true
			case 'm':
				minute = n
			case 's':
				sec = n
			case 'S':
				ms = n
			}
			pos = end
			continue
		}
		rest := s[pos:]
		switch tk.letter {
		case 'M':
			found := false
			for m := time.January; m <= time.December; m++ {
				for _, name := range []string{m.String(), m.String()[:3]} {
					if len(rest) >= len(name) && strings.EqualFold(rest[:len(name)], name) {
						month, pos, found = int(m), pos+len(name), true
						break
					}
				}
				if found {
					break
				}
			}
			if !found {
				return fail()
			}
		case 'E':
			found := false
			for d := time.Sunday; d <= time.Saturday && !found; d++ {
				for _, name := range []string{d.String(), d.String()[:3]} {
					if len(rest) >= len(name) && strings.EqualFold(rest[:len(name)], name) {
						pos, found = pos+len(name), true
						break
					}
				}
			}
			if !found {
				return fail()
			}
		case 'a':
			switch {
			case len(rest) >= 2 && strings.EqualFold(rest[:2], "AM"):
				pm = 0
			case len(rest) >= 2 && strings.EqualFold(rest[:2], "PM"):
				pm = 1
			default:
				return fail()
			}
			pos += 2
		case 'Z', 'X', 'z':
			n, off, ok := parseZone(rest, tk.letter == 'X')
			if !ok {
				return fail()
			}
			offset, pos = off, pos+n
		}
	}
	if pm == 1 && (hour12 || hour < 12) {
		hour += 12
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	t = t.Add(time.Duration(ms)*time.Millisecond - time.Duration(offset)*time.Second)
	return t, nil
}

// parseZone reads "Z" (ISO only), "UTC"/"GMT" (RFC only) or +hh, +hhmm,
// +hh:mm; it returns the bytes read and the offset in seconds.
func parseZone(s string, iso bool) (int, int, bool) {
	if iso && strings.HasPrefix(s, "Z") {
		return 1, 0, true
	}
	if !iso && (strings.HasPrefix(s, "UTC") || strings.HasPrefix(s, "GMT")) {
		return 3, 0, true
	}
	if len(s) < 3 || (s[0] != '+' && s[0] != '-') {
		return 0, 0, false
	}
	digits := func(t string) (int, bool) {
		if len(t) != 2 || t[0] < '0' || t[0] > '9' || t[1] < '0' || t[1] > '9' {
			return 0, false
		}
		return int(t[0]-'0')*10 + int(t[1]-'0'), true
	}
	h, ok := digits(s[1:3])
	if !ok {
		return 0, 0, false
	}
	n, m := 3, 0
	switch {
	case len(s) >= 6 && s[3] == ':':
		if m, ok = digits(s[4:6]); ok {
			n = 6
		}
	case len(s) >= 5:
		if m, ok = digits(s[3:5]); ok {
			n = 5
		}
	}
	if !iso && n == 3 {
		return 0, 0, false // RFC 822 needs hhmm
	}
	off := h*3600 + m*60
	if s[0] == '-' {
		off = -off
	}
	return n, off, true
}
