package benchproc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Binaries returns the absolute path of the tributary binary after
// checking that it and the given plugin binaries (tributary-connector-*)
// next to it are executables; the error names the first that is not.
func Binaries(tributary string, plugins ...string) (string, error) {
	abs, err := filepath.Abs(tributary)
	if err != nil {
		return "", err
	}
	paths := []string{abs}
	for _, b := range plugins {
		paths = append(paths, filepath.Join(filepath.Dir(abs), b))
	}
	for _, p := range paths {
		if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%s is not an executable (run `make build`)", p)
		}
	}
	return abs, nil
}

// TestBinaries returns, for a benchmark driver's test in bench/<name>/, a
// tributary binary with the given plugin binaries (tributary-connector-*)
// next to it: $TRIBUTARY_BIN (set by `make test`), ../../bin, or else a
// fresh build into a temporary directory.
func TestBinaries(t testing.TB, plugins ...string) string {
	t.Helper()
	ok := func(p string) bool {
		_, err := Binaries(p, plugins...)
		return err == nil
	}
	if p := os.Getenv("TRIBUTARY_BIN"); p != "" && ok(p) {
		return p
	}
	if p, err := filepath.Abs("../../bin/tributary"); err == nil && ok(p) {
		return p
	}
	dir := t.TempDir()
	args := []string{"build", "-o", dir + "/", "./cmd/tributary"}
	for _, b := range plugins {
		args = append(args, "./cmd/"+b)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the binaries: %v\n%s", err, out)
	}
	return filepath.Join(dir, "tributary")
}
