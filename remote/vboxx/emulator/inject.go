package emulator

import (
	"bytes"
	"fmt"
	"os"
)

// The emukit.Injector of the vBoxx emulator: items with names the reference's rule (5.5) refuses, for
// hostile-name tests. Not vBoxx behaviour: what a hostile or buggy server could list. The emulator's other
// rules stay: names are still unique per folder ignoring case, so a case twin of an existing name is refused.

// InjectFile creates the file name in the folder parent ("/" is the sync root).
func (e *Emulator) InjectFile(parent, name string, data []byte) error {
	tmp, _, err := e.content.Spool(bytes.NewReader(data), "inj-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	e.mu.Lock()
	defer e.mu.Unlock()
	rt, p, err := e.lookup(parent)
	if err != nil {
		return err
	}
	e.rawNames = true
	defer func() { e.rawNames = false }()
	if _, err := e.storeFile(rt, folderOf(p), name, false, tmp, int64(len(data))); err != nil {
		return fmt.Errorf("inject %q: %w", name, err)
	}
	return nil
}

// InjectFolder creates the empty folder name in parent.
func (e *Emulator) InjectFolder(parent, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	rt, p, err := e.lookup(parent)
	if err != nil {
		return err
	}
	e.rawNames = true
	defer func() { e.rawNames = false }()
	if _, err := e.createFolder(rt, folderOf(p), name); err != nil {
		return fmt.Errorf("inject %q: %w", name, err)
	}
	return nil
}

// InjectRename renames the item at path to name in its folder, as the API's rename would.
func (e *Emulator) InjectRename(path, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rawNames = true
	defer func() { e.rawNames = false }()
	rt, it, err := e.lookup(path)
	if err == nil && it == nil {
		err = fmt.Errorf("rename %s: the root", path)
	}
	if err != nil {
		return err
	}
	ch := newChange()
	if err := e.rename(rt, it, name, ch); err != nil {
		return fmt.Errorf("inject: rename %s: %w", path, err)
	}
	return writeChange(e.store.DB, ch, e.cnt)
}
