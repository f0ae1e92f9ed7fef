package localdir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/tandemsync/tandem/remote"
)

// Walk calls fn for every file and folder below dir (not dir itself): depth-first, children in bytewise name
// order, parents first. That is the key order of a store whose keys replace "/" by 0x00, so the engine can
// merge the walk with its stored view in one pass.
//
// Symlinks, special files and invalid names are emitted with Entry.Skip set (the engine keeps what it knew at
// such a path instead of taking it as deleted) and not descended into; tandem's own .tandem folder and temp
// files are left out silently. A folder that cannot be listed, or that has a child that
// cannot be stat'ed, is emitted with Incomplete set: what is stored below it must be kept, not taken as deleted.
// Failing to list dir itself, or losing the root, aborts the walk with an error.
func (d *Dir) Walk(ctx context.Context, dir remote.Path, fn func(remote.Entry) error) error {
	fi, err := d.stat("walk", dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("walk %s: not a folder", dir.Quoted())
	}
	dn, _ := name(dir)
	h, oerr := d.openDir(dn)
	if oerr != nil {
		if err := d.rootAlive(); err != nil {
			return err
		}
		return fmt.Errorf("walk %s: %w", dir.Quoted(), oerr)
	}
	defer h.Close()
	kids, incomplete, err := d.list(ctx, h, dir)
	if err != nil {
		return err
	}
	if incomplete != nil {
		return fmt.Errorf("walk %s: %w", dir.Quoted(), incomplete)
	}
	return d.walkKids(ctx, h, kids, fn)
}

// openDir opens folder dn through the FS's handles, or by path where the FS has none.
func (d *Dir) openDir(dn string) (DirHandle, error) {
	if l, ok := d.fs.(DirLister); ok {
		return l.OpenDir(dn)
	}
	return pathDir{fs: d.fs, name: dn}, nil
}

type child struct {
	p    remote.Path
	name string // the name in its folder, as listed
	fi   FileInfo
	skip string // why it cannot be synced (emitted with Entry.Skip)
}

// walkKids emits kids, the listing of the open folder h, descending into each folder through h.
func (d *Dir) walkKids(ctx context.Context, h DirHandle, kids []child, fn func(remote.Entry) error) error {
	for _, k := range kids {
		if k.skip != "" {
			if err := fn(remote.Entry{Path: k.p, Dir: k.fi.IsDir(), ID: id(k.fi), Skip: k.skip}); err != nil {
				return err
			}
			continue
		}
		e := entry(k.p, k.fi)
		if !e.Dir {
			if err := fn(e); err != nil {
				return err
			}
			continue
		}
		var sub []child
		var incomplete error
		sh, err := h.OpenSub(k.name)
		if err == nil {
			sub, incomplete, err = d.list(ctx, sh, k.p)
		} else if rerr := d.rootAlive(); rerr != nil {
			err = rerr
		} else {
			incomplete, err = err, nil
		}
		if err == nil {
			err = d.walkSub(ctx, sh, k.p, e, sub, incomplete, fn)
		}
		if sh != nil {
			sh.Close()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// walkSub emits folder e (Incomplete when its listing missed something) and then its children.
func (d *Dir) walkSub(ctx context.Context, sh DirHandle, p remote.Path, e remote.Entry, sub []child, incomplete error,
	fn func(remote.Entry) error) error {
	if incomplete != nil {
		e.Incomplete = true
		d.o.OnSkip(p.Quoted(), "folder not completely readable: "+incomplete.Error())
	}
	if err := fn(e); err != nil {
		return err
	}
	if sh == nil {
		return nil
	}
	return d.walkKids(ctx, sh, sub, fn)
}

// list reads the open folder h (at dir) and its children's stats, leaving out what Walk must not emit.
// incomplete says why the listing misses something (the folder, or a child, could not be read); err is reserved
// for what must abort the walk: ctx, or a root that no longer answers.
func (d *Dir) list(ctx context.Context, h DirHandle, dir remote.Path) (kids []child, incomplete, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	ents, rerr := h.Entries()
	if rerr != nil {
		if err := d.rootAlive(); err != nil {
			return nil, nil, err
		}
		return nil, rerr, nil
	}
	kids = make([]child, 0, len(ents))
	for _, en := range ents {
		n := en.Name
		if isTemp(n) || (dir == remote.Root && n == remote.ReservedDir) {
			continue // ours
		}
		p, err := dir.Join(n)
		if err != nil {
			// Stat'ed anyway: its ID tells the engine which stored object was renamed to this name.
			kids = append(kids, child{p: remote.Path(remote.Escape(joinRaw(dir, n))), name: n, fi: en.Info, skip: err.Error()})
			continue
		}
		fi, err := en.Info, en.Err
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since the listing: it is gone, and the next pass sees it gone
		}
		if err != nil {
			if rerr := d.rootAlive(); rerr != nil {
				return nil, nil, rerr
			}
			// We cannot tell what this is, so its parent's listing is not the whole truth.
			d.o.OnSkip(p.Quoted(), "unreadable: "+err.Error())
			incomplete = err
			continue
		}
		if d.o.Skip != nil && d.o.Skip(p, fi.IsDir()) {
			continue // ignored before reported: an ignored symlink is the user's choice
		}
		if k := kind(fi); k != "" {
			kids = append(kids, child{p: p, name: n, fi: fi, skip: k})
			continue
		}
		kids = append(kids, child{p: p, name: n, fi: fi})
	}
	return kids, incomplete, nil
}

// pathDir is a DirHandle for an FS without handles: names, then an Lstat of each child by its path.
type pathDir struct {
	fs   FS
	name string
}

func (d pathDir) Close() error { return nil }

func (d pathDir) Entries() ([]DirEntry, error) {
	names, err := d.fs.ReadDir(d.name)
	if err != nil {
		return nil, err
	}
	out := make([]DirEntry, len(names))
	for i, n := range names {
		out[i].Name = n
		out[i].Info, out[i].Err = d.fs.Lstat(path.Join(d.name, n))
	}
	return out, nil
}

func (d pathDir) OpenSub(name string) (DirHandle, error) {
	return pathDir{fs: d.fs, name: path.Join(d.name, name)}, nil
}

// rootAlive tells an unreadable folder (a per-path problem) from a root that stopped answering (abort).
func (d *Dir) rootAlive() error {
	if _, err := d.fs.Lstat("."); err != nil {
		return fmt.Errorf("%w: root %s: %w", remote.ErrRootMissing, d.o.Label, err)
	}
	return nil
}

// joinRaw builds the printable path of a name that failed validation.
func joinRaw(dir remote.Path, n string) string {
	if dir == remote.Root {
		return n
	}
	return string(dir) + "/" + n
}
