package emulator

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// The emukit.Injector of the Verizon emulator: items with names the API refuses, for hostile-name tests. Not
// Verizon behaviour: what a hostile or buggy server could list. This emulator keys items by path, so an item
// whose name makes it collide with another path (the empty name is its own parent; "a/b" beside a real a/b)
// cannot be injected and is refused.

func (e *Emulator) injectable(parent, name string) error {
	if name == "" {
		return errors.New("inject: this emulator keys items by path, so a nameless item would be its own folder")
	}
	if !utf8.ValidString(name) {
		// JSON carries it as U+FFFD, and a client asking for that path back would get 404 from a store keyed
		// by the raw bytes: a fault of this emulator's representation, not a server behaviour worth testing.
		return errors.New("inject: JSON cannot carry a name that is not UTF-8, and this emulator addresses items by path")
	}
	if pn := e.live[parent]; pn == nil || !pn.Folder {
		return fmt.Errorf("inject: parent %s: not a folder", parent)
	}
	if e.live[join(parent, name)] != nil {
		return fmt.Errorf("inject: %q in %s collides with an existing path", name, parent)
	}
	return nil
}

// InjectFile creates the file name in parent (PutHostile).
func (e *Emulator) InjectFile(parent, name string, data []byte) error {
	parent = strings.TrimSuffix(parent, "/")
	e.mu.Lock()
	err := e.injectable(parent, name)
	e.mu.Unlock()
	if err != nil {
		return err
	}
	return e.PutHostile(parent, name, data)
}

// InjectFolder creates the empty folder name in parent.
func (e *Emulator) InjectFolder(parent, name string) error {
	parent = strings.TrimSuffix(parent, "/")
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.injectable(parent, name); err != nil {
		return err
	}
	ch := newChange()
	e.mkdir(ch, parent, name)
	return e.commit(ch)
}

// InjectRename renames the item at path to name in its folder, as fops/rename would.
func (e *Emulator) InjectRename(path, name string) error {
	path = strings.TrimSuffix(path, "/")
	e.mu.Lock()
	defer e.mu.Unlock()
	n := e.live[path]
	if n == nil || isVirtualFolder(path) || path == "/" {
		return fmt.Errorf("inject: rename %s: no such item", path)
	}
	if err := e.injectable(n.Parent, name); err != nil {
		return err
	}
	ch := newChange()
	e.moveTree(ch, n, n.Parent, name)
	return e.commit(ch)
}
