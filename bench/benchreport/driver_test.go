package benchreport

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type testOptions struct {
	out     string
	timeout time.Duration
	fail    bool
}

func (o testOptions) Output() (string, time.Duration) { return o.out, o.timeout }

var testDriver = Driver[testOptions]{
	Name: "testbench",
	Parse: func(args []string, stderr io.Writer) (testOptions, error) {
		var o testOptions
		fs := flag.NewFlagSet("testbench", flag.ContinueOnError)
		fs.SetOutput(stderr)
		fs.StringVar(&o.out, "out", "", "")
		fs.DurationVar(&o.timeout, "timeout", time.Minute, "")
		fs.BoolVar(&o.fail, "fail", false, "")
		if err := fs.Parse(args); err != nil {
			return o, fmt.Errorf("%w: %v", ErrUsage, err)
		}
		return o, nil
	},
	Bench: func(ctx context.Context, o testOptions, progress io.Writer) (string, error) {
		Progress(progress)("running %d", 1)
		if _, ok := ctx.Deadline(); ok != (o.timeout > 0) {
			return "", fmt.Errorf("deadline %v with --timeout %v", ok, o.timeout)
		}
		if o.fail {
			return "", errors.New("failed")
		}
		return "| report |\n", nil
	},
}

func TestDriverRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "report.md")
	for _, tc := range []struct {
		args              []string
		code              int
		stdout, stderrHas string
	}{
		{args: []string{"--out", out}, stdout: "| report |\n", stderrHas: "running 1"},
		{args: []string{"--timeout", "0"}, stdout: "| report |\n"},
		{args: []string{"--no-such-flag"}, code: 2, stderrHas: "testbench: usage: flag provided but not defined"},
		{args: []string{"--fail"}, code: 1, stderrHas: "testbench: failed\n"},
		{args: []string{"--out", filepath.Join(out, "no", "dir")}, code: 1, stdout: "| report |\n", stderrHas: "testbench: open "},
	} {
		var stdout, stderr bytes.Buffer
		code := testDriver.Run(context.Background(), tc.args, &stdout, &stderr)
		if code != tc.code || stdout.String() != tc.stdout || !strings.Contains(stderr.String(), tc.stderrHas) {
			t.Errorf("Run(%q) = %d, stdout %q, stderr %q; want %d, %q, stderr with %q", tc.args, code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderrHas)
		}
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "| report |\n" {
		t.Errorf("--out file holds %q (%v)", b, err)
	}
}

func TestWorkDir(t *testing.T) {
	d, cleanup, err := WorkDir("", "benchreport-test-")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(d); err != nil || !st.IsDir() {
		t.Fatalf("temporary work dir %s: %v", d, err)
	}
	cleanup()
	if _, err := os.Stat(d); !os.IsNotExist(err) {
		t.Errorf("cleanup left %s (%v)", d, err)
	}
	kept := filepath.Join(t.TempDir(), "a", "b")
	d, cleanup, err = WorkDir(kept, "x-")
	if err != nil || d != kept {
		t.Fatalf("WorkDir(%s) = %s, %v", kept, d, err)
	}
	cleanup()
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("cleanup removed the given dir: %v", err)
	}
}
