package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/localdir"
	"github.com/tandemsync/tandem/remote/pcloud"
	"github.com/tandemsync/tandem/remote/vboxx"
	"github.com/tandemsync/tandem/remote/verizon"
)

// NewRegistry returns the providers this build knows. It is the only place provider packages are named.
func NewRegistry() *remote.Registry {
	reg := &remote.Registry{}
	reg.Add("dir", openDir)
	reg.Add("pcloud", pcloud.Open)
	reg.Add("verizon", verizon.Open)
	reg.Add("vboxx", vboxx.Open)
	return reg
}

// dirHooks are what a pass adds to a `dir:` remote beyond remote.OpenOptions: the ignore rules (so ignored
// folders are not even walked), a collector of skipped entries, and whether a missing root may be created.
type dirHooks struct {
	skip   func(p remote.Path, dir bool) bool
	onSkip func(p, reason string)
	create bool
}

type dirHooksKey struct{}

// withDirHooks passes h to openDir through the registry's fixed Opener signature.
func withDirHooks(ctx context.Context, h dirHooks) context.Context {
	return context.WithValue(ctx, dirHooksKey{}, h)
}

// openDir opens a `dir:` remote. root is absolute (normaliseSpec made it so). A root that does not exist is
// created only when the hooks allow it (a first sync, like a new cloud folder) and only if its parent exists: a
// missing parent is more likely an unmounted disk than a wish for a new folder.
func openDir(ctx context.Context, lg *zap.Logger, root string, _ remote.OpenOptions) (remote.Remote, error) {
	h, _ := ctx.Value(dirHooksKey{}).(dirHooks)
	if h.create {
		if _, err := os.Lstat(root); errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(root, 0o755); err != nil {
				return nil, fmt.Errorf("create remote folder %s: %w", root, err)
			}
		}
	}
	return localdir.Open(lg, root, localdir.Options{Skip: h.skip, OnSkip: h.onSkip, Label: "dir:" + root})
}

// resolveLocal turns the local argument into the absolute, symlink-free path the pair id is made from.
func resolveLocal(arg string) (string, error) {
	abs, err := filepath.Abs(arg)
	if err != nil {
		return "", usagef("local folder %q: %v", arg, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", usagef("local folder %s does not exist (create it first: tandem never creates the local root)", abs)
		}
		return "", usagef("local folder %s: %v", abs, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", usagef("local folder %s: %v", real, err)
	}
	if !fi.IsDir() {
		return "", usagef("local folder %s is not a directory", real)
	}
	return real, nil
}

// normaliseSpec makes the remote spec canonical, so that every way of naming a remote gives one pair id: the
// scheme is checked, a `dir:` path becomes absolute with symlinks resolved (of its parent, when the folder does
// not exist yet), and no root keeps a trailing slash.
func normaliseSpec(reg *remote.Registry, spec string) (scheme, root, norm string, err error) {
	scheme, root, err = reg.SplitSpec(spec)
	if err != nil {
		return "", "", "", usageError{err}
	}
	switch scheme {
	case "dir":
		if root == "" {
			return "", "", "", usagef("remote %q: want dir:/path/to/folder", spec)
		}
		abs, err := filepath.Abs(root)
		if err != nil {
			return "", "", "", usagef("remote %q: %v", spec, err)
		}
		real, err := filepath.EvalSymlinks(abs)
		switch {
		case err == nil:
			fi, err := os.Stat(real)
			if err != nil {
				return "", "", "", usagef("remote %q: %v", spec, err)
			}
			if !fi.IsDir() {
				return "", "", "", usagef("remote %q: %s is not a directory", spec, real)
			}
		case errors.Is(err, fs.ErrNotExist):
			parent, perr := filepath.EvalSymlinks(filepath.Dir(abs))
			if perr != nil {
				return "", "", "", usagef("remote %q: neither %s nor its parent folder exists", spec, abs)
			}
			real = filepath.Join(parent, filepath.Base(abs))
		default:
			return "", "", "", usagef("remote %q: %v", spec, err)
		}
		root = real
	default:
		root = "/" + strings.Trim(root, "/")
	}
	return scheme, root, scheme + ":" + root, nil
}

// shareBarrier lets a dir: remote on the local folder's filesystem share its filesystem-wide syncs
// (localdir.ShareBarrier): an upload's temp file and its source are then made durable by one syncfs.
func shareBarrier(lg *zap.Logger, local *localdir.Dir, rem remote.Remote) {
	if rd, ok := rem.(*localdir.Dir); ok && localdir.ShareBarrier(local, rd) {
		lg.Debug("both roots on one filesystem: writes share one sync")
	}
}
