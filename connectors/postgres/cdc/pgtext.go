package cdc

// Parsers for PostgreSQL's text output of the types the connector maps to
// Debezium's logical types. Every connection the connector opens (snapshot
// readers and the replication stream alike) sets the session parameters in
// sessionParams, so the text forms parsed here are fixed:
//
//	DateStyle=ISO        date '2024-01-02', timestamp '2024-01-02 03:04:05.123456', ' BC' suffix
//	TimeZone=UTC         timestamptz '2024-01-02 03:04:05.123456+00'
//	IntervalStyle=iso_8601  interval 'P1Y2M3DT4H5M6.5S'
//	bytea_output=hex     bytea '\x0102'
//	extra_float_digits=3 shortest exact float text
//
// Snapshot rows are read in the text result format too, so a value read by
// the snapshot and the same value streamed by pgoutput go through the same
// parser and come out identical.

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/tributary-data/tributary/connect"
)

// sessionParams returns the session parameters set (as startup
// parameters) on every connection.
func sessionParams() map[string]string {
	return map[string]string{
		"DateStyle":          "ISO, YMD",
		"TimeZone":           "UTC",
		"IntervalStyle":      "iso_8601",
		"bytea_output":       "hex",
		"extra_float_digits": "3",
	}
}

var errSyntax = errors.New("unexpected text form")

func syntaxErr(what string, b []byte) error {
	s := string(b)
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return fmt.Errorf("%w of %s: %q", errSyntax, what, s)
}

// parseInt parses a base-10 integer of at most bits bits without
// allocating.
func parseInt(b []byte, bits int) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	neg := false
	i := 0
	switch b[0] {
	case '-':
		neg, i = true, 1
	case '+':
		i = 1
	}
	if i == len(b) || len(b)-i > 19 {
		return 0, false
	}
	var u uint64
	for ; i < len(b); i++ {
		c := b[i] - '0'
		if c > 9 {
			return 0, false
		}
		u = u*10 + uint64(c)
	}
	limit := uint64(1) << (bits - 1)
	if neg {
		if u > limit {
			return 0, false
		}
		return -int64(u), true
	}
	if u >= limit {
		return 0, false
	}
	return int64(u), true
}

// digits parses exactly the decimal digits of b.
func digits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian
// date with an astronomical year (1 BC is year 0), as PostgreSQL counts.
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// civilFromDays is the inverse of daysFromCivil.
func civilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era = (z - 146096) / 146097
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return
}

// cutBC strips a trailing " BC" and reports whether it was there.
func cutBC(b []byte) ([]byte, bool) {
	if n := len(b); n > 3 && string(b[n-3:]) == " BC" {
		return b[:n-3], true
	}
	return b, false
}

// parseDateParts parses "YYYY-MM-DD" (year of 4 or more digits) and
// returns the astronomical year.
func parseDateParts(b []byte, bc bool) (y, m, d int64, ok bool) {
	i := bytes.IndexByte(b, '-')
	if i < 4 || len(b) != i+6 || b[i+3] != '-' {
		return 0, 0, 0, false
	}
	y, ok1 := digits(b[:i])
	m, ok2 := digits(b[i+1 : i+3])
	d, ok3 := digits(b[i+4:])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > 31 {
		return 0, 0, 0, false
	}
	if bc {
		y = 1 - y
	}
	return y, m, d, true
}

// Infinite dates and timestamps have no epoch count: they map to the
// extremes of the target type (documented in the package doc).
const (
	infDays   = math.MaxInt32
	infMicros = math.MaxInt64
)

// parseDate parses a date into days since the epoch (io.debezium.time.Date).
func parseDate(b []byte) (int32, error) {
	switch string(b) {
	case "infinity":
		return infDays, nil
	case "-infinity":
		return -infDays, nil
	}
	db, bc := cutBC(b)
	y, m, d, ok := parseDateParts(db, bc)
	if !ok {
		return 0, syntaxErr("date", b)
	}
	days := daysFromCivil(y, m, d)
	if days > math.MaxInt32 || days < math.MinInt32 {
		return 0, syntaxErr("date", b)
	}
	return int32(days), nil
}

// parseClock parses "HH:MM:SS[.ffffff]" into microseconds since midnight
// (24:00:00 is allowed) and returns the rest of b after it.
func parseClock(b []byte) (int64, []byte, bool) {
	if len(b) < 8 || b[2] != ':' || b[5] != ':' {
		return 0, nil, false
	}
	h, ok1 := digits(b[0:2])
	mi, ok2 := digits(b[3:5])
	s, ok3 := digits(b[6:8])
	if !ok1 || !ok2 || !ok3 || h > 24 || mi > 59 || s > 60 {
		return 0, nil, false
	}
	us := ((h*60+mi)*60 + s) * 1_000_000
	rest := b[8:]
	if len(rest) > 0 && rest[0] == '.' {
		j := 1
		frac := int64(0)
		n := 0
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			if n < 6 {
				frac = frac*10 + int64(rest[j]-'0')
				n++
			}
			j++
		}
		if j == 1 {
			return 0, nil, false
		}
		for ; n < 6; n++ {
			frac *= 10
		}
		us += frac
		rest = rest[j:]
	}
	return us, rest, true
}

