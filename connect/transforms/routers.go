package transforms

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/tributary-data/tributary/connect"
)

// TimestampRouter is Kafka's TimestampRouter: it sets the topic to
// topic.format (default "${topic}-${timestamp}") with ${topic} replaced by
// the record's topic and ${timestamp} by its timestamp in UTC formatted
// with timestamp.format (default "yyyyMMdd"), a java.text.SimpleDateFormat
// pattern (the subset described at dateFormat: y M d E H h a m s S Z X and
// quoted literals; other letters are rejected at Configure). A record
// without a timestamp is an error.
type TimestampRouter struct {
	topicFormat string
	format      *dateFormat
}

// Configure implements Transformation.
func (t *TimestampRouter) Configure(cfg map[string]string) error {
	o, err := newOptions(cfg, "topic.format", "timestamp.format")
	if err != nil {
		return err
	}
	t.topicFormat = "${topic}-${timestamp}"
	if v, ok := o.str("topic.format"); ok {
		t.topicFormat = v
	}
	tf := "yyyyMMdd"
	if v, ok := o.str("timestamp.format"); ok {
		tf = v
	}
	t.format, err = compileDateFormat("timestamp.format", tf)
	return err
}

// Apply implements Transformation.
func (t *TimestampRouter) Apply(r *connect.Record) (*connect.Record, error) {
	if r.Timestamp.IsZero() {
		return nil, dataErr("timestamp missing on record for topic %q", r.Topic)
	}
	topic := strings.ReplaceAll(t.topicFormat, "${topic}", r.Topic)
	topic = strings.ReplaceAll(topic, "${timestamp}", t.format.format(r.Timestamp))
	c := *r
	c.Topic = topic
	return &c, nil
}

// compileFullMatch compiles a Java-style regex for Matcher.matches()
// semantics (the whole input must match).
func compileFullMatch(key, pattern string) (*regexp.Regexp, error) {
	if strings.Contains(pattern, "&&[") {
		return nil, configErr(key, "character class intersection (&&) is not supported: %q", pattern)
	}
	re, err := regexp.Compile(`\A(?:` + pattern + `)\z`)
	if err != nil {
		return nil, configErr(key, "invalid or unsupported regular expression %q (Go RE2 syntax: no lookaround or backreferences): %v", pattern, err)
	}
	return re, nil
}

// RegexRouter is Kafka's RegexRouter: when the whole topic matches regex,
// the topic becomes replacement with Java's replacement syntax ($1 or
// ${name} for groups, \ to escape); otherwise the record is unchanged.
// Options: regex, replacement (both required).
type RegexRouter struct {
	re          *regexp.Regexp
	replacement string
}

// Configure implements Transformation.
func (t *RegexRouter) Configure(cfg map[string]string) error {
	o, err := newOptions(cfg, "regex", "replacement")
	if err != nil {
		return err
	}
	pattern, err := o.required("regex")
	if err != nil {
		return err
	}
	if t.replacement, err = o.required("replacement"); err != nil {
		return err
	}
	if t.re, err = compileFullMatch("regex", pattern); err != nil {
		return err
	}
	// Reject replacements that refer to missing groups now rather than per record.
	if _, err := javaExpand(t.replacement, t.re, make([]int, 2*(t.re.NumSubexp()+1)), ""); err != nil {
		return configErr("replacement", "%v", err)
	}
	return nil
}

// Apply implements Transformation.
func (t *RegexRouter) Apply(r *connect.Record) (*connect.Record, error) {
	m := t.re.FindStringSubmatchIndex(r.Topic)
	if m == nil {
		return r, nil
	}
	topic, err := javaExpand(t.replacement, t.re, m, r.Topic)
	if err != nil {
		return nil, dataErr("%v", err)
	}
	c := *r
	c.Topic = topic
	return &c, nil
}

// javaExpand expands a java.util.regex.Matcher replacement string: "\x"
// is a literal x, "$n" a group number (digits taken greedily while the
// number stays a valid group), "${name}" a named group.
func javaExpand(repl string, re *regexp.Regexp, m []int, src string) (string, error) {
	var b strings.Builder
	group := func(i int) {
		if m[2*i] >= 0 && m[2*i+1] >= 0 {
			b.WriteString(src[m[2*i]:m[2*i+1]])
		}
	}
	for i := 0; i < len(repl); i++ {
		c := repl[i]
		switch c {
		case '\\':
			i++
			if i >= len(repl) {
				return "", errorString("character to be escaped is missing")
			}
			b.WriteByte(repl[i])
		case '$':
			i++
			if i >= len(repl) {
				return "", errorString("illegal group reference: group index is missing")
			}
			if repl[i] == '{' {
				end := strings.IndexByte(repl[i:], '}')
				if end < 0 {
					return "", errorString("named capturing group is missing trailing '}'")
				}
				name := repl[i+1 : i+end]
				idx := re.SubexpIndex(name)
				if idx < 0 {
					return "", errorString("no group with name {" + name + "}")
				}
				group(idx)
				i += end
				continue
			}
			if repl[i] < '0' || repl[i] > '9' {
				return "", errorString("illegal group reference")
			}
			n := int(repl[i] - '0')
			if n > re.NumSubexp() {
				return "", errorString("no group " + strconv.Itoa(n))
			}
			for i+1 < len(repl) && repl[i+1] >= '0' && repl[i+1] <= '9' {
				next := n*10 + int(repl[i+1]-'0')
				if next > re.NumSubexp() {
					break
				}
				n = next
				i++
			}
			group(n)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

type errorString string

func (e errorString) Error() string { return string(e) }
