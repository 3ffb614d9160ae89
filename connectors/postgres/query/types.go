package query

// Type mapping, PostgreSQL -> Connect (version 1), decided per result
// column from its type OID and modifier:
//
//	int2 / int4 / int8           int16 / int32 / int64
//	float4 / float8              float32 / float64
//	bool                         boolean
//	text, varchar, bpchar, name  string
//	bytea                        bytes
//	numeric(p,s)                 numeric.mapping=none: Decimal(scale s, parameter connect.decimal.precision=p)
//	                             best_fit: s<=0 and p<19: int8 (p<3), int16 (p<5), int32 (p<10), int64;
//	                                       s>0 and p<19: float64; else Decimal(scale s)
//	                             best_fit_eager_double: s>0: float64; else as best_fit
//	                             precision_only: s<=0 and p<19: as best_fit's integers; else Decimal
//	numeric (no precision)       best_fit*: float64; none, precision_only: string (its exact text),
//	                             as a Decimal needs a fixed scale
//	date                         Date (days, UTC midnight)
//	time                         Time (milliseconds of the day)
//	timestamp                    Timestamp (ms): the wall clock read in db.timezone
//	timestamptz                  Timestamp (ms): the instant
//	uuid, json, jsonb, and every other type (timetz, interval, inet, arrays, enums, ...)
//	                             string: PostgreSQL's text form (the column is selected as ::text)
//
// Fields are optional unless the column is a NOT NULL table column. The
// infinite dates and timestamps PostgreSQL allows have no Connect value:
// they are read as 9999-12-31T23:59:59.999Z and 0001-01-01T00:00:00Z.

import (
	"fmt"
	"math/big"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tributary-data/tributary/connect"
)

// Type OIDs.
const (
	oidBool        = 16
	oidBytea       = 17
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidFloat4      = 700
	oidFloat8      = 701
	oidBpchar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidNumeric     = 1700
)

// Numeric mappings (numeric.mapping).
const (
	mapNone         = "none"
	mapBestFit      = "best_fit"
	mapBestFitEager = "best_fit_eager_double"
	mapPrecision    = "precision_only"
)

type colKind uint8

const (
	kInt16 colKind = iota
	kInt32
	kInt64
	kFloat32
	kFloat64
	kBool
	kText // text types and everything selected as ::text
	kBytes
	kDecimal
	kNumInt8 // numeric read as an integer or float (best_fit)
	kNumInt16
	kNumInt32
	kNumInt64
	kNumFloat64
	kDate
	kTime
	kTimestamp
	kTimestamptz
)

// column is one result column of a table or query and how it is read.
type column struct {
	name    string
	kind    colKind
	asText  bool // selected as ::text
	scale   int32
	schema  *connect.Schema
	notNull bool
}

// mapColumn decides how a result column is read.
func mapColumn(fd pgconn.FieldDescription, numericMapping string, notNull bool) column {
	c := column{name: fd.Name, notNull: notNull}
	var s *connect.Schema
	switch fd.DataTypeOID {
	case oidInt2:
		c.kind, s = kInt16, connect.Int16Schema
	case oidInt4:
		c.kind, s = kInt32, connect.Int32Schema
	case oidInt8:
		c.kind, s = kInt64, connect.Int64Schema
	case oidFloat4:
		c.kind, s = kFloat32, connect.Float32Schema
	case oidFloat8:
		c.kind, s = kFloat64, connect.Float64Schema
	case oidBool:
		c.kind, s = kBool, connect.BooleanSchema
	case oidText, oidVarchar, oidBpchar, oidName:
		c.kind, s = kText, connect.StringSchema
	case oidBytea:
		c.kind, s = kBytes, connect.BytesSchema
	case oidDate:
		c.kind, s = kDate, connect.DateSchema()
	case oidTime:
		c.kind, s = kTime, connect.TimeSchema()
	case oidTimestamp:
		c.kind, s = kTimestamp, connect.TimestampSchema()
	case oidTimestamptz:
		c.kind, s = kTimestamptz, connect.TimestampSchema()
	case oidNumeric:
		c.kind, s = mapNumeric(fd.TypeModifier, numericMapping, &c)
	default:
		c.kind, c.asText, s = kText, true, connect.StringSchema
	}
	if !notNull {
		s = s.AsOptional()
	}
	c.schema = s
	return c
}

func mapNumeric(typmod int32, mapping string, c *column) (colKind, *connect.Schema) {
	if typmod < 4 { // unconstrained numeric
		if mapping == mapBestFit || mapping == mapBestFitEager {
			return kNumFloat64, connect.Float64Schema
		}
		c.asText = true
		return kText, connect.StringSchema
	}
	precision, scale := (typmod-4)>>16&0xffff, int32(int16((typmod-4)&0xffff))
	if mapping == mapBestFitEager && scale > 0 {
		return kNumFloat64, connect.Float64Schema
	}
	if mapping != mapNone && precision < 19 {
		if scale <= 0 {
			switch {
			case precision < 3:
				return kNumInt8, connect.Int8Schema
			case precision < 5:
				return kNumInt16, connect.Int16Schema
			case precision < 10:
				return kNumInt32, connect.Int32Schema
			default:
				return kNumInt64, connect.Int64Schema
			}
		}
		if mapping != mapPrecision {
			return kNumFloat64, connect.Float64Schema
		}
	}
	c.scale = scale
	d := connect.DecimalSchema(scale)
	d.Parameters["connect.decimal.precision"] = fmt.Sprint(precision) // as Confluent's connector adds it
	return kDecimal, d
}