// parseOffset parses a UTC offset "+HH[:MM[:SS]]" into seconds east.
func parseOffset(b []byte) (int64, bool) {
	if len(b) < 3 || (b[0] != '+' && b[0] != '-') {
		return 0, false
	}
	h, ok := digits(b[1:3])
	if !ok {
		return 0, false
	}
	secs := h * 3600
	rest := b[3:]
	for mult := int64(60); len(rest) > 0; mult /= 60 {
		if len(rest) < 3 || rest[0] != ':' || mult == 0 {
			return 0, false
		}
		v, ok := digits(rest[1:3])
		if !ok {
			return 0, false
		}
		secs += v * mult
		rest = rest[3:]
	}
	if b[0] == '-' {
		secs = -secs
	}
	return secs, true
}

// parseTime parses a time into microseconds since midnight
// (io.debezium.time.MicroTime).
func parseTime(b []byte) (int64, error) {
	us, rest, ok := parseClock(b)
	if !ok || len(rest) != 0 {
		return 0, syntaxErr("time", b)
	}
	return us, nil
}

// splitTimestamp splits "<date> <clock>[offset][ BC]".
func parseTimestampParts(b []byte, withZone bool) (days, us, offset int64, ok bool) {
	tb, bc := cutBC(b)
	sp := bytes.IndexByte(tb, ' ')
	if sp < 0 {
		return 0, 0, 0, false
	}
	y, m, d, ok := parseDateParts(tb[:sp], bc)
	if !ok {
		return 0, 0, 0, false
	}
	us, rest, ok := parseClock(tb[sp+1:])
	if !ok {
		return 0, 0, 0, false
	}
	if withZone {
		if offset, ok = parseOffset(rest); !ok {
			return 0, 0, 0, false
		}
	} else if len(rest) != 0 {
		return 0, 0, 0, false
	}
	return daysFromCivil(y, m, d), us, offset, true
}

// parseTimestamp parses a timestamp without time zone into microseconds
// since the epoch (io.debezium.time.MicroTimestamp).
func parseTimestamp(b []byte) (int64, error) {
	switch string(b) {
	case "infinity":
		return infMicros, nil
	case "-infinity":
		return -infMicros, nil
	}
	days, us, _, ok := parseTimestampParts(b, false)
	if !ok {
		return 0, syntaxErr("timestamp", b)
	}
	return days*86_400_000_000 + us, nil
}

// appendFrac appends ".ffffff" with trailing zeros trimmed (nothing for
// a zero fraction), as Java's ISO formatters print fractions.
func appendFrac(dst []byte, us int64) []byte {
	if us == 0 {
		return dst
	}
	var buf [7]byte
	buf[0] = '.'
	for i := 6; i >= 1; i-- {
		buf[i] = byte('0' + us%10)
		us /= 10
	}
	n := 7
	for n > 2 && buf[n-1] == '0' {
		n--
	}
	return append(dst, buf[:n]...)
}

func append2(dst []byte, v int64) []byte {
	return append(dst, byte('0'+v/10), byte('0'+v%10))
}

