package fakefs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"syscall"
)

// must exist. No fault hook applies.
func (f *FS) WriteFile(name string, data []byte) error {
	check(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clk.Now()
	ino, n, err := f.resolve(name)
	switch {
	case errors.Is(err, syscall.ENOENT):
		if ino, err = f.link(name, 0o644, nil); err != nil {
			return perr("writefile", name, err)
		}
	case err != nil:
		return perr("writefile", name, err)
	case !n.mode.IsRegular():
		return perr("writefile", name, syscall.EISDIR)
	default:
		f.do(&op{kind: opTruncate, ino: ino, off: 0, t: now})
	}
	if len(data) > 0 {
		f.do(&op{kind: opWrite, ino: ino, data: slices.Clone(data), t: now})
	}
	return nil
}

// ReadFile returns the live content of file name.
func (f *FS) ReadFile(name string) ([]byte, error) {
	check(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	_, n, err := f.resolve(name)
	if err == nil && !n.mode.IsRegular() {
		err = syscall.EISDIR
	}
	if err != nil {
		return nil, perr("readfile", name, err)
	}
	return slices.Clone(n.data), nil
}

// MkdirAll creates folder name and its missing parents (nothing synced). No fault hook applies.
func (f *FS) MkdirAll(name string) error {
	check(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if name == "." {
		return nil
	}
	cur := ""
	for _, c := range strings.Split(name, "/") {
		cur = path.Join(cur, c)
		_, n, err := f.resolve(cur)
		switch {
		case errors.Is(err, syscall.ENOENT):
			if _, err := f.link(cur, fs.ModeDir|0o755, nil); err != nil {
				return perr("mkdirall", cur, err)
			}
		case err != nil:
			return perr("mkdirall", cur, err)
		case !n.isDir():
			return perr("mkdirall", cur, syscall.ENOTDIR)
		}
	}
	return nil
}

// RemoveAll removes name and everything below it (a user's rm -rf; nothing synced). Missing is success.
func (f *FS) RemoveAll(name string) error {
	check(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	var rm func(string) error
	rm = func(n string) error {
		_, nd, err := f.resolve(n)
		if errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if err != nil {
			return perr("removeall", n, err)
		}
		if nd.isDir() {
			for _, k := range slices.Sorted(maps.Keys(nd.kids)) {
				if err := rm(path.Join(n, k)); err != nil {
					return err
				}
			}
		}
		if err := f.remove(n); err != nil {
			return perr("removeall", n, err)
		}
		return nil
	}
	return rm(name)
}

type ent struct {
	name string
	mode fs.FileMode
	data []byte
}

// entries lists the live tree below the root, parents first, names sorted.
func (f *FS) entries() []ent {
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []ent
	var walk func(prefix string, ino uint64)
	walk = func(prefix string, ino uint64) {
		n := f.live[ino]
		for _, k := range slices.Sorted(maps.Keys(n.kids)) {
			c := f.live[n.kids[k]]
			name := path.Join(prefix, k)
			all = append(all, ent{name, c.mode, slices.Clone(c.data)})
			if c.isDir() {
				walk(name, n.kids[k])
			}
		}
	}
	walk("", f.root)
	return all
}

// Walk calls fn for every live entry below the root, parents first, names sorted. A file's data is its
// content, a symlink's its target (dir false for both). fn may use the FS.
func (f *FS) Walk(fn func(name string, dir bool, data []byte)) {
	for _, e := range f.entries() {
		fn(e.name, e.mode.IsDir(), e.data)
	}
}

// Snapshot maps every live path to the sha256 hex of its content, "dir" for a folder, "symlink:<target>", or
// "special:<type>" for another special file.
func (f *FS) Snapshot() map[string]string {
	out := map[string]string{}
	for _, e := range f.entries() {
		switch {
		case e.mode.IsDir():
			out[e.name] = "dir"
		case e.mode&fs.ModeSymlink != 0:
			out[e.name] = "symlink:" + string(e.data)
		case e.mode&fs.ModeType != 0:
			out[e.name] = "special:" + e.mode.Type().String()
		default:
			s := sha256.Sum256(e.data)
			out[e.name] = hex.EncodeToString(s[:])
		}
	}
	return out
}
