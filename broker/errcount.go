package broker

import (
	"reflect"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var errorCodeType = reflect.TypeFor[int16]()

// forEachErrorCode calls fn for every non-zero ErrorCode field of a
// response, at any depth (topic, partition, member ...). It serves the
// errors-by-API metric for every handler, including the group coordinator's,
// from one place.
func forEachErrorCode(resp kmsg.Response, fn func(code int16)) {
	walkErrors(reflect.ValueOf(resp), fn)
}

func walkErrors(v reflect.Value, fn func(int16)) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkErrors(v.Elem(), fn)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < v.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			fv := v.Field(i)
			if f.Name == "ErrorCode" && f.Type == errorCodeType {
				if c := int16(fv.Int()); c != 0 {
					fn(c)
				}
				continue
			}
			switch f.Type.Kind() {
			case reflect.Struct, reflect.Pointer, reflect.Slice:
				walkErrors(fv, fn)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return // record batches and other bytes
		}
		for i := 0; i < v.Len(); i++ {
			walkErrors(v.Index(i), fn)
		}
	}
}
