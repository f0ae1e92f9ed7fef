package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/pcloud"
	"github.com/tandemsync/tandem/remote/vboxx"
	"github.com/tandemsync/tandem/remote/verizon"
)

// Far is the remote side of a pair under test: a dir: folder or a folder on a provider emulator. Edits go
// through the file system or through the provider's own client package, as another device would make them.
// Paths are slash-separated and relative to the pair's remote root.
type Far interface {
	Kind() string    // "dir", "pcloud", "verizon", "vboxx"
	Spec() string    // what `tandem once` syncs with
	Flags() []string // `tandem once` flags for this remote (endpoint, tokens, CA)
	Env() []string   // extra environment of the binary ("K=V")
	// Write creates or replaces rel (and its folders) with data.
	Write(t testing.TB, rel string, data []byte) error
	// Read returns rel's bytes; ok is false when it is not a file.
	Read(t testing.TB, rel string) (data []byte, ok bool)
	Remove(t testing.TB, rel string) error // a file, or a folder with everything in it
	Move(t testing.TB, from, to string) error
	Mkdir(t testing.TB, rel string) error
	// Contents is the tree by content (sha256, or "dir"), without tandem's reserved folder.
	Contents(t testing.TB) map[string]string
	// Trash is the sha256 of every file in the remote's trash.
	Trash(t testing.TB) []string
}

// DirFar is a dir: remote.
type DirFar struct{ Root string }

func (d DirFar) Kind() string    { return "dir" }
func (d DirFar) Spec() string    { return "dir:" + d.Root }
func (d DirFar) Flags() []string { return nil }
func (d DirFar) Env() []string   { return nil }

func (d DirFar) abs(rel string) string { return filepath.Join(d.Root, filepath.FromSlash(rel)) }

func (d DirFar) Write(_ testing.TB, rel string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(d.abs(rel)), 0o755); err != nil {
		return err
	}
	return os.WriteFile(d.abs(rel), data, 0o644)
}

func (d DirFar) Read(_ testing.TB, rel string) ([]byte, bool) {
	fi, err := os.Lstat(d.abs(rel))
	if err != nil || !fi.Mode().IsRegular() {
		return nil, false
	}
	b, err := os.ReadFile(d.abs(rel))
	return b, err == nil
}

func (d DirFar) Remove(_ testing.TB, rel string) error { return os.RemoveAll(d.abs(rel)) }

func (d DirFar) Move(_ testing.TB, from, to string) error {
	if err := os.MkdirAll(filepath.Dir(d.abs(to)), 0o755); err != nil {
		return err
	}
	return os.Rename(d.abs(from), d.abs(to))
}

func (d DirFar) Mkdir(_ testing.TB, rel string) error { return os.MkdirAll(d.abs(rel), 0o755) }

func (d DirFar) Contents(t testing.TB) map[string]string { return Contents(t, d.Root) }

func (d DirFar) Trash(t testing.TB) []string {
	var out []string
	for _, h := range TrashFiles(t, d.Root) {
		out = append(out, h)
	}
	return out
}

// Account is a provider emulator with the logins tests need, shared by every ProviderFar on it.
type Account struct {
	Emu      *Emulator
	Provider string
	XDG      string // XDG_CONFIG_HOME of the binary: vBoxx's login lives there
	client   string // vBoxx: the token dir of the test's own client login
	bin      string
	// Stored: the binary uses the login stored in XDG (tandem login) rather than token flags, so that token
	// refreshes are saved across processes.
	Stored bool
}

// NewAccount starts `tandem emulate provider` with extra flags and logs in where the provider needs it.
func NewAccount(t testing.TB, bin, provider string, extra ...string) *Account {
	t.Helper()
	a := &Account{Emu: StartEmulator(t, bin, provider, extra...), Provider: provider, XDG: t.TempDir(), bin: bin}
	if provider == "vboxx" {
		a.login(t, filepath.Join(a.XDG, "tandem", "tokens"))
		a.client = t.TempDir()
		a.login(t, a.client)
	}
	return a
}

