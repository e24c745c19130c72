package config

import (
	"reflect"
)

// Reload says what a reload (SIGHUP, or the config file changing) does
// with a key's new value. Every key has one; a test fails on a key left
// unclassified.
type Reload int

const (
	unclassified Reload = iota
	// Live keys take their new value on reload: for the next connection,
	// tunnel or handshake; those already open keep what they started with.
	Live
	// Restart keys are read at start only (listeners, files opened, the
	// CA): a reload that changes one says it needs a restart.
	Restart
)

// ReloadOf is key's class; false for an unknown key.
func ReloadOf(name string) (Reload, bool) {
	k, ok := lookupKey(name)
	return k.reload, ok && k.reload != unclassified
}

// Changed lists the keys whose values differ from a to b, in the key
// table's order.
func Changed(a, b *Config) []string {
	va, vb := fieldsByKey(a), fieldsByKey(b)
	var out []string
	for _, k := range keys {
		if !reflect.DeepEqual(va[k.name].Interface(), vb[k.name].Interface()) {
			out = append(out, k.name)
		}
	}
	return out
}

// Reloaded is the configuration certlens runs with once loaded is
// reloaded over running: loaded's Live keys, running's Restart ones. It is
// what the reload must validate: a Live key is judged against the
// listeners and mode actually running, not the ones the file asks for
// (dropping access.users is refused while the listener that needs them
// stays).
func Reloaded(running, loaded *Config) *Config {
	out := *loaded
	vo, vr := fieldsByKey(&out), fieldsByKey(running)
	for _, k := range keys {
		if k.reload != Live {
			vo[k.name].Set(vr[k.name])
		}
	}
	return &out
}

// fieldsByKey maps each key to its field of c (settable), found by the
// fields' key tags.
func fieldsByKey(c *Config) map[string]reflect.Value {
	out := make(map[string]reflect.Value, len(keys))
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if name := f.Tag.Get("key"); name != "" {
				out[name] = v.Field(i)
			} else if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[PortSet]() {
				walk(v.Field(i))
			}
		}
	}
	walk(reflect.ValueOf(c).Elem())
	return out
}

// LiveKeys are the keys a reload applies, in the key table's order; the
// help and the example file list them.
func LiveKeys() []string {
	var out []string
	for _, k := range keys {
		if k.reload == Live {
			out = append(out, k.name)
		}
	}
	return out
}
