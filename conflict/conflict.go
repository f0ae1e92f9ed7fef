// Package conflict names conflict copies and decides which side wins under the optional policies.
package conflict

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/tandemsync/tandem/remote"
)

// Policy says what happens when both sides changed a path to different content.
type Policy string

const (
	// KeepBoth (the default) keeps the remote version under the name and the local one as a conflict copy.
	KeepBoth Policy = "keep-both"
	// NewerWins keeps the version with the later modification time; the other goes to its side's trash.
	NewerWins Policy = "newer-wins"
	// LocalWins keeps the local version; the remote one goes to the provider's trash.
	LocalWins Policy = "local-wins"
	// RemoteWins keeps the remote version; the local one goes to the local trash.
	RemoteWins Policy = "remote-wins"
)

// Policies lists the valid policies, the default first.
var Policies = []Policy{KeepBoth, NewerWins, LocalWins, RemoteWins}

// ParsePolicy accepts a policy name; "" is KeepBoth.
func ParsePolicy(s string) (Policy, error) {
	if s == "" {
		return KeepBoth, nil
	}
	for _, p := range Policies {
		if string(p) == s {
			return p, nil
		}
	}
	names := make([]string, len(Policies))
	for i, p := range Policies {
		names[i] = string(p)
	}
	return "", fmt.Errorf("unknown conflict policy %q, want one of %s", s, strings.Join(names, ", "))
}

// Winner is the side whose version stays at the original name.
type Winner uint8

const (
	// Both: keep both versions (the local one is renamed aside).
	Both Winner = iota
	// Local version stays; the remote one goes to trash.
	Local
	// Remote version stays; the local one goes to trash.
	Remote
)

// Decide applies p to a conflict between the local and remote versions. A policy that would need a trash the
// remote lacks falls back to keeping both, because "never lose data" outranks the user's preference.
//
// step is the coarser mtime resolution of the two sides (pCloud keeps whole seconds): newer-wins compares the
// mtimes at that resolution, so two edits within one step are a tie, and a tie keeps both.
func Decide(p Policy, local, rem remote.Entry, remoteHasTrash bool, step time.Duration) Winner {
	if step > 0 {
		local.ModTime, rem.ModTime = local.ModTime.Truncate(step), rem.ModTime.Truncate(step)
	}
	w := Both
	switch p {
	case LocalWins:
		w = Local
	case RemoteWins:
		w = Remote
	case NewerWins:
		// Comparing clocks of two machines is what the Unison rule warns against; this policy is opt-in and
		// ties (or equal mtimes) keep both.
		switch {
		case local.ModTime.IsZero() || rem.ModTime.IsZero():
			// A side without a user mtime (Verizon reports only upload times): nothing to compare, keep both.
		case local.ModTime.After(rem.ModTime):
			w = Local
		case rem.ModTime.After(local.ModTime):
			w = Remote
		}
	}
	if w == Local && !remoteHasTrash {
		return Both
	}
	return w
}

// Name returns the conflict copy's path for p: "dir/name (conflict <host> <YYYY-MM-DD HHMMSS>).ext", with " 2",
// " 3"... appended inside the parentheses while taken reports the name in use. The time is printed in UTC so
// names made on two machines sort together.
func Name(p remote.Path, host string, t time.Time, taken func(remote.Path) bool) remote.Path {
	host = sanitizeHost(host)
	base := p.Base()
	ext := path.Ext(base)
	if ext == base || len(ext) > 16 { // ".bashrc" has no extension; a long "extension" is part of the name
		ext = ""
	}
	stem := strings.TrimSuffix(base, ext)
	stamp := t.UTC().Format("2006-01-02 150405")
	for n := 1; ; n++ {
		tag := fmt.Sprintf(" (conflict %s %s)", host, stamp)
		if n > 1 {
			tag = fmt.Sprintf(" (conflict %s %s %d)", host, stamp, n)
		}
		name := stem + tag + ext
		if over := len(name) - remote.MaxNameBytes; over > 0 {
			name = truncateUTF8(stem, len(stem)-over) + tag + ext
		}
		q, err := p.Dir().Join(name)
		if err != nil { // cannot happen for a valid p and a sanitised host, but never return an invalid Path
			q = remote.Path(strings.TrimPrefix(string(p.Dir())+"/"+fmt.Sprintf("conflict-%d", n), "/"))
		}
		if taken == nil || !taken(q) {
			return q
		}
	}
}

// IsName reports whether name looks like a conflict copy tandem made.
func IsName(name string) bool { return strings.Contains(name, " (conflict ") }

func sanitizeHost(h string) string {
	h = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '/' || r == '\\' || r == '(' || r == ')' {
			return '-'
		}
		return r
	}, h)
	if h == "" {
		h = "unknown"
	}
	if len(h) > 32 {
		h = truncateUTF8(h, 32)
	}
	return h
}

func truncateUTF8(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if n >= len(s) {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 { // do not cut inside a multi-byte rune
		n--
	}
	return s[:n]
}