func (a *Account) login(t testing.TB, dir string) {
	t.Helper()
	r := RunWith(t, a.bin, RunOpts{Stdin: a.Emu.Password + "\n"}, "login", "vboxx", "--username", a.Emu.Username,
		"--password-stdin", "--endpoint", a.Emu.Endpoint, "--ca-file", a.Emu.CAFile, "--token-dir", dir)
	if r.Code != 0 {
		t.Fatalf("login vboxx:\n%s", r)
	}
}

// TrashSums is the emulator's GET /trash: the sha256 of every trashed file's stored bytes.
func (a *Account) TrashSums(t testing.TB) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal(a.Emu.admin(t, http.MethodGet, "/trash", ""), &out); err != nil {
		t.Fatalf("GET /trash: %v", err)
	}
	return out
}

// Far is the folder name (one path element) on the account as a pair's remote; it is created now.
func (a *Account) Far(t testing.TB, name string) *ProviderFar {
	t.Helper()
	f := &ProviderFar{a: a}
	switch a.Provider {
	case "pcloud":
		f.root = "/" + name
	case "verizon":
		f.root = "/VZMOBILE/" + name
	case "vboxx":
		f.root = "/Anna de Vries/" + name // the emulator's sync root is named after its user
	default:
		t.Fatalf("no provider %q", a.Provider)
	}
	if err := f.With(t, func(ctx context.Context, r remote.Remote) error {
		if rc, ok := r.(remote.RootChecker); ok {
			return rc.InitRoot(ctx)
		}
		return nil
	}); err != nil {
		t.Fatalf("create %s: %v", f.Spec(), err)
	}
	return f
}

// ProviderFar is one folder on a provider emulator.
type ProviderFar struct {
	a    *Account
	root string
}

func (f *ProviderFar) Kind() string { return f.a.Provider }
func (f *ProviderFar) Spec() string { return f.a.Provider + ":" + f.root }
func (f *ProviderFar) Env() []string {
	return []string{"XDG_CONFIG_HOME=" + f.a.XDG}
}

func (f *ProviderFar) Flags() []string {
	e := f.a.Emu
	switch f.a.Provider {
	case "pcloud":
		return []string{"--endpoint", e.Endpoint, "--access-token", e.AccessToken}
	case "verizon":
		if f.a.Stored {
			return []string{"--ca-file", e.CAFile}
		}
		return []string{"--endpoint", e.Endpoint, "--access-token", e.AccessToken, "--refresh-token", e.RefreshToken,
			"--ca-file", e.CAFile}
	default:
		return []string{"--ca-file", e.CAFile}
	}
}

// With opens a new client of the folder (as another device would, so no cache hides what the binary did), runs
// fn and closes it.
func (f *ProviderFar) With(t testing.TB, fn func(ctx context.Context, r remote.Remote) error) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := f.a.Emu
	var r remote.Remote
	var err error
	switch f.a.Provider {
	case "pcloud":
		r, err = pcloud.Open(ctx, nil, f.root, remote.OpenOptions{Endpoint: e.Endpoint, AccessToken: remote.Secret(e.AccessToken)})
	case "verizon":
		var m map[string]string
		if err := json.Unmarshal(e.admin(t, http.MethodPost, "/mint", ""), &m); err != nil {
			t.Fatal(err)
		}
		r, err = verizon.Open(ctx, nil, f.root, remote.OpenOptions{Endpoint: e.Endpoint,
			AccessToken: remote.Secret(m["access_token"]), RefreshToken: remote.Secret(m["refresh_token"]), CAFile: e.CAFile})
	case "vboxx":
		r, err = vboxx.Open(ctx, nil, f.root, remote.OpenOptions{CAFile: e.CAFile, StateDir: f.a.client})
	}
	if err != nil {
		t.Fatalf("open a %s client: %v", f.a.Provider, err)
	}
	defer r.Close()
	return fn(ctx, r)
}

func mkdirs(ctx context.Context, r remote.Remote, rel string) error {
	if rel == "" || rel == "." || rel == "/" {
		return nil
	}
	if err := mkdirs(ctx, r, path.Dir(rel)); err != nil {
		return err
	}
	if st, err := r.Stat(ctx, remote.Path(rel)); err == nil && st.Dir {
		return nil
	}
	_, err := r.Mkdir(ctx, remote.Path(rel))
	return err
}

