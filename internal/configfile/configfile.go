// Package configfile reads the configuration files users bring: a JSON object
// ({"key": "value", "n": 3, "flag": true}) or a Java .properties file
// (key=value or key: value lines, # and ! comments, backslash line
// continuations), into a flat map of string keys to string values.
package configfile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("config file syntax")

// Load reads a JSON or .properties file; the format is chosen by content: a
// file whose first non-blank character is '{' is JSON.
func Load(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	m, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Parse parses JSON or .properties content.
func Parse(b []byte) (map[string]string, error) {
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		return parseJSON(t)
	}
	return parseProperties(b)
}

func parseJSON(b []byte) (map[string]string, error) {
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: JSON: %v", ErrSyntax, err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			out[k] = v
		case json.Number:
			out[k] = v.String()
		case bool:
			out[k] = strconv.FormatBool(v)
		case nil:
			return nil, fmt.Errorf("%w: key %q is null: remove it or give a value", ErrSyntax, k)
		default:
			return nil, fmt.Errorf("%w: key %q must be a string, number or boolean, not %T", ErrSyntax, k, v)
		}
	}
	return out, nil
}

func parseProperties(b []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	lineNo := 0
	var pending string
	for sc.Scan() {
		lineNo++
		line := strings.TrimLeft(sc.Text(), " \t\f")
		if pending == "" && (line == "" || line[0] == '#' || line[0] == '!') {
			continue
		}
		if strings.HasSuffix(line, "\\") && !strings.HasSuffix(line, "\\\\") {
			pending += strings.TrimSuffix(line, "\\")
			continue
		}
		line = pending + line
		pending = ""
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			sp := strings.IndexAny(line, " \t")
			if sp < 0 {
				out[unescape(line)] = ""
				continue
			}
			i = sp
		}
		key := strings.TrimSpace(line[:i])
		if key == "" {
			return nil, fmt.Errorf("%w: line %d: missing key before %q", ErrSyntax, lineNo, line[i:i+1])
		}
		out[unescape(key)] = unescape(strings.TrimSpace(line[i+1:]))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	return out, nil
}

func unescape(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			sb.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 't':
			sb.WriteByte('\t')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		default:
			sb.WriteByte(s[i])
		}
	}
	return sb.String()
}
