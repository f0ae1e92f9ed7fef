package ignore

import (
	"errors"
	"strings"
)

// rule is one gitignore(5) line.
type rule struct {
	glob     string // without "!", the trailing "/" and, for an anchored rule, the leading "/"
	negate   bool   // "!": a match re-includes
	dirOnly  bool   // a trailing "/": matches folders only
	basename bool   // no "/" left: matched against the last component at any depth; else against the whole path
	literal  int    // bytes of glob before its first wildcard (anchored rules only)
}

// rules is a .gitignore at the root: the lines in order, the last match wins, and nothing below an ignored
// folder can be re-included (git never looks inside it).
type rules []rule

// ruleError is a line git accepts but can never match with; tandem refuses it rather than silently ignoring
// nothing. index is the line's position in the slice given to compileRules.
type ruleError struct {
	index int
	why   string
}

func (e *ruleError) Error() string { return e.why }

// compileRules parses gitignore lines: blank lines and "#" comments are skipped, trailing spaces dropped
// unless quoted with a backslash, "\#" and "\!" start a literal "#" or "!".
func compileRules(lines []string) (rules, error) {
	var rs rules
	for i, l := range lines {
		if l == "" || l[0] == '#' {
			continue
		}
		l = trimTrailingSpaces(l)
		var r rule
		if strings.HasPrefix(l, "!") {
			r.negate, l = true, l[1:]
		}
		if strings.HasSuffix(l, "/") {
			r.dirOnly, l = true, l[:len(l)-1]
		}
		if l == "" {
			continue // git keeps it, and it matches nothing
		}
		r.basename = !strings.Contains(l, "/")
		r.glob = strings.TrimPrefix(l, "/")
		if !r.basename {
			r.literal = strings.IndexAny(r.glob, `*?[\`)
			if r.literal < 0 {
				r.literal = len(r.glob)
			}
		}
		if err := checkGlob(l); err != nil {
			return nil, &ruleError{index: i, why: err.Error()}
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// trimTrailingSpaces drops trailing spaces (not tabs), keeping one quoted by a backslash and what precedes it.
func trimTrailingSpaces(l string) string {
	lastSpace := -1
	for i := 0; i < len(l); i++ {
		switch l[i] {
		case ' ':
			if lastSpace < 0 {
				lastSpace = i
			}
		case '\\':
			i++
			if i >= len(l) {
				return l
			}
			lastSpace = -1
		default:
			lastSpace = -1
		}
	}
	if lastSpace >= 0 {
		return l[:lastSpace]
	}
	return l
}

// checkGlob finds what makes a glob unmatchable, reading it the way wild does.
func checkGlob(g string) error {
	for i := 0; i < len(g); i++ {
		switch g[i] {
		case '\\':
			i++
			if i >= len(g) {
				return errors.New("ends in a lone backslash, which git never matches (quote a trailing space as \"\\ \")")
			}
		case '[':
			_, end, ok := class(g, i, 0)
			if !ok {
				return errors.New("has a [ without its ] (or an unknown [:class:]), which git never matches; write \\[ for a literal [")
			}
			i = end
		}
	}
	return nil
}

// ignored reports whether rel (slash-separated, relative to the root, no trailing slash) is ignored; dir says
// whether it is a folder. Every folder above rel is asked first: an ignored folder ignores all it holds.
func (rs rules) ignored(rel string, dir bool) bool {
	if len(rs) == 0 {
		return false
	}
	for i := 0; i < len(rel); i++ {
		if rel[i] == '/' && rs.last(rel[:i], true) {
			return true
		}
	}
	return rs.last(rel, dir)
}

// last applies the rules to one path alone: the last rule that matches decides.
func (rs rules) last(rel string, dir bool) bool {
	base := rel[strings.LastIndexByte(rel, '/')+1:]
	for i := len(rs) - 1; i >= 0; i-- {
		r := &rs[i]
		if r.dirOnly && !dir {
			continue
		}
		if r.match(rel, base) {
			return !r.negate
		}
	}
	return false
}

// match: a basename rule globs the last component; an anchored rule compares its literal head with the path
// and globs only the rest, as git does. That split is visible: "a**/b" matches "a/x/b" because the rest, "**/b",
// starts with a "**" that is a whole component there.
func (r *rule) match(rel, base string) bool {
	if r.basename {
		return wildmatch(r.glob, base)
	}
	head := r.glob[:r.literal]
	if !strings.HasPrefix(rel, head) {
		return false
	}
	if r.literal == len(r.glob) {
		return len(rel) == len(head)
	}
	return wildmatch(r.glob[r.literal:], rel[len(head):])
}
