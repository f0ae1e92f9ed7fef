// Package ignore decides which paths a pair leaves alone: built-in temp and editor files, tandem's own folder
// and temp files, and the user's gitignore-syntax .tandemignore. Ignored never means deleted: the engine drops
// ignored paths from both views and the base, and never acts on them.
package ignore

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tandemsync/tandem/remote"
)

// FileName is the per-root ignore file.
const FileName = ".tandemignore"

// Builtin patterns: files that are always transient (editor swap and backup files, partial downloads of other
// programs, OS metadata). Matching is on the base name, at any depth.
var Builtin = []string{
	".tandem/",                // tandem's own marker, trash and journal
	".tandem-*.part",          // tandem's temp files
	"*.swp", "*.swo", "*.swx", // vim
	"4913",                      // vim's write test file
	"*~",                        // emacs, gedit backups
	".#*",                       // emacs lock files
	".~lock.*#",                 // LibreOffice locks
	"~$*",                       // MS Office owner files
	".goutputstream-*",          // GTK atomic saves
	"*.crdownload", "*.partial", // browser downloads in flight
	".DS_Store", "Thumbs.db", "desktop.ini",
}

// Matcher answers Ignored for slash-separated relative paths.
type Matcher struct {
	user  rules
	lines []string
}

// builtinName is Builtin as plain string tests on one path component: run for every path of every pass, the
// built-ins through a glob matcher were most of a no-change pass's CPU. TestBuiltinAgreesWithGitignore keeps the
// two in step.
func builtinName(name string) bool {
	if name == "" {
		return false
	}
	// Only names that begin with '.' or '~' can carry a built-in prefix; the rest are told by their length
	// (the three exact names that do not begin with '.') and their last byte (the suffixes), so that most
	// names cost two or three compares. A no-change pass over 100,000 files asks this of every component of
	// every path, 1.3 million times; testing a first 'd' for desktop.ini sent every "docs" and "data" down
	// the slow path, a tenth of that pass's CPU.
	switch name[0] {
	case '.', '~':
		return builtinNameFull(name)
	}
	switch len(name) {
	case 4:
		if name == "4913" {
			return true
		}
	case 9:
		if name == "Thumbs.db" {
			return true
		}
	case 11:
		if name == "desktop.ini" {
			return true
		}
	}
	switch name[len(name)-1] {
	case '~':
		return true
	case 'p', 'o', 'x':
		n := len(name)
		return n >= 4 && name[n-4:n-1] == ".sw"
	case 'd':
		return strings.HasSuffix(name, ".crdownload")
	case 'l':
		return strings.HasSuffix(name, ".partial")
	}
	return false
}

// builtinNameFull is builtinName without the first test (TestBuiltinNameShortcut holds the two together).
func builtinNameFull(name string) bool {
	switch name {
	case remote.ReservedDir, "4913", ".DS_Store", "Thumbs.db", "desktop.ini":
		return true
	}
	for _, p := range [...]string{remote.TempPrefix, ".#", "~$", ".goutputstream-"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	for _, s := range [...]string{".swp", ".swo", ".swx", "~", ".crdownload", ".partial"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return strings.HasPrefix(name, ".~lock.") && strings.HasSuffix(name, "#")
}

// Junk reports whether a file name is one of the built-in OS and editor droppings (.DS_Store, Thumbs.db,
// swap and backup files, lock files): not the user's choice to ignore, so a folder deleted on the other side
// takes them to the trash with it. tandem's own marker and temp files are not junk.
func Junk(name string) bool {
	if name == remote.ReservedDir || strings.HasPrefix(name, remote.TempPrefix) {
		return false
	}
	return builtinName(name)
}

// builtinPath: a built-in name anywhere in the path ignores it (a pattern matching a folder covers what is in it).
func builtinPath(rel string) bool {
	for rel != "" {
		i := strings.IndexByte(rel, '/')
		if i < 0 {
			return builtinName(rel)
		}
		if builtinName(rel[:i]) {
			return true
		}
		rel = rel[i+1:]
	}
	return false
}

// New compiles the built-ins plus extra user patterns (config) plus the lines of a .tandemignore (may be nil).
func New(extra []string, file io.Reader) (*Matcher, error) {
	m := &Matcher{}
	lines := append([]string(nil), extra...)
	if file != nil {
		sc := bufio.NewScanner(file)
		n := 0
		for sc.Scan() {
			n++
			l := strings.TrimRight(sc.Text(), "\r")
			if strings.ContainsRune(l, 0) {
				return nil, fmt.Errorf("%s:%d: NUL byte in pattern", FileName, n)
			}
			lines = append(lines, l)
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", FileName, err)
		}
	}
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "!") && strings.Contains(l, ".tandem") {
			return nil, fmt.Errorf("ignore pattern %d %q: tandem's own files cannot be un-ignored", i+1, l)
		}
	}
	user, err := compileRules(lines)
	if err != nil {
		var re *ruleError
		if errors.As(err, &re) {
			if re.index >= len(extra) {
				return nil, fmt.Errorf("%s:%d: pattern %q %s", FileName, re.index-len(extra)+1, lines[re.index], re.why)
			}
			return nil, fmt.Errorf("ignore pattern %d %q %s", re.index+1, lines[re.index], re.why)
		}
		return nil, err
	}
	m.lines, m.user = lines, user
	return m, nil
}

// Ignored reports whether rel (slash-separated, relative to the root) is ignored. dir says whether it is a
// folder, so that "build/" patterns match the folder itself.
func (m *Matcher) Ignored(rel string, dir bool) bool {
	if rel == "" {
		return false
	}
	if builtinPath(rel) {
		return true
	}
	if m == nil {
		return false
	}
	return m.user.ignored(rel, dir)
}

// Patterns are the user patterns in force (config first, then the file).
func (m *Matcher) Patterns() []string { return m.lines }