// appendISOYear appends a year as java.time prints it: 4 digits, a sign
// for negative years and a '+' for years beyond 9999.
func appendISOYear(dst []byte, y int64) []byte {
	if y < 0 {
		dst = append(dst, '-')
		y = -y
	} else if y > 9999 {
		dst = append(dst, '+')
	}
	s := strconv.FormatInt(y, 10)
	for i := len(s); i < 4; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// parseTimestamptz renders a timestamp with time zone as Debezium's
// io.debezium.time.ZonedTimestamp: ISO-8601 in UTC, e.g.
// "2024-01-02T03:04:05.123456Z" (fraction digits as needed, none when zero).
func parseTimestamptz(b []byte) (string, error) {
	switch string(b) {
	case "infinity", "-infinity":
		return string(b), nil
	}
	days, us, off, ok := parseTimestampParts(b, true)
	if !ok {
		return "", syntaxErr("timestamptz", b)
	}
	t := days*86_400_000_000 + us - off*1_000_000
	days = floorDiv(t, 86_400_000_000)
	us = t - days*86_400_000_000
	y, m, d := civilFromDays(days)
	out := make([]byte, 0, 32)
	out = appendISOYear(out, y)
	out = append(out, '-')
	out = append2(out, m)
	out = append(out, '-')
	out = append2(out, d)
	out = append(out, 'T')
	out = appendClock(out, us)
	return string(append(out, 'Z')), nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func appendClock(dst []byte, us int64) []byte {
	secs := us / 1_000_000
	dst = append2(dst, secs/3600)
	dst = append(dst, ':')
	dst = append2(dst, secs/60%60)
	dst = append(dst, ':')
	dst = append2(dst, secs%60)
	return appendFrac(dst, us%1_000_000)
}

// parseTimetz renders a time with time zone as Debezium's
// io.debezium.time.ZonedTime: the time in UTC, e.g. "01:04:05.5Z".
func parseTimetz(b []byte) (string, error) {
	us, rest, ok := parseClock(b)
	if !ok {
		return "", syntaxErr("timetz", b)
	}
	off, ok := parseOffset(rest)
	if !ok {
		return "", syntaxErr("timetz", b)
	}
	const day = 86_400_000_000
	us -= off * 1_000_000
	us = ((us % day) + day) % day
	return string(append(appendClock(make([]byte, 0, 24), us), 'Z')), nil
}

// microsPerMonth is Debezium's average month (365.25/12 days) in
// microseconds: io.debezium.time.MicroDuration counts months so.
const microsPerMonth = 2_629_800_000_000

// parseInterval parses an ISO-8601 interval (IntervalStyle=iso_8601) into
// microseconds (io.debezium.time.MicroDuration: a year is 12 months, a
// month 30.4375 days, a day 24 hours).
func parseInterval(b []byte) (int64, error) {
	if len(b) < 2 || b[0] != 'P' {
		return 0, syntaxErr("interval", b)
	}
	var total int64
	timePart := false
	i := 1
	for i < len(b) {
		if b[i] == 'T' {
			timePart = true
			i++
			continue
		}
		j := i
		if j < len(b) && (b[j] == '-' || b[j] == '+') {
			j++
		}
		for j < len(b) && ((b[j] >= '0' && b[j] <= '9') || b[j] == '.') {
			j++
		}
		if j == i || j >= len(b) {
			return 0, syntaxErr("interval", b)
		}
		num := b[i:j]
		unit := b[j]
		i = j + 1
		if unit == 'S' && timePart {
			us, err := parseSeconds(num)
			if err != nil {
				return 0, syntaxErr("interval", b)
			}
			total += us
			continue
		}
		v, ok := parseInt(num, 64)
		if !ok {
			return 0, syntaxErr("interval", b)
		}
		switch {
		case !timePart && unit == 'Y':
			total += v * 12 * microsPerMonth
		case !timePart && unit == 'M':
			total += v * microsPerMonth
		case !timePart && unit == 'W':
			total += v * 7 * 86_400_000_000
		case !timePart && unit == 'D':
			total += v * 86_400_000_000
		case timePart && unit == 'H':
			total += v * 3_600_000_000
		case timePart && unit == 'M':
			total += v * 60_000_000
		default:
			return 0, syntaxErr("interval", b)
		}
	}
	return total, nil
}

// parseSeconds parses "[-]S[.ffffff]" into microseconds.
func parseSeconds(b []byte) (int64, error) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	ip, fp, _ := strings.Cut(string(b), ".")
	s, ok := digits([]byte(ip))
	if !ok {
		return 0, errSyntax
	}
	var frac int64
	n := 0
	for k := 0; k < len(fp); k++ {
		c := fp[k]
		if c < '0' || c > '9' {
			return 0, errSyntax
		}
		if n < 6 {
			frac = frac*10 + int64(c-'0')
			n++
		}
	}
	for ; n < 6; n++ {
		frac *= 10
	}
	us := s*1_000_000 + frac
	if neg {
		us = -us
	}
	return us, nil
}

// parseBytea decodes bytea's hex output ("\x0102").
func parseBytea(b []byte) ([]byte, error) {
	if len(b) < 2 || b[0] != '\\' || b[1] != 'x' {
		return nil, syntaxErr("bytea (bytea_output must be hex)", b)
	}
	out := make([]byte, hex.DecodedLen(len(b)-2))
	if _, err := hex.Decode(out, b[2:]); err != nil {
		return nil, syntaxErr("bytea", b)
	}
	return out, nil
}

// parseBool parses "t" and "f".
func parseBool(b []byte) (bool, error) {
	if len(b) == 1 {
		switch b[0] {
		case 't':
			return true, nil
		case 'f':
			return false, nil
		}
	}
	return false, syntaxErr("boolean", b)
}

// errSpecialNumeric is a NaN or infinite numeric, which a Decimal cannot
// hold.
var errSpecialNumeric = errors.New("numeric NaN or Infinity cannot be represented as a Decimal (decimal.handling.mode=precise)")

// parseNumeric parses numeric text into a Decimal with its printed scale.
func parseNumeric(b []byte) (connect.Decimal, error) {
	switch string(b) {
	case "NaN", "Infinity", "-Infinity":
		return connect.Decimal{}, errSpecialNumeric
	}
	// Fast path: up to 18 digits fit an int64.
	if len(b) <= 19 {
		neg := false
		s := b
		if len(s) > 0 && s[0] == '-' {
			neg, s = true, s[1:]
		}
		var u int64
		scale := int32(-1)
		okFast := len(s) > 0
		for i, c := range s {
			if c == '.' && scale < 0 {
				scale = int32(len(s) - i - 1)
				continue
			}
			if c < '0' || c > '9' {
				okFast = false
				break
			}
			u = u*10 + int64(c-'0')
		}
		if okFast {
			if scale < 0 {
				scale = 0
			}
			if neg {
				u = -u
			}
			return connect.Decimal{Unscaled: big.NewInt(u), Scale: scale}, nil
		}
	}
	d, err := connect.ParseDecimal(string(b))
	if err != nil {
		return connect.Decimal{}, syntaxErr("numeric", b)
	}
	return d, nil
}

// rescale returns d with the given scale, exactly, or an error when digits
// would be lost.
func rescale(d connect.Decimal, scale int32) (connect.Decimal, error) {
	if d.Scale == scale {
		return d, nil
	}
	diff := int64(scale) - int64(d.Scale)
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(abs64(diff)), nil)
	u := new(big.Int)
	if diff > 0 {
		u.Mul(d.Unscaled, p)
	} else {
		var r big.Int
		u.QuoRem(d.Unscaled, p, &r)
		if r.Sign() != 0 {
			return connect.Decimal{}, fmt.Errorf("numeric %s does not fit scale %d", d, scale)
		}
	}
	return connect.Decimal{Unscaled: u, Scale: scale}, nil
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// twosComplement returns x as Java's BigInteger.toByteArray does: the
// minimal big-endian two's-complement bytes (the encoding of Kafka
// Connect's Decimal and Debezium's VariableScaleDecimal value).
func twosComplement(x *big.Int) []byte {
	var bitLen int
	if x.Sign() >= 0 {
		bitLen = x.BitLen()
	} else {
		bitLen = new(big.Int).Not(x).BitLen()
	}
	n := bitLen/8 + 1
	out := make([]byte, n)
	if x.Sign() >= 0 {
		x.FillBytes(out)
		return out
	}
	mod := new(big.Int).Lsh(big.NewInt(1), uint(8*n))
	mod.Add(mod, x)
	mod.FillBytes(out)
	return out
}

// errMultiDim is a multi-dimensional array value.
var errMultiDim = errors.New("multi-dimensional arrays are not supported")

// parseArray splits a one-dimensional array literal ("{a,\"b c\",NULL}",
// optionally prefixed by dimension bounds "[0:2]=") into its elements; a
// NULL element is nil. elem converts each element.
func parseArray(b []byte, delim byte, elem func([]byte) (any, error)) ([]any, error) {
	if len(b) > 0 && b[0] == '[' {
		eq := bytes.IndexByte(b, '=')
		if eq < 0 {
			return nil, syntaxErr("array", b)
		}
		if bytes.Count(b[:eq], []byte("[")) > 1 {
			return nil, errMultiDim
		}
		b = b[eq+1:]
	}
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return nil, syntaxErr("array", b)
	}
	body := b[1 : len(b)-1]
	if len(body) == 0 {
		return []any{}, nil
	}
	if body[0] == '{' {
		return nil, errMultiDim
	}
	out := make([]any, 0, 8)
	var scratch []byte
	i := 0
	for {
		var v any
		if i < len(body) && body[i] == '"' {
			scratch = scratch[:0]
			i++
			for i < len(body) && body[i] != '"' {
				if body[i] == '\\' && i+1 < len(body) {
					i++
				}
				scratch = append(scratch, body[i])
				i++
			}
			if i >= len(body) {
				return nil, syntaxErr("array", b)
			}
			i++ // closing quote
			var err error
			if v, err = elem(scratch); err != nil {
				return nil, err
			}
		} else {
			j := i
			for j < len(body) && body[j] != delim {
				j++
			}
			tok := body[i:j]
			i = j
			if string(tok) != "NULL" {
				var err error
				if v, err = elem(tok); err != nil {
					return nil, err
				}
			}
		}
		out = append(out, v)
		if i >= len(body) {
			return out, nil
		}
		if body[i] != delim {
			return nil, syntaxErr("array", b)
		}
		i++
	}
}