// dest returns a scan destination for the column.
func (c *column) dest() any {
	switch c.kind {
	case kInt16:
		return new(pgtype.Int2)
	case kInt32:
		return new(pgtype.Int4)
	case kInt64:
		return new(pgtype.Int8)
	case kFloat32:
		return new(pgtype.Float4)
	case kFloat64:
		return new(pgtype.Float8)
	case kBool:
		return new(pgtype.Bool)
	case kText:
		return new(pgtype.Text)
	case kBytes:
		return new([]byte)
	case kDecimal, kNumInt8, kNumInt16, kNumInt32, kNumInt64, kNumFloat64:
		return new(pgtype.Numeric)
	case kDate:
		return new(pgtype.Date)
	case kTime:
		return new(pgtype.Time)
	case kTimestamp:
		return new(pgtype.Timestamp)
	}
	return new(pgtype.Timestamptz)
}

var (
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC)
	minTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
)

func infinite(m pgtype.InfinityModifier, t time.Time) time.Time {
	switch m {
	case pgtype.Infinity:
		return maxTime
	case pgtype.NegativeInfinity:
		return minTime
	}
	return t
}

// value converts a scanned destination to the column's Connect value (nil
// for NULL). loc is db.timezone.
func (c *column) value(d any, loc *time.Location) (any, error) {
	switch x := d.(type) {
	case *pgtype.Int2:
		return nullOr(x.Valid, x.Int16), nil
	case *pgtype.Int4:
		return nullOr(x.Valid, x.Int32), nil
	case *pgtype.Int8:
		return nullOr(x.Valid, x.Int64), nil
	case *pgtype.Float4:
		return nullOr(x.Valid, x.Float32), nil
	case *pgtype.Float8:
		return nullOr(x.Valid, x.Float64), nil
	case *pgtype.Bool:
		return nullOr(x.Valid, x.Bool), nil
	case *pgtype.Text:
		return nullOr(x.Valid, x.String), nil
	case *[]byte:
		if *x == nil {
			return nil, nil
		}
		return append([]byte(nil), *x...), nil
	case *pgtype.Numeric:
		if !x.Valid {
			return nil, nil
		}
		return c.numeric(x)
	case *pgtype.Date:
		if !x.Valid {
			return nil, nil
		}
		return infinite(x.InfinityModifier, x.Time).UTC(), nil
	case *pgtype.Time:
		if !x.Valid {
			return nil, nil
		}
		return time.UnixMilli(x.Microseconds / 1000).UTC(), nil
	case *pgtype.Timestamp:
		if !x.Valid {
			return nil, nil
		}
		if x.InfinityModifier != pgtype.Finite {
			return infinite(x.InfinityModifier, x.Time), nil
		}
		w := x.Time
		return time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), loc).Truncate(time.Millisecond).UTC(), nil
	case *pgtype.Timestamptz:
		if !x.Valid {
			return nil, nil
		}
		return infinite(x.InfinityModifier, x.Time).Truncate(time.Millisecond).UTC(), nil
	}
	return nil, fmt.Errorf("column %q: unexpected scan destination %T", c.name, d)
}

func nullOr[T any](valid bool, v T) any {
	if !valid {
		return nil
	}
	return v
}

var ten = big.NewInt(10)

func (c *column) numeric(n *pgtype.Numeric) (any, error) {
	if n.NaN || n.InfinityModifier != pgtype.Finite {
		return nil, fmt.Errorf("column %q holds NaN or Infinity, which %s cannot represent: cast the column to double precision in a query, or exclude such rows", c.name, c.schema)
	}
	switch c.kind {
	case kNumFloat64:
		f, err := n.Float64Value()
		return f.Float64, err
	case kNumInt8, kNumInt16, kNumInt32, kNumInt64:
		i, err := n.Int64Value()
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", c.name, err)
		}
		switch c.kind {
		case kNumInt8:
			return int8(i.Int64), nil
		case kNumInt16:
			return int16(i.Int64), nil
		case kNumInt32:
			return int32(i.Int64), nil
		}
		return i.Int64, nil
	}
	// Decimal: unscaled = Int * 10^(Exp+scale).
	u := new(big.Int).Set(n.Int)
	if e := n.Exp + c.scale; e > 0 {
		u.Mul(u, new(big.Int).Exp(ten, big.NewInt(int64(e)), nil))
	} else if e < 0 {
		u.Quo(u, new(big.Int).Exp(ten, big.NewInt(int64(-e)), nil))
	}
	return connect.Decimal{Unscaled: u, Scale: c.scale}, nil
}
