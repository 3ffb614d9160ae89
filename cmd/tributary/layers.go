package main

import (
	"flag"
	"fmt"
	"sort"
	"strings"

	"github.com/tributary-data/tributary/internal/configfile"
)

// flagKey ties a flag to the config key it sets.
type flagKey struct {
	flag, key string
	val       *string
}

// applyLayers feeds set, in order of precedence, the config file's keys
// (sorted), the flags given on the command line or through their
// environment twins (applyEnv marks them set), and the --set pairs.
func applyLayers(fs *flag.FlagSet, configPath string, flags []flagKey, sets []string, set func(key, value string) error) error {
	if configPath != "" {
		m, err := configfile.Load(configPath)
		if err != nil {
			return err
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := set(k, m[k]); err != nil {
				return fmt.Errorf("%s: %w", configPath, err)
			}
		}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, f := range flags {
		if given[f.flag] {
			if err := set(f.key, *f.val); err != nil {
				return err
			}
		}
	}
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return fmt.Errorf("%w: --set %q: want key=value", errUsage, s)
		}
		if err := set(strings.TrimSpace(k), v); err != nil {
			return err
		}
	}
	return nil
}
