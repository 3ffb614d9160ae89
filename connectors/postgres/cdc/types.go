package cdc

// Type mapping: PostgreSQL column types to Connect schemas, as Debezium's
// defaults (decimal.handling.mode=precise, time.precision.mode=adaptive,
// binary.handling.mode=bytes, interval.handling.mode=numeric) name them.
// This list is the contract the Postgres sink decodes:
//
//	int2 -> int16, int4 -> int32, int8 -> int64, float4 -> float, float8 -> double,
//	bool -> boolean, text/varchar/bpchar/"char"/name -> string, bytea -> bytes,
//	numeric(p,s) -> bytes org.apache.kafka.connect.data.Decimal {scale, connect.decimal.precision},
//	numeric -> struct io.debezium.data.VariableScaleDecimal {scale int32, value bytes},
//	uuid -> string io.debezium.data.Uuid, json/jsonb -> string io.debezium.data.Json,
//	timestamp -> int64 io.debezium.time.MicroTimestamp (µs since the epoch),
//	timestamptz -> string io.debezium.time.ZonedTimestamp ("2024-01-02T03:04:05.123456Z"),
//	date -> int32 io.debezium.time.Date (days since the epoch),
//	time -> int64 io.debezium.time.MicroTime (µs since midnight),
//	timetz -> string io.debezium.time.ZonedTime ("03:04:05.5Z", in UTC),
//	interval -> int64 io.debezium.time.MicroDuration (µs; a month is 30.4375 days),
//	arrays -> array of the element type's schema (optional elements),
//	enums -> string io.debezium.data.Enum {allowed: "a,b,c"},
//	domains -> their base type, anything else -> string (its text form).
//
// Deviations from Debezium, on purpose: timestamp(p)/time(p) with p <= 3 are
// MicroTimestamp/MicroTime as well (Debezium's adaptive mode would use
// millisecond types); the sink's contract wants one type per column type.
// Infinite dates and timestamps become the extremes of the target type
// (date ±2147483647 days, timestamp ±9223372036854775807 µs); timestamptz
// 'infinity' stays the string "infinity". NaN and infinite numerics cannot be
// Decimals: the task fails naming the column (exclude it with
// column.exclude.list or fix the row). Multi-dimensional array values fail
// the same way.

import (
	"context"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tributary-data/tributary/connect"
)

// Debezium's logical type names.
const (
	nameVariableScaleDecimal = "io.debezium.data.VariableScaleDecimal"
	nameUUID                 = "io.debezium.data.Uuid"
	nameJSON                 = "io.debezium.data.Json"
	nameEnum                 = "io.debezium.data.Enum"
	nameMicroTimestamp       = "io.debezium.time.MicroTimestamp"
	nameZonedTimestamp       = "io.debezium.time.ZonedTimestamp"
	nameDate                 = "io.debezium.time.Date"
	nameMicroTime            = "io.debezium.time.MicroTime"
	nameZonedTime            = "io.debezium.time.ZonedTime"
	nameMicroDuration        = "io.debezium.time.MicroDuration"

	// decimalPrecisionParam is the Decimal schema parameter Debezium adds
	// with the column's declared precision.
	decimalPrecisionParam = "connect.decimal.precision"
	enumAllowedParam      = "allowed"
)

// valueKind tells how an unchanged TOAST value is rendered (see
// placeholder).
type valueKind uint8

const (
	kindOther valueKind = iota
	kindString
	kindBytes
	kindStringArray
	kindBytesArray
	kindInt16Array
	kindInt32Array
	kindInt64Array
)

// colType is a column type's Connect schema (required form) and the
// converter from its text form to the schema's Go value.
type colType struct {
	schema *connect.Schema
	conv   func([]byte) (any, error)
	kind   valueKind
	// zero is Debezium's fallback for a required column whose value the
	// event does not carry (a key-only old tuple): 0, "", false, ...
	zero any
	// optional, when set, returns the optional variant (for types whose
	// values carry their schema: structs).
	optional func() colType
}

// asOptional returns the column type of a nullable column.
func (ct colType) asOptional() colType {
	if ct.optional != nil {
		return ct.optional()
	}
	o := ct
	o.schema = ct.schema.AsOptional()
	return o
}

func version1() *int32 { v := int32(1); return &v }

func named(t connect.Type, name string) *connect.Schema {
	return &connect.Schema{Type: t, Name: name, Version: version1()}
}

