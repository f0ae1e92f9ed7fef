package state

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tandemsync/tandem/remote"
)

// Store keys are paths with every "/" replaced by 0x00. NUL never occurs in a valid name and sorts below every
// other byte, so bbolt's byte order becomes depth-first with each folder's children in bytewise name order
// ("a", "a/b", "a/b/c", "a.txt", "a0", "b") and a folder's subtree is one contiguous key range.
const sep = 0

func key(p remote.Path) []byte {
	k := []byte(p)
	for i, c := range k {
		if c == '/' {
			k[i] = sep
		}
	}
	return k
}

func pathOf(k []byte) remote.Path {
	b := make([]byte, len(k))
	for i, c := range k {
		if c == sep {
			c = '/'
		}
		b[i] = c
	}
	return remote.Path(b)
}

// Compare orders paths the way the store returns them (Each, Page): bytewise, with "/" sorting before every
// other byte, i.e. depth-first with each folder's children sorted by name bytes. A merge-join over pages of
// several trees must compare with this, not with string comparison ("a/b" < "a.txt" here, not in Go).
func Compare(a, b remote.Path) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x == '/' {
			x = sep
		}
		if y == '/' {
			y = sep
		}
		if x < y {
			return -1
		}
		return 1
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

// idKey is the ids-index key: the id, length-prefixed so no id is a prefix of another's key, then the path
// key. Several paths may carry one id (hard links locally, a provider reusing an id across a move), so the index
// maps id -> set of paths.
func idPrefix(id string) []byte {
	b := binary.AppendUvarint(make([]byte, 0, len(id)+2), uint64(len(id)))
	return append(b, id...)
}

func idKey(id string, pk []byte) []byte { return append(idPrefix(id), pk...) }

// splitIDKey undoes idKey.
func splitIDKey(k []byte) (id string, pk []byte, err error) {
	n, w := binary.Uvarint(k)
	// a non-minimal length would let two keys name one (id, path) pair
	if w <= 0 || w != uvarintLen(n) || n > uint64(len(k)-w) || int(n)+w == len(k) {
		return "", nil, fmt.Errorf("%w: malformed id index key %q", ErrCorrupt, k)
	}
	return string(k[w : w+int(n)]), k[w+int(n):], nil
}

func uvarintLen(n uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], n)
}

// PairID names a folder pair's database: hex of the first 16 bytes of sha256 over the symlink-resolved absolute
// local path, a NUL, and the remote spec without trailing "/". The caller resolves symlinks, so "once ./d",
// "once /abs/d" and the daemon's config all land on the same database.
func PairID(localAbs, remoteSpec string) string {
	h := sha256.New()
	h.Write([]byte(localAbs))
	h.Write([]byte{0})
	h.Write([]byte(strings.TrimRight(remoteSpec, "/")))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// DefaultDir is where the per-pair databases live: $XDG_STATE_HOME/tandem, or ~/.local/state/tandem when that
// is unset or not absolute (as the XDG spec says to treat it).
func DefaultDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "tandem"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("state dir: %w", err)
	}
	return filepath.Join(home, ".local", "state", "tandem"), nil
}

// MoveAside renames a damaged database to <path>.broken-YYYYMMDD-HHMMSS (with -2, -3 … when that name is taken)
// and returns the new name, so --resync can start a fresh one while the old stays for inspection. The database
// must not be open. The directory is fsynced so the rename survives a crash before the new database is made.
func MoveAside(path string, now time.Time) (string, error) {
	base := path + ".broken-" + now.Format("20060102-150405")
	to := base
	for n := 2; ; n++ {
		_, err := os.Lstat(to)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("move aside %s: %w", path, err)
		}
		to = fmt.Sprintf("%s-%d", base, n)
	}
	if err := os.Rename(path, to); err != nil {
		return "", fmt.Errorf("move aside %s: %w", path, err)
	}
	_ = os.Remove(path + pidSuffix) // a stale sidecar would name the wrong process
	if err := syncDir(filepath.Dir(path)); err != nil {
		return to, fmt.Errorf("move aside %s: %w", path, err)
	}
	return to, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
