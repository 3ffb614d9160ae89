// Package connectorfile reads connector configs from the files people keep
// in version control, in the shapes Kafka Connect users already have:
//
//   - JSON, the POST /connectors body: {"name": "x", "config": {...}}
//     (an "initial_state" member is kept too);
//   - JSON, a flat config: {"name": "x", "connector.class": ..., ...};
//   - a Kafka Connect standalone .properties file, with a name= line.
//
// Kafka Connect config values are strings: JSON numbers and booleans are
// taken by their literal text ("tasks.max": 2 reads "2"); null, objects and
// arrays are errors. A file's format is chosen by its extension (.json,
// .properties), otherwise by content (JSON when it starts with '{').
package connectorfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tributary-data/tributary/internal/configfile"
)

// ErrInvalid is matched (errors.Is) by every error about a file's content
// or about connectors defined twice.
var ErrInvalid = errors.New("invalid connector file")

// FileError is an error about one file (or, for a duplicate connector, two).
type FileError struct {
	Path string // the file
	Msg  string // what is wrong
}

func (e *FileError) Error() string { return e.Path + ": " + e.Msg }

// Is makes every FileError match ErrInvalid.
func (e *FileError) Is(target error) bool { return target == ErrInvalid }

// Connector is one connector read from a file.
type Connector struct {
	Name string
	// Config is the connector's config; it always holds "name" = Name, as
	// the worker stores it.
	Config map[string]string
	// InitialState is the POST body's "initial_state" (RUNNING, PAUSED or
	// STOPPED), "" when not given. It only matters when the connector is
	// created.
	InitialState string
	// File is the path the connector was read from.
	File string
}

