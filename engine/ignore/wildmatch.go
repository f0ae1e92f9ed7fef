package ignore

import "strings"

// The glob matcher of gitignore(5): git's wildmatch with WM_PATHNAME, written again in Go. It works on bytes,
// like git (a multi-byte UTF-8 character is several bytes to "?" and to a class), so that a .tandemignore means
// here what it means to git. TestMatcherAgreesWithGit checks it against `git check-ignore`.

// Results of wild. abortAll and abortToStarStar are "no match" too; they tell the "*" loops above that no later
// start can match either, which keeps patterns like "*a*a*a*b" linear in practice.
const (
	wmMatch = iota
	wmNoMatch
	wmAbortAll
	wmAbortToStarStar
)

// wildmatch reports whether text matches pattern; "*" and "?" never match "/", "**" between slashes matches
// any number of folders.
func wildmatch(pattern, text string) bool { return wild(pattern, text) == wmMatch }

func wild(p, text string) int {
	pi, ti := 0, 0
	for ; pi < len(p); pi, ti = pi+1, ti+1 {
		pc := p[pi]
		if ti >= len(text) && pc != '*' {
			return wmAbortAll
		}
		var tc byte
		if ti < len(text) {
			tc = text[ti]
		}
		switch pc {
		case '\\':
			// A backslash quotes the next byte; a trailing one matches nothing (git reads the NUL after it).
			pi++
			if pi >= len(p) || tc != p[pi] {
				return wmNoMatch
			}
		case '?':
			if tc == '/' {
				return wmNoMatch
			}
		case '[':
			matched, next, ok := class(p, pi, tc)
			if !ok {
				return wmAbortAll
			}
			if !matched || tc == '/' {
				return wmNoMatch
			}
			pi = next
		case '*':
			pi++
			matchSlash := false
			if pi < len(p) && p[pi] == '*' {
				start := pi - 1
				for pi < len(p) && p[pi] == '*' {
					pi++
				}
				// "**" is special only as a whole component: at the start or after "/", and at the end or
				// before "/"; elsewhere it is one "*".
				if (start == 0 || p[start-1] == '/') &&
					(pi == len(p) || p[pi] == '/' || (p[pi] == '\\' && pi+1 < len(p) && p[pi+1] == '/')) {
					// "a/**/b" also matches "a/b": try the rest with the "**/" matching nothing.
					if pi < len(p) && p[pi] == '/' && wild(p[pi+1:], text[ti:]) == wmMatch {
						return wmMatch
					}
					matchSlash = true
				}
			}
			if pi == len(p) {
				// A trailing "**" matches everything; a trailing "*" only what has no more slashes.
				if !matchSlash && strings.IndexByte(text[ti:], '/') >= 0 {
					return wmAbortToStarStar
				}
				return wmMatch
			}
			if !matchSlash && p[pi] == '/' {
				// "*/": the "*" takes the rest of this component, the loop then matches the slash.
				i := strings.IndexByte(text[ti:], '/')
				if i < 0 {
					return wmAbortAll
				}
				ti += i
				continue
			}
			for ; ti < len(text); ti++ {
				tc = text[ti]
				// Skip ahead to the next occurrence of a literal that follows the star: what comes before it
				// belongs to the star.
				if !globSpecial(p[pi]) {
					for ti < len(text) {
						tc = text[ti]
						if (!matchSlash && tc == '/') || tc == p[pi] {
							break
						}
						ti++
					}
					if ti == len(text) || tc != p[pi] {
						// Not in the rest of the text (or of this component): no later start of this star
						// can match, and none of an outer single star either.
						if matchSlash {
							return wmAbortAll
						}
						return wmAbortToStarStar
					}
				}
				if r := wild(p[pi:], text[ti:]); r != wmNoMatch {
					if !matchSlash || r != wmAbortToStarStar {
						return r
					}
				} else if !matchSlash && tc == '/' {
					return wmAbortToStarStar
				}
			}
			return wmAbortAll
		default:
			if tc != pc {
				return wmNoMatch
			}
		}
	}
	if ti < len(text) {
		return wmNoMatch
	}
	return wmMatch
}

func globSpecial(c byte) bool { return c == '*' || c == '?' || c == '[' || c == '\\' }

// class matches c against the bracket expression that starts at p[open] == '['. It returns whether c is in
// it, the index of its closing ']', and ok false for an expression git can never match (no closing ']', an
// unknown [:name:]). "[!...]" and "[^...]" negate; a ']' first is literal; "a-z" are ranges; a backslash quotes.
func class(p string, open int, c byte) (matched bool, end int, ok bool) {
	i := open + 1
	negated := i < len(p) && (p[i] == '!' || p[i] == '^')
	if negated {
		i++
	}
	in := false
	var prev byte
	for first := true; ; first = false {
		if i >= len(p) {
			return false, 0, false
		}
		pc := p[i]
		if pc == ']' && !first {
			break
		}
		switch {
		case pc == '\\':
			i++
			if i >= len(p) {
				return false, 0, false
			}
			pc = p[i]
			in = in || c == pc
		case pc == '-' && prev != 0 && i+1 < len(p) && p[i+1] != ']':
			i++
			hi := p[i]
			if hi == '\\' {
				i++
				if i >= len(p) {
					return false, 0, false
				}
				hi = p[i]
			}
			in = in || (c >= prev && c <= hi)
			pc = 0 // a range ends; "a-c-e" is a-c, '-', 'e'
		case pc == '[' && i+1 < len(p) && p[i+1] == ':':
			s := i + 2
			j := s
			for j < len(p) && p[j] != ']' {
				j++
			}
			if j >= len(p) {
				return false, 0, false
			}
			if j-s-1 < 0 || p[j-1] != ':' {
				// Not "[:name:]": a literal '['; go on right after it.
				in = in || c == '['
				pc = '['
				break
			}
			m, known := posixClass(p[s:j-1], c)
			if !known {
				return false, 0, false
			}
			in = in || m
			i = j
			pc = 0
		default:
			in = in || c == pc
		}
		prev = pc
		i++
	}
	return in != negated, i, true
}

// posixClass is [:name:] over ASCII, as git's sane-ctype: bytes above 0x7f are in no class.
func posixClass(name string, c byte) (in, known bool) {
	alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	digit := c >= '0' && c <= '9'
	switch name {
	case "alnum":
		return alpha || digit, true
	case "alpha":
		return alpha, true
	case "blank":
		return c == ' ' || c == '\t', true
	case "cntrl":
		return c < 0x20 || c == 0x7f, true
	case "digit":
		return digit, true
	case "graph":
		return c > ' ' && c < 0x7f, true
	case "lower":
		return c >= 'a' && c <= 'z', true
	case "print":
		return c >= ' ' && c < 0x7f, true
	case "punct":
		return c > ' ' && c < 0x7f && !alpha && !digit, true
	case "space":
		return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r', true
	case "upper":
		return c >= 'A' && c <= 'Z', true
	case "xdigit":
		return digit || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F', true
	}
	return false, false
}
