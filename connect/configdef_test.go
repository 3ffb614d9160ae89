package connect

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestParseTypes(t *testing.T) {
	tests := []struct {
		typ     ConfigType
		raw     string
		want    any
		wantErr string
	}{
		{TypeBoolean, "true", true, ""},
		{TypeBoolean, "FALSE", false, ""},
		{TypeBoolean, " True ", true, ""},
		{TypeBoolean, "yes", nil, "Invalid value yes for configuration k: Expected value to be either true or false"},
		{TypeBoolean, "", nil, "Invalid value  for configuration k: Expected value to be either true or false"},
		{TypeString, " hello ", "hello", ""},
		{TypeString, "", "", ""},
		{TypeClass, "org.example.Foo", "org.example.Foo", ""},
		{TypeInt, "42", int32(42), ""},
		{TypeInt, " -7 ", int32(-7), ""},
		{TypeInt, "+7", int32(7), ""},
		{TypeInt, "2147483647", int32(math.MaxInt32), ""},
		{TypeInt, "2147483648", nil, "Invalid value 2147483648 for configuration k: Not a number of type INT"},
		{TypeInt, "abc", nil, "Invalid value abc for configuration k: Not a number of type INT"},
		{TypeInt, "1.5", nil, "Invalid value 1.5 for configuration k: Not a number of type INT"},
		{TypeInt, "", nil, "Invalid value  for configuration k: Not a number of type INT"},
		{TypeShort, "32767", int16(32767), ""},
		{TypeShort, "-32768", int16(-32768), ""},
		{TypeShort, "32768", nil, "Invalid value 32768 for configuration k: Not a number of type SHORT"},
		{TypeLong, "9223372036854775807", int64(math.MaxInt64), ""},
		{TypeLong, "9223372036854775808", nil, "Invalid value 9223372036854775808 for configuration k: Not a number of type LONG"},
		{TypeLong, "0x10", nil, "Invalid value 0x10 for configuration k: Not a number of type LONG"},
		{TypeDouble, "1.5", 1.5, ""},
		{TypeDouble, "-2", -2.0, ""},
		{TypeDouble, "1e3", 1000.0, ""},
		{TypeDouble, "x1", nil, "Invalid value x1 for configuration k: Not a number of type DOUBLE"},
		{TypeList, "a,b , c", []string{"a", "b", "c"}, ""},
		{TypeList, "", []string{}, ""},
		{TypeList, "  ", []string{}, ""},
		{TypeList, "single", []string{"single"}, ""},
		{TypeList, "a,,b,", []string{"a", "", "b", ""}, ""},
		{TypePassword, " s3cret ", NewPassword("s3cret"), ""},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%q", tc.typ, tc.raw), func(t *testing.T) {
			d := NewConfigDef().Define(ConfigKey{Name: "k", Type: tc.typ})
			c, errs := d.Parse(map[string]string{"k": tc.raw})
			if tc.wantErr != "" {
				if got := errs["k"]; len(got) != 1 || got[0] != tc.wantErr {
					t.Fatalf("errors = %q, want [%q]", got, tc.wantErr)
				}
				if c.Has("k") {
					t.Fatalf("unparsable value kept: %v", c.Get("k"))
				}
				return
			}
			if errs != nil {
				t.Fatalf("unexpected errors %v", errs)
			}
			if got := c.Get("k"); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("value = %#v (%T), want %#v (%T)", got, got, tc.want, tc.want)
			}
		})
	}
}

