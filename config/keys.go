package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// The key table is the struct types themselves: every scalar field of a
// table ([server], [runtime], [push], [admin]) is one key, and its tags say
// everything generic about it:
//
//	toml       the key's name in config.toml
//	default    its default, as config.toml would write it ("8", "100ms",
//	           "true", "" for an empty string); Default reads it
//	min, max   its inclusive range (either may be left out); Validate
//	           checks it. Integers may use Go's digit separators
//	           ("1_048_576"). For durations, min "0s" reads "must not be
//	           negative" and min "1ns" (the least positive duration)
//	           reads "must be positive".
//	why        a hint appended to the range error, e.g. "(0: off)"
//	novalidate no range (strings, bools): checked by hand in Validate, or
//	           any value is valid
//	runtime    [runtime] only: the runtime.Config field the key sets as it
//	           is, or "-" when the server converts it by hand
//
// TestEveryKeyIsTagged fails for a scalar field without a default or
// without a range or novalidate.

var durationType = reflect.TypeFor[Duration]()

// tables returns the struct tables of c (its fields that are structs other
// than Duration), each with the toml prefix of its keys.
func tables(c *Config) []table {
	v := reflect.ValueOf(c).Elem()
	var ts []table
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			ts = append(ts, table{f.Tag.Get("toml") + ".", v.Field(i)})
		}
	}
	return ts
}

// table is one struct table of Config: prefix is "server." and the like.
type table struct {
	prefix string
	v      reflect.Value
}

// setDefaults sets every field of the struct v to its default tag. A
// missing or malformed tag panics: Default runs in every test, so that is a
// programming error no build ships with.
func setDefaults(v reflect.Value) {
	for i := range v.NumField() {
		sf := v.Type().Field(i)
		d, ok := sf.Tag.Lookup("default")
		if !ok {
			panic("config: " + v.Type().Name() + "." + sf.Name + " has no default tag")
		}
		if err := setText(v.Field(i), d); err != nil {
			panic(fmt.Sprintf("config: %s.%s: default tag: %v", v.Type().Name(), sf.Name, err))
		}
	}
}

// setText sets f from its config.toml spelling s.
func setText(f reflect.Value, s string) error {
	if f.Type() == durationType {
		d, err := time.ParseDuration(s)
		f.Set(reflect.ValueOf(Duration{d}))
		return err
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		f.SetBool(b)
		return err
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(s, 0, f.Type().Bits())
		f.SetInt(n)
		return err
	case reflect.Slice: // of strings, comma-separated in a tag
		if f.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported type %s", f.Type())
		}
		f.Set(reflect.Zero(f.Type()))
		if s != "" {
			f.Set(reflect.ValueOf(strings.Split(s, ",")))
		}
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		n, err := strconv.ParseUint(s, 0, f.Type().Bits())
		f.SetUint(n)
		return err
	default:
		return fmt.Errorf("unsupported type %s", f.Type())
	}
	return nil
}

// checkRanges reports each field of the struct v outside its min/max
// tags, as bad(prefix+key, …).
func checkRanges(v reflect.Value, prefix string, bad func(key, format string, args ...any)) {
	for i := range v.NumField() {
		sf := v.Type().Field(i)
		lo, hasLo := bound(sf, "min")
		hi, hasHi := bound(sf, "max")
		if !hasLo && !hasHi {
			continue
		}
		n := number(v.Field(i))
		if (hasLo && n < lo) || (hasHi && n > hi) {
			bad(prefix+sf.Tag.Get("toml"), "%s %s", format(sf, n), rangeText(sf, lo, hi, hasLo, hasHi))
		}
	}
}

// rangeText says what a value outside sf's range must be.
func rangeText(sf reflect.StructField, lo, hi int64, hasLo, hasHi bool) string {
	var s string
	switch {
	case hasLo && hasHi:
		s = "is out of range " + format(sf, lo) + ".." + format(sf, hi)
	case hasHi:
		s = "must be at most " + format(sf, hi)
	case sf.Type == durationType && lo == 0:
		s = "must not be negative"
	case sf.Type == durationType && lo == 1:
		s = "must be positive"
	default:
		s = "must be at least " + format(sf, lo)
	}
	if why := sf.Tag.Get("why"); why != "" {
		s += " " + why
	}
	return s
}

// bound parses sf's min or max tag as a number (nanoseconds for a
// Duration). A malformed tag panics, like a malformed default.
func bound(sf reflect.StructField, name string) (int64, bool) {
	s, ok := sf.Tag.Lookup(name)
	if !ok {
		return 0, false
	}
	v := reflect.New(sf.Type).Elem()
	if err := setText(v, s); err != nil {
		panic(fmt.Sprintf("config: %s: %s tag: %v", sf.Name, name, err))
	}
	return number(v), true
}

// number is f as an int64: a Duration's nanoseconds, an integer's value.
// node_id's uint32 fits; no key is a uint64.
func number(f reflect.Value) int64 {
	if f.Type() == durationType {
		return int64(f.Interface().(Duration).Duration)
	}
	switch f.Kind() {
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		return int64(f.Uint())
	case reflect.Int, reflect.Int64, reflect.Int32:
		return f.Int()
	}
	panic("config: a range on a " + f.Type().String())
}

// format writes n as config.toml would: a duration for a Duration field.
func format(sf reflect.StructField, n int64) string {
	if sf.Type == durationType {
		return time.Duration(n).String()
	}
	return strconv.FormatInt(n, 10)
}
