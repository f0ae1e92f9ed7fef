package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseSizes(t *testing.T) {
	got, err := parseSizes("100k, 1M,2000,1_000")
	if err != nil || !slices.Equal(got, []int{100_000, 1_000_000, 2000, 1000}) {
		t.Errorf("parseSizes = %v, %v", got, err)
	}
	for _, bad := range []string{"", "10", "1G", "x", "100k,"} {
		if _, err := parseSizes(bad); err == nil {
			t.Errorf("parseSizes(%q) accepted", bad)
		}
	}
}

// TestCheckReplica: the check passes on a true copy (tandem's .tandem folder left out) and names the first
// difference of each kind; with the sample as large as the tree, a same-size content difference is caught.
func TestCheckReplica(t *testing.T) {
	write := func(root string, files map[string]string) {
		for p, c := range files {
			full := filepath.Join(root, p)
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	base := map[string]string{"a/x": "1", "a/b/y": "22", "z": "", "m/n": "333"}
	src := t.TempDir()
	write(src, base)
	write(src, map[string]string{".tandem/lock": "l"})
	cases := []struct {
		name string
		edit func(dst string)
		want string // "" = no difference
	}{
		{"copy", func(dst string) { write(dst, map[string]string{".tandem/other": "o"}) }, ""},
		{"missing", func(dst string) { os.Remove(filepath.Join(dst, "a/b/y")) }, "a/b/y is missing"},
		{"extra", func(dst string) { write(dst, map[string]string{"a/c": "x"}) }, "a/c is extra"},
		{"size", func(dst string) { write(dst, map[string]string{"m/n": "4444"}) }, "m/n has 3 bytes, the replica 4"},
		{"bytes", func(dst string) { write(dst, map[string]string{"m/n": "334"}) }, "m/n: contents differ"},
		{"kind", func(dst string) {
			os.Remove(filepath.Join(dst, "z"))
			os.Mkdir(filepath.Join(dst, "z"), 0o755)
		}, "z is a folder on one side only"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := t.TempDir()
			write(dst, base)
			tc.edit(dst)
			sample, err := checkReplica(context.Background(), src, dst, 10, 15)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("a true copy: %v", err)
			case tc.want == "" && len(sample) != len(base):
				t.Errorf("sampled %v, want every file of %v", sample, base)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	// A sample smaller than the tree is drawn the same way every time.
	dst := t.TempDir()
	write(dst, base)
	s1, err1 := checkReplica(context.Background(), src, dst, 2, 15)
	s2, err2 := checkReplica(context.Background(), src, dst, 2, 15)
	if err1 != nil || err2 != nil || len(s1) != 2 || !slices.Equal(s1, s2) {
		t.Errorf("samples %v (%v), %v (%v)", s1, err1, s2, err2)
	}
}
