package herder

// Config providers: ${env:VAR} and ${file:path:key} in connector configs are
// resolved only when a connector or task is started (and for validation),
// never stored resolved nor shown resolved by the REST API, as Kafka
// Connect's EnvVarConfigProvider and FileConfigProvider do. file: reads a
// .properties (or JSON) file and takes one key of it.

import (
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
