package connect

// ConfigDef: the declared config keys of a connector (or converter,
// transform, worker section), modelled on Kafka's ConfigDef.
//
// Parsing follows Kafka's ConfigDef.parseType: values are trimmed; BOOLEAN is
// true/false in any case; INT, SHORT and LONG are base-10 integers of 32, 16
// and 64 bits; DOUBLE a float; LIST a comma-separated list whose elements are
// trimmed ("" is the empty list); PASSWORD a Password; CLASS and STRING a
// string. Error texts follow Kafka's, so that users see the messages they
// know ("Missing required configuration \"x\" which has no default value.",
// "Invalid value abc for configuration x: Not a number of type INT").
//
// The REST shapes (ConfigKeyInfo, ConfigValueInfo, ConfigInfo, ConfigInfos)
// serialize to the same JSON as Kafka Connect's entities of those names:
// same field names, same field order.

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// ConfigType is the type of a connector config value, named as Kafka
// Connect names it in /connector-plugins/{p}/config.
type ConfigType string

// Config value types.
const (
	TypeBoolean  ConfigType = "BOOLEAN"
	TypeString   ConfigType = "STRING"
	TypeInt      ConfigType = "INT"
	TypeShort    ConfigType = "SHORT"
	TypeLong     ConfigType = "LONG"
	TypeDouble   ConfigType = "DOUBLE"
	TypeList     ConfigType = "LIST"
	TypeClass    ConfigType = "CLASS"
	TypePassword ConfigType = "PASSWORD" // masked in every worker response
)

func (t ConfigType) valid() bool {
	switch t {
	case TypeBoolean, TypeString, TypeInt, TypeShort, TypeLong, TypeDouble, TypeList, TypeClass, TypePassword:
		return true
	}
	return false
}

// Importance ranks a config key in docs, as Kafka Connect does.
type Importance string

// Importances.
const (
	High   Importance = "HIGH"
	Medium Importance = "MEDIUM"
	Low    Importance = "LOW"
)

// Validator checks one parsed config value. String describes the accepted
// values for docs (e.g. "[1,...]" or "[insert, upsert]").
//
// The value has the Go type of the key's ConfigType: BOOLEAN bool, STRING
// and CLASS string, INT int32, SHORT int16, LONG int64, DOUBLE float64, LIST
// []string, PASSWORD Password. Errors should read as Kafka's do; the
// validators of this package return *ConfigValueError.
type Validator interface {
	Validate(name string, value any) error
	String() string
}

// ConfigKey declares one connector config key.
type ConfigKey struct {
	Name string
	Type ConfigType
	// Default is the value used when the key is absent, as a string in the
	// key's config syntax (lists comma-separated). Required keys have none.
	// An empty Default means "no default" (the key is then absent from the
	// parsed Config and its default_value is null), except for LIST keys,
	// where it is the empty list.
	Default      string
	Required     bool
	Importance   Importance // empty: Medium
	Doc          string
	Group        string
	OrderInGroup int
	DisplayName  string    // empty: the key's name, as Kafka's define does
	Validator    Validator // nil: any value of the type
	// Aliases are other names accepted for this key (the config keys of the
	// connector this one replaces, e.g. Debezium's); a value given under an
	// alias counts as given under Name.
	Aliases []string
	// Dependents are keys whose visibility or recommendations depend on this one.
	Dependents []string
}

// hasDefault reports whether the key has a default value (Kafka: a default
// other than NO_DEFAULT_VALUE).
func (k ConfigKey) hasDefault() bool {
	return !k.Required && (k.Default != "" || k.Type == TypeList)
}

// ConfigDef is the declared set of a connector's config keys. Build it with
// NewConfigDef and Define; once built it is read-only and safe for
// concurrent use (Define itself is not).
type ConfigDef struct {
	keys []ConfigKey
	// index maps every key name and alias to its position in keys.
	index map[string]int
	// defaults holds each key's parsed Default (nil: none).
	defaults []any
}

// ErrConfig is matched (errors.Is) by every *ConfigValueError.
var ErrConfig = errors.New("connect: config")

// ConfigValueError is an invalid config value, rendered as Kafka's
// ConfigException renders it: "Invalid value <v> for configuration <name>:
// <reason>". Values of type Password render as "[hidden]".
type ConfigValueError struct {
	Name   string
	Value  any
	Reason string
}