// variableScaleDecimalSchema is Debezium's VariableScaleDecimal struct.
func variableScaleDecimalSchema() *connect.Schema {
	s := connect.StructOf(nameVariableScaleDecimal,
		connect.F("scale", connect.Int32Schema), connect.F("value", connect.BytesSchema))
	s.Version = version1()
	s.Doc = "Variable scaled decimal"
	return s
}

// pgType is a row of pg_type, for the types not hardcoded below.
type pgType struct {
	oid        uint32
	name       string
	typtype    byte   // b base, e enum, d domain, c composite, r range, m multirange, p pseudo
	category   byte   // A for arrays
	elem       uint32 // element type of an array
	base       uint32 // base type of a domain
	baseTypmod int32
	delim      byte
	labels     []string // enum labels, in sort order
}

// typeCatalog caches pg_type rows by OID. It is owned by one goroutine.
type typeCatalog struct {
	types map[uint32]*pgType
}

func newTypeCatalog() *typeCatalog { return &typeCatalog{types: map[uint32]*pgType{}} }

// builtin reports whether oid is a type mapped without the catalog.
func builtin(oid uint32) bool {
	switch oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.Float4OID, pgtype.Float8OID,
		pgtype.BoolOID, pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.QCharOID,
		pgtype.NameOID, pgtype.ByteaOID, pgtype.NumericOID, pgtype.UUIDOID, pgtype.JSONOID,
		pgtype.JSONBOID, pgtype.TimestampOID, pgtype.TimestamptzOID, pgtype.DateOID,
		pgtype.TimeOID, pgtype.TimetzOID, pgtype.IntervalOID:
		return true
	}
	return false
}

// invalidate forgets a type (pgoutput sent a TYPE message: it may have
// changed, e.g. an enum got a label).
func (tc *typeCatalog) invalidate(oid uint32) { delete(tc.types, oid) }

// load fetches the rows of the given types (and, recursively, of their
// element and base types) that are not cached yet.
func (tc *typeCatalog) load(ctx context.Context, conn *pgx.Conn, oids []uint32) error {
	for round := 0; round < 8; round++ {
		var missing []uint32
		seen := map[uint32]bool{}
		for _, o := range oids {
			if o == 0 || builtin(o) || seen[o] {
				continue
			}
			if _, ok := tc.types[o]; !ok {
				missing = append(missing, o)
				seen[o] = true
			}
		}
		if len(missing) == 0 {
			return nil
		}
		rows, err := conn.Query(ctx, `SELECT t.oid, t.typname, t.typtype, t.typcategory, t.typelem, t.typbasetype, t.typtypmod, t.typdelim,
			COALESCE((SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '{}')
			FROM pg_type t WHERE t.oid = ANY($1)`, missing)
		if err != nil {
			return fmt.Errorf("reading pg_type: %w", err)
		}
		oids = oids[:0:0]
		for rows.Next() {
			var t pgType
			var typtype, category, delim string
			if err := rows.Scan(&t.oid, &t.name, &typtype, &category, &t.elem, &t.base, &t.baseTypmod, &delim, &t.labels); err != nil {
				rows.Close()
				return fmt.Errorf("reading pg_type: %w", err)
			}
			t.typtype, t.category, t.delim = firstByte(typtype), firstByte(category), firstByte(delim)
			tc.types[t.oid] = &t
			oids = append(oids, t.elem, t.base)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading pg_type: %w", err)
		}
		for _, o := range missing {
			if _, ok := tc.types[o]; !ok {
				// Dropped since: map it as text.
				tc.types[o] = &pgType{oid: o, name: "oid " + strconv.FormatUint(uint64(o), 10), typtype: 'b', delim: ','}
			}
		}
	}
	return nil
}

func firstByte(s string) byte {
	if s == "" {
		return 0
	}
	return s[0]
}

// stringType is the text-form fallback.
func stringType() colType {
	return colType{schema: connect.StringSchema, conv: convString, kind: kindString, zero: ""}
}

func convString(b []byte) (any, error) { return string(b), nil }

// mapType returns the column type of a PostgreSQL type and type modifier.
// Types other than the hardcoded ones must have been loaded.
func (tc *typeCatalog) mapType(oid uint32, typmod int32) colType {
	return tc.mapTypeDepth(oid, typmod, 0)
}

