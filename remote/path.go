package remote

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Path is slash-separated and relative to the pair root, with the bytes exactly as the side stores them (NFC
// and NFD spellings are two Paths). Root is the root itself; every other Path is built by ParsePath or Join,
// so a hostile server name can never become a local path.
type Path string

// Root is the pair's root folder.
const Root Path = ""

// Limits from Linux: NAME_MAX and PATH_MAX.
const (
	MaxNameBytes = 255
	MaxPathBytes = 4096
)

// Reserved names: tandem's own folder in a root and the prefix of its temporary files.
const (
	ReservedDir    = ".tandem"
	TempPrefix     = ".tandem-"
	TempSuffix     = ".part"
	reservedPrefix = ".tandem"
)

// ValidName reports whether name can be one component of a Path. The error wraps ErrInvalidName and says why.
func ValidName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidName, strconv.Quote(name), why)
	}
	switch {
	case name == "":
		return bad("empty")
	case name == "." || name == "..":
		return bad("dot name")
	case len(name) > MaxNameBytes:
		return bad("longer than 255 bytes")
	case !utf8.ValidString(name):
		return bad("not valid UTF-8")
	case name == ReservedDir || strings.HasPrefix(name, TempPrefix):
		return bad("reserved for tandem")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '/':
			return bad("contains a path separator")
		case c == '\\':
			// A plain character on Linux and macOS, but a separator on Windows and for some clouds: a name
			// with it could not be the same file everywhere.
			return bad("contains a backslash (a path separator on Windows and some clouds)")
		case c == 0:
			return bad("contains NUL")
		case c < 0x20 || c == 0x7f:
			return bad("contains a control character")
		}
	}
	return nil
}

// ParsePath validates a slash-separated relative path component by component. "" is Root.
func ParsePath(s string) (Path, error) {
	if s == "" {
		return Root, nil
	}
	if len(s) > MaxPathBytes {
		return "", fmt.Errorf("%w: path longer than %d bytes", ErrInvalidName, MaxPathBytes)
	}
	if strings.HasPrefix(s, "/") {
		return "", fmt.Errorf("%w: %s: absolute path", ErrInvalidName, strconv.Quote(s))
	}
	for _, c := range strings.Split(s, "/") {
		if err := ValidName(c); err != nil {
			return "", err
		}
	}
	return Path(s), nil
}

// Join appends one validated name.
func (p Path) Join(name string) (Path, error) {
	if err := ValidName(name); err != nil {
		return "", err
	}
	if p == Root {
		return Path(name), nil
	}
	q := string(p) + "/" + name
	if len(q) > MaxPathBytes {
		return "", fmt.Errorf("%w: path longer than %d bytes", ErrInvalidName, MaxPathBytes)
	}
	return Path(q), nil
}

// Base is the last component ("" for Root).
func (p Path) Base() string {
	if p == Root {
		return ""
	}
	return path.Base(string(p))
}

// Dir is the parent (Root for a top-level entry and for Root itself).
func (p Path) Dir() Path {
	i := strings.LastIndexByte(string(p), '/')
	if i < 0 {
		return Root
	}
	return p[:i]
}

// Within reports whether p is dir or lies below it. Every path is within Root.
func (p Path) Within(dir Path) bool {
	if dir == Root || p == dir {
		return true
	}
	return strings.HasPrefix(string(p), string(dir)+"/")
}

// Rebase moves p from below old to below new (p must be Within old).
func (p Path) Rebase(old, new Path) Path {
	if p == old {
		return new
	}
	rest := strings.TrimPrefix(string(p), string(old))
	rest = strings.TrimPrefix(rest, "/")
	if new == Root {
		return Path(rest)
	}
	return Path(string(new) + "/" + rest)
}

// Depth is the number of components (0 for Root).
func (p Path) Depth() int {
	if p == Root {
		return 0
	}
	return strings.Count(string(p), "/") + 1
}

// Quoted is the path as it may be printed to a terminal or log: control bytes and invalid UTF-8 escaped.
func (p Path) Quoted() string { return Escape(string(p)) }

// Escape makes an arbitrary name safe to print: it is returned unchanged when it is printable, else Go-quoted.
func Escape(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return strconv.Quote(s)
		}
	}
	if !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	return s
}
