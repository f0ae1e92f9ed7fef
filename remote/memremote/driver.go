package memremote

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tandemsync/tandem/remote"
)

// The driver helpers act as another client of the account (a phone, the web UI). They take plain strings for
// convenience but validate them as every Remote call does, change the store through the same code, and emit
// the same feed events, so the engine cannot tell them from a foreign client.

func parse(op, s string) (remote.Path, error) {
	p, err := remote.ParsePath(s)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", op, s, err)
	}
	return p, nil
}

// WriteFile stores data at p unconditionally with the clock's time as mtime, creating missing parent folders.
func (m *Mem) WriteFile(p string, data []byte) error {
	pp, err := parse("write", p)
	if err != nil {
		return err
	}
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.mkdirAll(pp.Dir()); err != nil {
		return err
	}
	_, err = s.write(pp, slices.Clone(data), s.clk.Now(), remote.Precondition{})
	return err
}

// ReadFile returns a copy of the content of file p.
func (m *Mem) ReadFile(p string) ([]byte, error) {
	pp, err := parse("read", p)
	if err != nil {
		return nil, err
	}
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	pp = s.res(pp)
	n, ok := s.nodes[pp]
	switch {
	case !ok:
		return nil, fmt.Errorf("read %s: %w", pp.Quoted(), remote.ErrNotFound)
	case n.dir:
		return nil, fmt.Errorf("read %s: is a folder: %w", pp.Quoted(), remote.ErrConflict)
	}
	return slices.Clone(n.data), nil
}

// MkdirAll creates folder p and its missing parents.
func (m *Mem) MkdirAll(p string) error {
	pp, err := parse("mkdir", p)
	if err != nil {
		return err
	}
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	return m.s.mkdirAll(pp)
}

func (s *store) mkdirAll(p remote.Path) error {
	if p == remote.Root {
		return nil
	}
	if err := s.mkdirAll(p.Dir()); err != nil {
		return err
	}
	_, err := s.mkdir(p)
	return err
}

// Remove deletes a file or a whole folder tree, children first, each with its own Deleted event. It is the
// user's own delete: nothing goes to the trash.
func (m *Mem) Remove(p string) error {
	pp, err := parse("remove", p)
	if err != nil {
		return err
	}
	if pp == remote.Root {
		return fmt.Errorf("remove root: %w: the root cannot be removed", remote.ErrInvalidName)
	}
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	pp = s.res(pp)
	if _, ok := s.nodes[pp]; !ok {
		return fmt.Errorf("remove %s: %w", pp.Quoted(), remote.ErrNotFound)
	}
	var sub []remote.Path
	for q := range s.nodes {
		if q.Within(pp) {
			sub = append(sub, q)
		}
	}
	// Reverse bytewise order puts every child before its parent, and keeps the feed deterministic.
	slices.SortFunc(sub, func(a, b remote.Path) int { return strings.Compare(string(b), string(a)) })
	for _, q := range sub {
		s.remove(q)
	}
	return nil
}

// Rename moves a file or folder; like Move it never replaces an existing target.
func (m *Mem) Rename(from, to string) error {
	f, err := parse("rename", from)
	if err != nil {
		return err
	}
	t, err := parse("rename", to)
	if err != nil {
		return err
	}
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	_, err = m.s.move(f, t, remote.Precondition{})
	return err
}