func (tc *typeCatalog) mapTypeDepth(oid uint32, typmod int32, depth int) colType {
	switch oid {
	case pgtype.Int2OID:
		return colType{schema: connect.Int16Schema, zero: int16(0), conv: func(b []byte) (any, error) {
			v, ok := parseInt(b, 16)
			if !ok {
				return nil, syntaxErr("int2", b)
			}
			return int16(v), nil
		}}
	case pgtype.Int4OID:
		return colType{schema: connect.Int32Schema, zero: int32(0), conv: func(b []byte) (any, error) {
			v, ok := parseInt(b, 32)
			if !ok {
				return nil, syntaxErr("int4", b)
			}
			return int32(v), nil
		}}
	case pgtype.Int8OID:
		return colType{schema: connect.Int64Schema, zero: int64(0), conv: func(b []byte) (any, error) {
			v, ok := parseInt(b, 64)
			if !ok {
				return nil, syntaxErr("int8", b)
			}
			return v, nil
		}}
	case pgtype.Float4OID:
		return colType{schema: connect.Float32Schema, zero: float32(0), conv: func(b []byte) (any, error) {
			v, err := strconv.ParseFloat(string(b), 32)
			if err != nil {
				return nil, syntaxErr("float4", b)
			}
			return float32(v), nil
		}}
	case pgtype.Float8OID:
		return colType{schema: connect.Float64Schema, zero: float64(0), conv: func(b []byte) (any, error) {
			v, err := strconv.ParseFloat(string(b), 64)
			if err != nil {
				return nil, syntaxErr("float8", b)
			}
			return v, nil
		}}
	case pgtype.BoolOID:
		return colType{schema: connect.BooleanSchema, zero: false, conv: func(b []byte) (any, error) {
			v, err := parseBool(b)
			if err != nil {
				return nil, err
			}
			return v, nil
		}}
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.QCharOID, pgtype.NameOID:
		return stringType()
	case pgtype.ByteaOID:
		return colType{schema: connect.BytesSchema, kind: kindBytes, zero: []byte{}, conv: func(b []byte) (any, error) {
			v, err := parseBytea(b)
			if err != nil {
				return nil, err
			}
			return v, nil
		}}
	case pgtype.NumericOID:
		return numericType(typmod)
	case pgtype.UUIDOID:
		return colType{schema: named(connect.String, nameUUID), conv: convString, kind: kindString, zero: ""}
	case pgtype.JSONOID, pgtype.JSONBOID:
		return colType{schema: named(connect.String, nameJSON), conv: convString, kind: kindString, zero: ""}
	case pgtype.TimestampOID:
		return colType{schema: named(connect.Int64, nameMicroTimestamp), zero: int64(0), conv: func(b []byte) (any, error) {
			v, err := parseTimestamp(b)
			if err != nil {
				return nil, err
			}
			return v, nil
		}}
	case pgtype.TimestamptzOID:
		return colType{schema: named(connect.String, nameZonedTimestamp), zero: "1970-01-01T00:00:00Z", conv: func(b []byte) (any, error) {
			v, err := parseTimestamptz(b)
			if err != nil {
				return nil, err
			}
			return v, nil
		}}
	case pgtype.DateOID:
		return colType{schema: named(connect.Int32, nameDate), zero: int32(0), conv: func(b []byte) (any, error) {
			v, err := parseDate(b)
			if err != nil {
				return nil, err
			}
			return v, nil
		}}
	case pgtype.TimeOID:
		return colType{schema: named(connect.Int64, nameMicroTime), zero: int64(0), conv: func(b []byte) (any, error) {
			v, err := parseTime(b)
			if err != nil {
				return nil, err
			}
			return v, nil
		}}
	case pgtype.TimetzOID:
		return colType{schema: named(connect.String, nameZonedTime), zero: "00:00:00Z", conv: func(b []byte) (any, error) {
			v, err := parseTimetz(b)
			if err != nil {
				return nil, err
			}
			return v, nil
		}}
	case pgtype.IntervalOID:
		return colType{schema: named(connect.Int64, nameMicroDuration), zero: int64(0), conv: func(b []byte) (any, error) {
			v, err := parseInterval(b)
			if err != nil {
				return nil, err
			}
			return v, nil
		}}
	}
	t := tc.types[oid]
	if t == nil || depth > 16 {
		return stringType()
	}
	switch {
	case t.typtype == 'd':
		if typmod < 0 {
			typmod = t.baseTypmod
		}
		return tc.mapTypeDepth(t.base, typmod, depth+1)
	case t.typtype == 'e':
		s := named(connect.String, nameEnum)
		s.Parameters = map[string]string{enumAllowedParam: strings.Join(t.labels, ",")}
		return colType{schema: s, conv: convString, kind: kindString, zero: ""}
	case t.category == 'A' && t.elem != 0:
		return tc.arrayType(t, typmod, depth)
	}
	return stringType()
}

