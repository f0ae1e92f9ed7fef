package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"github.com/tandemsync/tandem/cmd/tandem/internal/config"
	"github.com/tandemsync/tandem/cmd/tandem/internal/daemon"
	"github.com/tandemsync/tandem/conflict"
	"github.com/tandemsync/tandem/engine"
	"github.com/tandemsync/tandem/engine/ignore"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/localdir"
	"github.com/tandemsync/tandem/state"
)

// What `tandem once` and the daemon share about a folder pair: naming it (so both open the same database),
// its ignore rules, and the checks on a `dir:` remote's root.

// pairSpec is a pair resolved the way every command names it: the local folder absolute with symlinks
// resolved, the remote spec normalised, and the pair id (its database's name) derived from both.
type pairSpec struct {
	local, scheme, root, spec, id string
}

// resolvePair resolves and checks a pair's two arguments; every problem is a usage error.
func resolvePair(reg *remote.Registry, localArg, remoteArg string) (pairSpec, error) {
	local, err := resolveLocal(localArg)
	if err != nil {
		return pairSpec{}, err
	}
	scheme, root, spec, err := normaliseSpec(reg, remoteArg)
	if err != nil {
		return pairSpec{}, err
	}
	if scheme == "dir" && (within(root, local) || within(local, root)) {
		return pairSpec{}, usagef("%s and %s overlap: a folder cannot be synced with itself or with a folder inside it", local, root)
	}
	return pairSpec{local: local, scheme: scheme, root: root, spec: spec, id: state.PairID(local, spec)}, nil
}

// within reports whether p is dir or inside it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// loadIgnore compiles the built-in patterns, extra ones (the config's) and the root's .tandemignore, if any.
func loadIgnore(local string, extra []string) (*ignore.Matcher, error) {
	f, err := os.Open(filepath.Join(local, ignore.FileName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ignore.New(extra, nil)
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", ignore.FileName, err)
	}
	defer f.Close()
	m, err := ignore.New(extra, f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(local, ignore.FileName), err)
	}
	return m, nil
}

// missingDirRoot is the safety stop for a `dir:` remote whose folder vanished after the pair has synced.
func missingDirRoot(root, db string) error {
	return fmt.Errorf("%w: the remote folder %s is missing but this pair has synced before; "+
		"nothing was changed. If the disk is unmounted, mount it; if the folder moved, put it back; "+
		"to start this pair over from nothing, remove its state database %s", engine.ErrSafetyStop, root, db)
}

// expandRemote expands a leading ~ in a `dir:` remote from the config file.
func expandRemote(spec string) (string, error) {
	if rest, ok := strings.CutPrefix(spec, "dir:"); ok {
		p, err := config.ExpandHome(rest)
		if err != nil {
			return "", err
		}
		return "dir:" + p, nil
	}
	return spec, nil
}

// checkRemoteSpec is config validation's remote check: a known scheme and, for `dir:`, an absolute path.
func checkRemoteSpec(reg *remote.Registry) func(string) error {
	return func(spec string) error {
		scheme, root, ok := strings.Cut(spec, ":")
		if !ok || scheme == "" {
			return fmt.Errorf("%q: want scheme:path, e.g. dir:/mnt/nas/Documents (schemes: %s)", spec, strings.Join(reg.Schemes(), ", "))
		}
		if _, _, err := reg.SplitSpec(spec); err != nil {
			return fmt.Errorf("unknown scheme %q, want one of %s", scheme, strings.Join(reg.Schemes(), ", "))
		}
		if scheme == "dir" {
			p, err := config.ExpandHome(root)
			if err != nil || !filepath.IsAbs(p) {
				return fmt.Errorf("%q: a dir: remote wants an absolute path (or ~/...)", spec)
			}
		}
		return nil
	}
}

// validateOptions are the checks every reader of the config file runs (add, config check, run, SIGHUP).
func validateOptions(reg *remote.Registry) config.ValidateOptions {
	return config.ValidateOptions{Remote: checkRemoteSpec(reg), Locate: locatePair}
}

// locatePair places a pair's folders for the overlap checks: local folders and dir: remotes with symlinks
// resolved where they exist (two spellings of one folder are one folder), cloud paths folded as the provider
// compares names. vBoxx folds case unless a listing proves otherwise, so the check assumes it does; pCloud and
// Verizon tell names apart by case.
func locatePair(p config.Pair) config.Location {
	l := config.PlainLocation(p)
	l.Local = realPath(l.Local)
	l.Dir = realPath(l.Dir)
	if strings.HasPrefix(p.Remote, "vboxx:") {
		l.Path = strings.ToLower(l.Path)
	}
	return l
}

// realPath resolves symlinks in p, or in its nearest existing parent when p does not exist yet.
func realPath(p string) string {
	if p == "" {
		return ""
	}
	var rest []string
	for d := p; ; d = filepath.Dir(d) {
		if r, err := filepath.EvalSymlinks(d); err == nil {
			return filepath.Join(append([]string{r}, rest...)...)
		}
		if filepath.Dir(d) == d {
			return p
		}
		rest = append([]string{filepath.Base(d)}, rest...)
	}
}

