package transforms

import (
	"testing"
	"time"

	"github.com/tributary-data/tributary/connect"
)

// Mirrors TimestampRouterTest.defaultConfiguration, plus other patterns.
func TestTimestampRouter(t *testing.T) {
	ts := time.UnixMilli(1483425001864) // 2017-01-03T06:30:01.864Z
	cases := []struct {
		cfg  map[string]string
		want string
	}{
		{nil, "test-20170103"},
		{map[string]string{"timestamp.format": "yyyy-MM-dd'T'HH:mm:ss.SSS", "topic.format": "${timestamp}_${topic}_${topic}"},
			"2017-01-03T06:30:01.864_test_test"},
		{map[string]string{"timestamp.format": "yy/M/d H''m s S"}, "test-17/1/3 6'30 1 864"},
		{map[string]string{"timestamp.format": "EEE, dd MMM yyyy hh:mm a Z X", "topic.format": "${timestamp}"}, "Tue, 03 Jan 2017 06:30 AM +0000 Z"},
		{map[string]string{"timestamp.format": "EEEE MMMM", "topic.format": "${timestamp}"}, "Tuesday January"},
	}
	for _, c := range cases {
		tr := newT(t, "org.apache.kafka.connect.transforms.TimestampRouter", c.cfg)
		r := valueRec(nil, "v")
		r.Timestamp = ts
		if got := apply(t, tr, r).Topic; got != c.want {
			t.Errorf("%v: topic %q, want %q", c.cfg, got, c.want)
		}
		if r.Topic != "test" {
			t.Fatal("input mutated")
		}
	}
	applyErr(t, newT(t, "TimestampRouter", nil), valueRec(nil, "v"), "timestamp missing")
	for _, f := range []string{"yyyy-ww", "G", "yyyy'unterminated", "kk"} {
		if k := configErrKey(t, "TimestampRouter", map[string]string{"timestamp.format": f}); k != "timestamp.format" {
			t.Fatalf("%q: %s", f, k)
		}
	}
}

// Mirrors RegexRouterTest.staticReplacement, doesntMatch, identity, addPrefix,
// addSuffix, slice.
func TestRegexRouter(t *testing.T) {
	cases := []struct{ regex, replacement, topic, want string }{
		{"foo", "bar", "foo", "bar"},
		{"foo", "bar", "orig", "orig"},
		{"(.*)", "$1", "orig", "orig"},
		{"(.*)", "prefix-$1", "orig", "prefix-orig"},
		{"(.*)", "$1-suffix", "orig", "orig-suffix"},
		{`(.*)-(\d\d\d\d\d\d\d\d)`, "$1", "index-20160117", "index"},
		// Full-match semantics: a partial match does not route.
		{"foo", "bar", "foobar", "foobar"},
		{"a|ab", "X", "ab", "X"},
		// Java replacement syntax: greedy group digits, escapes, named groups.
		{"(a)(b)", "$21", "ab", "b1"},
		{"(?P<x>a)b", `${x}\$`, "ab", "a$"},
	}
	for _, c := range cases {
		tr := newT(t, "RegexRouter", map[string]string{"regex": c.regex, "replacement": c.replacement})
		r := valueRec(nil, nil)
		r.Topic = c.topic
		if got := apply(t, tr, r).Topic; got != c.want {
			t.Errorf("%q -> %q on %q: got %q, want %q", c.regex, c.replacement, c.topic, got, c.want)
		}
	}
	for _, c := range []struct{ regex, replacement, key string }{
		{"(?=a)", "x", "regex"}, {"(a)\\1", "x", "regex"}, {"[a-z&&[^b]]", "x", "regex"}, {"(a)", "$2", "replacement"},
	} {
		if k := configErrKey(t, "RegexRouter", map[string]string{"regex": c.regex, "replacement": c.replacement}); k != c.key {
			t.Fatalf("%q/%q: error names %q, want %q", c.regex, c.replacement, k, c.key)
		}
	}
	if k := configErrKey(t, "RegexRouter", map[string]string{"regex": "a"}); k != "replacement" {
		t.Fatal(k)
	}
}

func TestRegexRouterKeepsRecordWhenNoMatch(t *testing.T) {
	tr := newT(t, "RegexRouter", map[string]string{"regex": "x", "replacement": "y"})
	r := &connect.Record{Topic: "orig"}
	if apply(t, tr, r) != r {
		t.Fatal("unmatched record should be returned as is")
	}
}
