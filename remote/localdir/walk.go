package localdir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

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
	kids, incomplete, err := d.list(ctx, dir)
	if err != nil {
		return err
	}
	if incomplete != nil {
		return fmt.Errorf("walk %s: %w", dir.Quoted(), incomplete)
	}
	return d.walkKids(ctx, kids, fn)
}

type child struct {
	p    remote.Path
	fi   FileInfo
	skip string // why it cannot be synced (emitted with Entry.Skip)
}

func (d *Dir) walkKids(ctx context.Context, kids []child, fn func(remote.Entry) error) error {
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
		sub, incomplete, err := d.list(ctx, k.p)
		if err != nil {
			return err
		}
		if incomplete != nil {
			e.Incomplete = true
			d.o.OnSkip(k.p.Quoted(), "folder not completely readable: "+incomplete.Error())
		}
		if err := fn(e); err != nil {
			return err
		}
		if err := d.walkKids(ctx, sub, fn); err != nil {
			return err
		}
	}
	return nil
}

// list reads folder dir and stats its children, leaving out what Walk must not emit. incomplete says why the
// listing misses something (the folder, or a child, could not be read); err is reserved for what must abort
// the walk: ctx, or a root that no longer answers.
func (d *Dir) list(ctx context.Context, dir remote.Path) (kids []child, incomplete, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	dn, _ := name(dir)
	names, rerr := d.fs.ReadDir(dn)
	if rerr != nil {
		if err := d.rootAlive(); err != nil {
			return nil, nil, err
		}
		return nil, rerr, nil
	}
	for _, n := range names {
		if isTemp(n) || (dir == remote.Root && n == remote.ReservedDir) {
			continue // ours
		}
		p, err := dir.Join(n)
		if err != nil {
			// Stat'ed anyway: its ID tells the engine which stored object was renamed to this name.
			fi, _ := d.fs.Lstat(joinRaw(dir, n))
			kids = append(kids, child{p: remote.Path(remote.Escape(joinRaw(dir, n))), fi: fi, skip: err.Error()})
			continue
		}
		fi, err := d.fs.Lstat(string(p))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since ReadDir: it is gone, and the next pass sees it gone
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
			kids = append(kids, child{p: p, fi: fi, skip: k})
			continue
		}
		kids = append(kids, child{p: p, fi: fi})
	}
	return kids, incomplete, nil
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
