package benchproc

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestBinaries returns, for a benchmark driver's test in bench/<name>/, a
// tributary binary with the given plugin binaries (tributary-connector-*)
// next to it: $TRIBUTARY_BIN (set by `make test`), ../../bin, or else a
// fresh build into a temporary directory.
func TestBinaries(t testing.TB, plugins ...string) string {
	t.Helper()
	ok := func(p string) bool {
		files := []string{p}
		for _, b := range plugins {
			files = append(files, filepath.Join(filepath.Dir(p), b))
		}
		for _, f := range files {
			if st, err := os.Stat(f); err != nil || st.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
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
