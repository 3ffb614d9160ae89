package converter

// The JSON reader: a small tokenizer that decodes straight into Connect
// values, guided by the schema, without an intermediate tree. It accepts
// standard JSON (RFC 8259) as Jackson's default parser does: no comments,
// no NaN literals, no leading zeros, no unescaped control characters in
// strings, valid UTF-8 only; duplicate object keys: the last one wins.
// Nesting is limited to maxDepth levels (Jackson's default limit).

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tributary-data/tributary/connect"
)

const maxDepth = 1000

type decoder struct {
	data  []byte
	pos   int
	depth int
}

func (d *decoder) syntaxErr(msg string) error {
	return dataErrorf("invalid JSON at offset %d: %s", d.pos, msg)
}

func (d *decoder) skipWS() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// end checks that only whitespace is left.
func (d *decoder) end() error {
	d.skipWS()
	if d.pos != len(d.data) {
		return d.syntaxErr("unexpected data after the JSON value")
	}
	return nil
}

func (d *decoder) consume(c byte) bool {
	if d.pos < len(d.data) && d.data[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

func (d *decoder) literal(word string) error {
	if len(d.data)-d.pos < len(word) || string(d.data[d.pos:d.pos+len(word)]) != word {
		return d.syntaxErr("unrecognized token")
	}
	d.pos += len(word)
	return nil
}

func (d *decoder) enter() error {
	d.depth++
	if d.depth > maxDepth {
		return d.syntaxErr(fmt.Sprintf("nesting deeper than %d levels", maxDepth))
	}
	return nil
}

// readNumber reads a JSON number at pos and returns its text and whether
// it is integral (no fraction, no exponent).
func (d *decoder) readNumber() ([]byte, bool, error) {
	start := d.pos
	data := d.data
	if d.pos < len(data) && data[d.pos] == '-' {
		d.pos++
	}
	if d.pos >= len(data) {
		return nil, false, d.syntaxErr("unexpected end of input in a number")
	}
	switch c := data[d.pos]; {
	case c == '0':
		d.pos++
	case c >= '1' && c <= '9':
		for d.pos < len(data) && data[d.pos] >= '0' && data[d.pos] <= '9' {
			d.pos++
		}
	default:
		return nil, false, d.syntaxErr("invalid number")
	}
	integral := true
	if d.pos < len(data) && data[d.pos] == '.' {
		integral = false
		d.pos++
		n := d.pos
		for d.pos < len(data) && data[d.pos] >= '0' && data[d.pos] <= '9' {
			d.pos++
		}
		if d.pos == n {
			return nil, false, d.syntaxErr("invalid number: no digit after the decimal point")
		}
	}
	if d.pos < len(data) && (data[d.pos] == 'e' || data[d.pos] == 'E') {
		integral = false
		d.pos++
		if d.pos < len(data) && (data[d.pos] == '+' || data[d.pos] == '-') {
			d.pos++
		}
		n := d.pos
		for d.pos < len(data) && data[d.pos] >= '0' && data[d.pos] <= '9' {
			d.pos++
		}
		if d.pos == n {
			return nil, false, d.syntaxErr("invalid number: no digit in the exponent")
		}
	}
	if d.pos < len(data) {
		if c := data[d.pos]; c == '.' || c == '-' || c == '+' || (c >= '0' && c <= '9') {
			return nil, false, d.syntaxErr("invalid number")
		}
	}
	return data[start:d.pos], integral, nil
}

// readStringBytes reads a JSON string at pos (which holds '"') and returns
// its content: a slice of the input when it has no escapes, else a new
// slice.
func (d *decoder) readStringBytes() ([]byte, error) {
	d.pos++
	start := d.pos
	ascii := true
	data := d.data
	for d.pos < len(data) {
		c := data[d.pos]
		switch {
		case c == '"':
			s := data[start:d.pos]
			d.pos++
			if !ascii && !utf8.Valid(s) {
				return nil, d.syntaxErr("invalid UTF-8 in a string")
			}
			return s, nil
		case c == '\\':
			return d.readEscaped(start)
		case c < 0x20:
			return nil, d.syntaxErr("unescaped control character in a string")
		case c >= utf8.RuneSelf:
			ascii = false
		}
		d.pos++
	}
	return nil, d.syntaxErr("unterminated string")
}

func hexVal(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

func (d *decoder) readHex4() (rune, error) {
	if len(d.data)-d.pos < 4 {
		return 0, d.syntaxErr("truncated \\u escape")
	}
	var r rune
	for i := 0; i < 4; i++ {
		h := hexVal(d.data[d.pos+i])
		if h < 0 {
			return 0, d.syntaxErr("invalid \\u escape")
		}
		r = r<<4 | h
	}
	d.pos += 4
	return r, nil
}

func (d *decoder) readEscaped(start int) ([]byte, error) {
	buf := make([]byte, 0, d.pos-start+16)
	buf = append(buf, d.data[start:d.pos]...)
	data := d.data
	for d.pos < len(data) {
		c := data[d.pos]
		switch {
		case c == '"':
			d.pos++
			if !utf8.Valid(buf) {
				return nil, d.syntaxErr("invalid UTF-8 in a string")
			}
			return buf, nil
		case c < 0x20:
			return nil, d.syntaxErr("unescaped control character in a string")
		case c != '\\':
			buf = append(buf, c)
			d.pos++
			continue
		}
		d.pos++
		if d.pos >= len(data) {
			break
		}
		e := data[d.pos]
		d.pos++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, err := d.readHex4()
			if err != nil {
				return nil, err
			}
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if r < 0xDC00 && len(data)-d.pos >= 6 && data[d.pos] == '\\' && data[d.pos+1] == 'u' {
					save := d.pos
					d.pos += 2
					lo, err := d.readHex4()
					if err != nil {
						return nil, err
					}
					if r2 = utf16.DecodeRune(r, lo); r2 == utf8.RuneError {
						d.pos = save // not a pair: the second escape stands alone
					}
				}
				r = r2
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return nil, d.syntaxErr("invalid escape")
		}
	}
	return nil, d.syntaxErr("unterminated string")
}

// skipValue skips one JSON value (validating it).
func (d *decoder) skipValue() error {
	d.skipWS()
	if d.pos >= len(d.data) {
		return d.syntaxErr("unexpected end of input")
	}
	switch c := d.data[d.pos]; c {
	case '{':
		if err := d.enter(); err != nil {
			return err
		}
		d.pos++
		d.skipWS()
		if !d.consume('}') {
			for {
				d.skipWS()
				if d.pos >= len(d.data) || d.data[d.pos] != '"' {
					return d.syntaxErr("expected a field name")
				}
				if _, err := d.readStringBytes(); err != nil {
					return err
				}
				d.skipWS()
				if !d.consume(':') {
					return d.syntaxErr("expected ':'")
				}
				if err := d.skipValue(); err != nil {
					return err
				}
				d.skipWS()
				if d.consume(',') {
					continue
				}
				if d.consume('}') {
					break
				}
				return d.syntaxErr("expected ',' or '}'")
			}
		}
		d.depth--
		return nil
	case '[':
		if err := d.enter(); err != nil {
			return err
		}
		d.pos++
		d.skipWS()
		if !d.consume(']') {
			for {
				if err := d.skipValue(); err != nil {
					return err
				}
				d.skipWS()
				if d.consume(',') {
					continue
				}
				if d.consume(']') {
					break
				}
				return d.syntaxErr("expected ',' or ']'")
			}
		}
		d.depth--
		return nil
	case '"':
		_, err := d.readStringBytes()
		return err
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			_, _, err := d.readNumber()
			return err
		}
		return d.syntaxErr("unexpected character")
	}
}

func tokenKind(c byte) string {
	switch c {
	case '{':
		return "OBJECT"
	case '[':
		return "ARRAY"
	case '"':
		return "STRING"
	case 't', 'f':
		return "BOOLEAN"
	case 'n':
		return "NULL"
	}
	return "NUMBER"
}

func isNumberStart(c byte) bool { return c == '-' || (c >= '0' && c <= '9') }

// parseInt parses an integral JSON number literal; ok is false on overflow.
func parseInt(lit []byte) (int64, bool) {
	neg := lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	var u uint64
	for _, c := range lit {
		if u > (math.MaxUint64-9)/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

// nullValue is what a JSON null (or a missing struct field) becomes under s.
func nullValue(s *connect.Schema) (any, error) {
	switch {
	case s == nil:
		return nil, nil
	case s.Default != nil:
		return s.Default, nil
	case s.Optional:
		return nil, nil
	}
	return nil, dataErrorf("Invalid null value for required %s field", kafkaTypeName(s.Type))
}

func mismatch(s *connect.Schema, c byte) error {
	name := kafkaTypeName(s.Type)
	if s.Name != "" {
		name += " (" + s.Name + ")"
	}
	return dataErrorf("payload does not match the schema: %s schema, found a JSON %s", name, tokenKind(c))
}

// value decodes one JSON value under schema s (nil: schemaless).
func (d *decoder) value(s *connect.Schema) (any, error) {
	d.skipWS()
	if d.pos >= len(d.data) {
		return nil, d.syntaxErr("unexpected end of input")
	}
	c := d.data[d.pos]
	if c == 'n' {
		if err := d.literal("null"); err != nil {
			return nil, err
		}
		return nullValue(s)
	}
	if s == nil {
		return d.schemaless()
	}
	switch s.Name {
	case connect.DecimalName:
		return d.decimal(s, c)
	case connect.DateName, connect.TimeName, connect.TimestampName:
		if !isNumberStart(c) {
			return nil, mismatch(s, c)
		}
		lit, integral, err := d.readNumber()
		if err != nil {
			return nil, err
		}
		n, ok := parseInt(lit)
		if !integral || !ok || (s.Name != connect.TimestampName && (n < math.MinInt32 || n > math.MaxInt32)) {
			return nil, dataErrorf("Invalid type for %s, underlying representation should be integer but was %s", s.Name, lit)
		}
		switch s.Name {
		case connect.DateName:
			return time.UnixMilli(n * millisPerDay).UTC(), nil
		default:
			return time.UnixMilli(n).UTC(), nil
		}
	}
	switch s.Type {
	case connect.Boolean:
		switch c {
		case 't':
			return true, d.literal("true")
		case 'f':
			return false, d.literal("false")
		}
	case connect.Int8, connect.Int16, connect.Int32, connect.Int64:
		if !isNumberStart(c) {
			break
		}
		lit, integral, err := d.readNumber()
		if err != nil {
			return nil, err
		}
		n, ok := parseInt(lit)
		if !integral || !ok {
			return nil, dataErrorf("%s value %s is not an integer in range", kafkaTypeName(s.Type), lit)
		}
		switch s.Type {
		case connect.Int8:
			if n >= math.MinInt8 && n <= math.MaxInt8 {
				return int8(n), nil
			}
		case connect.Int16:
			if n >= math.MinInt16 && n <= math.MaxInt16 {
				return int16(n), nil
			}
		case connect.Int32:
			if n >= math.MinInt32 && n <= math.MaxInt32 {
				return int32(n), nil
			}
		default:
			return n, nil
		}
		return nil, dataErrorf("%s value %s is out of range", kafkaTypeName(s.Type), lit)
	case connect.Float32, connect.Float64:
		bits := 64
		if s.Type == connect.Float32 {
			bits = 32
		}
		var f float64
		switch {
		case isNumberStart(c):
			lit, _, err := d.readNumber()
			if err != nil {
				return nil, err
			}
			if f, err = strconv.ParseFloat(string(lit), bits); err != nil {
				f = math.Inf(1) // only a range error is possible on a valid literal
				if lit[0] == '-' {
					f = math.Inf(-1)
				}
			}
		case c == '"':
			raw, err := d.readStringBytes()
			if err != nil {
				return nil, err
			}
			switch string(raw) {
			case "NaN":
				f = math.NaN()
			case "Infinity":
				f = math.Inf(1)
			case "-Infinity":
				f = math.Inf(-1)
			default:
				return nil, dataErrorf("%s value %q is not a number", kafkaTypeName(s.Type), raw)
			}
		default:
			return nil, mismatch(s, c)
		}
		if bits == 32 {
			return float32(f), nil
		}
		return f, nil
	case connect.String:
		if c == '"' {
			raw, err := d.readStringBytes()
			if err != nil {
				return nil, err
			}
			return string(raw), nil
		}
	case connect.Bytes:
		if c == '"' {
			raw, err := d.readStringBytes()
			if err != nil {
				return nil, err
			}
			out := make([]byte, base64.StdEncoding.DecodedLen(len(raw)))
			n, err := base64.StdEncoding.Decode(out, raw)
			if err != nil {
				return nil, dataErrorf("Invalid bytes field: %v", err)
			}
			return out[:n], nil
		}
	case connect.Array:
		if c == '[' {
			return d.array(s)
		}
	case connect.Map:
		return d.mapValue(s, c)
	case connect.StructT:
		if c == '{' {
			return d.structValue(s)
		}
	default:
		return nil, dataErrorf("Unknown schema type: %s", s.Type)
	}
	return nil, mismatch(s, c)
}

func (d *decoder) decimal(s *connect.Schema, c byte) (any, error) {
	if isNumberStart(c) {
		lit, _, err := d.readNumber()
		if err != nil {
			return nil, err
		}
		return decimalFromLiteral(lit)
	}
	if c != '"' {
		return nil, dataErrorf("Invalid type for Decimal, underlying representation should be numeric or bytes but was %s", tokenKind(c))
	}
	scale, err := decimalScale(s)
	if err != nil {
		return nil, err
	}
	raw, err := d.readStringBytes()
	if err != nil {
		return nil, err
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(raw)))
	n, err := base64.StdEncoding.Decode(out, raw)
	if err != nil || n == 0 {
		return nil, dataErrorf("Invalid bytes for Decimal field")
	}
	return connect.Decimal{Unscaled: fromTwosComplement(out[:n]), Scale: scale}, nil
}

// decimalFromLiteral parses a JSON number as Java's new BigDecimal(String)
// does: the scale is the number of fraction digits minus the exponent.
func decimalFromLiteral(lit []byte) (connect.Decimal, error) {
	mant, exp := lit, int64(0)
	for i, c := range lit {
		if c == 'e' || c == 'E' {
			mant = lit[:i]
			e, err := strconv.ParseInt(string(lit[i+1:]), 10, 32)
			if err != nil {
				return connect.Decimal{}, dataErrorf("decimal exponent out of range in %s", lit)
			}
			exp = e
			break
		}
	}
	digits := make([]byte, 0, len(mant))
	frac := int64(0)
	seenPoint := false
	for _, c := range mant {
		switch {
		case c == '.':
			seenPoint = true
		case c == '-':
			digits = append(digits, c)
		default:
			digits = append(digits, c)
			if seenPoint {
				frac++
			}
		}
	}
	scale := frac - exp
	if scale < -maxDecimalScale || scale > maxDecimalScale {
		return connect.Decimal{}, dataErrorf("decimal %s: scale %d is beyond ±%d", lit, scale, maxDecimalScale)
	}
	u, ok := new(big.Int).SetString(string(digits), 10)
	if !ok {
		return connect.Decimal{}, dataErrorf("invalid decimal %s", lit)
	}
	return connect.Decimal{Unscaled: u, Scale: int32(scale)}, nil
}

func (d *decoder) array(s *connect.Schema) (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.pos++
	out := []any{}
	d.skipWS()
	if !d.consume(']') {
		for {
			v, err := d.value(s.ValueSchema)
			if err != nil {
				return nil, fmt.Errorf("array element %d: %w", len(out), err)
			}
			out = append(out, v)
			d.skipWS()
			if d.consume(',') {
				continue
			}
			if d.consume(']') {
				break
			}
			return nil, d.syntaxErr("expected ',' or ']'")
		}
	}
	d.depth--
	return out, nil
}

// objectFields iterates an object's fields, calling fn with each key
// (valid only during the call) and pos at the value; fn must consume it.
func (d *decoder) objectFields(fn func(key []byte) error) error {
	if err := d.enter(); err != nil {
		return err
	}
	d.pos++
	d.skipWS()
	if !d.consume('}') {
		for {
			d.skipWS()
			if d.pos >= len(d.data) || d.data[d.pos] != '"' {
				return d.syntaxErr("expected a field name")
			}
			key, err := d.readStringBytes()
			if err != nil {
				return err
			}
			d.skipWS()
			if !d.consume(':') {
				return d.syntaxErr("expected ':'")
			}
			if err := fn(key); err != nil {
				return err
			}
			d.skipWS()
			if d.consume(',') {
				continue
			}
			if d.consume('}') {
				break
			}
			return d.syntaxErr("expected ',' or '}'")
		}
	}
	d.depth--
	return nil
}

func (d *decoder) mapValue(s *connect.Schema, c byte) (any, error) {
	if s.KeySchema == nil {
		return nil, dataErrorf("map schema without a key schema")
	}
	out := make(map[any]any)
	if s.KeySchema.Type == connect.String {
		if c != '{' {
			return nil, dataErrorf("Maps with string fields should be encoded as JSON objects, but found %s", tokenKind(c))
		}
		err := d.objectFields(func(key []byte) error {
			v, err := d.value(s.ValueSchema)
			if err != nil {
				return fmt.Errorf("map value for key %q: %w", key, err)
			}
			out[string(key)] = v
			return nil
		})
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	switch s.KeySchema.Type {
	case connect.Bytes, connect.Array, connect.Map:
		if s.KeySchema.Name == "" {
			return nil, dataErrorf("maps with %s keys cannot be represented as a Go map", kafkaTypeName(s.KeySchema.Type))
		}
	}
	if c != '[' {
		return nil, dataErrorf("Maps with non-string fields should be encoded as JSON array of tuples, but found %s", tokenKind(c))
	}
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.pos++
	d.skipWS()
	if !d.consume(']') {
		for {
			d.skipWS()
			if d.pos >= len(d.data) || d.data[d.pos] != '[' {
				if d.pos < len(d.data) {
					return nil, dataErrorf("Found invalid map entry instead of array tuple: %s", tokenKind(d.data[d.pos]))
				}
				return nil, d.syntaxErr("unexpected end of input")
			}
			d.pos++
			k, err := d.value(s.KeySchema)
			if err != nil {
				return nil, fmt.Errorf("map key: %w", err)
			}
			d.skipWS()
			if !d.consume(',') {
				return nil, dataErrorf("Found invalid map entry, expected length 2")
			}
			v, err := d.value(s.ValueSchema)
			if err != nil {
				return nil, fmt.Errorf("map value for key %v: %w", k, err)
			}
			d.skipWS()
			if !d.consume(']') {
				return nil, dataErrorf("Found invalid map entry, expected length 2")
			}
			out[k] = v
			d.skipWS()
			if d.consume(',') {
				continue
			}
			if d.consume(']') {
				break
			}
			return nil, d.syntaxErr("expected ',' or ']'")
		}
	}
	d.depth--
	return out, nil
}

func (d *decoder) structValue(s *connect.Schema) (any, error) {
	st := connect.NewStruct(s)
	fields := s.Fields
	var seenSmall uint64
	var seenBig []bool
	if len(fields) > 64 {
		seenBig = make([]bool, len(fields))
	}
	seen := func(i int) bool {
		if seenBig != nil {
			return seenBig[i]
		}
		return seenSmall&(1<<uint(i)) != 0
	}
	next := 0
	err := d.objectFields(func(key []byte) error {
		idx := -1
		if next < len(fields) && fields[next].Name == string(key) {
			idx = next
		} else {
			for i := range fields {
				if fields[i].Name == string(key) {
					idx = i
					break
				}
			}
		}
		if idx < 0 {
			return d.skipValue() // Kafka ignores payload fields the schema does not have
		}
		f := fields[idx]
		var v any
		d.skipWS()
		if d.pos < len(d.data) && d.data[d.pos] == 'n' {
			// null: leave the slot empty, so that Get yields the default
			// (putting a struct default would fail the schema check).
			if err := d.literal("null"); err != nil {
				return err
			}
			if _, err := nullValue(f.Schema); err != nil {
				return fmt.Errorf("field %q: %w", f.Name, err)
			}
		} else {
			var err error
			if v, err = d.value(f.Schema); err != nil {
				return fmt.Errorf("field %q: %w", f.Name, err)
			}
		}
		if v != nil || seen(idx) {
			if _, err := st.Put(f.Name, v); err != nil {
				return fmt.Errorf("%w: field %q: %v", ErrData, f.Name, err)
			}
		}
		if seenBig != nil {
			seenBig[idx] = true
		} else {
			seenSmall |= 1 << uint(idx)
		}
		next = idx + 1
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, f := range fields {
		if seen(i) {
			continue
		}
		if _, err := nullValue(f.Schema); err != nil { // missing: as null
			return nil, fmt.Errorf("field %q: %w", f.Name, err)
		}
	}
	return st, nil
}

// schemaless decodes a value without a schema: objects as map[string]any,
// arrays as []any, integral numbers as int64 (float64 beyond its range),
// other numbers as float64.
func (d *decoder) schemaless() (any, error) {
	switch c := d.data[d.pos]; c {
	case '{':
		out := make(map[string]any)
		err := d.objectFields(func(key []byte) error {
			v, err := d.value(nil)
			if err != nil {
				return err
			}
			out[string(key)] = v
			return nil
		})
		if err != nil {
			return nil, err
		}
		return out, nil
	case '[':
		return d.array(&connect.Schema{Type: connect.Array})
	case '"':
		raw, err := d.readStringBytes()
		if err != nil {
			return nil, err
		}
		return string(raw), nil
	case 't':
		return true, d.literal("true")
	case 'f':
		return false, d.literal("false")
	default:
		if !isNumberStart(c) {
			return nil, d.syntaxErr("unexpected character")
		}
		lit, integral, err := d.readNumber()
		if err != nil {
			return nil, err
		}
		if integral {
			if n, ok := parseInt(lit); ok {
				return n, nil
			}
		}
		f, err := strconv.ParseFloat(string(lit), 64)
		if err != nil {
			f = math.Inf(1)
			if lit[0] == '-' {
				f = math.Inf(-1)
			}
		}
		return f, nil
	}
}

// spanString decodes a span holding a JSON string.
func spanString(span []byte) (string, bool) {
	if len(span) == 0 || span[0] != '"' {
		return "", false
	}
	d := decoder{data: span}
	raw, err := d.readStringBytes()
	if err != nil {
		return "", false
	}
	return string(raw), true
}

func isNullSpan(span []byte) bool { return string(span) == "null" }

// objectSpans returns an object's fields as raw value spans (last wins).
func objectSpans(span []byte) (map[string][]byte, bool, error) {
	d := decoder{data: span}
	if len(span) == 0 || span[0] != '{' {
		return nil, false, nil
	}
	out := make(map[string][]byte)
	err := d.objectFields(func(key []byte) error {
		d.skipWS()
		start := d.pos
		if err := d.skipValue(); err != nil {
			return err
		}
		out[string(key)] = span[start:d.pos]
		return nil
	})
	return out, true, err
}

// parseSchema builds a schema from its JSON form, as JsonConverter's
// asConnectSchema does. "null" gives a nil schema.
func parseSchema(span []byte) (*connect.Schema, error) {
	return parseSchemaDepth(span, 0)
}

func parseSchemaDepth(span []byte, depth int) (*connect.Schema, error) {
	if isNullSpan(span) {
		return nil, nil
	}
	if depth > maxDepth {
		return nil, dataErrorf("schema nesting deeper than %d levels", maxDepth)
	}
	obj, isObj, err := objectSpans(span)
	if err != nil {
		return nil, err
	}
	typeName, ok := spanString(obj["type"])
	if !isObj || !ok {
		return nil, dataErrorf("Schema must contain 'type' field")
	}
	s := &connect.Schema{}
	switch connect.Type(typeName) {
	case connect.Boolean, connect.Int8, connect.Int16, connect.Int32, connect.Int64,
		connect.Float32, connect.Float64, connect.Bytes, connect.String:
		s.Type = connect.Type(typeName)
	case connect.Array:
		items, ok := obj["items"]
		if !ok || isNullSpan(items) {
			return nil, dataErrorf("Array schema did not specify the element type")
		}
		s.Type = connect.Array
		if s.ValueSchema, err = parseSchemaDepth(items, depth+1); err != nil {
			return nil, err
		}
	case connect.Map:
		keys, ok := obj["keys"]
		if !ok || isNullSpan(keys) {
			return nil, dataErrorf("Map schema did not specify the key type")
		}
		values, ok := obj["values"]
		if !ok || isNullSpan(values) {
			return nil, dataErrorf("Map schema did not specify the value type")
		}
		s.Type = connect.Map
		if s.KeySchema, err = parseSchemaDepth(keys, depth+1); err != nil {
			return nil, err
		}
		if s.ValueSchema, err = parseSchemaDepth(values, depth+1); err != nil {
			return nil, err
		}
	case connect.StructT:
		s.Type = connect.StructT
		fields, ok := obj["fields"]
		if !ok || len(fields) == 0 || fields[0] != '[' {
			return nil, dataErrorf("Struct schema's \"fields\" argument is not an array.")
		}
		d := decoder{data: fields}
		d.pos++
		d.skipWS()
		if !d.consume(']') {
			for {
				d.skipWS()
				start := d.pos
				if err := d.skipValue(); err != nil {
					return nil, err
				}
				fspan := fields[start:d.pos]
				fobj, _, err := objectSpans(fspan)
				if err != nil {
					return nil, err
				}
				name, ok := spanString(fobj["field"])
				if !ok {
					return nil, dataErrorf("Struct schema's field name not specified properly")
				}
				if _, dup := s.Field(name); dup {
					return nil, dataErrorf("Cannot create field because of field name duplication %s", name)
				}
				fs, err := parseSchemaDepth(fspan, depth+1)
				if err != nil {
					return nil, fmt.Errorf("field %q: %w", name, err)
				}
				s.Fields = append(s.Fields, connect.Field{Name: name, Index: len(s.Fields), Schema: fs})
				d.skipWS()
				if d.consume(',') {
					continue
				}
				if d.consume(']') {
					break
				}
				return nil, d.syntaxErr("expected ',' or ']'")
			}
		}
	default:
		return nil, dataErrorf("Unknown schema type: %s", typeName)
	}
	s.Optional = string(obj["optional"]) == "true"
	if name, ok := spanString(obj["name"]); ok {
		s.Name = name
	}
	if v, ok := obj["version"]; ok && len(v) > 0 && isNumberStart(v[0]) {
		d := decoder{data: v}
		if lit, integral, err := d.readNumber(); err == nil && integral {
			if n, ok := parseInt(lit); ok {
				version := int32(n) // Jackson's intValue truncates the same way
				s.Version = &version
			}
		}
	}
	if doc, ok := spanString(obj["doc"]); ok {
		s.Doc = doc
	}
	if params, isObj, err := objectSpans(obj["parameters"]); err != nil {
		return nil, err
	} else if isObj {
		s.Parameters = make(map[string]string, len(params))
		for k, v := range params {
			sv, ok := spanString(v)
			if !ok {
				return nil, dataErrorf("Schema parameters must have string values.")
			}
			s.Parameters[k] = sv
		}
	}
	if def, ok := obj["default"]; ok {
		base := *s // the default's own schema (a struct default's) has no default
		d := decoder{data: def}
		v, err := d.value(&base)
		if err != nil {
			return nil, fmt.Errorf("default value: %w", err)
		}
		s.Default = v
	}
	return s, nil
}