func TestParseAliases(t *testing.T) {
	d := NewConfigDef().Define(ConfigKey{Name: "database.hostname", Type: TypeString, Required: true, Aliases: []string{"hostname", "host"}})
	tests := []struct {
		name    string
		config  map[string]string
		want    string
		wantErr string
	}{
		{"name only", map[string]string{"database.hostname": "a"}, "a", ""},
		{"alias only", map[string]string{"hostname": "b"}, "b", ""},
		{"second alias only", map[string]string{"host": "c"}, "c", ""},
		{"both equal", map[string]string{"database.hostname": "a", "hostname": "a"}, "a", ""},
		{"both equal after trimming", map[string]string{"database.hostname": "a", "hostname": " a"}, "a", ""},
		{"both different", map[string]string{"database.hostname": "a", "hostname": "b"}, "",
			`Configuration "database.hostname" and its alias "hostname" are both set, to different values: set only one of them`},
		{"two aliases different", map[string]string{"hostname": "a", "host": "b"}, "",
			`Configuration "hostname" and its alias "host" are both set, to different values: set only one of them`},
		{"missing", map[string]string{"other": "x"}, "",
			`Missing required configuration "database.hostname" which has no default value.`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, errs := d.Parse(tc.config)
			if tc.wantErr != "" {
				if got := errs["database.hostname"]; len(got) != 1 || got[0] != tc.wantErr {
					t.Fatalf("errors = %q, want [%q]", got, tc.wantErr)
				}
				if len(errs) != 1 {
					t.Fatalf("errors under other keys: %v", errs)
				}
				return
			}
			if errs != nil {
				t.Fatalf("unexpected errors %v", errs)
			}
			if got := c.String("database.hostname"); got != tc.want {
				t.Fatalf("value = %q, want %q", got, tc.want)
			}
			if got := c.String("hostname"); got != tc.want {
				t.Fatalf("value by alias = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseRequiredDefaultsAndUnknownKeys(t *testing.T) {
	d := NewConfigDef().
		Define(ConfigKey{Name: "topic", Type: TypeString, Required: true}).
		Define(ConfigKey{Name: "batch.size", Type: TypeInt, Default: "2000"}).
		Define(ConfigKey{Name: "ratio", Type: TypeDouble, Default: "0.5"}).
		Define(ConfigKey{Name: "flag", Type: TypeBoolean, Default: "true"}).
		Define(ConfigKey{Name: "tables", Type: TypeList}).
		Define(ConfigKey{Name: "cols", Type: TypeList, Default: "a, b"}).
		Define(ConfigKey{Name: "prefix", Type: TypeString}).
		Define(ConfigKey{Name: "port", Type: TypeInt}).
		Define(ConfigKey{Name: "secret", Type: TypePassword, Required: true})

	_, errs := d.Parse(map[string]string{"transforms": "x"})
	want := map[string][]string{
		"topic":  {`Missing required configuration "topic" which has no default value.`},
		"secret": {`Missing required configuration "secret" which has no default value.`},
	}
	if !reflect.DeepEqual(errs, want) {
		t.Fatalf("errors = %v, want %v", errs, want)
	}

	in := map[string]string{"topic": "t", "secret": "pw", "transforms": "route", "errors.tolerance": "all"}
	c, errs := d.Parse(in)
	if errs != nil {
		t.Fatalf("unexpected errors %v", errs)
	}
	if c.String("topic") != "t" || c.Int("batch.size") != 2000 || c.Long("batch.size") != 2000 ||
		c.Double("ratio") != 0.5 || !c.Bool("flag") || c.Password("secret").Value() != "pw" {
		t.Fatalf("values: topic=%q batch=%d ratio=%v flag=%v", c.String("topic"), c.Int("batch.size"), c.Double("ratio"), c.Bool("flag"))
	}
	if got := c.List("tables"); got == nil || len(got) != 0 || !c.Has("tables") {
		t.Fatalf("LIST default \"\" should be the empty list, got %#v", got)
	}
	if got := c.List("cols"); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Fatalf("cols = %q", got)
	}
	if c.Has("prefix") || c.String("prefix") != "" || c.Has("port") || c.Int("port") != 0 {
		t.Fatalf("keys without default nor value should be absent")
	}
	if !reflect.DeepEqual(c.Raw, in) {
		t.Fatalf("Raw = %v, want %v", c.Raw, in)
	}
	in["topic"] = "changed"
	if c.Raw["topic"] != "t" {
		t.Fatalf("Raw aliases the input map")
	}
	// List returns a copy.
	l := c.List("cols")
	l[0] = "z"
	if c.List("cols")[0] != "a" {
		t.Fatalf("List returned the stored slice")
	}
}

func TestConfigGetterPanics(t *testing.T) {
	d := NewConfigDef().Define(ConfigKey{Name: "n", Type: TypeInt, Default: "1"}).
		Define(ConfigKey{Name: "s", Type: TypeShort, Default: "2"}).
		Define(ConfigKey{Name: "l", Type: TypeLong, Default: "-3"}).
		Define(ConfigKey{Name: "cls", Type: TypeClass, Default: "org.example.C"}).
		Define(ConfigKey{Name: "opt.list", Type: TypeList, Required: true})
	c, _ := d.Parse(nil)
	if c.Long("n") != 1 || c.Int("s") != 2 || c.Long("s") != 2 || c.Short("s") != 2 || c.Long("l") != -3 {
		t.Fatalf("widening getters failed")
	}
	if c.Class("cls") != "org.example.C" || c.String("cls") != "org.example.C" {
		t.Fatalf("Class = %q", c.Class("cls"))
	}
	if c.List("opt.list") != nil || c.Has("opt.list") || c.Has("undefined") || (Config{}).Has("n") {
		t.Fatal("absent values")
	}
	for name, f := range map[string]func(){
		"unknown key":   func() { c.Int("nope") },
		"wrong type":    func() { c.String("n") },
		"narrowing":     func() { c.Short("n") },
		"zero Config":   func() { Config{}.Int("n") },
		"password of n": func() { c.Password("n") },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatalf("no panic")
				}
			}()
			f()
		})
	}
}

