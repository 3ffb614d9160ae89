package cdc

import (
	"fmt"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/tributary-data/tributary/connect"
)

func dec(unscaled int64, scale int32) connect.Decimal {
	return connect.Decimal{Unscaled: big.NewInt(unscaled), Scale: scale}
}

func bigDec(s string, scale int32) connect.Decimal {
	u, _ := new(big.Int).SetString(s, 10)
	return connect.Decimal{Unscaled: u, Scale: scale}
}

// golden is one column of the type mapping contract: its SQL type, a
// literal, the Connect schema (type, name, parameters) and the value.
type golden struct {
	col, sqlType, literal string
	typ                   connect.Type
	name                  string
	params                string // k=v,k=v sorted
	elem                  string // array element: type/name
	want                  any
}

func goldens() []golden {
	micro := func(t time.Time) int64 { return t.UnixMicro() }
	return []golden{
		{"i2", "int2", "-32768", connect.Int16, "", "", "", int16(-32768)},
		{"i4", "int4", "2147483647", connect.Int32, "", "", "", int32(2147483647)},
		{"i8", "int8", "-9223372036854775808", connect.Int64, "", "", "", int64(math.MinInt64)},
		{"f4", "float4", "1.5", connect.Float32, "", "", "", float32(1.5)},
		{"f8", "float8", "-2.25e-300", connect.Float64, "", "", "", -2.25e-300},
		{"f8nan", "float8", "'NaN'", connect.Float64, "", "", "", math.NaN()},
		{"b", "bool", "true", connect.Boolean, "", "", "", true},
		{"t", "text", `'hé "q" \'`, connect.String, "", "", "", `hé "q" \`},
		{"vc", "varchar(10)", "'abc'", connect.String, "", "", "", "abc"},
		{"c", "char(3)", "'ab'", connect.String, "", "", "", "ab "},
		{"qc", `"char"`, "'x'", connect.String, "", "", "", "x"},
		{"nm", "name", "'nm'", connect.String, "", "", "", "nm"},
		{"by", "bytea", `'\x00ff10'`, connect.Bytes, "", "", "", []byte{0, 0xff, 0x10}},
		{"n", "numeric(10,2)", "12345678.91", connect.Bytes, connect.DecimalName, "connect.decimal.precision=10,scale=2", "", dec(1234567891, 2)},
		{"n0", "numeric(10,2)", "-1.5", connect.Bytes, connect.DecimalName, "connect.decimal.precision=10,scale=2", "", dec(-150, 2)},
		{"nbig", "numeric(38,10)", "1234567890123456789012345678.0123456789", connect.Bytes, connect.DecimalName, "connect.decimal.precision=38,scale=10", "",
			bigDec("12345678901234567890123456780123456789", 10)},
		{"nv", "numeric", "-0.000123", connect.StructT, nameVariableScaleDecimal, "", "", "scale=6 value=85"},
		{"u", "uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", connect.String, nameUUID, "", "", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"j", "json", `'{"a": 1}'`, connect.String, nameJSON, "", "", `{"a": 1}`},
		{"jb", "jsonb", `'{"b":[1,2]}'`, connect.String, nameJSON, "", "", `{"b": [1, 2]}`},
		{"ts", "timestamp", "'2024-01-02 03:04:05.123456'", connect.Int64, nameMicroTimestamp, "", "", micro(time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC))},
		{"ts0", "timestamp(0)", "'1969-12-31 23:59:59'", connect.Int64, nameMicroTimestamp, "", "", int64(-1_000_000)},
		{"tstz", "timestamptz", "'2024-01-02 03:04:05.5+02'", connect.String, nameZonedTimestamp, "", "", "2024-01-02T01:04:05.5Z"},
		{"tstz6", "timestamptz", "'2024-01-02 03:04:05.123456Z'", connect.String, nameZonedTimestamp, "", "", "2024-01-02T03:04:05.123456Z"},
		{"d", "date", "'2024-01-02'", connect.Int32, nameDate, "", "", int32(19724)},
		{"dbc", "date", "'0044-03-15 BC'", connect.Int32, nameDate, "", "", int32(time.Date(-43, 3, 15, 0, 0, 0, 0, time.UTC).Unix() / 86400)},
		{"tm", "time", "'03:04:05.000001'", connect.Int64, nameMicroTime, "", "", int64(3*3600_000_000 + 4*60_000_000 + 5_000_001)},
		{"tmtz", "timetz", "'03:04:05+02:30'", connect.String, nameZonedTime, "", "", "00:34:05Z"},
		{"iv", "interval", "'1 year 2 mons 3 days 04:05:06.789'", connect.Int64, nameMicroDuration, "", "",
			int64(14*microsPerMonth + 3*86_400_000_000 + 4*3_600_000_000 + 5*60_000_000 + 6_789_000)},
		{"ivneg", "interval", "'-1 days -00:00:01.5'", connect.Int64, nameMicroDuration, "", "", int64(-86_400_000_000 - 1_500_000)},
		{"ai", "int4[]", "'{1,NULL,3}'", connect.Array, "", "", "int32/", []any{int32(1), nil, int32(3)}},
		{"at", "text[]", `'{"a b","c\"d",NULL,"",NULLX}'`, connect.Array, "", "", "string/", []any{"a b", `c"d`, nil, "", "NULLX"}},
		{"an", "numeric(6,2)[]", "'{1.5,-2.25}'", connect.Array, "", "", "bytes/" + connect.DecimalName, []any{dec(150, 2), dec(-225, 2)}},
		{"e", "mood", "'happy'", connect.String, nameEnum, "allowed=sad,ok,happy", "", "happy"},
		{"ae", "mood[]", "'{sad,ok}'", connect.Array, "", "", "string/" + nameEnum, []any{"sad", "ok"}},
		{"dom", "posint", "5", connect.Int32, "", "", "", int32(5)},
		{"inet", "inet", "'10.0.0.1/8'", connect.String, "", "", "", "10.0.0.1/8"},
		{"pt", "point", "'(1,2)'", connect.String, "", "", "", "(1,2)"},
		{"nn", "int NOT NULL", "7", connect.Int32, "", "", "", int32(7)},
	}
}

func paramString(p map[string]string) string {
	var parts []string
	for k, v := range p {
		parts = append(parts, k+"="+v)
	}
	if len(parts) == 0 {
		return ""
	}
	// sorted
	for i := range parts {
		for j := i + 1; j < len(parts); j++ {
			if parts[j] < parts[i] {
				parts[i], parts[j] = parts[j], parts[i]
			}
		}
	}
	return strings.Join(parts, ",")
}

func renderValue(v any) any {
	if st, ok := v.(*connect.Struct); ok && st.Schema().Name == nameVariableScaleDecimal {
		return fmt.Sprintf("scale=%v value=%x", st.Get("scale"), st.Get("value"))
	}
	return v
}

func valueMatches(got, want any) bool {
	if f, ok := want.(float64); ok && math.IsNaN(f) {
		g, ok := got.(float64)
		return ok && math.IsNaN(g)
	}
	return connect.ValuesEqual(renderValue(got), want)
}

// Every mapped type, read by the snapshot and by the stream, gives the
// contract's schema and value; NULLs give nil in optional fields.
func TestTypeMapping(t *testing.T) {
	db := newDB(t)
	gs := goldens()
	cols := []string{"id int PRIMARY KEY"}
	var names, lits, nulls []string
	for _, g := range gs {
		cols = append(cols, g.col+" "+g.sqlType)
		names = append(names, g.col)
		lits = append(lits, g.literal)
		if g.col == "nn" {
			nulls = append(nulls, "8")
		} else {
			nulls = append(nulls, "NULL")
		}
	}
	insert := func(id int, vals []string) string {
		return fmt.Sprintf("INSERT INTO types (id, %s) VALUES (%d, %s)", strings.Join(names, ", "), id, strings.Join(vals, ", "))
	}
	exec(t, db, "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')", "CREATE DOMAIN posint AS int CHECK (VALUE > 0)",
		"CREATE TABLE types ("+strings.Join(cols, ", ")+")", insert(1, lits), insert(2, nulls))
	task := startTask(t, baseConfig(db), nil)
	col := &collector{t: t, task: task, commit: true}
	col.until(20*time.Second, "the snapshot", func() bool { return len(col.events) == 2 })
	exec(t, db, insert(3, lits), insert(4, nulls))
	col.until(20*time.Second, "the stream", func() bool { return len(col.events) == 4 })
	for _, e := range col.events {
		after := e.rec.Value.(*connect.Struct).Get("after").(*connect.Struct)
		id := after.Get("id").(int32)
		for _, g := range gs {
			f, ok := after.Schema().Field(g.col)
			if !ok {
				t.Fatalf("no field %s", g.col)
			}
			s := f.Schema
			if s.Type != g.typ || s.Name != g.name || paramString(s.Parameters) != g.params {
				t.Errorf("%s %s: schema %s %s {%s}, want %s %s {%s}", g.col, g.sqlType, s.Type, s.Name, paramString(s.Parameters), g.typ, g.name, g.params)
			}
			if s.Optional == (g.col == "nn") {
				t.Errorf("%s: optional=%v", g.col, s.Optional)
			}
			if g.elem != "" && string(s.ValueSchema.Type)+"/"+s.ValueSchema.Name != g.elem {
				t.Errorf("%s: element %s/%s, want %s", g.col, s.ValueSchema.Type, s.ValueSchema.Name, g.elem)
			}
			if g.name != "" && (s.Version == nil || *s.Version != 1) {
				t.Errorf("%s: %s without version 1", g.col, g.name)
			}
			v := after.Get(g.col)
			switch {
			case id%2 == 0 && g.col != "nn":
				if v != nil {
					t.Errorf("row %d: %s is %v, want null", id, g.col, v)
				}
			case id%2 == 0:
			case !valueMatches(v, g.want):
				t.Errorf("row %d (%s): %s = %#v, want %#v", id, e.op, g.col, renderValue(v), g.want)
			}
		}
	}
}

func TestTextParsers(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int32
	}{{"1970-01-01", 0}, {"2000-03-01", 11017}, {"0001-01-01 BC", -719528}, {"infinity", math.MaxInt32}, {"-infinity", -math.MaxInt32}, {"10000-01-01", 2932897}} {
		got, err := parseDate([]byte(c.in))
		if err != nil || got != c.want {
			t.Errorf("parseDate(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"2024-01-02 03:04:05+00", "2024-01-02T03:04:05Z"},
		{"2024-01-02 00:30:00.100000-01:30", "2024-01-02T02:00:00.1Z"},
		{"12345-06-07 08:09:10+00", "+12345-06-07T08:09:10Z"},
		{"0044-03-15 12:00:00+00 BC", "-0043-03-15T12:00:00Z"},
		{"infinity", "infinity"},
	} {
		got, err := parseTimestamptz([]byte(c.in))
		if err != nil || got != c.want {
			t.Errorf("parseTimestamptz(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, c := range []struct {
		in   string
		want int64
	}{{"PT0S", 0}, {"P1Y", 12 * microsPerMonth}, {"P-1M2DT-3H", -microsPerMonth + 2*86_400_000_000 - 3*3_600_000_000}, {"PT-1.000001S", -1_000_001}, {"PT1M30.5S", 90_500_000}} {
		got, err := parseInterval([]byte(c.in))
		if err != nil || got != c.want {
			t.Errorf("parseInterval(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, c := range []struct {
		v    int64
		want string
	}{{0, "00"}, {127, "7f"}, {128, "0080"}, {-1, "ff"}, {-128, "80"}, {-129, "ff7f"}, {255, "00ff"}, {-123, "85"}} {
		if got := fmt.Sprintf("%x", twosComplement(big.NewInt(c.v))); got != c.want {
			t.Errorf("twosComplement(%d) = %s, want %s", c.v, got, c.want)
		}
	}
	if _, err := parseArray([]byte("{{1,2},{3,4}}"), ',', convString); err == nil {
		t.Error("a multi-dimensional array parsed")
	}
	if got, err := parseArray([]byte("[0:1]={a,b}"), ',', convString); err != nil || fmt.Sprint(got) != "[a b]" {
		t.Errorf("array with bounds: %v %v", got, err)
	}
	if _, err := parseNumeric([]byte("NaN")); err == nil {
		t.Error("NaN became a Decimal")
	}
	if d, err := rescale(dec(123, 0), -2); err == nil {
		t.Errorf("123 rescaled to -2: %v", d)
	}
	if d, err := rescale(dec(12300, 0), -2); err != nil || d.Unscaled.Int64() != 123 {
		t.Errorf("12300 rescaled to -2: %v %v", d, err)
	}
	for _, in := range []string{"99999", "-9223372036854775809", "1x", ""} {
		if _, ok := parseInt([]byte(in), 16); ok {
			t.Errorf("parseInt(%q, 16) accepted", in)
		}
	}
}

// A value that cannot be converted fails the task with a message naming
// the table, the column and what to do; nothing is skipped.
func TestUnconvertibleValueFailsTask(t *testing.T) {
	db := newDB(t)
	exec(t, db, "CREATE TABLE m (id int PRIMARY KEY, amount numeric(10,2))", "INSERT INTO m VALUES (1, 'NaN')")
	task := startTask(t, baseConfig(db), nil)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := task.Poll(t.Context())
		if err != nil {
			msg := err.Error()
			if !strings.Contains(msg, `"amount"`) || !strings.Contains(msg, "public.m") || !strings.Contains(msg, "NaN") {
				t.Fatalf("error does not say what and where: %v", err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no error for a NaN numeric(10,2)")
		}
	}
}
