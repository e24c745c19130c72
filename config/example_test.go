package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// exampleFile is the annotated example shipped at the top of the repository.
func exampleFile(t *testing.T) string {
	t.Helper()
	name, err := filepath.Abs(filepath.Join("..", "certlens.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// TestExampleFileLoads keeps the example honest: it must load, and since it
// claims to show every key at its default, it must give the defaults.
func TestExampleFileLoads(t *testing.T) {
	name := exampleFile(t)
	isolate(t)
	c := mustLoad(t, "--config", name)
	if c.ConfigFile != name {
		t.Errorf("ConfigFile = %q, want %q", c.ConfigFile, name)
	}
	c.ConfigFile = ""
	if want := wantDefaults(t); !reflect.DeepEqual(c, want) {
		t.Errorf("the example does not state the defaults:\n got %+v\nwant %+v", c, want)
	}
}

func TestExampleFileHasEveryKey(t *testing.T) {
	text, err := os.ReadFile(exampleFile(t))
	if err != nil {
		t.Fatal(err)
	}
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(text)); err != nil {
		t.Fatal(err)
	}
	inExample := v.AllKeys()
	slices.Sort(inExample)
	var known []string
	for _, k := range keys {
		known = append(known, k.name)
	}
	slices.Sort(known)
	if !slices.Equal(inExample, known) {
		t.Errorf("keys in the example:\n%q\nknown keys:\n%q", inExample, known)
	}
	for _, k := range keys {
		if !bytes.Contains(text, []byte(envVar(k.name))) {
			t.Errorf("the example does not name %s for %s", envVar(k.name), k.name)
		}
		if k.flag != "" && !bytes.Contains(text, []byte("--"+k.flag)) {
			t.Errorf("the example does not name --%s for %s", k.flag, k.name)
		}
	}
}

// TestServeFlags checks that every serve flag is bound to a key, and that
// its help names the key and the variable and shows the key's default.
func TestServeFlags(t *testing.T) {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	AddServeFlags(fs)
	bound := map[string]bool{"config": true}
	for _, k := range keys {
		if k.flag == "" {
			continue
		}
		bound[k.flag] = true
		f := fs.Lookup(k.flag)
		if f == nil {
			t.Errorf("no flag --%s for %s", k.flag, k.name)
			continue
		}
		if ref := "[" + k.name + ", " + envVar(k.name); !strings.Contains(f.Usage, ref) {
			t.Errorf("--%s help %q does not contain %q", k.flag, f.Usage, ref)
		}
		switch def := k.def.(type) {
		case string:
			if def != "" && f.DefValue != def && f.Value.Type() != "duration" {
				t.Errorf("--%s default %q, want the key's %q", k.flag, f.DefValue, def)
			}
		case []string:
			if f.Value.Type() != "stringArray" {
				t.Errorf("--%s is a %s, want a repeatable stringArray", k.flag, f.Value.Type())
			}
		}
	}
	if f := fs.Lookup("idle-timeout"); f == nil || f.DefValue != "5m0s" {
		t.Errorf("--idle-timeout default should be 5m0s")
	}
	fs.VisitAll(func(f *pflag.Flag) {
		if !bound[f.Name] {
			t.Errorf("flag --%s is bound to no key", f.Name)
		}
	})
}

// TestLoadWithSomeFlags covers commands such as analyze, which share only
// a few of the serve flags.
func TestLoadWithSomeFlags(t *testing.T) {
	dir := isolate(t)
	writeFile(t, filepath.Join(dir, "alice.pem"), "cert")
	fs := pflag.NewFlagSet("analyze", pflag.ContinueOnError)
	fs.StringArray("expect-cert", nil, "")
	fs.String("decrypt-keylog", "", "")
	if err := fs.Parse([]string{"--expect-cert", "alice.pem", "--decrypt-keylog", "keys.log"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(fs)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.ExpectCerts, []string{"alice.pem"}) || c.Decrypt.KeylogFile != "keys.log" || c.Listen != "127.0.0.1:8080" {
		t.Errorf("Load with analyze's flags = %+v", c)
	}
}

// TestExampleFileNamesTheLiveKeys: the example's header lists exactly the
// keys a reload applies.
func TestExampleFileNamesTheLiveKeys(t *testing.T) {
	text, err := os.ReadFile(exampleFile(t))
	if err != nil {
		t.Fatal(err)
	}
	_, header, _ := strings.Cut(string(text), "certlens reloads it.")
	header, _, _ = strings.Cut(header, "A change to any other key needs a restart")
	var listed []string
	for _, w := range strings.Fields(strings.ReplaceAll(header, "#", " ")) {
		w = strings.TrimRight(w, ".,:")
		if _, ok := lookupKey(w); ok {
			listed = append(listed, w)
		}
	}
	if live := LiveKeys(); !slices.Equal(listed, live) {
		t.Errorf("the example's reload paragraph lists\n%q\nthe live keys are\n%q", listed, live)
	}
}
