package herder

// Config providers: ${env:VAR} and ${file:path:key} in connector configs are
// resolved only when a connector or task is started (and for validation),
// never stored resolved nor shown resolved by the REST API, as Kafka
// Connect's EnvVarConfigProvider and FileConfigProvider do. file: reads a
// .properties (or JSON) file and takes one key of it.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"

	"github.com/tributary-data/tributary/internal/configfile"
)

var placeholder = regexp.MustCompile(`\$\{(env|file):([^}]*)\}`)

func resolveSecrets(config map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(config))
	var firstErr error
	for k, v := range config {
		out[k] = placeholder.ReplaceAllStringFunc(v, func(m string) string {
			sub := placeholder.FindStringSubmatch(m)
			val, err := resolveOne(sub[1], sub[2])
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("config %s: %w", k, err)
			}
			return val
		})
	}
	return out, firstErr
}

func resolveOne(provider, arg string) (string, error) {
	switch provider {
	case "env":
		v, ok := os.LookupEnv(arg)
		if !ok {
			return "", fmt.Errorf("${env:%s}: the worker has no environment variable %s", arg, arg)
		}
		return v, nil
	case "file":
		// ${file:path:key}; the path may itself contain ':' (use the last one).
		i := len(arg) - 1
		for i >= 0 && arg[i] != ':' {
			i--
		}
		if i <= 0 {
			return "", fmt.Errorf("${file:%s}: want ${file:<path>:<key>}", arg)
		}
		path, key := arg[:i], arg[i+1:]
		m, err := configfile.Load(path)
		if err != nil {
			return "", fmt.Errorf("${file:%s:%s}: %w", path, key, err)
		}
		v, ok := m[key]
		if !ok {
			return "", fmt.Errorf("${file:%s:%s}: the file has no key %s", path, key, key)
		}
		return v, nil
	}
	return "", fmt.Errorf("unknown config provider %q", provider)
}

func marshalJSON(m map[string]any) ([]byte, error) { return json.Marshal(m) }

func unmarshalJSON(b []byte) (map[string]any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	normalize(m)
	return m, nil
}

// normalize turns json.Number into int64 (integral) or float64.
func normalize(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	case map[string]any:
		for k, e := range t {
			t[k] = normalize(e)
		}
	case []any:
		for i, e := range t {
			t[i] = normalize(e)
		}
	}
	return v
}
