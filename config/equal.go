package config

import (
	"fmt"
	"net/url"
	"reflect"
	"regexp"
)

// Equal reports whether c and o define the same check, whatever their
// Line: whether a check running as c can go on, with its state, as o. A
// regular expression or a URL compares by its text; fields derived from
// another (HTTPCheck.ParsedURL) are left out.
func (c Check) Equal(o Check) bool {
	c.Line, o.Line = 0, 0
	return sameValue(reflect.ValueOf(c), reflect.ValueOf(o))
}

// textTypes are compared by their String: reflect.DeepEqual would look at
// a compiled program or at fields that two parses of one text need not
// share.
var textTypes = map[reflect.Type]bool{
	reflect.TypeFor[*regexp.Regexp](): true,
	reflect.TypeFor[*url.URL]():       true,
}

// sameValue is reflect.DeepEqual for the values of this package, except
// that textTypes compare by their String and struct fields tagged diff:"-"
// are skipped. a and b must not come from unexported fields.
func sameValue(a, b reflect.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	if textTypes[a.Type()] {
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return a.Interface().(fmt.Stringer).String() == b.Interface().(fmt.Stringer).String()
	}
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameValue(a.Elem(), b.Elem())
	case reflect.Struct:
		if !allExported(a.Type()) {
			// netip.Addr and the like: plain values.
			return reflect.DeepEqual(a.Interface(), b.Interface())
		}
		for i := range a.NumField() {
			if a.Type().Field(i).Tag.Get("diff") == "-" {
				continue
			}
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			bv := b.MapIndex(k)
			if !bv.IsValid() || !sameValue(a.MapIndex(k), bv) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

func allExported(t reflect.Type) bool {
	for i := range t.NumField() {
		if !t.Field(i).IsExported() {
			return false
		}
	}
	return true
}