func (e *ConfigValueError) Error() string {
	v := FormatConfigValue(e.Value)
	if l, ok := e.Value.([]string); ok {
		v = "[" + strings.Join(l, ", ") + "]" // Java's List.toString
	}
	s := "Invalid value " + v + " for configuration " + e.Name
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Is makes errors.Is(err, ErrConfig) true.
func (e *ConfigValueError) Is(target error) bool { return target == ErrConfig }

// Password is a secret config value. It prints as "[hidden]" with every fmt
// verb and in JSON; Value returns the secret.
type Password struct{ value string }

// NewPassword wraps a secret.
func NewPassword(s string) Password { return Password{value: s} }

// Value returns the secret.
func (p Password) Value() string { return p.value }

// String returns "[hidden]".
func (p Password) String() string { return hidden }

// GoString returns "[hidden]", so that %#v does not leak the secret either.
func (p Password) GoString() string { return hidden }

// MarshalJSON renders the password as the JSON string "[hidden]".
func (p Password) MarshalJSON() ([]byte, error) { return []byte(`"` + hidden + `"`), nil }

const hidden = "[hidden]"

// NewConfigDef returns an empty ConfigDef.
func NewConfigDef() *ConfigDef { return &ConfigDef{index: map[string]int{}} }

// Define adds a key and returns d, for chaining. It panics (a programming
// error) when the name is empty, the type unknown, the name or an alias is
// already defined as a name or alias, a required key has a default, or the
// default does not parse or fails the key's validator.
func (d *ConfigDef) Define(k ConfigKey) *ConfigDef {
	if k.Name == "" {
		panic("connect: ConfigDef.Define: empty key name")
	}
	if !k.Type.valid() {
		panic(fmt.Sprintf("connect: ConfigDef.Define %q: unknown type %q", k.Name, k.Type))
	}
	if d.index == nil {
		d.index = map[string]int{}
	}
	names := append([]string{k.Name}, k.Aliases...)
	for i, n := range names {
		if n == "" {
			panic(fmt.Sprintf("connect: ConfigDef.Define %q: empty alias", k.Name))
		}
		if _, dup := d.index[n]; dup || contains(names[:i], n) {
			panic(fmt.Sprintf("connect: ConfigDef.Define %q: %q is already defined", k.Name, n))
		}
	}
	if k.Required && k.Default != "" {
		panic(fmt.Sprintf("connect: ConfigDef.Define %q: a required key has no default", k.Name))
	}
	if k.Importance == "" {
		k.Importance = Medium
	}
	if k.DisplayName == "" {
		k.DisplayName = k.Name
	}
	k.Aliases = append([]string(nil), k.Aliases...)
	k.Dependents = append([]string(nil), k.Dependents...)
	var def any
	if k.hasDefault() {
		v, err := parseValue(k.Name, k.Default, k.Type)
		if err != nil {
			panic(fmt.Sprintf("connect: ConfigDef.Define %q: default: %v", k.Name, err))
		}
		if k.Validator != nil {
			if err := k.Validator.Validate(k.Name, v); err != nil {
				panic(fmt.Sprintf("connect: ConfigDef.Define %q: default: %v", k.Name, err))
			}
		}
		def = v
	}
	for _, n := range names {
		d.index[n] = len(d.keys)
	}
	d.keys = append(d.keys, k)
	d.defaults = append(d.defaults, def)
	return d
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// Keys returns the keys in definition order (copies: changing them does not
// change d). Importance and DisplayName are filled in as Define filled them.
func (d *ConfigDef) Keys() []ConfigKey {
	if d == nil {
		return nil
	}
	out := make([]ConfigKey, len(d.keys))
	for i, k := range d.keys {
		out[i] = copyKey(k)
	}
	return out
}

func copyKey(k ConfigKey) ConfigKey {
	k.Aliases = append([]string(nil), k.Aliases...)
	k.Dependents = append([]string(nil), k.Dependents...)
	return k
}

// Key returns the key named name or having name as an alias.
func (d *ConfigDef) Key(name string) (ConfigKey, bool) {
	if d == nil {
		return ConfigKey{}, false
	}
	i, ok := d.index[name]
	if !ok {
		return ConfigKey{}, false
	}
	return copyKey(d.keys[i]), true
}

// Merge returns a new ConfigDef holding d's keys followed by other's, as the
// worker adds its common keys (name, connector.class, tasks.max, ...) to a
// connector's. A key of other whose name or one of whose aliases d already
// defines is left out: d's definition wins. Neither d nor other changes.
func (d *ConfigDef) Merge(other *ConfigDef) *ConfigDef {
	out := NewConfigDef()
	for _, src := range []*ConfigDef{d, other} {
		if src == nil {
			continue
		}
		for i, k := range src.keys {
			clash := false
			for _, n := range append([]string{k.Name}, k.Aliases...) {
				if _, ok := out.index[n]; ok {
					clash = true
				}
			}
			if clash {
				continue
			}
			for _, n := range append([]string{k.Name}, k.Aliases...) {
				out.index[n] = len(out.keys)
			}
			out.keys = append(out.keys, copyKey(k))
			out.defaults = append(out.defaults, src.defaults[i])
		}
	}
	return out
}

// Groups returns the key groups in order of first definition (Kafka's
// ConfigDef.groups(), the "groups" of a validate response). Keys without a
// group add none.
func (d *ConfigDef) Groups() []string {
	groups := []string{}
	if d == nil {
		return groups
	}
	for _, k := range d.keys {
		if k.Group != "" && !contains(groups, k.Group) {
			groups = append(groups, k.Group)
		}
	}
	return groups
}

// Config is a parsed config: typed values of the defined keys under their
// canonical names, plus every key given, as given, in Raw.
//
// The getters take a key's name (or an alias) and return its value, its
// default when it was not given, or the zero value when it has neither.
// They panic when the key is not defined or has another type: both are
// programming errors, as Kafka's getters throw for them.
type Config struct {
	// Raw holds every key given to Parse, defined or not (transforms.*,
	// errors.*, converter settings...), with its value as given.
	Raw    map[string]string
	def    *ConfigDef
	values map[string]any
}

func (c Config) lookup(name string, types ...ConfigType) any {
	var k ConfigKey
	ok := false
	if c.def != nil {
		k, ok = c.def.Key(name)
	}
	if !ok {
		panic(fmt.Sprintf("connect: Config: unknown configuration %q", name))
	}
	if !contains(typeNames(types), string(k.Type)) {
		panic(fmt.Sprintf("connect: Config: configuration %q has type %s, not %s", k.Name, k.Type, types[0]))
	}
	return c.values[k.Name]
}

func typeNames(ts []ConfigType) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

// Has reports whether the key has a value (given or default).
func (c Config) Has(name string) bool {
	if c.def == nil {
		return false
	}
	k, ok := c.def.Key(name)
	if !ok {
		return false
	}
	_, has := c.values[k.Name]
	return has
}

// Get returns the key's typed value (see Validator for the Go types), or nil.
func (c Config) Get(name string) any {
	return c.lookup(name, TypeBoolean, TypeString, TypeInt, TypeShort, TypeLong, TypeDouble, TypeList, TypeClass, TypePassword)
}

// String returns a STRING or CLASS value.
func (c Config) String(name string) string {
	v, _ := c.lookup(name, TypeString, TypeClass).(string)
	return v
}

// Class returns a CLASS (or STRING) value.
func (c Config) Class(name string) string { return c.String(name) }

// Bool returns a BOOLEAN value.
func (c Config) Bool(name string) bool {
	v, _ := c.lookup(name, TypeBoolean).(bool)
	return v
}

// Int returns an INT (or SHORT) value.
func (c Config) Int(name string) int32 {
	switch v := c.lookup(name, TypeInt, TypeShort).(type) {
	case int32:
		return v
	case int16:
		return int32(v)
	}
	return 0
}

// Short returns a SHORT value.
func (c Config) Short(name string) int16 {
	v, _ := c.lookup(name, TypeShort).(int16)
	return v
}

// Long returns a LONG (or INT or SHORT) value.
func (c Config) Long(name string) int64 {
	switch v := c.lookup(name, TypeLong, TypeInt, TypeShort).(type) {
	case int64:
		return v
	case int32:
		return int64(v)
	case int16:
		return int64(v)
	}
	return 0
}

// Double returns a DOUBLE value.
func (c Config) Double(name string) float64 {
	v, _ := c.lookup(name, TypeDouble).(float64)
	return v
}

// List returns a copy of a LIST value (nil when absent).
func (c Config) List(name string) []string {
	v, _ := c.lookup(name, TypeList).([]string)
	if v == nil {
		return nil
	}
	return append([]string{}, v...)
}

// Password returns a PASSWORD value.
func (c Config) Password(name string) Password {
	v, _ := c.lookup(name, TypePassword).(Password)
	return v
}

// parseValue parses a raw value as Kafka's ConfigDef.parseType does.
func parseValue(name, raw string, t ConfigType) (any, error) {
	s := strings.TrimSpace(raw)
	notNumber := func() error {
		return &ConfigValueError{Name: name, Value: raw, Reason: "Not a number of type " + string(t)}
	}
	switch t {
	case TypeBoolean:
		switch {
		case strings.EqualFold(s, "true"):
			return true, nil
		case strings.EqualFold(s, "false"):
			return false, nil
		}
		return nil, &ConfigValueError{Name: name, Value: raw, Reason: "Expected value to be either true or false"}
	case TypeString, TypeClass:
		return s, nil
	case TypePassword:
		return Password{value: s}, nil
	case TypeInt:
		v, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return nil, notNumber()
		}
		return int32(v), nil
	case TypeShort:
		v, err := strconv.ParseInt(s, 10, 16)
		if err != nil {
			return nil, notNumber()
		}
		return int16(v), nil
	case TypeLong:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, notNumber()
		}
		return v, nil
	case TypeDouble:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, notNumber()
		}
		return v, nil
	case TypeList:
		if s == "" {
			return []string{}, nil
		}
		parts := strings.Split(s, ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return parts, nil
	}
	return nil, fmt.Errorf("%w: configuration %s has unknown type %q", ErrConfig, name, t)
}