// resolveConfigPair resolves a config file's pair (~ expanded on both sides) as resolvePair resolves the
// arguments of `tandem once`, so that both name the same pair id.
func resolveConfigPair(reg *remote.Registry, p config.Pair) (pairSpec, error) {
	localArg, err := p.LocalPath()
	if err != nil {
		return pairSpec{}, err
	}
	remoteArg, err := expandRemote(p.Remote)
	if err != nil {
		return pairSpec{}, err
	}
	return resolvePair(reg, localArg, remoteArg)
}

// daemonOpener opens configured pairs for the daemon, the way `tandem once` opens them.
func daemonOpener(app *App, stateDir, configDir string) daemon.OpenPair {
	return func(ctx context.Context, lg *zap.Logger, p config.Pair) (*daemon.PairDeps, error) {
		ps, err := resolveConfigPair(app.Registry, p)
		if err != nil {
			return nil, err
		}
		match, err := loadIgnore(ps.local, p.Ignore)
		if err != nil {
			return nil, err
		}
		roots := []string{ps.local}
		if ps.scheme == "dir" {
			roots = append(roots, ps.root)
		}
		skip := skipOwn(func(rp remote.Path, dir bool) bool { return match.Ignored(string(rp), dir) },
			ownPaths(roots, tandemDirs(stateDir, configDir)))
		policy, err := conflict.ParsePolicy(p.Conflict)
		if err != nil {
			return nil, err
		}
		db := filepath.Join(stateDir, ps.id+".db")
		fresh := freshState(stateDir, ps.id)
		fresh.dir = "" // the daemon's state dir holds its socket and log: never removed
		st, err := state.Open(db, lg, state.Options{})
		if err != nil {
			return nil, stateOpenError(db, err)
		}
		var closers []func() error
		fail := func(err error) (*daemon.PairDeps, error) {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
			st.Close()
			fresh.undo() // a pair that could not start leaves no empty database behind
			return nil, err
		}
		unlock, err := lockRoot(ps.local)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, unlock)
		var synced bool
		if err := st.View(func(r state.Reader) error {
			synced, err = r.HasBase()
			return err
		}); err != nil {
			return fail(err)
		}
		first := !synced
		skips := &skipLog{lg: lg}
		ldir, err := localdir.Open(lg, ps.local, localdir.Options{Skip: skip, OnSkip: skips.fn("local"), Label: ps.local})
		if err != nil {
			return fail(err)
		}
		closers = append(closers, ldir.Close)
		remoteDir := ""
		if ps.scheme == "dir" {
			remoteDir = ps.root
			if _, err := os.Lstat(ps.root); errors.Is(err, fs.ErrNotExist) && !first {
				return fail(missingDirRoot(ps.root, db))
			}
			ctx = withDirHooks(ctx, dirHooks{skip: skip, onSkip: skips.fn("remote"), create: first})
		}
		caFile, err := p.CAFilePath()
		if err != nil {
			return fail(err)
		}
		rem, err := app.Registry.Open(ctx, lg, ps.spec, remote.OpenOptions{Account: p.Account, Endpoint: p.Endpoint, CAFile: caFile,
			OnSkip: skips.fn("remote")})
		if err != nil {
			return fail(err)
		}
		closers = append(closers, rem.Close)
		shareBarrier(lg, ldir, rem)
		host, err := app.Hostname()
		if err != nil || host == "" {
			host = "unknown-host"
		}
		// One rolling delete budget for every engine of this pair while it is open (the allow-once engine of
		// `tandem resume --allow-deletes` resets it).
		window := engine.NewDeleteWindow(p.EffectiveDeleteWindow())
		return &daemon.PairDeps{
			Local:     ps.local,
			Spec:      ps.spec,
			Remote:    rem,
			RemoteDir: remoteDir,
			Store:     st,
			Ignored:   func(p string, dir bool) bool { return skip(remote.Path(p), dir) },
			NewEngine: func(allow bool, progress func(engine.Event)) (*engine.Engine, error) {
				return engine.New(engine.Deps{
					Clock:  clockwork.NewRealClock(),
					Local:  ldir,
					Remote: rem,
					Store:  st,
					Logger: lg,
				}, engine.Options{
					MaxDeletePct:   p.EffectiveMaxDelete(),
					BandwidthLimit: p.BandwidthLimit,
					AllowDeletes:   allow,
					Policy:         policy,
					Host:           host,
					Ignored:        skip,
					Junk:           ignore.Junk,
					Window:         window,
					Progress:       progress,
					PathBackoff:    pathRetry,
				})
			},
			Close: func() error {
				var errs []error
				for i := len(closers) - 1; i >= 0; i-- {
					errs = append(errs, closers[i]())
				}
				return errors.Join(append(errs, st.Close())...)
			},
		}, nil
	}
}

// pathRetry is the daemon's first wait before a path whose action failed is tried again; it doubles while the
// path keeps failing (README: 10 s, doubling up to 10 min), whatever starts the passes in between.
const pathRetry = 10 * time.Second

// skipLog logs each entry a side's walk leaves out once per process (a daemon walks every pass).
type skipLog struct {
	lg   *zap.Logger
	mu   sync.Mutex
	seen map[string]bool
}

func (s *skipLog) fn(side string) func(p, reason string) {
	return func(p, reason string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		k := side + "\x00" + p
		if s.seen[k] || len(s.seen) > 10000 {
			return
		}
		if s.seen == nil {
			s.seen = map[string]bool{}
		}
		s.seen[k] = true
		s.lg.Warn("skipped", zap.String("side", side), zap.String("path", remote.Escape(p)), zap.String("reason", reason))
	}
}
