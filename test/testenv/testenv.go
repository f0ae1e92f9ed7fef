// Package testenv holds what the end-to-end tests and benchmarks share: building the tandem binary once,
// running it, and creating and comparing real folder trees by content.
package testenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// Build compiles cmd/tandem into dir and returns the binary's path. Tests call it once from TestMain, so every
// test runs the same real binary a user would.
func Build(dir string) (string, error) {
	_, self, _, _ := runtime.Caller(0)
	modRoot := filepath.Join(filepath.Dir(self), "..", "..")
	bin := filepath.Join(dir, "tandem")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tandem")
	cmd.Dir = modRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/tandem: %w\n%s", err, out)
	}
	return bin, nil
}

// Result is one finished run of the binary.
type Result struct {
	Args           []string
	Stdout, Stderr string
	Code           int
	Took           time.Duration
}

func (r Result) String() string {
	return fmt.Sprintf("tandem %s\nexit %d after %s\nstdout:\n%s\nstderr:\n%s", strings.Join(r.Args, " "), r.Code,
		r.Took, r.Stdout, r.Stderr)
}

// JSON decodes the --json document on stdout.
func (r Result) JSON(t testing.TB) Doc {
	t.Helper()
	var d Doc
	if err := json.Unmarshal([]byte(r.Stdout), &d); err != nil {
		t.Fatalf("stdout is not the JSON document: %v\n%s", err, r)
	}
	return d
}

// Run runs the binary to completion (at most 5 minutes) and returns what it did; it fails the test only if the
// binary could not be started.
func Run(t testing.TB, bin string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := Result{Args: args, Stdout: out.String(), Stderr: errb.String(), Took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		t.Fatalf("run tandem %v: %v", args, err)
	}
	return r
}

// Doc mirrors the `tandem once --json` document (README.md "JSON output").
type Doc struct {
	Pair     string `json:"pair"`
	Local    string `json:"local"`
	Remote   string `json:"remote"`
	DryRun   bool   `json:"dry_run"`
	OK       bool   `json:"ok"`
	ExitCode int    `json:"exit_code"`
	Notes    []string
	Planned  []struct{ Op, Path, To, Reason string } `json:"planned"`
	Done     []struct {
		Op, Path, To string
		Bytes        int64
	} `json:"done"`
	Conflicts []struct {
		Path, Copy, Kept, Reason string
		TypeChange               bool `json:"type_change"`
	} `json:"conflicts"`
	Skipped  []struct{ Path, Side, Reason string } `json:"skipped"`
	Problems []struct {
		Op, Path string
		Error    string `json:"error"`
	} `json:"problems"`
	Totals map[string]int64 `json:"totals"`
	TookMS int64            `json:"took_ms"`
	Error  string           `json:"error"`
}

// Ops counts the finished actions by op.
func (d Doc) Ops() map[string]int {
	m := map[string]int{}
	for _, x := range d.Done {
		m[x.Op]++
	}
	return m
}

// WriteFile writes data at root/rel, creating folders.
func WriteFile(t testing.TB, root, rel string, data []byte) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// WriteRandom writes size bytes from a PRNG seeded with seed (the same seed gives the same file) and returns the
// file's sha256.
func WriteRandom(t testing.TB, path string, size int64, seed uint64) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		for i := 0; i < int(n); i += 8 {
			v := rng.Uint64()
			for j := 0; j < 8 && i+j < int(n); j++ {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		if _, err := f.Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
		h.Write(buf[:n])
		left -= n
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// FileSHA256 is the hex sha256 of a file.
func FileSHA256(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Entry is one path of a tree snapshot.
type Entry struct {
	Dir     bool
	Size    int64
	SHA256  string
	ModTime time.Time
	Mode    fs.FileMode
}

// Snapshot lists root by content (sha256), without tandem's own .tandem folder. Names are kept byte for byte,
// so NFC and NFD spellings stay two entries.
func Snapshot(t testing.TB, root string) map[string]Entry {
	t.Helper()
	m := map[string]Entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		if rel == ".tandem" && d.IsDir() {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := Entry{Dir: d.IsDir(), ModTime: fi.ModTime(), Mode: fi.Mode()}
		if !d.IsDir() {
			e.Size = fi.Size()
			e.SHA256 = FileSHA256(t, p)
		}
		m[filepath.ToSlash(rel)] = e
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", root, err)
	}
	return m
}

// Contents is a snapshot reduced to what sync must make equal: kind and content per path.
func Contents(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for p, e := range Snapshot(t, root) {
		if e.Dir {
			out[p] = "dir"
		} else {
			out[p] = e.SHA256
		}
	}
	return out
}

// DiffContents describes how two content maps differ ("" if equal).
func DiffContents(a, b map[string]string) string {
	var out []string
	for p, x := range a {
		if y, ok := b[p]; !ok {
			out = append(out, fmt.Sprintf("only in first:  %q (%s)", p, short(x)))
		} else if x != y {
			out = append(out, fmt.Sprintf("differs:        %q (%s vs %s)", p, short(x), short(y)))
		}
	}
	for p, y := range b {
		if _, ok := a[p]; !ok {
			out = append(out, fmt.Sprintf("only in second: %q (%s)", p, short(y)))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// SameTree fails the test unless both roots hold the same paths with the same kinds and contents.
func SameTree(t testing.TB, a, b string) map[string]string {
	t.Helper()
	ca, cb := Contents(t, a), Contents(t, b)
	if d := DiffContents(ca, cb); d != "" {
		t.Fatalf("%s and %s differ:\n%s", a, b, d)
	}
	return ca
}

// TempFiles lists tandem's temporary files (.tandem-*.part) anywhere below root, including .tandem.
func TempFiles(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tandem-") && strings.HasSuffix(d.Name(), ".part") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TrashFiles lists the sha256 of every file in root's .tandem/trash.
func TrashFiles(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := filepath.Join(root, ".tandem", "trash")
	_ = filepath.WalkDir(tr, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(tr, p)
			out[filepath.ToSlash(rel)] = FileSHA256(t, p)
		}
		return nil
	})
	return out
}