func TestKeyValidatorRuns(t *testing.T) {
	d := NewConfigDef().
		Define(ConfigKey{Name: "tasks.max", Type: TypeInt, Default: "1", Validator: AtLeast(1)}).
		Define(ConfigKey{Name: "mode", Type: TypeString, Default: "insert", Validator: OneOf("insert", "upsert")}).
		Define(ConfigKey{Name: "pw", Type: TypePassword, Validator: NonEmptyString()})
	_, errs := d.Parse(map[string]string{"tasks.max": "0", "mode": "merge", "pw": ""})
	want := map[string][]string{
		"tasks.max": {"Invalid value 0 for configuration tasks.max: Value must be at least 1"},
		"mode":      {"Invalid value merge for configuration mode: String must be one of: insert, upsert"},
		"pw":        {"Invalid value [hidden] for configuration pw: String must be non-empty"},
	}
	if !reflect.DeepEqual(errs, want) {
		t.Fatalf("errors = %q\nwant %q", errs, want)
	}
	// The validator does not run on an unparsable value: one error only.
	_, errs = d.Parse(map[string]string{"tasks.max": "x"})
	if got := errs["tasks.max"]; len(got) != 1 || !strings.Contains(got[0], "Not a number of type INT") {
		t.Fatalf("errors = %q", got)
	}
}

func TestDefinePanics(t *testing.T) {
	base := func() *ConfigDef {
		return NewConfigDef().Define(ConfigKey{Name: "a", Type: TypeString, Aliases: []string{"alias.a"}})
	}
	tests := map[string]ConfigKey{
		"empty name":             {Type: TypeString},
		"unknown type":           {Name: "b", Type: "TEXT"},
		"duplicate name":         {Name: "a", Type: TypeString},
		"name equals alias":      {Name: "alias.a", Type: TypeString},
		"alias equals name":      {Name: "b", Type: TypeString, Aliases: []string{"a"}},
		"alias equals alias":     {Name: "b", Type: TypeString, Aliases: []string{"alias.a"}},
		"alias equals own name":  {Name: "b", Type: TypeString, Aliases: []string{"b"}},
		"empty alias":            {Name: "b", Type: TypeString, Aliases: []string{""}},
		"required with default":  {Name: "b", Type: TypeString, Required: true, Default: "x"},
		"default does not parse": {Name: "b", Type: TypeInt, Default: "x"},
		"default fails validator": {Name: "b", Type: TypeInt, Default: "0",
			Validator: AtLeast(1)},
	}
	for name, k := range tests {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatalf("Define(%+v) did not panic", k)
				}
			}()
			base().Define(k)
		})
	}
	// The zero ConfigDef is usable too.
	var d ConfigDef
	d.Define(ConfigKey{Name: "x", Type: TypeString})
	if _, ok := d.Key("x"); !ok {
		t.Fatal("zero ConfigDef lost its key")
	}
}

