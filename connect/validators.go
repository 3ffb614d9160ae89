package connect

// Validators for ConfigKey.Validator, modelled on Kafka's ConfigDef.Range,
// ValidString, CaseInsensitiveValidString, NonEmptyString, ValidList and
// CompositeValidator. Their errors are *ConfigValueError, whose text reads
// as Kafka's ConfigException: "Invalid value 0 for configuration tasks.max:
// Value must be at least 1". Their String is what Kafka's toString prints in
// the "Valid Values" column of config docs ("[1,...]", "[a, b]").

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
)

// Number is the set of Go types Range and AtLeast take as bounds.
type Number interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~float32 | ~float64
}

// num is a number that compares exactly when both sides are integers.
type num struct {
	i       int64
	f       float64
	isFloat bool
}

func toNum(v any) (num, bool) {
	switch x := v.(type) {
	case int:
		return num{i: int64(x), f: float64(x)}, true
	case int8:
		return num{i: int64(x), f: float64(x)}, true
	case int16:
		return num{i: int64(x), f: float64(x)}, true
	case int32:
		return num{i: int64(x), f: float64(x)}, true
	case int64:
		return num{i: x, f: float64(x)}, true
	case float32:
		return num{f: float64(x), isFloat: true}, true
	case float64:
		return num{f: x, isFloat: true}, true
	}
	return num{}, false
}

func (a num) less(b num) bool {
	if !a.isFloat && !b.isFloat {
		return a.i < b.i
	}
	return a.f < b.f
}

func (a num) String() string {
	if a.isFloat {
		return formatJavaDouble(a.f)
	}
	return strconv.FormatInt(a.i, 10)
}

func boundOf[T Number](v T) num {
	half := 0.5
	if float64(T(half)) != 0 { // T is a float type
		return num{f: float64(v), isFloat: true}
	}
	return num{i: int64(v), f: float64(v)}
}

type rangeValidator struct {
	min, max *num
}

// Range accepts numbers (INT, SHORT, LONG, DOUBLE values) in [min, max].
func Range[T Number](min, max T) Validator {
	lo, hi := boundOf(min), boundOf(max)
	return rangeValidator{min: &lo, max: &hi}
}

// AtLeast accepts numbers not below min.
func AtLeast[T Number](min T) Validator {
	lo := boundOf(min)
	return rangeValidator{min: &lo}
}

func (r rangeValidator) Validate(name string, v any) error {
	if v == nil {
		return &ConfigValueError{Name: name, Value: v, Reason: "Value must be non-null"}
	}
	n, ok := toNum(v)
	if !ok {
		return &ConfigValueError{Name: name, Value: v, Reason: "Value must be a number"}
	}
	if r.min != nil && n.less(*r.min) {
		return &ConfigValueError{Name: name, Value: v, Reason: "Value must be at least " + r.min.String()}
	}
	if r.max != nil && r.max.less(n) {
		return &ConfigValueError{Name: name, Value: v, Reason: "Value must be no more than " + r.max.String()}
	}
	return nil
}

func (r rangeValidator) String() string {
	switch {
	case r.min == nil:
		return "[...," + r.max.String() + "]"
	case r.max == nil:
		return "[" + r.min.String() + ",...]"
	}
	return "[" + r.min.String() + ",...," + r.max.String() + "]"
}

// stringValue returns v as a string (a Password's secret for PASSWORD keys).
func stringValue(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case Password:
		return x.Value(), true
	}
	return "", false
}

type oneOf struct {
	values     []string
	ignoreCase bool
}

// OneOf accepts a string equal to one of values (case-sensitive), as Kafka's
// ValidString. Use ListOf(OneOf(...)) for each element of a LIST.
func OneOf(values ...string) Validator {
	return oneOf{values: append([]string(nil), values...)}
}

// OneOfIgnoreCase accepts a string equal to one of values in any case, as
// Kafka's CaseInsensitiveValidString (whose messages list the values in
// upper case).
func OneOfIgnoreCase(values ...string) Validator {
	up := make([]string, len(values))
	for i, v := range values {
		up[i] = strings.ToUpper(v)
	}
	return oneOf{values: up, ignoreCase: true}
}

