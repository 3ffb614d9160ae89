package rest

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
)

// Loggers is what /admin/loggers serves: the worker's named loggers and
// their levels, with Kafka Connect's (log4j) level names.
type Loggers interface {
	// All returns every logger whose level is explicitly set.
	All() map[string]LoggerLevel
	// Level returns a logger's level; false if there is no such logger.
	Level(name string) (LoggerLevel, bool)
	// SetLevel sets the level (an upper-case name from ParseLevel) of the
	// named logger and of all its descendants ("a.b" is a descendant of
	// "a"; "root" is everyone's ancestor), creating the logger if needed,
	// and returns the names of the loggers it changed, sorted.
	SetLevel(name, level string) ([]string, error)
}

// ClusterLoggers is optionally implemented by a Herder to serve
// PUT /admin/loggers/{name}?scope=cluster: the level change is published to
// every worker of the cluster.
type ClusterLoggers interface {
	SetClusterLoggerLevel(ctx context.Context, name, level string) error
}

// RootLogger is the name of the ancestor of every logger.
const RootLogger = "root"

// Levels beyond slog's four, for the log4j names Kafka accepts.
const (
	LevelTrace = slog.LevelDebug - 4
	LevelFatal = slog.LevelError + 4
	LevelOff   = slog.Level(1 << 20)
)

// ParseLevel maps a log4j level name (any case) to a slog level and its
// canonical upper-case name: ALL and TRACE, DEBUG, INFO, WARN, ERROR, FATAL,
// OFF. ALL maps to TRACE.
func ParseLevel(s string) (slog.Level, string, bool) {
	switch u := strings.ToUpper(s); u {
	case "ALL", "TRACE":
		return LevelTrace, "TRACE", true
	case "DEBUG":
		return slog.LevelDebug, u, true
	case "INFO":
		return slog.LevelInfo, u, true
	case "WARN":
		return slog.LevelWarn, u, true
	case "ERROR":
		return slog.LevelError, u, true
	case "FATAL":
		return LevelFatal, u, true
	case "OFF":
		return LevelOff, u, true
	}
	return 0, "", false
}

// LevelName is the log4j name of a slog level: the name of the highest
// level not above it.
func LevelName(l slog.Level) string {
	switch {
	case l >= LevelOff:
		return "OFF"
	case l >= LevelFatal:
		return "FATAL"
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARN"
	case l >= slog.LevelInfo:
		return "INFO"
	case l >= slog.LevelDebug:
		return "DEBUG"
	}
	return "TRACE"
}

// LevelRegistry is a Loggers backed by slog.LevelVar values: components ask
// it for their logger's LevelVar (Var) and build their handler with it, and
// the REST API changes the levels. Safe for concurrent use.
type LevelRegistry struct {
	now func() time.Time

	mu      sync.Mutex
	vars    map[string]*slog.LevelVar
	changed map[string]int64 // last change through SetLevel, ms since epoch
}

// NewLevelRegistry returns a registry whose root logger has level root.
func NewLevelRegistry(root slog.Level) *LevelRegistry {
	r := &LevelRegistry{now: time.Now, vars: map[string]*slog.LevelVar{}, changed: map[string]int64{}}
	r.Var(RootLogger).Set(root)
	return r
}

// Var returns the named logger's level variable, creating it with the
// level of its nearest registered ancestor (or root) if needed.
func (r *LevelRegistry) Var(name string) *slog.LevelVar {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.varLocked(name)
}

func (r *LevelRegistry) varLocked(name string) *slog.LevelVar {
	if v, ok := r.vars[name]; ok {
		return v
	}
	v := new(slog.LevelVar)
	v.Set(r.inheritedLocked(name))
	r.vars[name] = v
	return v
}

func (r *LevelRegistry) inheritedLocked(name string) slog.Level {
	for n := name; ; {
		i := strings.LastIndexByte(n, '.')
		if i < 0 {
			break
		}
		n = n[:i]
		if v, ok := r.vars[n]; ok {
			return v.Level()
		}
	}
	if v, ok := r.vars[RootLogger]; ok {
		return v.Level()
	}
	return slog.LevelInfo
}

func (r *LevelRegistry) levelLocked(name string) LoggerLevel {
	ll := LoggerLevel{Level: LevelName(r.vars[name].Level())}
	if ms, ok := r.changed[name]; ok {
		ll.LastModified = &ms
	}
	return ll
}

// All implements Loggers.
func (r *LevelRegistry) All() map[string]LoggerLevel {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]LoggerLevel, len(r.vars))
	for n := range r.vars {
		out[n] = r.levelLocked(n)
	}
	return out
}

// Level implements Loggers.
func (r *LevelRegistry) Level(name string) (LoggerLevel, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.vars[name]; !ok {
		return LoggerLevel{}, false
	}
	return r.levelLocked(name), true
}

// SetLevel implements Loggers.
func (r *LevelRegistry) SetLevel(name, level string) ([]string, error) {
	l, _, ok := ParseLevel(level)
	if !ok {
		return nil, fmt.Errorf("invalid log level %q", level)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.varLocked(name)
	ms := r.now().UnixMilli()
	var affected []string
	for n, v := range r.vars {
		if name == RootLogger || n == name || strings.HasPrefix(n, name+".") {
			v.Set(l)
			r.changed[n] = ms
			affected = append(affected, n)
		}
	}
	sort.Strings(affected)
	return affected, nil
}