func TestKeysKeyAndMerge(t *testing.T) {
	d := NewConfigDef().
		Define(ConfigKey{Name: "b", Type: TypeString, Aliases: []string{"bee"}}).
		Define(ConfigKey{Name: "a", Type: TypeInt, Default: "1"})
	keys := d.Keys()
	if len(keys) != 2 || keys[0].Name != "b" || keys[1].Name != "a" {
		t.Fatalf("Keys() = %+v", keys)
	}
	if keys[0].Importance != Medium || keys[0].DisplayName != "b" {
		t.Fatalf("Define did not fill Importance/DisplayName: %+v", keys[0])
	}
	keys[0].Aliases[0] = "mutated"
	if k, ok := d.Key("bee"); !ok || k.Name != "b" || k.Aliases[0] != "bee" {
		t.Fatalf("Key(alias) = %+v, %v", k, ok)
	}
	if _, ok := d.Key("c"); ok {
		t.Fatal("Key(c) found")
	}

	common := NewConfigDef().
		Define(ConfigKey{Name: "name", Type: TypeString, Required: true}).
		Define(ConfigKey{Name: "a", Type: TypeString}).                           // clashes by name: d's wins
		Define(ConfigKey{Name: "z", Type: TypeString, Aliases: []string{"bee"}}). // clashes by alias
		Define(ConfigKey{Name: "tasks.max", Type: TypeInt, Default: "1"})
	m := d.Merge(common)
	var names []string
	for _, k := range m.Keys() {
		names = append(names, k.Name)
	}
	if want := []string{"b", "a", "name", "tasks.max"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("merged keys = %v, want %v", names, want)
	}
	if k, _ := m.Key("a"); k.Type != TypeInt {
		t.Fatalf("merge replaced d's key a: %+v", k)
	}
	c, errs := m.Parse(map[string]string{"name": "n"})
	if errs != nil || c.Int("a") != 1 || c.Int("tasks.max") != 1 {
		t.Fatalf("parse of merged def: %v a=%d", errs, c.Int("a"))
	}
	if len(d.Keys()) != 2 || len(common.Keys()) != 4 {
		t.Fatal("Merge changed its inputs")
	}
	if got := (*ConfigDef)(nil).Merge(d).Keys(); len(got) != 2 {
		t.Fatalf("nil.Merge(d) = %v", got)
	}
}

func TestMask(t *testing.T) {
	d := NewConfigDef().
		Define(ConfigKey{Name: "connection.password", Type: TypePassword, Aliases: []string{"password"}}).
		Define(ConfigKey{Name: "connection.user", Type: TypeString})
	in := map[string]string{"connection.password": "a", "password": "b", "connection.user": "u", "other": "o"}
	got := d.Mask(in)
	want := map[string]string{"connection.password": "[hidden]", "password": "[hidden]", "connection.user": "u", "other": "o"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Mask = %v, want %v", got, want)
	}
	if in["password"] != "b" {
		t.Fatal("Mask changed its input")
	}
	if d.Mask(nil) != nil {
		t.Fatal("Mask(nil) != nil")
	}
}

func TestPasswordNeverPrints(t *testing.T) {
	p := NewPassword("s3cret")
	type wrapper struct{ P Password }
	j, err := json.Marshal(wrapper{p})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		fmt.Sprint(p), fmt.Sprintf("%s %v %+v %#v %q", p, p, p, p, p),
		fmt.Sprintf("%v %+v %#v", wrapper{p}, wrapper{p}, wrapper{p}), string(j),
		(&ConfigValueError{Name: "x", Value: p, Reason: "bad"}).Error(),
	} {
		if strings.Contains(s, "s3cret") || !strings.Contains(s, "[hidden]") {
			t.Fatalf("password leaked or not masked: %s", s)
		}
	}
	if p.Value() != "s3cret" {
		t.Fatal("Value() lost the secret")
	}
}

