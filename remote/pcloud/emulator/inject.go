package emulator

import (
	"bytes"
	"fmt"
	"strings"
)

// The emukit.Injector of the pCloud emulator: items with names the API refuses, for hostile-name tests. Not
// pCloud behaviour (its API rejects such names with 2001): what a hostile or buggy server could list.

func (e *Emulator) injectParent(parent string) (*node, error) {
	if parent == "" || parent == "/" {
		return e.root(), nil
	}
	f, err := e.resolveFolderPath(strings.TrimSuffix(parent, "/"))
	if err != nil {
		return nil, fmt.Errorf("inject: parent %s: %w", parent, err)
	}
	return f, nil
}

// InjectFile creates the file name in parent, with the events of an upload.
func (e *Emulator) InjectFile(parent, name string, data []byte) error {
	e.mu.Lock()
	p, err := e.injectParent(parent)
	e.mu.Unlock()
	if err != nil {
		return err
	}
	tmp, d, err := e.receive(bytes.NewReader(data))
	if err != nil {
		return err
	}
	_, err = e.commitFile(p.ID, name, tmp, d, saveOpts{})
	return err
}

// InjectFolder creates the empty folder name in parent.
func (e *Emulator) InjectFolder(parent, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, err := e.injectParent(parent)
	if err != nil {
		return err
	}
	if e.childFolder(p.ID, name) != nil {
		return fmt.Errorf("inject: folder %q exists", name)
	}
	now := e.clk.Now().Unix()
	f := &node{ID: e.cnt.NextFolderID, Folder: true, Parent: p.ID, Name: name, Created: now, Modified: now}
	e.cnt.NextFolderID++
	e.folders[f.ID] = f
	e.link(f)
	ch := &change{}
	ch.put(f)
	e.touchParent(ch, p.ID, now)
	e.appendEvent(ch, "createfolder", f, 0)
	return e.commit(ch)
}

// InjectRename renames the file or folder at path to name in its folder, with the event of renamefile or
// renamefolder.
func (e *Emulator) InjectRename(path, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	path = strings.TrimSuffix(path, "/")
	n, err := e.resolveFile(path)
	kind := "modifyfile"
	if err != nil {
		if n, err = e.resolveFolderPath(path); err != nil {
			return fmt.Errorf("inject: rename %s: %w", path, err)
		}
		kind = "modifyfolder"
	}
	if n.ID == 0 && n.Folder {
		return fmt.Errorf("inject: rename %s: the root", path)
	}
	ch := &change{}
	e.move(ch, n, n.Parent, name, e.clk.Now().Unix())
	e.appendEvent(ch, kind, n, 0)
	return e.commit(ch)
}
