package config

import (
	"reflect"
	"testing"
	"time"
)

// TestModuleKeysOverrideRuntimeKeys: every per-module key overrides the
// [runtime] key of the same name and type, and Limits applies each one
// (a field Limits skipped, or one naming no [runtime] key, fails here).
func TestModuleKeysOverrideRuntimeKeys(t *testing.T) {
	var m ModuleConfig
	mv := reflect.ValueOf(&m).Elem()
	base := Default().Runtime
	for i := range mv.NumField() {
		f, sf := mv.Field(i), mv.Type().Field(i)
		if sf.Name == "Config" {
			continue
		}
		if f.Kind() != reflect.Pointer {
			t.Fatalf("ModuleConfig.%s is not a pointer: an unset key could not be told from a zero", sf.Name)
		}
		rf := runtimeField(sf) // panics if there is none
		v := reflect.New(f.Type().Elem())
		switch p := v.Interface().(type) {
		case *int:
			*p = 12345
		case *Duration:
			p.Duration = 12345 * time.Millisecond
		default:
			t.Fatalf("ModuleConfig.%s: unexpected type %s", sf.Name, f.Type())
		}
		f.Set(v)
		got := reflect.ValueOf(m.Limits(base)).FieldByIndex(rf.Index).Interface()
		if got != v.Elem().Interface() {
			t.Errorf("Limits does not apply modules.NAME.%s: got %v", sf.Tag.Get("toml"), got)
		}
		f.Set(reflect.Zero(f.Type()))
	}
	if m.Limits(base) != base {
		t.Errorf("Limits with nothing set changed the [runtime] values")
	}
}