func TestConfigValueErrorIs(t *testing.T) {
	err := AtLeast(1).Validate("k", int32(0))
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("%v does not match ErrConfig", err)
	}
	var cve *ConfigValueError
	if !errors.As(err, &cve) || cve.Name != "k" {
		t.Fatalf("not a *ConfigValueError: %#v", err)
	}
	if got := (&ConfigValueError{Name: "l", Value: []string{"a", "b"}, Reason: "r"}).Error(); got != "Invalid value [a, b] for configuration l: r" {
		t.Fatalf("list value renders %q", got)
	}
}

func validateDef() *ConfigDef {
	return NewConfigDef().
		Define(ConfigKey{Name: "topic", Type: TypeString, Required: true, Importance: High, Doc: "The topic",
			Group: "Common", OrderInGroup: 1, DisplayName: "Topic"}).
		Define(ConfigKey{Name: "batch.size", Type: TypeInt, Default: "2000", Importance: Low, Doc: "Max records",
			Group: "Common", OrderInGroup: 2, Validator: AtLeast(1), Dependents: []string{"topic"}}).
		Define(ConfigKey{Name: "password", Type: TypePassword, Aliases: []string{"pwd"}}).
		Define(ConfigKey{Name: "ratio", Type: TypeDouble, Default: "1", Group: "Tuning"}).
		Define(ConfigKey{Name: "cols", Type: TypeList, Group: "Tuning", OrderInGroup: 1})
}

func TestValidateAllJSON(t *testing.T) {
	got, err := json.Marshal(validateDef().ValidateAll(map[string]string{
		"topic": "t1", "batch.size": "0", "pwd": "s3cret", "cols": "a , b", "unknown": "u"}))
	if err != nil {
		t.Fatal(err)
	}
	want := `[` +
		`{"definition":{"name":"topic","type":"STRING","required":true,"default_value":null,"importance":"HIGH","documentation":"The topic","group":"Common","width":"NONE","display_name":"Topic","dependents":[],"order":1},` +
		`"value":{"name":"topic","value":"t1","recommended_values":[],"errors":[],"visible":true}},` +
		`{"definition":{"name":"batch.size","type":"INT","required":false,"default_value":"2000","importance":"LOW","documentation":"Max records","group":"Common","width":"NONE","display_name":"batch.size","dependents":["topic"],"order":2},` +
		`"value":{"name":"batch.size","value":"0","recommended_values":[],"errors":["Invalid value 0 for configuration batch.size: Value must be at least 1"],"visible":true}},` +
		`{"definition":{"name":"password","type":"PASSWORD","required":false,"default_value":null,"importance":"MEDIUM","documentation":"","group":null,"width":"NONE","display_name":"password","dependents":[],"order":-1},` +
		`"value":{"name":"password","value":"[hidden]","recommended_values":[],"errors":[],"visible":true}},` +
		`{"definition":{"name":"ratio","type":"DOUBLE","required":false,"default_value":"1.0","importance":"MEDIUM","documentation":"","group":"Tuning","width":"NONE","display_name":"ratio","dependents":[],"order":0},` +
		`"value":{"name":"ratio","value":"1.0","recommended_values":[],"errors":[],"visible":true}},` +
		`{"definition":{"name":"cols","type":"LIST","required":false,"default_value":"","importance":"MEDIUM","documentation":"","group":"Tuning","width":"NONE","display_name":"cols","dependents":[],"order":1},` +
		`"value":{"name":"cols","value":"a,b","recommended_values":[],"errors":[],"visible":true}}` +
		`]`
	if string(got) != want {
		t.Fatalf("ValidateAll JSON\n got %s\nwant %s", got, want)
	}

	// Missing required and unparsable values: value null, Kafka's messages.
	infos := validateDef().ValidateAll(map[string]string{"batch.size": "many"})
	if infos[0].Value.Value != nil || len(infos[0].Value.Errors) != 1 ||
		infos[0].Value.Errors[0] != `Missing required configuration "topic" which has no default value.` {
		t.Fatalf("topic: %+v", infos[0].Value)
	}
	if infos[1].Value.Value != nil || len(infos[1].Value.Errors) != 1 ||
		infos[1].Value.Errors[0] != "Invalid value many for configuration batch.size: Not a number of type INT" {
		t.Fatalf("batch.size: %+v", infos[1].Value)
	}
	if infos[2].Value.Value != nil {
		t.Fatalf("absent password without default should be null, got %q", *infos[2].Value.Value)
	}
}

