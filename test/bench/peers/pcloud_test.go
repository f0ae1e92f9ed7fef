package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPCloudCheck: the pCloud replica check passes on a true copy in the emulator (tandem's local .tandem
// folder left out) and names each kind of difference, by bytes and by the emulator's SHA-1.
func TestPCloudCheck(t *testing.T) {
	src := t.TempDir()
	for p, c := range map[string]string{"a.txt": "alpha", "sub/b.bin": "beta!", ".tandem/lock": "x"} {
		full := filepath.Join(src, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name  string
		files map[string]string // in the account, under /bench unless the path says otherwise
		limit int64             // files above it are compared by SHA-1
		want  string            // "": the check passes
	}{
		{"copy", map[string]string{"a.txt": "alpha", "sub/b.bin": "beta!"}, pcloudBytesLimit, ""},
		{"copy by sha1", map[string]string{"a.txt": "alpha", "sub/b.bin": "beta!"}, 1, ""},
		{"missing", map[string]string{"a.txt": "alpha"}, pcloudBytesLimit, "sub/b.bin is missing"},
		{"extra", map[string]string{"a.txt": "alpha", "sub/b.bin": "beta!", "c": ""}, pcloudBytesLimit, "c is extra"},
		{"size", map[string]string{"a.txt": "alph", "sub/b.bin": "beta!"}, pcloudBytesLimit, "a.txt: 5 bytes"},
		{"bytes", map[string]string{"a.txt": "alpha", "sub/b.bin": "BETA!"}, pcloudBytesLimit, "sub/b.bin: contents differ"},
		{"sha1", map[string]string{"a.txt": "alpha", "sub/b.bin": "BETA!"}, 1, "sub/b.bin: SHA-1"},
		{"outside", map[string]string{"a.txt": "alpha", "sub/b.bin": "beta!", "/elsewhere": "x"}, pcloudBytesLimit, "/elsewhere is outside"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := startPCloud(context.Background(), filepath.Join(t.TempDir(), "emu"))
			if err != nil {
				t.Fatal(err)
			}
			defer e.close()
			e.bytesLimit = tc.limit
			if err := e.emu.InjectFolder("/", "bench"); err != nil {
				t.Fatal(err)
			}
			if err := e.emu.InjectFolder("/bench", "sub"); err != nil {
				t.Fatal(err)
			}
			for p, c := range tc.files {
				full := p
				if !strings.HasPrefix(p, "/") {
					full = pcloudFolder + "/" + p
				}
				dir, name := filepath.Split(full)
				if err := e.emu.InjectFile(strings.TrimSuffix(dir, "/"), name, []byte(c)); err != nil {
					t.Fatal(err)
				}
			}
			err = e.check(src)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("a true copy: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}
