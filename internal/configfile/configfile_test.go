package configfile

import (
	"errors"
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
		err  bool
	}{
		{"json", `{"listen":"127.0.0.1:1","num.partitions":3,"auto.create.topics.enable":false}`,
			map[string]string{"listen": "127.0.0.1:1", "num.partitions": "3", "auto.create.topics.enable": "false"}, false},
		{"json null", `{"a":null}`, nil, true},
		{"json nested", `{"a":{"b":1}}`, nil, true},
		{"json broken", `{"a":`, nil, true},
		{"properties", "# comment\n! other\nlog.retention.hours=24\nlisten : 127.0.0.1:9092\n  spaced = v w \nlong=a\\\n  b\n",
			map[string]string{"log.retention.hours": "24", "listen": "127.0.0.1:9092", "spaced": "v w", "long": "ab"}, false},
		{"properties escapes", `path=C\:\\dir`, map[string]string{"path": `C:\dir`}, false},
		{"properties missing key", "=v\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if tt.err {
				if !errors.Is(err, ErrSyntax) {
					t.Fatalf("want ErrSyntax, got %v (%v)", err, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v want %v", got, tt.want)
			}
		})
	}
}