func TestDescribeJSON(t *testing.T) {
	d := NewConfigDef().
		Define(ConfigKey{Name: "file", Type: TypeString, Importance: High, Doc: "Source filename."}).
		Define(ConfigKey{Name: "topic", Type: TypeList, Required: true, Importance: High, Doc: "The topic", Group: "Common", OrderInGroup: 3, DisplayName: "Topic"}).
		Define(ConfigKey{Name: "pw", Type: TypePassword, Default: "x", Importance: Low})
	got, err := json.Marshal(d.Describe())
	if err != nil {
		t.Fatal(err)
	}
	want := `[` +
		`{"name":"file","type":"STRING","required":false,"default_value":null,"importance":"HIGH","documentation":"Source filename.","group":null,"width":"NONE","display_name":"file","dependents":[],"order":-1},` +
		`{"name":"topic","type":"LIST","required":true,"default_value":null,"importance":"HIGH","documentation":"The topic","group":"Common","width":"NONE","display_name":"Topic","dependents":[],"order":3},` +
		`{"name":"pw","type":"PASSWORD","required":false,"default_value":"[hidden]","importance":"LOW","documentation":"","group":null,"width":"NONE","display_name":"pw","dependents":[],"order":-1}` +
		`]`
	if string(got) != want {
		t.Fatalf("Describe JSON\n got %s\nwant %s", got, want)
	}
	if got, _ := json.Marshal((*ConfigDef)(nil).Describe()); string(got) != "[]" {
		t.Fatalf("nil Describe = %s", got)
	}
	// A client can read it back.
	var back []ConfigKeyInfo
	if err := json.Unmarshal([]byte(want), &back); err != nil || !reflect.DeepEqual(back, d.Describe()) {
		t.Fatalf("round trip: %v\n%+v", err, back)
	}
}

func TestConfigInfosAndMergeErrors(t *testing.T) {
	d := validateDef()
	infos := d.ValidateAll(map[string]string{"topic": "t", "batch.size": "0"})
	merged := MergeErrors(infos, map[string][]string{
		"topic":     {"Topic t does not exist"},
		"extra.key": {"Unsupported key extra.key"},
		"":          {"whole config is odd"},
		"batch.size": {
			"Invalid value 0 for configuration batch.size: Value must be at least 1", // duplicate, skipped
		},
	})
	if len(infos[0].Value.Errors) != 0 {
		t.Fatal("MergeErrors changed its input")
	}
	res := NewConfigInfos("FileStreamSource", d.Groups(), merged)
	if res.ErrorCount != 3 {
		t.Fatalf("error_count = %d, want 3", res.ErrorCount)
	}
	last := res.Configs[len(res.Configs)-1]
	if last.Definition != nil || last.Value.Name != "extra.key" || len(res.Configs) != len(infos)+1 {
		t.Fatalf("undefined key entry: %+v", last)
	}
	j, err := json.Marshal(NewConfigInfos("X", d.Groups(), MergeErrors(nil, map[string][]string{"k": {"bad"}})))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"X","error_count":1,"groups":["Common","Tuning"],"configs":[{"definition":null,"value":{"name":"k","value":null,"recommended_values":[],"errors":["bad"],"visible":true}}]}`
	if string(j) != want {
		t.Fatalf("ConfigInfos JSON\n got %s\nwant %s", j, want)
	}
	if j, _ := json.Marshal(NewConfigInfos("X", nil, nil)); string(j) != `{"name":"X","error_count":0,"groups":[],"configs":[]}` {
		t.Fatalf("empty ConfigInfos = %s", j)
	}
}

func TestMarkdown(t *testing.T) {
	d := validateDef().Define(ConfigKey{Name: "pipe", Type: TypeString, Default: "a|b", Doc: "line1\nline2", Aliases: []string{"p"},
		Validator: OneOf("a|b", "c")})
	md := d.Markdown()
	for _, k := range d.Keys() {
		if !strings.Contains(md, "| `"+k.Name+"` |") {
			t.Fatalf("Markdown lacks key %s:\n%s", k.Name, md)
		}
	}
	for _, s := range []string{
		"### Common", "### Tuning",
		"| `batch.size` | int | `2000` | [1,...] | low | Max records |",
		"| `topic` | string | (required) |  | high | The topic |",
		"| `cols` | list | `\"\"` |",
		"| `pipe` | string | `a\\|b` | [a\\|b, c] | medium | line1 line2 Also accepted as: `p`. |",
	} {
		if !strings.Contains(md, s) {
			t.Fatalf("Markdown lacks %q:\n%s", s, md)
		}
	}
	// Ungrouped keys first, then groups in definition order, by order in group.
	order := []string{"`password`", "`pipe`", "### Common", "`topic`", "`batch.size`", "### Tuning", "`ratio`", "`cols`"}
	last := -1
	for _, s := range order {
		i := strings.Index(md, s)
		if i <= last {
			t.Fatalf("%s out of order in:\n%s", s, md)
		}
		last = i
	}
	if NewConfigDef().Markdown() != "" {
		t.Fatal("empty def renders something")
	}
}

