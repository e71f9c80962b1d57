package config

import (
	"reflect"
	"strings"
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
		if _, only := sf.Tag.Lookup("novalidate"); only && f.Kind() != reflect.Pointer {
			continue // a key of modules only (config, deflate), no [runtime] twin
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

// TestEveryKeyIsTagged: every scalar key of every table carries a default
// and a range (numbers and durations) or an explicit novalidate (strings
// and bools), and every [runtime] key names the runtime setting it maps to.
// A key added without them fails here. Per-module keys carry none: they
// take the [runtime] key's.
func TestEveryKeyIsTagged(t *testing.T) {
	c := Default() // panics on a missing or malformed default tag
	for _, tb := range tables(&c) {
		typ := tb.v.Type()
		for i := range typ.NumField() {
			sf := typ.Field(i)
			key := tb.prefix + sf.Tag.Get("toml")
			if _, ok := sf.Tag.Lookup("default"); !ok {
				t.Errorf("%s (%s.%s) has no default tag", key, typ.Name(), sf.Name)
			}
			_, hasMin := sf.Tag.Lookup("min")
			_, hasMax := sf.Tag.Lookup("max")
			_, novalidate := sf.Tag.Lookup("novalidate")
			switch k := sf.Type.Kind(); {
			case k == reflect.String || k == reflect.Bool || k == reflect.Slice:
				if !novalidate || hasMin || hasMax {
					t.Errorf("%s: a %s key takes novalidate:\"\" (and its check, if any, by hand in Validate), not min/max", key, k)
				}
			case !hasMin && !hasMax:
				t.Errorf("%s has neither a min nor a max tag", key)
			case novalidate:
				t.Errorf("%s: novalidate is for strings and bools", key)
			default:
				bound(sf, "min") // panics on a malformed tag
				bound(sf, "max")
			}
			if typ == reflect.TypeFor[RuntimeConfig]() && sf.Tag.Get("runtime") == "" {
				t.Errorf("%s has no runtime tag (the runtime.Config field it sets, or \"-\")", key)
			}
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("the defaults do not validate: %v", err)
	}
	mt := reflect.TypeFor[ModuleConfig]()
	for i := range mt.NumField() {
		sf := mt.Field(i)
		if sf.Type.Kind() != reflect.Pointer {
			continue
		}
		for _, tag := range []string{"default", "min", "max", "why", "novalidate"} {
			if _, ok := sf.Tag.Lookup(tag); ok {
				t.Errorf("ModuleConfig.%s has a %s tag: a per-module key takes the [runtime] key's", sf.Name, tag)
			}
		}
	}
}

// TestValidate_EveryRangeIsChecked: for every key with a range, the value
// one past either end is refused with an error naming the key (and, for a
// [runtime] key, the same for a module overriding it), and its bounds are
// accepted.
func TestValidate_EveryRangeIsChecked(t *testing.T) {
	moduleKeys := map[string]int{}
	mt := reflect.TypeFor[ModuleConfig]()
	for i := range mt.NumField() {
		if mt.Field(i).Type.Kind() == reflect.Pointer {
			moduleKeys[mt.Field(i).Tag.Get("toml")] = i
		}
	}
	probe := Default()
	for ti, tb := range tables(&probe) {
		for i := range tb.v.NumField() {
			sf := tb.v.Type().Field(i)
			key := tb.prefix + sf.Tag.Get("toml")
			lo, hasLo := bound(sf, "min")
			hi, hasHi := bound(sf, "max")
			try := func(n int64, wantErr bool) {
				t.Helper()
				c := Default()
				f := tables(&c)[ti].v.Field(i)
				if !setNumber(f, n) {
					return // not representable in the field's type
				}
				switch key { // keep the cross-field rule restart_backoff_max >= restart_backoff
				case "runtime.restart_backoff":
					c.Runtime.RestartBackoffMax = c.Runtime.RestartBackoff
				case "runtime.restart_backoff_max":
					c.Runtime.RestartBackoff.Duration = 0
				}
				err := c.Validate()
				named := err != nil && strings.Contains(err.Error(), key+": ")
				if named != wantErr {
					t.Errorf("%s = %s: err = %v, want an error naming it: %v", key, format(sf, n), err, wantErr)
				}
				mi, ok := moduleKeys[sf.Tag.Get("toml")]
				if !ok || tb.prefix != "runtime." {
					return
				}
				c = Default()
				var m ModuleConfig
				p := reflect.New(sf.Type)
				setNumber(p.Elem(), n)
				reflect.ValueOf(&m).Elem().Field(mi).Set(p)
				c.Modules = map[string]ModuleConfig{"m": m}
				err = c.Validate()
				mkey := "modules.m." + sf.Tag.Get("toml") + ": "
				if named := err != nil && strings.Contains(err.Error(), mkey); named != wantErr {
					t.Errorf("modules.m.%s = %s: err = %v, want an error naming it: %v", sf.Tag.Get("toml"), format(sf, n), err, wantErr)
				}
			}
			if hasLo {
				try(lo-1, true)
				try(lo, false)
			}
			if hasHi {
				try(hi+1, true)
				try(hi, false)
			}
		}
	}
}

// setNumber sets the integer or Duration f to n, reporting false when f's
// type cannot hold it.
func setNumber(f reflect.Value, n int64) bool {
	switch {
	case f.Type() == durationType:
		f.Set(reflect.ValueOf(Duration{time.Duration(n)}))
	case f.CanInt():
		if f.OverflowInt(n) {
			return false
		}
		f.SetInt(n)
	default:
		if n < 0 || f.OverflowUint(uint64(n)) {
			return false
		}
		f.SetUint(uint64(n))
	}
	return true
}

// TestValidate_Messages pins the wording of each kind of range error: the
// server and the docs quote them.
func TestValidate_Messages(t *testing.T) {
	c := Default()
	c.Runtime.TaskWorkers = -1
	c.Server.SendQueueSize = 0
	c.Push.LineTimeout.Duration = 0
	c.Runtime.TaskTimeout.Duration = -time.Second
	c.Server.MaxMessageSize = 0
	c.Server.IdleTimeout.Duration = time.Second
	c.Server.RecordRoute, c.Server.RecordFile = "chat", ""
	c.Modules = map[string]ModuleConfig{"m": {}}
	got := c.Validate().Error()
	for _, want := range []string{
		"runtime.task_workers: -1 is out of range 0..1024 (0 switches tasks off)\n",
		"server.send_queue_size: 0 must be at least 1\n",
		"push.line_timeout: 0s must be positive\n",
		"runtime.task_timeout: -1s must not be negative",
		"server.max_message_size: 0 is out of range 1..67108864\n",
		"server.idle_timeout: 1s must be 0 (off) or longer than server.ping_interval (25s)\n",
		`server.record_route: "chat" is not a route path (it starts with /, e.g. "/chat")` + "\n",
		"server.record_file: must not be empty when server.record_route is set\n",
	} {
		if !strings.Contains(got+"\n", want) {
			t.Errorf("Validate() =\n%s\nwant a line %q", got, want)
		}
	}
	if strings.Contains(got, "modules.m") {
		t.Errorf("a module repeats the [runtime] errors:\n%s", got)
	}
}

// TLS needs both files: one without the other names the missing key.
func TestValidate_TLSNeedsCertAndKey(t *testing.T) {
	for _, tc := range []struct{ cert, key, want string }{
		{"cert.pem", "", "server.tls_key: must be set too: server.tls_cert is set"},
		{"", "key.pem", "server.tls_cert: must be set too: server.tls_key is set"},
	} {
		c := Default()
		c.Server.TLSCert, c.Server.TLSKey = tc.cert, tc.key
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("cert %q key %q: Validate() = %v, want %q", tc.cert, tc.key, err, tc.want)
		}
	}
	c := Default()
	c.Server.TLSCert, c.Server.TLSKey = "cert.pem", "key.pem"
	if err := c.Validate(); err != nil {
		t.Errorf("both set: %v", err)
	}
}
