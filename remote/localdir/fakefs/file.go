package fakefs

import (
	"errors"
	"io"
	"io/fs"
	"slices"
	"syscall"

	"github.com/tandemsync/tandem/remote/localdir"
)

// file is an open file. Reads and writes act on the live inode, so an unlinked open file keeps working.
type file struct {
	f      *FS
	ino    uint64
	name   string
	gen    int
	off    int64
	write  bool
	closed bool
	// unnamed: made by CreateUnnamed; linked once LinkNew named it (until then, closing it frees it)
	unnamed, linked bool
}

var errStale = errors.New("fakefs: file was open across a crash")

// usable checks the handle; the caller holds the lock.
func (h *file) usable(op string) (*node, error) {
	switch {
	case h.closed:
		return nil, perr(op, h.name, fs.ErrClosed)
	case h.gen != h.f.gen:
		return nil, perr(op, h.name, errStale)
	}
	n := h.f.live[h.ino]
	if n == nil {
		return nil, perr(op, h.name, errStale)
	}
	return n, nil
}

func (h *file) Read(p []byte) (int, error) {
	if err := h.f.inject("read", h.name); err != nil {
		return 0, err
	}
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	n, err := h.usable("read")
	if err != nil {
		return 0, err
	}
	if h.write {
		return 0, perr("read", h.name, syscall.EBADF)
	}
	if n.isDir() {
		return 0, perr("read", h.name, syscall.EISDIR)
	}
	if h.off >= int64(len(n.data)) {
		return 0, io.EOF
	}
	c := copy(p, n.data[h.off:])
	h.off += int64(c)
	return c, nil
}

func (h *file) Write(p []byte) (int, error) {
	if err := h.f.inject("write", h.name); err != nil {
		return 0, err
	}
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	if _, err := h.usable("write"); err != nil {
		return 0, err
	}
	if !h.write {
		return 0, perr("write", h.name, syscall.EBADF)
	}
	if len(p) == 0 {
		return 0, nil
	}
	h.f.do(&op{kind: opWrite, ino: h.ino, off: h.off, data: slices.Clone(p), t: h.f.clk.Now()})
	h.off += int64(len(p))
	return len(p), nil
}

// Sync makes the file's data durable, not its name.
func (h *file) Sync() error {
	if err := h.f.inject("sync", h.name); err != nil {
		return err
	}
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	if _, err := h.usable("sync"); err != nil {
		return err
	}
	h.f.force(h.ino, func(o *op) bool { return o.dataOp() && o.ino == h.ino })
	return nil
}

// Chmod implements localdir.File (fchmod); its fault hook is "chmod" with the name the file was opened by.
func (h *file) Chmod(mode fs.FileMode) error {
	if err := h.f.inject("chmod", h.name); err != nil {
		return err
	}
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	n, err := h.usable("chmod")
	if err != nil {
		return err
	}
	h.f.do(&op{kind: opChmod, ino: h.ino, mode: n.mode.Type() | mode.Perm(), t: h.f.clk.Now()})
	return nil
}

func (h *file) Close() error {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	if h.closed {
		return perr("close", h.name, fs.ErrClosed)
	}
	h.closed = true
	if h.gen == h.f.gen {
		h.f.open[h.ino]--
		if h.unnamed && !h.linked && h.f.open[h.ino] == 0 {
			// No name ever held it: the inode is gone, its number free for the next file.
			delete(h.f.live, h.ino)
			h.f.free = append(h.f.free, h.ino)
		}
	}
	return nil
}

func (h *file) Stat() (localdir.FileInfo, error) {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	n, err := h.usable("stat")
	if err != nil {
		return localdir.FileInfo{}, err
	}
	return h.f.info(h.name, h.ino, n), nil
}

// WriteFile writes data to name like a user's editor would (truncate and write, nothing synced); the parent