func TestFormatConfigValue(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{nil, "null"}, {"s", "s"}, {true, "true"}, {int32(-3), "-3"}, {int16(7), "7"}, {int64(1) << 40, "1099511627776"},
		{1.0, "1.0"}, {0.5, "0.5"}, {-2.25, "-2.25"}, {1e7, "1.0E7"}, {1.5e-4, "1.5E-4"}, {123456.0, "123456.0"},
		{0.0, "0.0"}, {math.Inf(1), "Infinity"}, {math.NaN(), "NaN"},
		{[]string{"a", "b"}, "a,b"}, {[]string{}, ""}, {NewPassword("x"), "[hidden]"},
	}
	for _, tc := range tests {
		if got := FormatConfigValue(tc.v); got != tc.want {
			t.Errorf("FormatConfigValue(%#v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestValidators(t *testing.T) {
	errFn := ValidatorFunc("an even number", func(name string, v any) error {
		if n, ok := v.(int32); !ok || n%2 != 0 {
			return errors.New("Value must be even")
		}
		return nil
	})
	tests := []struct {
		name    string
		v       Validator
		value   any
		wantErr string // "" = valid
		str     string
	}{
		{"at least ok", AtLeast(1), int32(1), "", "[1,...]"},
		{"at least low", AtLeast(1), int32(0), "Invalid value 0 for configuration k: Value must be at least 1", "[1,...]"},
		{"at least long", AtLeast(int64(-5)), int64(-6), "Invalid value -6 for configuration k: Value must be at least -5", "[-5,...]"},
		{"at least nil", AtLeast(1), nil, "Invalid value null for configuration k: Value must be non-null", "[1,...]"},
		{"at least not number", AtLeast(1), "x", "Invalid value x for configuration k: Value must be a number", "[1,...]"},
		{"range ok low", Range(1, 10), int16(1), "", "[1,...,10]"},
		{"range ok high", Range(1, 10), int64(10), "", "[1,...,10]"},
		{"range high", Range(1, 10), int32(11), "Invalid value 11 for configuration k: Value must be no more than 10", "[1,...,10]"},
		{"range double", Range(0.0, 1.0), 1.5, "Invalid value 1.5 for configuration k: Value must be no more than 1.0", "[0.0,...,1.0]"},
		{"range double ok", Range(0.0, 1.0), 0.25, "", "[0.0,...,1.0]"},
		{"range int bound double value", Range(0, 1), 0.5, "", "[0,...,1]"},
		{"range big longs exact", Range(int64(math.MaxInt64-1), int64(math.MaxInt64-1)), int64(math.MaxInt64),
			"Invalid value 9223372036854775807 for configuration k: Value must be no more than 9223372036854775806", "[9223372036854775806,...,9223372036854775806]"},
		{"one of ok", OneOf("insert", "upsert"), "upsert", "", "[insert, upsert]"},
		{"one of case", OneOf("insert", "upsert"), "INSERT", "Invalid value INSERT for configuration k: String must be one of: insert, upsert", "[insert, upsert]"},
		{"one of ignore case ok", OneOfIgnoreCase("insert", "upsert"), "InSeRt", "", "(case insensitive) [INSERT, UPSERT]"},
		{"one of ignore case bad", OneOfIgnoreCase("insert", "upsert"), "merge", "Invalid value merge for configuration k: String must be one of (case insensitive): INSERT, UPSERT", "(case insensitive) [INSERT, UPSERT]"},
		{"one of not string", OneOf("a"), int32(1), "Invalid value 1 for configuration k: String must be one of: a", "[a]"},
		{"non-empty ok", NonEmptyString(), "x", "", "non-empty string"},
		{"non-empty bad", NonEmptyString(), "", "Invalid value  for configuration k: String must be non-empty", "non-empty string"},
		{"non-empty password", NonEmptyString(), NewPassword(""), "Invalid value [hidden] for configuration k: String must be non-empty", "non-empty string"},
		{"regex ok", Regex(`[a-z]+\d`), "abc1", "", `a string matching [a-z]+\d`},
		{"regex partial", Regex(`[a-z]+\d`), "abc1x", `Invalid value abc1x for configuration k: String must match the regular expression [a-z]+\d`, `a string matching [a-z]+\d`},
		{"regex alternation anchored", Regex(`a|b`), "ab", `Invalid value ab for configuration k: String must match the regular expression a|b`, `a string matching a|b`},
		{"list of ok", ListOf(OneOf("a", "b")), []string{"a", "b", "a"}, "", "[a, b]"},
		{"list of empty ok", ListOf(OneOf("a")), []string{}, "", "[a]"},
		{"list of bad element", ListOf(OneOf("a", "b")), []string{"a", "c"}, "Invalid value c for configuration k: String must be one of: a, b", "[a, b]"},
		{"list of not list", ListOf(OneOf("a")), "a", "Invalid value a for configuration k: Expected a comma separated list.", "[a]"},
		{"non-empty list ok", NonEmptyList(), []string{"x"}, "", "non-empty list"},
		{"non-empty list bad", NonEmptyList(), []string{}, "Invalid value [] for configuration k: List must not be empty", "non-empty list"},
		{"func ok", errFn, int32(2), "", "an even number"},
		{"func bad", errFn, int32(3), "Invalid value 3 for configuration k: Value must be even", "an even number"},
		{"func own error", ValidatorFunc("d", func(name string, v any) error {
			return &ConfigValueError{Name: name, Value: "v2", Reason: "custom"}
		}), "v", "Invalid value v2 for configuration k: custom", "d"},
		{"all ok", All(NonEmptyList(), ListOf(OneOf("a"))), []string{"a"}, "", "non-empty list, [a]"},
		{"all first fails", All(NonEmptyList(), ListOf(OneOf("a"))), []string{}, "Invalid value [] for configuration k: List must not be empty", "non-empty list, [a]"},
		{"all second fails", All(NonEmptyList(), ListOf(OneOf("a"))), []string{"b"}, "Invalid value b for configuration k: String must be one of: a", "non-empty list, [a]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.v.Validate("k", tc.value)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
				t.Fatalf("error = %v, want %q", err, tc.wantErr)
			case tc.wantErr != "" && !errors.Is(err, ErrConfig):
				t.Fatalf("error %v does not match ErrConfig", err)
			}
			if got := tc.v.String(); got != tc.str {
				t.Fatalf("String() = %q, want %q", got, tc.str)
			}
		})
	}
}

func TestRegexPanicsOnBadPattern(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	Regex("(")
}

func TestTaskConfigsOf(t *testing.T) {
	config := map[string]string{"topics": "a", "name": "c"}
	got := TaskConfigsOf(config, 3)
	if len(got) != 3 {
		t.Fatalf("%d configs, want 3", len(got))
	}
	got[0]["topics"] = "changed"
	if config["topics"] != "a" || got[1]["topics"] != "a" || got[2]["name"] != "c" {
		t.Fatalf("configs share a map: %v, %v", config, got)
	}
	if n := len(TaskConfigsOf(config, 0)); n != 1 {
		t.Fatalf("maxTasks 0: %d configs, want 1", n)
	}
	if c := TaskConfigsOf(nil, 1)[0]; c == nil {
		t.Fatal("a nil config gives a nil task config")
	}
}