func (o oneOf) Validate(name string, v any) error {
	s, ok := stringValue(v)
	if ok {
		for _, want := range o.values {
			if s == want || (o.ignoreCase && strings.EqualFold(s, want)) {
				return nil
			}
		}
	}
	reason := "String must be one of: "
	if o.ignoreCase {
		reason = "String must be one of (case insensitive): "
	}
	return &ConfigValueError{Name: name, Value: v, Reason: reason + strings.Join(o.values, ", ")}
}

func (o oneOf) String() string {
	s := "[" + strings.Join(o.values, ", ") + "]"
	if o.ignoreCase {
		return "(case insensitive) " + s
	}
	return s
}

type nonEmptyString struct{}

// NonEmptyString accepts any string but "", as Kafka's NonEmptyString.
func NonEmptyString() Validator { return nonEmptyString{} }

func (nonEmptyString) Validate(name string, v any) error {
	if s, ok := stringValue(v); !ok || s == "" {
		return &ConfigValueError{Name: name, Value: v, Reason: "String must be non-empty"}
	}
	return nil
}

func (nonEmptyString) String() string { return "non-empty string" }

type regexValidator struct {
	pattern string
	re      *regexp.Regexp
}

// Regex accepts a string that pattern (RE2 syntax) matches as a whole, as
// Java's String.matches does. It panics when pattern does not compile.
func Regex(pattern string) Validator {
	return regexValidator{pattern: pattern, re: regexp.MustCompile(`^(?:` + pattern + `)$`)}
}

func (r regexValidator) Validate(name string, v any) error {
	if s, ok := stringValue(v); !ok || !r.re.MatchString(s) {
		return &ConfigValueError{Name: name, Value: v, Reason: "String must match the regular expression " + r.pattern}
	}
	return nil
}

func (r regexValidator) String() string { return "a string matching " + r.pattern }

type listOf struct{ elem Validator }

// ListOf applies elem to every element of a LIST value, as Kafka's ValidList
// (the error names the offending element).
func ListOf(elem Validator) Validator { return listOf{elem: elem} }

func (l listOf) Validate(name string, v any) error {
	list, ok := v.([]string)
	if !ok {
		return &ConfigValueError{Name: name, Value: v, Reason: "Expected a comma separated list."}
	}
	for _, e := range list {
		if err := l.elem.Validate(name, e); err != nil {
			return err
		}
	}
	return nil
}

func (l listOf) String() string { return l.elem.String() }

type nonEmptyList struct{}

// NonEmptyList accepts a LIST value with at least one element.
func NonEmptyList() Validator { return nonEmptyList{} }

func (nonEmptyList) Validate(name string, v any) error {
	if list, ok := v.([]string); !ok || len(list) == 0 {
		return &ConfigValueError{Name: name, Value: v, Reason: "List must not be empty"}
	}
	return nil
}

func (nonEmptyList) String() string { return "non-empty list" }

type funcValidator struct {
	desc string
	fn   func(name string, v any) error
}

// ValidatorFunc makes a Validator of fn; desc is its String. An error fn
// returns becomes the reason of a *ConfigValueError ("Invalid value v for
// configuration name: <err>"), unless it already is one.
func ValidatorFunc(desc string, fn func(name string, v any) error) Validator {
	return funcValidator{desc: desc, fn: fn}
}

func (f funcValidator) Validate(name string, v any) error {
	err := f.fn(name, v)
	if err == nil {
		return nil
	}
	var cve *ConfigValueError
	if errors.As(err, &cve) {
		return err
	}
	return &ConfigValueError{Name: name, Value: v, Reason: err.Error()}
}

func (f funcValidator) String() string { return f.desc }

type allOf []Validator

// All applies every validator in order and returns the first error, as
// Kafka's CompositeValidator; its String joins theirs with ", ".
func All(vs ...Validator) Validator { return allOf(append([]Validator(nil), vs...)) }

func (a allOf) Validate(name string, v any) error {
	for _, x := range a {
		if err := x.Validate(name, v); err != nil {
			return err
		}
	}
	return nil
}

func (a allOf) String() string {
	parts := make([]string, 0, len(a))
	for _, x := range a {
		if s := x.String(); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ", ")
}
