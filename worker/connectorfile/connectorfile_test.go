package connectorfile

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, path, in string
		want           Connector
		err            string // a substring of the error; "" for none
	}{
		{name: "POST body", path: "a.json",
			in:   `{"name": "a", "config": {"connector.class": "FileStreamSource", "tasks.max": 2, "x.enabled": true, "file": "/in"}}`,
			want: Connector{Name: "a", Config: map[string]string{"name": "a", "connector.class": "FileStreamSource", "tasks.max": "2", "x.enabled": "true", "file": "/in"}}},
		{name: "POST body with initial state and inner name", path: "a.json",
			in:   `{"name": "a", "initial_state": "paused", "config": {"name": "a", "connector.class": "C"}}`,
			want: Connector{Name: "a", InitialState: "PAUSED", Config: map[string]string{"name": "a", "connector.class": "C"}}},
		{name: "POST body named inside only", path: "a.json", in: `{"config": {"name": "a", "connector.class": "C"}}`,
			want: Connector{Name: "a", Config: map[string]string{"name": "a", "connector.class": "C"}}},
		{name: "flat", path: "b.json", in: `{"name": "b", "connector.class": "C", "batch.size": 1.5e3}`,
			want: Connector{Name: "b", Config: map[string]string{"name": "b", "connector.class": "C", "batch.size": "1.5e3"}}},
		{name: "properties", path: "c.properties", in: "# c\nname = c\nconnector.class=C\ntopics: t1,t2\n",
			want: Connector{Name: "c", Config: map[string]string{"name": "c", "connector.class": "C", "topics": "t1,t2"}}},
		{name: "other extension, JSON content", path: "d.conf", in: `{"name": "d"}`,
			want: Connector{Name: "d", Config: map[string]string{"name": "d"}}},
		{name: "other extension, properties content", path: "d.conf", in: "name=d\n",
			want: Connector{Name: "d", Config: map[string]string{"name": "d"}}},

		{name: "empty", path: "e.json", in: " \n", err: "the file is empty"},
		{name: "broken JSON", path: "e.json", in: `{"name": `, err: "JSON"},
		{name: "trailing JSON", path: "e.json", in: `{"name": "x"} {}`, err: "unexpected data"},
		{name: "array", path: "e.json", in: `[{"name": "x"}]`, err: "expected an object"},
		{name: "null value", path: "e.json", in: `{"name": "x", "config": {"a": null}}`, err: `key "a" is null`},
		{name: "nested value", path: "e.json", in: `{"name": "x", "a": {"b": 1}}`, err: `key "a": a value must be a string`},
		{name: "config not an object", path: "e.json", in: `{"name": "x", "config": "a=b"}`, err: `"config" must be an object`},
		{name: "unknown member", path: "e.json", in: `{"name": "x", "tasks": [], "config": {}}`, err: `unknown member "tasks"`},
		{name: "names differ", path: "e.json", in: `{"name": "x", "config": {"name": "y"}}`, err: `differs from the config's "name" "y"`},
		{name: "no name (JSON)", path: "e.json", in: `{"connector.class": "C"}`, err: `no "name"`},
		{name: "no name (POST body)", path: "e.json", in: `{"config": {"connector.class": "C"}}`, err: `no "name"`},
		{name: "blank name", path: "e.json", in: `{"name": " "}`, err: "name is empty"},
		{name: "bad initial state", path: "e.json", in: `{"name": "x", "initial_state": "GONE", "config": {}}`, err: `"initial_state" "GONE"`},
		{name: "no name (properties)", path: "e.properties", in: "connector.class=C\n", err: "no name= line"},
		{name: "properties syntax", path: "e.properties", in: "=v\n", err: "missing key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.path, []byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), tt.path+": ") || !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want one naming %s and containing %q", err, tt.path, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want.File = tt.path
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadDirectoriesAndFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "conf", "b.properties"), "name=b\n")
	write(t, filepath.Join(dir, "conf", "a.json"), `{"name": "a"}`)
	write(t, filepath.Join(dir, "conf", "notes.txt"), "not a connector")
	write(t, filepath.Join(dir, "conf", ".hidden.json"), "{")
	write(t, filepath.Join(dir, "conf", "sub", "c.json"), `{"name": "c"}`) // not recursive
	write(t, filepath.Join(dir, "d.conf"), "name=d\n")
	got, err := Load([]string{filepath.Join(dir, "conf"), filepath.Join(dir, "d.conf"), filepath.Join(dir, "conf", "a.json")})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range got {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "a,b,d" {
		t.Fatalf("loaded %v, want a,b,d (sorted within the directory, each file once)", names)
	}
}

func TestLoadErrorsNameTheFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "one.json"), `{"name": "same"}`)
	write(t, filepath.Join(dir, "two.properties"), "name=same\n")
	write(t, filepath.Join(dir, "three.json"), `{"name": "x", "config": {"a": [1]}}`)
	_, err := Load([]string{dir})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`connector "same" is defined twice: in ` + filepath.Join(dir, "one.json") + " and in " + filepath.Join(dir, "two.properties"),
		filepath.Join(dir, "three.json") + `: "config": key "a"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error does not match ErrInvalid: %v", err)
	}

	empty := t.TempDir()
	if _, err := Load([]string{empty}); err == nil || !strings.Contains(err.Error(), empty+": no *.json or *.properties") {
		t.Errorf("empty directory: %v", err)
	}
	if _, err := Load([]string{filepath.Join(dir, "missing.json")}); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
}