// Load reads the connectors of paths: files, and directories meaning every
// *.json and *.properties file in them (sorted by name, not recursive,
// names starting with '.' skipped). A path given twice is read once. It
// returns the connectors in file order, or every problem found (errors
// joined): unreadable paths, bad files, a directory without connector
// files, and connector names defined in two files (naming both).
func Load(paths []string) ([]Connector, error) {
	files, err := Files(paths)
	if err != nil {
		return nil, err
	}
	var errs []error
	var out []Connector
	where := map[string]string{} // connector name -> file
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading connector file: %w", err))
			continue
		}
		c, err := Parse(f, b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, dup := where[c.Name]; dup {
			errs = append(errs, &FileError{Path: f, Msg: fmt.Sprintf("connector %q is defined twice: in %s and in %s", c.Name, prev, f)})
			continue
		}
		where[c.Name] = f
		out = append(out, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Files expands paths into the connector files to read (see Load), without
// reading them.
func Files(paths []string) ([]string, error) {
	var out, errs []string
	seen := map[string]bool{}
	add := func(p string) {
		key := p
		if abs, err := filepath.Abs(p); err == nil {
			key = abs
		}
		if !seen[key] {
			seen[key] = true
			out = append(out, p)
		}
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if !st.IsDir() {
			add(p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		var found []string
		for _, e := range entries {
			n := e.Name()
			if strings.HasPrefix(n, ".") || (!strings.HasSuffix(n, ".json") && !strings.HasSuffix(n, ".properties")) {
				continue
			}
			full := filepath.Join(p, n)
			if fst, err := os.Stat(full); err != nil || fst.IsDir() {
				continue
			}
			found = append(found, full)
		}
		sort.Strings(found)
		if len(found) == 0 {
			errs = append(errs, p+": no *.json or *.properties connector files in this directory")
		}
		for _, f := range found {
			add(f)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("connector files: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

// Parse reads one connector from b, the content of the file at path (whose
// extension chooses the format, see the package comment).
func Parse(path string, b []byte) (Connector, error) {
	bad := func(format string, args ...any) (Connector, error) {
		return Connector{}, &FileError{Path: path, Msg: fmt.Sprintf(format, args...)}
	}
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return bad("the file is empty")
	}
	isJSON := strings.HasSuffix(path, ".json") || (!strings.HasSuffix(path, ".properties") && trimmed[0] == '{')
	var c Connector
	if isJSON {
		var err error
		if c, err = parseJSON(trimmed); err != nil {
			return bad("%v", err)
		}
	} else {
		m, err := configfile.Parse(b)
		if err != nil {
			return bad("%v", err)
		}
		c = Connector{Name: m["name"], Config: m}
		if _, ok := m["name"]; !ok {
			return bad("no name= line: every connector needs a name")
		}
	}
	c.Name = strings.TrimSpace(c.Name)
	if c.Name == "" {
		return bad("the connector name is empty")
	}
	if c.Config == nil {
		c.Config = map[string]string{}
	}
	c.Config["name"] = c.Name
	c.File = path
	return c, nil
}

// parseJSON reads either JSON shape.
func parseJSON(b []byte) (Connector, error) {
	if b[0] != '{' {
		return Connector{}, errors.New("JSON: expected an object: {\"name\": ..., \"config\": {...}} or a flat config with a \"name\"")
	}
	var top map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&top); err != nil {
		return Connector{}, fmt.Errorf("JSON: %w", err)
	}
	if dec.More() {
		return Connector{}, errors.New("JSON: unexpected data after the object")
	}
	raw, nested := top["config"]
	if nested && !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		return Connector{}, errors.New(`"config" must be an object of config keys`)
	}
	if !nested {
		config, err := flatten(top)
		if err != nil {
			return Connector{}, err
		}
		name, ok := config["name"]
		if !ok {
			return Connector{}, errors.New(`no "name": use {"name": "...", "config": {...}} or put "name" in the flat config`)
		}
		return Connector{Name: name, Config: config}, nil
	}
	var c Connector
	for k, v := range top {
		switch k {
		case "config":
			var inner map[string]json.RawMessage
			if err := json.Unmarshal(v, &inner); err != nil {
				return Connector{}, fmt.Errorf(`"config": %w`, err)
			}
			config, err := flatten(inner)
			if err != nil {
				return Connector{}, fmt.Errorf(`"config": %w`, err)
			}
			c.Config = config
		case "name", "initial_state":
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return Connector{}, fmt.Errorf("%q must be a string", k)
			}
			if k == "name" {
				c.Name = s
			} else {
				c.InitialState = strings.ToUpper(strings.TrimSpace(s))
			}
		default:
			return Connector{}, fmt.Errorf(`unknown member %q next to "config": a connector file is {"name", "config", "initial_state"} or a flat config`, k)
		}
	}
	switch c.InitialState {
	case "", "RUNNING", "PAUSED", "STOPPED":
	default:
		return Connector{}, fmt.Errorf(`"initial_state" %q: use RUNNING, PAUSED or STOPPED`, c.InitialState)
	}
	inner, hasInner := c.Config["name"]
	switch {
	case c.Name == "" && hasInner:
		c.Name = inner
	case hasInner && strings.TrimSpace(inner) != strings.TrimSpace(c.Name):
		return Connector{}, fmt.Errorf(`"name" %q differs from the config's "name" %q`, c.Name, inner)
	case c.Name == "":
		return Connector{}, errors.New(`no "name": give {"name": "...", "config": {...}}`)
	}
	return c, nil
}

// flatten turns JSON values into Kafka Connect's string values.
func flatten(m map[string]json.RawMessage) (map[string]string, error) {
	out := make(map[string]string, len(m))
	for k, v := range m {
		v = bytes.TrimSpace(v)
		if len(v) == 0 {
			return nil, fmt.Errorf("key %q has no value", k)
		}
		switch {
		case v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("key %q: %w", k, err)
			}
			out[k] = s
		case bytes.Equal(v, []byte("null")):
			return nil, fmt.Errorf("key %q is null: remove it or give a value", k)
		case v[0] == '{' || v[0] == '[':
			return nil, fmt.Errorf("key %q: a value must be a string, number or boolean (Kafka Connect configs are flat maps of strings)", k)
		default: // a number or true/false: its literal text
			out[k] = string(v)
		}
	}
	return out, nil
}