func (tc *typeCatalog) arrayType(t *pgType, typmod int32, depth int) colType {
	et := tc.mapTypeDepth(t.elem, typmod, depth+1).asOptional()
	delim := t.delim
	if delim == 0 {
		delim = ','
	}
	elemConv := et.conv
	ct := colType{schema: connect.ArrayOf(et.schema), zero: []any{}}
	ct.conv = func(b []byte) (any, error) {
		v, err := parseArray(b, delim, elemConv)
		if err != nil {
			return nil, err
		}
		return v, nil
	}
	switch {
	case et.kind == kindString:
		ct.kind = kindStringArray
	case et.kind == kindBytes:
		ct.kind = kindBytesArray
	case et.schema.Name == "" && et.schema.Type == connect.Int16:
		ct.kind = kindInt16Array
	case et.schema.Name == "" && et.schema.Type == connect.Int32:
		ct.kind = kindInt32Array
	case et.schema.Name == "" && et.schema.Type == connect.Int64:
		ct.kind = kindInt64Array
	}
	return ct
}

// numericType maps numeric(p,s) to Decimal and unconstrained numeric to
// VariableScaleDecimal.
func numericType(typmod int32) colType {
	if typmod < 4 {
		return variableScaleDecimalType(false)
	}
	precision := ((typmod - 4) >> 16) & 0xffff
	scale := (((typmod - 4) & 0x7ff) ^ 1024) - 1024
	s := &connect.Schema{Type: connect.Bytes, Name: connect.DecimalName, Version: version1(), Parameters: map[string]string{
		connect.DecimalScaleParam: strconv.Itoa(int(scale)),
		decimalPrecisionParam:     strconv.Itoa(int(precision)),
	}}
	return colType{schema: s, zero: connect.Decimal{Unscaled: new(big.Int), Scale: scale}, conv: func(b []byte) (any, error) {
		d, err := parseNumeric(b)
		if err != nil {
			return nil, err
		}
		d, err = rescale(d, scale)
		if err != nil {
			return nil, err
		}
		return d, nil
	}}
}

// variableScaleDecimalType is unconstrained numeric: a struct whose
// values are built with the (optional or required) schema of their field.
func variableScaleDecimalType(optional bool) colType {
	s := variableScaleDecimalSchema()
	s.Optional = optional
	zero := connect.NewStruct(s).MustPut("scale", int32(0)).MustPut("value", []byte{0})
	return colType{schema: s, zero: zero,
		optional: func() colType { return variableScaleDecimalType(true) },
		conv: func(b []byte) (any, error) {
			d, err := parseNumeric(b)
			if err != nil {
				return nil, err
			}
			st := connect.NewStruct(s)
			st.MustPut("scale", d.Scale)
			st.MustPut("value", twosComplement(d.Unscaled))
			return st, nil
		}}
}

// placeholder returns the value standing for an unchanged TOAST value
// that the event does not carry (unavailable.value.placeholder), as
// Debezium renders it: the string itself for string columns, its UTF-8
// bytes for bytea, a one-element array for text and bytea arrays, and for
// integer arrays one element per byte of the placeholder. Other types have
// no placeholder: ok is false.
func placeholder(kind valueKind, text string) (any, bool) {
	switch kind {
	case kindString:
		return text, true
	case kindBytes:
		return []byte(text), true
	case kindStringArray:
		return []any{text}, true
	case kindBytesArray:
		return []any{[]byte(text)}, true
	case kindInt16Array, kindInt32Array, kindInt64Array:
		out := make([]any, len(text))
		for i := 0; i < len(text); i++ {
			switch kind {
			case kindInt16Array:
				out[i] = int16(text[i])
			case kindInt32Array:
				out[i] = int32(text[i])
			default:
				out[i] = int64(text[i])
			}
		}
		return out, true
	}
	return nil, false
}
