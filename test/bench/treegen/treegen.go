// Package treegen writes the benchmark trees of test/bench (issue 15) from a fixed seed, so every tool and every
// run sees the same bytes: small files with log-uniform sizes in folders up to a given depth, or a few large files.
// Contents are pseudo-random (incompressible); every mtime is an hour before the run, so no file is "racily
// clean" for tandem (a file modified within seconds of a scan is hashed again on purpose).
package treegen

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ParseSize reads a byte count with an optional KiB, MiB or GiB suffix.
func ParseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if strings.HasSuffix(s, u.suf) {
			s, mult = strings.TrimSuffix(s, u.suf), u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes, KiB, MiB or GiB", s)
	}
	return n * mult, nil
}

// Small makes nFolders folders, each under a random earlier folder no deeper than depth-1, and spreads the
// files over the root and those folders.
func Small(root string, nFiles, nFolders, depth int, maxSize int64, seed uint64) error {
	return SmallContext(context.Background(), root, nFiles, nFolders, depth, maxSize, seed)
}

// SmallContext is Small that stops when ctx is done (a million files take minutes to write); the tree is then
// partial, for the caller to remove.
func SmallContext(ctx context.Context, root string, nFiles, nFolders, depth int, maxSize int64, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 0x6765))
	type folder struct {
		path  string
		depth int
	}
	dirs := []folder{{root, 0}}
	for i := range nFolders {
		var parent folder
		for {
			parent = dirs[rng.IntN(len(dirs))]
			if parent.depth < depth {
				break
			}
		}
		p := filepath.Join(parent.path, fmt.Sprintf("d%04d", i))
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		dirs = append(dirs, folder{p, parent.depth + 1})
	}
	old := time.Now().Add(-time.Hour)
	buf := make([]byte, maxSize)
	content := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 'g', 'e', 'n'})
	lmax := math.Log(float64(maxSize + 1))
	for i := range nFiles {
		if i%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		size := int64(math.Exp(rng.Float64()*lmax)) - 1 // log-uniform over 0..maxSize
		size = min(max(size, 0), maxSize)
		_, _ = content.Read(buf[:size])
		p := filepath.Join(dirs[rng.IntN(len(dirs))].path, fmt.Sprintf("f%06d.bin", i))
		if err := os.WriteFile(p, buf[:size], 0o644); err != nil {
			return err
		}
		if err := os.Chtimes(p, old, old); err != nil {
			return err
		}
	}
	return nil
}

// Big writes n files of size bytes each, big0.bin ...
func Big(root string, n int, size int64, seed uint64) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	old := time.Now().Add(-time.Hour)
	content := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 'b', 'i', 'g'})
	buf := make([]byte, 1<<20)
	for i := range n {
		p := filepath.Join(root, fmt.Sprintf("big%d.bin", i))
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		for left := size; left > 0; {
			k := min(left, int64(len(buf)))
			_, _ = content.Read(buf[:k])
			if _, err := f.Write(buf[:k]); err != nil {
				f.Close()
				return err
			}
			left -= k
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Chtimes(p, old, old); err != nil {
			return err
		}
	}
	return nil
}