func (f *ProviderFar) Write(t testing.TB, rel string, data []byte) error {
	return f.With(t, func(ctx context.Context, r remote.Remote) error {
		if err := mkdirs(ctx, r, path.Dir(rel)); err != nil {
			return err
		}
		_, err := r.Put(ctx, remote.Path(rel), strings.NewReader(string(data)), int64(len(data)), time.Now(), remote.Precondition{})
		return err
	})
}

func (f *ProviderFar) Read(t testing.TB, rel string) ([]byte, bool) {
	var out []byte
	ok := false
	_ = f.With(t, func(ctx context.Context, r remote.Remote) error {
		rc, e, err := r.Open(ctx, remote.Path(rel))
		if err != nil || e.Dir {
			return err
		}
		defer rc.Close()
		out, err = io.ReadAll(rc)
		ok = err == nil
		return err
	})
	return out, ok
}

func (f *ProviderFar) Remove(t testing.TB, rel string) error {
	return f.With(t, func(ctx context.Context, r remote.Remote) error {
		st, err := r.Stat(ctx, remote.Path(rel))
		if err != nil {
			return err
		}
		var paths []remote.Path
		if st.Dir {
			if err := r.Walk(ctx, remote.Path(rel), func(x remote.Entry) error {
				paths = append(paths, x.Path)
				return nil
			}); err != nil {
				return err
			}
		}
		for i := len(paths) - 1; i >= 0; i-- { // a walk lists parents before their children
			if err := r.Delete(ctx, paths[i], remote.Precondition{}); err != nil && !errors.Is(err, remote.ErrNotFound) {
				return fmt.Errorf("delete %s: %w", paths[i], err)
			}
		}
		return r.Delete(ctx, remote.Path(rel), remote.Precondition{})
	})
}

func (f *ProviderFar) Move(t testing.TB, from, to string) error {
	return f.With(t, func(ctx context.Context, r remote.Remote) error {
		if err := mkdirs(ctx, r, path.Dir(to)); err != nil {
			return err
		}
		_, err := r.Move(ctx, remote.Path(from), remote.Path(to), remote.Precondition{})
		return err
	})
}

func (f *ProviderFar) Mkdir(t testing.TB, rel string) error {
	return f.With(t, func(ctx context.Context, r remote.Remote) error { return mkdirs(ctx, r, rel) })
}

// Contents downloads and hashes every file (vBoxx has no digest, and a digest a server reports is no proof of
// the bytes it serves).
func (f *ProviderFar) Contents(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	if err := f.With(t, func(ctx context.Context, r remote.Remote) error {
		return HashTree(ctx, r, out, func(p remote.Path) bool {
			return p == remote.ReservedDir || strings.HasPrefix(string(p), remote.ReservedDir+"/")
		})
	}); err != nil {
		t.Fatalf("list %s: %v", f.Spec(), err)
	}
	return out
}

// HashTree fills out with r's tree by content: "dir" for a folder, the sha256 (hex) of the bytes it serves for a
// file; every file is downloaded. Paths for which skip is true are left out.
func HashTree(ctx context.Context, r remote.Remote, out map[string]string, skip func(remote.Path) bool) error {
	var files []remote.Path
	if err := r.Walk(ctx, remote.Root, func(x remote.Entry) error {
		if skip(x.Path) {
			return nil
		}
		if x.Dir {
			out[string(x.Path)] = "dir"
		} else {
			files = append(files, x.Path)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, p := range files {
		rc, _, err := r.Open(ctx, p)
		if err != nil {
			return fmt.Errorf("open %s: %w", p, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		out[string(p)] = hex.EncodeToString(h.Sum(nil))
	}
	return nil
}

func (f *ProviderFar) Trash(t testing.TB) []string { return f.a.TrashSums(t) }

// TempNames lists the paths of a content map whose last element is tandem's temp-file prefix: a temp file
// outside tandem's own folder.
func TempNames(tree map[string]string) []string {
	var out []string
	for p := range tree {
		if strings.HasPrefix(path.Base(p), remote.TempPrefix) {
			out = append(out, p)
		}
	}
	return out
}

// SHA256 is the hex sha256 of data.
func SHA256(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}