// FormatConfigValue renders a parsed config value as Kafka's
// ConfigDef.convertToString does: lists joined with ",", doubles as Java
// prints them ("1.0", "1.0E7"), passwords as "[hidden]"; nil as "null".
func FormatConfigValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	case Password:
		return hidden
	case []string:
		return strings.Join(x, ",")
	case float64:
		return formatJavaDouble(x)
	case float32:
		return formatJavaDouble(float64(x))
	}
	return fmt.Sprint(v)
}

// formatJavaDouble renders f as Java's Double.toString does.
func formatJavaDouble(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	if a := math.Abs(f); a >= 1e-3 && a < 1e7 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	mant, exp, _ := strings.Cut(strconv.FormatFloat(f, 'E', -1, 64), "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	e, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(e)
}

// parsed is the outcome of parsing a config against a ConfigDef.
type parsed struct {
	values map[string]any      // canonical name -> typed value (given or default)
	errs   map[string][]string // canonical name -> messages
}

func (d *ConfigDef) parse(config map[string]string) parsed {
	p := parsed{values: map[string]any{}, errs: map[string][]string{}}
	if d == nil {
		return p
	}
	for i, k := range d.keys {
		raw, given := config[k.Name]
		from := k.Name
		conflict := false
		for _, a := range k.Aliases {
			av, ok := config[a]
			switch {
			case !ok:
			case !given:
				raw, given, from = av, true, a
			case strings.TrimSpace(av) != strings.TrimSpace(raw):
				p.errs[k.Name] = append(p.errs[k.Name], fmt.Sprintf(
					"Configuration %q and its alias %q are both set, to different values: set only one of them", from, a))
				conflict = true
			}
		}
		if conflict {
			continue
		}
		if !given {
			switch {
			case k.Required:
				p.errs[k.Name] = append(p.errs[k.Name], fmt.Sprintf("Missing required configuration %q which has no default value.", k.Name))
			case k.hasDefault():
				p.values[k.Name] = d.defaults[i]
			}
			continue
		}
		v, err := parseValue(k.Name, raw, k.Type)
		if err != nil {
			p.errs[k.Name] = append(p.errs[k.Name], err.Error())
			continue
		}
		p.values[k.Name] = v
		if k.Validator != nil {
			if err := k.Validator.Validate(k.Name, v); err != nil {
				p.errs[k.Name] = append(p.errs[k.Name], err.Error())
			}
		}
	}
	return p
}

// Parse parses config against d. It returns the typed values and the error
// messages per key (canonical key name -> messages, in Kafka's wording; the
// key "" is reserved for errors about the config as a whole), nil when there
// are none. A value given under an alias counts for its key; a key given
// under its name and an alias (or two aliases) with different values is an
// error. Keys d does not define are not errors: they stay in Config.Raw for
// the worker to judge. Validators run on the parsed values of given keys
// (defaults were checked by Define).
func (d *ConfigDef) Parse(config map[string]string) (Config, map[string][]string) {
	p := d.parse(config)
	raw := make(map[string]string, len(config))
	for k, v := range config {
		raw[k] = v
	}
	c := Config{Raw: raw, def: d, values: p.values}
	if len(p.errs) == 0 {
		return c, nil
	}
	return c, p.errs
}

// Mask returns a copy of config in which the values of PASSWORD keys (given
// under their name or an alias) read "[hidden]", as Kafka Connect shows them.
func (d *ConfigDef) Mask(config map[string]string) map[string]string {
	if config == nil {
		return nil
	}
	out := make(map[string]string, len(config))
	for k, v := range config {
		if key, ok := d.Key(k); ok && key.Type == TypePassword {
			v = hidden
		}
		out[k] = v
	}
	return out
}

// ConfigKeyInfo is a key's definition as Kafka Connect's REST API renders it
// (GET /connector-plugins/{p}/config and the "definition" of a validate
// response). The JSON field order is Kafka's: its serializer writes the
// order last, under the name "order".
type ConfigKeyInfo struct {
	Name          string   `json:"name"`
	Type          string   `json:"type"`
	Required      bool     `json:"required"`
	DefaultValue  *string  `json:"default_value"`
	Importance    string   `json:"importance"`
	Documentation string   `json:"documentation"`
	Group         *string  `json:"group"`
	Width         string   `json:"width"`
	DisplayName   string   `json:"display_name"`
	Dependents    []string `json:"dependents"`
	OrderInGroup  int      `json:"order"`
}

// ConfigValueInfo is a key's value in a validate response.
type ConfigValueInfo struct {
	Name              string   `json:"name"`
	Value             *string  `json:"value"`
	RecommendedValues []string `json:"recommended_values"`
	Errors            []string `json:"errors"`
	Visible           bool     `json:"visible"`
}

// ConfigInfo is one entry of a validate response's "configs". Definition is
// nil (JSON null) for a key the ConfigDef does not define, as Kafka Connect
// reports errors a connector raised about such keys.
type ConfigInfo struct {
	Definition *ConfigKeyInfo  `json:"definition"`
	Value      ConfigValueInfo `json:"value"`
}

// ConfigInfos is the body of PUT /connector-plugins/{p}/config/validate.
type ConfigInfos struct {
	Name       string       `json:"name"`
	ErrorCount int          `json:"error_count"`
	Groups     []string     `json:"groups"`
	Configs    []ConfigInfo `json:"configs"`
}

// NewConfigInfos assembles a validate response, counting the errors of
// configs. name is the connector class as the user gave it.
func NewConfigInfos(name string, groups []string, configs []ConfigInfo) ConfigInfos {
	n := 0
	for _, c := range configs {
		n += len(c.Value.Errors)
	}
	if groups == nil {
		groups = []string{}
	}
	if configs == nil {
		configs = []ConfigInfo{}
	}
	return ConfigInfos{Name: name, ErrorCount: n, Groups: groups, Configs: configs}
}

func (d *ConfigDef) keyInfo(i int) ConfigKeyInfo {
	k := d.keys[i]
	info := ConfigKeyInfo{
		Name:          k.Name,
		Type:          string(k.Type),
		Required:      k.Required,
		Importance:    string(k.Importance),
		Documentation: k.Doc,
		Width:         "NONE",
		DisplayName:   k.DisplayName,
		Dependents:    append([]string{}, k.Dependents...),
		OrderInGroup:  k.OrderInGroup,
	}
	// Kafka's required means "has no default"; a key that is optional but
	// has no default is Kafka's null default: not required, default null.
	if k.hasDefault() {
		s := FormatConfigValue(d.defaults[i])
		info.DefaultValue = &s
	}
	if k.Group != "" {
		g := k.Group
		info.Group = &g
	} else if k.OrderInGroup == 0 {
		info.OrderInGroup = -1 // Kafka's define without a group
	}
	return info
}

// Describe returns the key definitions in definition order, for GET
// /connector-plugins/{p}/config.
func (d *ConfigDef) Describe() []ConfigKeyInfo {
	out := []ConfigKeyInfo{}
	if d == nil {
		return out
	}
	for i := range d.keys {
		out = append(out, d.keyInfo(i))
	}
	return out
}

// ValidateAll validates config for the REST validate endpoint: one entry per
// defined key, in definition order, with the key's definition and its value
// (parsed and rendered as Kafka does, "[hidden]" for passwords, null when
// absent or unparsable) and error messages (the same as Parse's).
func (d *ConfigDef) ValidateAll(config map[string]string) []ConfigInfo {
	out := []ConfigInfo{}
	if d == nil {
		return out
	}
	p := d.parse(config)
	for i, k := range d.keys {
		def := d.keyInfo(i)
		vi := ConfigValueInfo{Name: k.Name, RecommendedValues: []string{}, Errors: []string{}, Visible: true}
		if v, ok := p.values[k.Name]; ok {
			s := FormatConfigValue(v)
			vi.Value = &s
		}
		vi.Errors = append(vi.Errors, p.errs[k.Name]...)
		out = append(out, ConfigInfo{Definition: &def, Value: vi})
	}
	return out
}

// MergeErrors adds error messages (a Connector.Validate result) to a
// validate response's configs: messages of a key listed there are appended
// to its errors (skipping ones it already has); for any other key an entry
// with a null definition is appended, in key order. Messages under "" (the
// config as a whole) are not merged: the caller reports them. configs is
// not modified; the merged list is returned.
func MergeErrors(configs []ConfigInfo, errs map[string][]string) []ConfigInfo {
	out := make([]ConfigInfo, len(configs))
	pos := map[string]int{}
	for i, c := range configs {
		c.Value.Errors = append([]string{}, c.Value.Errors...)
		out[i] = c
		pos[c.Value.Name] = i
	}
	names := make([]string, 0, len(errs))
	for n := range errs {
		if n != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		i, ok := pos[n]
		if !ok {
			i = len(out)
			pos[n] = i
			out = append(out, ConfigInfo{Value: ConfigValueInfo{Name: n, RecommendedValues: []string{}, Errors: []string{}, Visible: true}})
		}
		for _, m := range errs[n] {
			if !contains(out[i].Value.Errors, m) {
				out[i].Value.Errors = append(out[i].Value.Errors, m)
			}
		}
	}
	return out
}

// Markdown renders a config reference: one table (name, type, default, valid
// values, importance, description) per group, groups in order of first
// definition (keys without a group first), keys by order in group then name.
func (d *ConfigDef) Markdown() string {
	if d == nil || len(d.keys) == 0 {
		return ""
	}
	groupOrd := map[string]int{"": -1}
	for i, g := range d.Groups() {
		groupOrd[g] = i
	}
	idx := make([]int, len(d.keys))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ka, kb := d.keys[idx[a]], d.keys[idx[b]]
		if ga, gb := groupOrd[ka.Group], groupOrd[kb.Group]; ga != gb {
			return ga < gb
		}
		if ka.OrderInGroup != kb.OrderInGroup {
			return ka.OrderInGroup < kb.OrderInGroup
		}
		return ka.Name < kb.Name
	})
	var b strings.Builder
	group := "\x00"
	for _, i := range idx {
		k := d.keys[i]
		if k.Group != group {
			if group != "\x00" {
				b.WriteString("\n")
			}
			group = k.Group
			if group != "" {
				b.WriteString("### " + mdCell(group) + "\n\n")
			}
			b.WriteString("| Name | Type | Default | Valid values | Importance | Description |\n")
			b.WriteString("|---|---|---|---|---|---|\n")
		}
		def := ""
		switch {
		case k.Required:
			def = "(required)"
		case k.hasDefault():
			def = FormatConfigValue(d.defaults[i])
			if def == "" {
				def = `""`
			}
			def = "`" + def + "`"
		}
		valid := ""
		if k.Validator != nil {
			valid = k.Validator.String()
		}
		doc := k.Doc
		if len(k.Aliases) > 0 {
			doc = strings.TrimSpace(doc + " Also accepted as: `" + strings.Join(k.Aliases, "`, `") + "`.")
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", k.Name, strings.ToLower(string(k.Type)),
			mdCell(def), mdCell(valid), strings.ToLower(string(k.Importance)), mdCell(doc))
	}
	return b.String()
}

// mdCell makes s safe inside a Markdown table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\r\n", " ")
	return strings.ReplaceAll(s, "\n", " ")
}
