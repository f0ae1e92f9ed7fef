package emukit

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
)

// Blobs is an emulator's content store: one file per id in a folder of the data dir. A blob is only ever
// written by renaming a finished temp file into place, never in place, so a reader that has an id may read its
// file without the emulator's lock, and a crash never leaves half a blob behind. Temp files live in the data
// dir's "tmp" folder, on the same file system, so the rename is atomic.
type Blobs struct {
	dir, tmp string
}

// NewBlobs is the store in dataDir/sub with temp files in dataDir/tmp (OpenStore creates both when listed in
// Subdirs).
func NewBlobs(dataDir, sub string) Blobs {
	return Blobs{dir: filepath.Join(dataDir, sub), tmp: filepath.Join(dataDir, "tmp")}
}

// Path is the file of blob id.
func (b Blobs) Path(id string) string { return filepath.Join(b.dir, id) }

// Open opens blob id for reading.
func (b Blobs) Open(id string) (*os.File, error) { return os.Open(b.Path(id)) }

// ReadFile returns the content of blob id.
func (b Blobs) ReadFile(id string) ([]byte, error) { return os.ReadFile(b.Path(id)) }

// Remove deletes blob id.
func (b Blobs) Remove(id string) error { return os.Remove(b.Path(id)) }

// Put makes the finished temp file tmp blob id, replacing what was there.
func (b Blobs) Put(tmp, id string) error { return os.Rename(tmp, b.Path(id)) }

// CreateTemp creates a temp file (named after pattern, as in os.CreateTemp) for content on its way in.
func (b Blobs) CreateTemp(pattern string) (*os.File, error) { return os.CreateTemp(b.tmp, pattern) }

// TempPath is a fresh name in the temp folder, for a file the caller creates there (O_EXCL) or moves there.
func (b Blobs) TempPath() string { return filepath.Join(b.tmp, RandomHex(12)) }

// Spool copies r into a new temp file (named after pattern, as in os.CreateTemp) and into each of also (say, a
// hash), and returns the file's path and size. On an error the temp file is removed. The caller Puts the file
// or removes it.
func (b Blobs) Spool(r io.Reader, pattern string, also ...io.Writer) (string, int64, error) {
	f, err := b.CreateTemp(pattern)
	if err != nil {
		return "", 0, err
	}
	n, err := io.Copy(io.MultiWriter(append([]io.Writer{f}, also...)...), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", n, err
	}
	return f.Name(), n, nil
}

// SHA256 hashes blob id's stored bytes (hex).
func (b Blobs) SHA256(id string) (string, error) {
	f, err := b.Open(id)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
