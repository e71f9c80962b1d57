package config

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/CONFIG.md from the key table and config.toml")

// TestConfigReferenceIsCurrent: docs/CONFIG.md, the reference of every key,
// is generated from the one key table (each field's tags: default, range)
// and config.toml (each key's comment), so it cannot drift from either.
// `go test ./config -run TestConfigReference -update` rewrites it.
func TestConfigReferenceIsCurrent(t *testing.T) {
	comments, err := tomlComments("../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	c := Default()
	for _, tb := range tables(&c) {
		for i := range tb.v.NumField() {
			if key := tb.prefix + tb.v.Type().Field(i).Tag.Get("toml"); comments[key] == "" {
				t.Errorf("config.toml: %s has no comment saying what it does", key)
			}
		}
	}
	want := reference(comments)
	if *update {
		if err := os.WriteFile("../docs/CONFIG.md", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile("../docs/CONFIG.md")
	if err != nil || string(got) != want {
		t.Fatalf("docs/CONFIG.md is not current (%v): run go test ./config -run TestConfigReference -update", err)
	}
}

// tomlComments maps "table.key" to the comment block above the key's line
// in config.toml; keys written as a run under one comment share it.
func tomlComments(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	section, block, last := "", []string{}, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section, block, last = strings.Trim(line, "[]"), nil, ""
		case strings.HasPrefix(line, "#"):
			if last != "" { // a new comment after keys starts a new block
				block, last = nil, ""
			}
			block = append(block, strings.TrimSpace(strings.TrimPrefix(line, "#")))
		case line == "":
			block, last = nil, ""
		default:
			key, _, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				continue
			}
			out[section+"."+strings.TrimSpace(key)] = strings.Join(block, " ")
			last = key
		}
	}
	return out, sc.Err()
}

// reference renders the key table as Markdown.
func reference(comments map[string]string) string {
	var b strings.Builder
	b.WriteString("# Configuration reference\n\n")
	b.WriteString("Generated from the key table (the tags of `config/config.go`) and the\n")
	b.WriteString("comments of `config.toml` by `go test ./config -run TestConfigReference -update`;\n")
	b.WriteString("a test fails when it is out of date. Every key is optional: a missing key\n")
	b.WriteString("keeps its default. Keys marked ✓ may also be set per module in\n")
	b.WriteString("`[modules.NAME]`.\n")
	c := Default()
	perModule := map[string]bool{}
	mt := reflect.TypeFor[ModuleConfig]()
	for i := range mt.NumField() {
		perModule[mt.Field(i).Tag.Get("toml")] = true
	}
	for _, tb := range tables(&c) {
		name := strings.TrimSuffix(tb.prefix, ".")
		fmt.Fprintf(&b, "\n## [%s]\n\n| key | default | range | per module | meaning |\n| --- | --- | --- | --- | --- |\n", name)
		t := tb.v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			key := sf.Tag.Get("toml")
			def := sf.Tag.Get("default")
			switch {
			case sf.Type.Kind() == reflect.Slice:
				def = "[" + def + "]"
			case sf.Type.Kind() == reflect.String || sf.Type == durationType:
				def = fmt.Sprintf("%q", def)
			}
			rng := "—"
			if _, ok := sf.Tag.Lookup("novalidate"); !ok {
				lo, hasLo := sf.Tag.Lookup("min")
				hi, hasHi := sf.Tag.Lookup("max")
				switch {
				case hasLo && hasHi:
					rng = lo + " … " + hi
				case hasLo:
					rng = "≥ " + lo
				case hasHi:
					rng = "≤ " + hi
				}
				rng = strings.ReplaceAll(rng, "_", "")
			}
			mod := ""
			if name == "runtime" && perModule[key] {
				mod = "✓"
			}
			fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s |\n", key, def, rng, mod, strings.ReplaceAll(comments[name+"."+key], "|", "\\|"))
		}
	}
	// The keys only a module's table has (the others are the [runtime]
	// keys marked ✓ above); their meaning is in ModuleConfig's comments.
	b.WriteString("\n## [modules.NAME]\n\nBesides the ✓ keys of [runtime]:\n\n| key | default | meaning |\n| --- | --- | --- |\n")
	b.WriteString("| `config` | `\"\"` | A string passed to the module's `on_start` (its meaning is the module's). |\n")
	b.WriteString("| `deflate` | `false` | Offer permessage-deflate (RFC 7692, no context takeover) to the module's clients; both directions may then compress. Off by default: it costs CPU per message (docs/BENCHMARKS.md, deflate) and pays off for large or repetitive text (docs/CONFORMANCE.md). |\n")
	for i := range mt.NumField() {
		if k := mt.Field(i).Tag.Get("toml"); k != "config" && k != "deflate" && !isRuntimeKey(k) {
			fmt.Fprintf(&b, "| `%s` | | (undocumented module key: describe it in config/reference_test.go) |\n", k)
		}
	}
	return b.String()
}

// isRuntimeKey reports whether key is a [runtime] key.
func isRuntimeKey(key string) bool {
	t := reflect.TypeFor[RuntimeConfig]()
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("toml") == key {
			return true
		}
	}
	return false
}
