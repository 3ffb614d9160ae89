package transforms

import (
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"github.com/tributary-data/tributary/connect"
)

// Filter is Kafka's Filter: it drops every record. It is used with a
// predicate (transforms.<a>.predicate) to drop the matching records. It
// takes no options.
type Filter struct{}

// Configure implements Transformation.
func (t *Filter) Configure(cfg map[string]string) error {
	_, err := newOptions(cfg)
	return err
}

// Apply implements Transformation: it always returns nil (dropped).
func (t *Filter) Apply(*connect.Record) (*connect.Record, error) { return nil, nil }

// InsertHeader is Kafka's InsertHeader: it appends a header whose value is
// value.literal parsed as Kafka's Values.parseString does for scalars:
// "true"/"false" give a boolean, "null" a null value, an integral number
// the smallest of int8..int64 that holds it (else a Decimal), another
// number float32 when finite in float32 else float64; every other literal
// (including Kafka's array, map and date forms) is a string. Options:
// header, value.literal (both required).
type InsertHeader struct {
	header connect.Header
}

// Configure implements Transformation.
func (t *InsertHeader) Configure(cfg map[string]string) error {
	o, err := newOptions(cfg, "header", "value.literal")
	if err != nil {
		return err
	}
	name, err := o.required("header")
	if err != nil {
		return err
	}
	lit, err := o.required("value.literal")
	if err != nil {
		return err
	}
	s, v := parseLiteral(lit)
	t.header = connect.Header{Key: name, Schema: s, Value: v}
	return nil
}

// Apply implements Transformation.
func (t *InsertHeader) Apply(r *connect.Record) (*connect.Record, error) {
	c := *r
	c.Headers = make([]connect.Header, len(r.Headers), len(r.Headers)+1)
	copy(c.Headers, r.Headers)
	c.Headers = append(c.Headers, t.header)
	return &c, nil
}

// isNumberLiteral reports whether s has the form [+-]digits[.digits][e[+-]digits]
// (a leading digit required after the sign, as Kafka's parser requires).
func isNumberLiteral(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := func() int {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - start
	}
	if digits() == 0 {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		digits()
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// parseLiteral infers a scalar's schema and value as Kafka's
// Values.parseString does (see InsertHeader).
func parseLiteral(s string) (*connect.Schema, any) {
	switch s {
	case "true":
		return connect.BooleanSchema, true
	case "false":
		return connect.BooleanSchema, false
	case "null":
		return nil, nil
	}
	num := strings.TrimSpace(s) // Kafka trims a number token
	if !isNumberLiteral(num) {
		return connect.StringSchema, s
	}
	// BigDecimal's scale: fraction digits minus the exponent.
	mant, exp, _ := strings.Cut(strings.ToLower(num), "e")
	_, frac, _ := strings.Cut(mant, ".")
	e, err := strconv.Atoi(strings.TrimPrefix(exp, "+"))
	if exp != "" && (err != nil || e > 1000 || e < -1000) {
		return connect.StringSchema, s // absurd exponents stay text
	}
	scale := len(frac) - e
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return connect.StringSchema, s
	}
	abs := new(big.Rat).Abs(r)
	exact := abs.Cmp(new(big.Rat).SetFloat64(1e19)) <= 0 && (abs.Sign() == 0 || abs.Cmp(big.NewRat(1, 1)) >= 0)
	if exact && r.IsInt() && r.Num().IsInt64() {
		i := r.Num().Int64()
		switch {
		case i >= math.MinInt8 && i <= math.MaxInt8:
			return connect.Int8Schema, int8(i)
		case i >= math.MinInt16 && i <= math.MaxInt16:
			return connect.Int16Schema, int16(i)
		case i >= math.MinInt32 && i <= math.MaxInt32:
			return connect.Int32Schema, int32(i)
		}
		return connect.Int64Schema, i
	}
	if f, _ := r.Float32(); !math.IsInf(float64(f), 0) && scale != 0 {
		return connect.Float32Schema, f
	}
	if f, _ := r.Float64(); !math.IsInf(f, 0) && scale != 0 {
		return connect.Float64Schema, f
	}
	// A Decimal of the literal's scale: unscaled = value * 10^scale.
	pow := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs64(scale))), nil)
	u := new(big.Rat).Set(r)
	if scale >= 0 {
		u.Mul(u, new(big.Rat).SetInt(pow))
	} else {
		u.Quo(u, new(big.Rat).SetInt(pow))
	}
	if !u.IsInt() {
		return connect.StringSchema, s
	}
	return connect.DecimalSchema(int32(scale)), connect.Decimal{Unscaled: new(big.Int).Set(u.Num()), Scale: int32(scale)}
}

func abs64(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// DropHeaders is Kafka's DropHeaders: it removes every header whose key is
// listed. Option: headers (required, non-empty list).
type DropHeaders struct {
	names map[string]bool
}

// Configure implements Transformation.
func (t *DropHeaders) Configure(cfg map[string]string) error {
	o, err := newOptions(cfg, "headers")
	if err != nil {
		return err
	}
	l, err := o.nonEmptyList("headers")
	if err != nil {
		return err
	}
	t.names = make(map[string]bool, len(l))
	for _, n := range l {
		t.names[n] = true
	}
	return nil
}

// Apply implements Transformation.
func (t *DropHeaders) Apply(r *connect.Record) (*connect.Record, error) {
	c := *r
	c.Headers = make([]connect.Header, 0, len(r.Headers))
	for _, h := range r.Headers {
		if !t.names[h.Key] {
			c.Headers = append(c.Headers, h)
		}
	}
	return &c, nil
}

// TopicNameMatches is Kafka's TopicNameMatches predicate: true when the
// whole topic name matches pattern (required; Go RE2 syntax).
type TopicNameMatches struct {
	re *regexp.Regexp
}

// Configure implements Predicate.
func (p *TopicNameMatches) Configure(cfg map[string]string) error {
	o, err := newOptions(cfg, "pattern")
	if err != nil {
		return err
	}
	pattern, err := o.required("pattern")
	if err != nil {
		return err
	}
	if strings.TrimSpace(pattern) == "" {
		return configErr("pattern", "must be a non-empty regular expression")
	}
	p.re, err = compileFullMatch("pattern", pattern)
	return err
}

// Test implements Predicate.
func (p *TopicNameMatches) Test(r *connect.Record) bool { return p.re.MatchString(r.Topic) }

// HasHeaderKey is Kafka's HasHeaderKey predicate: true when the record has
// at least one header with key name (required, non-empty).
type HasHeaderKey struct {
	name string
}

// Configure implements Predicate.
func (p *HasHeaderKey) Configure(cfg map[string]string) error {
	o, err := newOptions(cfg, "name")
	if err != nil {
		return err
	}
	if p.name, err = o.required("name"); err != nil {
		return err
	}
	if p.name == "" {
		return configErr("name", "string must be non-empty")
	}
	return nil
}

// Test implements Predicate.
func (p *HasHeaderKey) Test(r *connect.Record) bool {
	for _, h := range r.Headers {
		if h.Key == p.name {
			return true
		}
	}
	return false
}

// RecordIsTombstone is Kafka's RecordIsTombstone predicate: true when the
// record's value is null. It takes no options.
type RecordIsTombstone struct{}

// Configure implements Predicate.
func (p *RecordIsTombstone) Configure(cfg map[string]string) error {
	_, err := newOptions(cfg)
	return err
}

// Test implements Predicate.
func (p *RecordIsTombstone) Test(r *connect.Record) bool { return r.Value == nil }
