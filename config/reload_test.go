package config

import (
	"reflect"
	"slices"
	"testing"
)

// TestEveryKeyIsClassified: a key added to the table without saying what
// a reload does with it fails here, so a reload can never ignore a change
// without a word.
func TestEveryKeyIsClassified(t *testing.T) {
	for _, k := range keys {
		if r, ok := ReloadOf(k.name); !ok || (r != Live && r != Restart) {
			t.Errorf("%s: reload class %d; give it reload: Live or reload: Restart", k.name, k.reload)
		}
	}
	if _, ok := ReloadOf("no.such.key"); ok {
		t.Error("an unknown key has a reload class")
	}
}

// TestEveryKeyHasOneField: the key tags of Config and the key table name
// the same keys, each once.
func TestEveryKeyHasOneField(t *testing.T) {
	var tags []string
	var walk func(t reflect.Type)
	walk = func(ty reflect.Type) {
		for i := range ty.NumField() {
			f := ty.Field(i)
			if name := f.Tag.Get("key"); name != "" {
				tags = append(tags, name)
			} else if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[PortSet]() {
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeFor[Config]())
	var names []string
	for _, k := range keys {
		names = append(names, k.name)
	}
	slices.Sort(tags)
	slices.Sort(names)
	if !slices.Equal(tags, names) {
		t.Errorf("key tags:\n%q\nkey table:\n%q", tags, names)
	}
}

// change gives the field of key in c another value.
func change(t *testing.T, c *Config, key string) {
	t.Helper()
	v := fieldsByKey(c)[key]
	switch {
	case v.Type() == reflect.TypeFor[PortSet]():
		v.Set(reflect.ValueOf(mustPorts(t, "1")))
	case v.Kind() == reflect.String:
		v.SetString(v.String() + "x")
	case v.Kind() == reflect.Int, v.Kind() == reflect.Int64:
		v.SetInt(v.Int() + 1)
	case v.Kind() == reflect.Bool:
		v.SetBool(!v.Bool())
	case v.Kind() == reflect.Slice:
		v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
	default:
		t.Fatalf("%s: no way to change a %s", key, v.Type())
	}
}

func TestChangedNamesEachKey(t *testing.T) {
	for _, k := range keys {
		a, b := defaults(), defaults()
		change(t, b, k.name)
		if got := Changed(a, b); !slices.Equal(got, []string{k.name}) {
			t.Errorf("changing %s: Changed says %q", k.name, got)
		}
	}
	if got := Changed(defaults(), defaults()); len(got) > 0 {
		t.Errorf("two defaults differ in %q", got)
	}
}

// TestReloadedKeepsRestartKeys: after a reload that changes every key,
// certlens runs with the new Live values and the old Restart ones.
func TestReloadedKeepsRestartKeys(t *testing.T) {
	running, loaded := defaults(), defaults()
	var live []string
	for _, k := range keys {
		change(t, loaded, k.name)
		if k.reload == Live {
			live = append(live, k.name)
		}
	}
	got := Reloaded(running, loaded)
	if changed := Changed(running, got); !slices.Equal(changed, live) {
		t.Errorf("reloaded config differs from the running one in\n%q\nwant the live keys\n%q", changed, live)
	}
	if restart := Changed(got, loaded); len(restart)+len(live) != len(keys) {
		t.Errorf("reloaded config differs from the loaded one in %q, want every restart-only key", restart)
	}
	if len(live) < 5 || len(live) == len(keys) {
		t.Errorf("%d live keys of %d", len(live), len(keys))
	}
}
