package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/tandemsync/tandem/cmd/tandem/internal/config"
	"github.com/tandemsync/tandem/conflict"
	"github.com/tandemsync/tandem/engine"
	"github.com/tandemsync/tandem/engine/ignore"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/localdir"
	"github.com/tandemsync/tandem/remote/memremote"
	"github.com/tandemsync/tandem/state"
)

type onceOpts struct {
	config       string
	stateDir     string
	resync       bool
	dryRun       bool
	json         bool
	maxDelete    float64
	allowDeletes bool
	conflict     string
	parallel     int
	bwlimit      string
	verbose      bool
	// per-provider flags for scripts; a `dir:` remote needs none of them
	endpoint     string
	accessToken  string
	refreshToken string
	caFile       string
}

func newOnceCmd(app *App) *cobra.Command {
	var o onceOpts
	c := &cobra.Command{
		Use:   "once <local-dir> <remote>",
		Short: "Run one sync pass between a local folder and a remote, then exit",
		Long: `Run exactly one full sync pass and exit.

<local-dir> must be an existing directory. <remote> is one of:
  dir:/path/to/folder   another directory (a NAS mount, a USB disk, a second folder). If the folder does not
                        exist yet but its parent does, the first sync creates it, as a cloud folder would be.
  pcloud:/Folder        a folder of a pCloud account (log in first: tandem login pcloud)
  verizon:/VZMOBILE/F   a folder of a Verizon Personal Cloud account (tandem login verizon)
  vboxx:/Root/folder    a folder of a vBoxxCloud root (tandem login vboxx --username NAME)

Both roots get a ".tandem" folder: it marks them as sync roots (a root without it, e.g. an unmounted disk,
stops the pass instead of deleting the other side) and holds the trash of files tandem deleted or replaced.

If the config file (--config) has a pair with the same two folders, the pass uses that pair's ignore patterns
(as "tandem run" does, with the root's .tandemignore) and the config's state_dir unless --state-dir is given,
so it shares the daemon's state database; the output says so in a note. Every other setting (conflict policy,
max delete, bandwidth, account, endpoint) comes from this command's flags. A config file that does not parse
or validate stops the command before anything is synced (exit 1).

Exit codes: 0 the pass completed (conflicts kept both versions and are listed; skipped paths are listed),
1 errors or a safety stop (a missing root marker, a big delete, a locked or damaged state database),
2 usage errors.`,
		Example: `  tandem once ~/Documents dir:/mnt/nas/Documents
  tandem once --dry-run ~/Documents dir:/mnt/nas/Documents
  tandem once --json ~/Documents dir:/media/usb/Documents | jq .totals`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(c *cobra.Command, args []string) error {
			return runOnce(c.Context(), app, o, args[0], args[1], c.OutOrStdout())
		},
	}
	f := c.Flags()
	f.StringVar(&o.config, "config", "", "config file (default ~/.config/tandem/config.yaml)")
	f.StringVar(&o.stateDir, "state-dir", "", "where the pair's state database lives (default: the config's state_dir for a configured pair, else $XDG_STATE_HOME/tandem or ~/.local/state/tandem)")
	f.BoolVar(&o.resync, "resync", false, "list both sides completely; if the state database is damaged or newer, move it aside and merge both sides without deleting anything")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the plan and change nothing on either side")
	f.BoolVar(&o.json, "json", false, "print one JSON document describing the pass on stdout (schema in README.md)")
	f.Float64Var(&o.maxDelete, "max-delete", 50, "stop if the pass would delete more than this percentage of one side's files (and at least 10)")
	f.BoolVar(&o.allowDeletes, "allow-deletes", false, "let a pass through that the --max-delete guard stopped")
	f.StringVar(&o.conflict, "conflict", string(conflict.KeepBoth), "when both sides changed a file: keep-both, newer-wins, local-wins or remote-wins (the loser goes to its side's trash)")
	f.IntVar(&o.parallel, "parallel", 0, "transfers reading and writing at once (default: the remote's preference, or 4)")
	f.StringVar(&o.bwlimit, "bwlimit", "", "cap transfers, both directions together, e.g. 500K or 2MiB (bytes per second)")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "log every file (debug level) to stderr")
	f.StringVar(&o.endpoint, "endpoint", "", "provider API base URL (emulators, private deployments)")
	f.StringVar(&o.accessToken, "access-token", "", "provider access token for scripts (prefer the stored login: a flag is visible in ps)")
	f.StringVar(&o.refreshToken, "refresh-token", "", "provider refresh token for scripts (Verizon, vBoxx)")
	f.StringVar(&o.caFile, "ca-file", "", "extra trusted CA certificates (PEM) for the provider's endpoint")
	return c
}

// usageArgs makes cobra's argument checks usage errors (exit code 2).
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := check(c, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// runOnce runs one pass and prints its outcome to w, as text or as one JSON document. The returned error
// decides the exit code; the JSON document carries the same code.
func runOnce(ctx context.Context, app *App, o onceOpts, localArg, remoteArg string, w io.Writer) error {
	res, err := once(ctx, app, o, localArg, remoteArg)
	var pr printer = textPrinter{}
	if o.json {
		pr = jsonPrinter{}
	} else if res.Pair == "" {
		return err // nothing happened: the error alone says it all
	}
	if perr := pr.print(w, res); perr != nil && err == nil {
		err = perr
	}
	return err
}

// once runs one pass and returns its result, whatever the outcome; err decides the exit code.
func once(ctx context.Context, app *App, o onceOpts, localArg, remoteArg string) (*result, error) {
	start := app.Now()
	res := &result{DryRun: o.dryRun}
	r := &onceRun{app: app, o: o, res: res}
	err := r.run(ctx, localArg, remoteArg)
	res.finish(err, app.Now().Sub(start))
	return res, err
}

type onceRun struct {
	app *App
	o   onceOpts
	res *result
	lg  *zap.Logger

	mu      sync.Mutex
	skipped map[string]bool // entries a side left out of its walk, reported once each
	// movedAside: --resync moved a damaged database aside; its note already says a merge follows.
	movedAside bool
	cfg        onceConfig
}

func (r *onceRun) validate() error {
	o := r.o
	if _, err := conflict.ParsePolicy(o.conflict); err != nil {
		return usageError{fmt.Errorf("--conflict: %w", err)}
	}
	if !engine.ValidMaxDelete(o.maxDelete) { // NaN and Inf included: NaN compares false with every bound
		return usagef("--max-delete %g: want a percentage above 0 and at most 100", o.maxDelete)
	}
	if o.parallel < 0 {
		return usagef("--parallel %d: want 0 (automatic) or more", o.parallel)
	}
	if _, err := config.ParseBandwidth(o.bwlimit); err != nil {
		return usagef("--bwlimit: %v", err)
	}
	if o.endpoint != "" {
		if err := config.CheckEndpointURL(o.endpoint); err != nil {
			return usagef("--endpoint %v", err)
		}
	}
	if o.caFile != "" {
		if _, err := os.Stat(o.caFile); err != nil {
			return usagef("--ca-file: %v", err)
		}
	}
	return nil
}

func (r *onceRun) run(ctx context.Context, localArg, remoteArg string) error {
	if err := r.validate(); err != nil {
		return err
	}
	ps, err := resolvePair(r.app.Registry, localArg, remoteArg)
	if err != nil {
		return err
	}
	// Before the result names the pair: a config that cannot be read is the whole message.
	if r.cfg, err = readOnceConfig(r.app, r.o.config, ps); err != nil {
		return err
	}
	local, scheme, root, spec := ps.local, ps.scheme, ps.root, ps.spec
	r.res.Local, r.res.Remote = local, spec
	r.res.Pair = ps.id
	r.lg = r.app.NewLogger(r.app.Stderr, r.o.verbose)
	defer r.lg.Sync() //nolint:errcheck // stderr cannot be synced on every platform

	var extra []string
	if p := r.cfg.pair; p != nil {
		extra = p.Ignore
		r.note(r.cfg.note(r.o.stateDir != ""))
	}
	match, err := loadIgnore(local, extra)
	if err != nil {
		return err
	}
	sd, err := r.stateDir()
	if err != nil {
		return err
	}
	var roots []string
	if scheme == "dir" {
		roots = append(roots, root)
	}
	own := ownPaths(append(roots, local), tandemDirs(sd, filepath.Dir(r.cfg.path)))
	skip := skipOwn(func(p remote.Path, dir bool) bool { return match.Ignored(string(p), dir) }, own)

	// A start that fails before the pass runs (no login, a locked root, a bad endpoint) leaves no trace: a
	// database it created would be an empty pair that names nothing real.
	fresh := freshState(sd, r.res.Pair)
	st, cleanup, err := r.openState()
	if err != nil {
		return err
	}
	passRan := false
	defer func() {
		cleanup()
		if !passRan {
			fresh.undo()
		}
	}()
	if !r.o.dryRun {
		unlock, err := lockRoot(local)
		if err != nil {
			return err
		}
		defer unlock()
	}
	var synced bool
	if err := st.View(func(rd state.Reader) error {
		synced, err = rd.HasBase()
		return err
	}); err != nil {
		return err
	}
	if !synced && !r.movedAside {
		// A merge without a sync point cannot tell a delete from a file the other side never had. A local root
		// that already has tandem's folder has synced before (with this state dir or another).
		if _, err := os.Lstat(filepath.Join(local, remote.ReservedDir)); err == nil {
			r.note(fmt.Sprintf("no previous sync state for this pair (%s), though %s has synced before: both "+
				"sides are merged and nothing is deleted, so files deleted on one side since the last sync (if "+
				"its state database was deleted or emptied, or another --state-dir was used) come back", st.Path(), local))
		} else {
			r.note(fmt.Sprintf("no previous sync state for this pair (%s): a first sync merges both sides "+
				"and deletes nothing", st.Path()))
		}
	}

	ldir, err := localdir.Open(r.lg, local, localdir.Options{Skip: skip, OnSkip: r.onSkip("local"), Label: local})
	if err != nil {
		return err
	}
	defer ldir.Close()
	rem, err := r.openRemote(ctx, spec, scheme, root, skip, !synced, st.Path())
	if err != nil {
		return loginHint(scheme, err)
	}
	defer rem.Close()
	shareBarrier(r.lg, ldir, rem)

	host, err := r.app.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	policy, _ := conflict.ParsePolicy(r.o.conflict)
	bw, _ := config.ParseBandwidth(r.o.bwlimit) // checked in validate
	prog := newProgress(r.app, r.o)
	e, err := engine.New(engine.Deps{
		Clock:  clockwork.NewRealClock(),
		Local:  ldir,
		Remote: rem,
		Store:  st,
		Logger: r.lg,
	}, engine.Options{
		DryRun:         r.o.dryRun,
		Resync:         r.o.resync,
		MaxDeletePct:   r.o.maxDelete,
		AllowDeletes:   r.o.allowDeletes,
		Policy:         policy,
		Host:           host,
		Parallel:       r.o.parallel,
		BandwidthLimit: bw,
		Ignored:        skip,
		Junk:           ignore.Junk,
		Progress:       prog.event,
	})
	if err != nil {
		return err
	}
	passRan = true
	e.SetPassWhy("tandem once")
	rep, err := e.RunPass(ctx)
	prog.finish()
	if rep != nil {
		r.res.fill(rep)
	}
	if ro, ok := rem.(interface{ ReadOnly() bool }); ok && ro.ReadOnly() {
		r.note(readOnlyNote)
	}
	if err != nil {
		return onceHint(loginHint(scheme, err))
	}
	if n := len(rep.Problems); n > 0 {
		return fmt.Errorf("%w: %d failed (listed above); the next pass retries them", errProblems, n)
	}
	return nil
}

// onSkip collects what a side's walk left out (symlinks, special files, invalid names, unreadable folders).
func (r *onceRun) onSkip(side string) func(p, reason string) {
	return func(p, reason string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		k := side + "\x00" + p
		if r.skipped[k] {
			return
		}
		if r.skipped == nil {
			r.skipped = map[string]bool{}
		}
		r.skipped[k] = true
		r.res.Skipped = append(r.res.Skipped, skipJSON{Path: storedName(p), Side: side, Reason: reason})
	}
}

// openState opens the pair's database. A damaged or newer one stops the pass unless --resync asked to move it
// aside; a dry run never moves it, and plans against an empty throw-away database instead.
func (r *onceRun) openState() (*state.Store, func(), error) {
	dir, err := r.stateDir()
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, stateDirError(dir, err)
	}
	path := filepath.Join(dir, r.res.Pair+".db")
	st, err := state.Open(path, r.lg, state.Options{})
	if err != nil {
		err = stateOpenError(path, err)
	}
	if err == nil {
		if r.o.resync {
			r.note("resync: both sides are listed completely and compared with the last sync point")
		}
		return st, func() { st.Close() }, nil
	}
	if !errors.Is(err, state.ErrCorrupt) && !errors.Is(err, state.ErrNewerSchema) || !r.o.resync {
		return nil, nil, err
	}
	if r.o.dryRun {
		tmp, terr := os.MkdirTemp("", "tandem-dry-run-")
		if terr != nil {
			return nil, nil, terr
		}
		st, terr := state.Open(filepath.Join(tmp, "pair.db"), r.lg, state.Options{})
		if terr != nil {
			os.RemoveAll(tmp)
			return nil, nil, terr
		}
		r.movedAside = true
		r.note(fmt.Sprintf("state database %s cannot be used (%v); a real --resync moves it aside and merges both "+
			"sides without deleting anything; this dry run shows that merge", path, err))
		return st, func() { st.Close(); os.RemoveAll(tmp) }, nil
	}
	to, merr := state.MoveAside(path, r.app.Now())
	if merr != nil {
		return nil, nil, fmt.Errorf("%w (and moving it aside failed: %v)", err, merr)
	}
	st, err = state.Open(path, r.lg, state.Options{})
	if err != nil {
		return nil, nil, err
	}
	r.movedAside = true
	r.note(fmt.Sprintf("the state database could not be used and was moved to %s; both sides are merged "+
		"without a sync point: every file ends up on both sides, files that differ are kept both ways, nothing is deleted", to))
	return st, func() { st.Close() }, nil
}

// stateDir is --state-dir, the config's state_dir for a configured pair, or the default.
func (r *onceRun) stateDir() (string, error) {
	if r.o.stateDir != "" {
		return r.o.stateDir, nil
	}
	if r.cfg.stateDir != "" {
		return r.cfg.stateDir, nil
	}
	return state.DefaultDir()
}

// onceConfig is what `tandem once` takes from the config file when it has the same pair: the pair's ignore
// patterns (else once would sync what the daemon leaves out, e.g. a .env) and the state dir (else once would
// open another database than the daemon's, and run the pair as never synced).
type onceConfig struct {
	path     string       // the config file, read or not
	pair     *config.Pair // the config's pair with the same id, or nil
	stateDir string       // the config's state_dir (expanded) when pair is set, or ""
}

// readOnceConfig reads the config file (a missing default file is no config) and finds the pair that has the
// same pair id as ps. A config with problems is an error: which ignore rules apply cannot be known.
func readOnceConfig(app *App, flag string, ps pairSpec) (onceConfig, error) {
	path, err := configPath(flag)
	if err != nil {
		return onceConfig{}, err
	}
	oc := onceConfig{path: path}
	if flag != "" {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return oc, usagef("--config %s: no such file", path)
		}
	}
	c, err := loadConfig(app, path, true)
	if err != nil {
		var b strings.Builder
		for _, line := range strings.Split(err.Error(), "\n") { // a joined error: one problem a line
			b.WriteString("\n  " + line)
		}
		return oc, fmt.Errorf("config file %s has problems, so nothing was synced (it may hold this pair's ignore "+
			"patterns and state_dir):%s\nfix it (\"tandem config check\" lists every problem), or name another file "+
			"with --config", path, b.String())
	}
	for i := range c.Pairs {
		p := &c.Pairs[i]
		// A pair whose folders do not resolve (a local folder that does not exist) cannot be this one.
		cps, err := resolveConfigPair(app.Registry, *p)
		if err != nil || cps.id != ps.id {
			continue
		}
		oc.pair = p
		if c.StateDir != "" {
			if oc.stateDir, err = stateDirOf(c); err != nil {
				return oc, err
			}
		}
		return oc, nil
	}
	return oc, nil
}

// note says what of the config applies; stateFlag: --state-dir was given, and wins over state_dir.
func (oc onceConfig) note(stateFlag bool) string {
	s := fmt.Sprintf("using pair %q of %s: its ignore patterns", oc.pair.PairName(), oc.path)
	switch {
	case oc.stateDir != "" && stateFlag:
		s += " (--state-dir overrides its state_dir)"
	case oc.stateDir != "":
		s += " and state_dir"
	}
	return s + "; other settings come from this command's flags"
}

// readOnlyNote: the remote (a vBoxx folder without write permission) refuses every change.
const readOnlyNote = "read-only: the remote folder refuses changes for this account, so the pair syncs down only; " +
	"local changes stay local and are listed as skipped"

func (r *onceRun) note(s string) { r.res.Notes = append(r.res.Notes, s) }

// openRemote opens the remote side. A `dir:` root that does not exist yet is created on a first sync only; a
// dry run plans against an empty stand-in instead of creating it.
func (r *onceRun) openRemote(ctx context.Context, spec, scheme, root string, skip func(remote.Path, bool) bool,
	first bool, db string) (remote.Remote, error) {
	if scheme == "dir" {
		_, statErr := os.Lstat(root)
		missing := errors.Is(statErr, fs.ErrNotExist)
		switch {
		case missing && r.o.dryRun && first:
			r.note(fmt.Sprintf("%s does not exist yet: a real pass creates it", root))
			return &labelled{Remote: memremote.New(clockwork.NewRealClock(), memremote.Options{}), label: spec}, nil
		case missing && !first:
			return nil, missingDirRoot(root, db)
		}
		ctx = withDirHooks(ctx, dirHooks{skip: skip, onSkip: r.onSkip("remote"), create: first && !r.o.dryRun})
	}
	return r.app.Registry.Open(ctx, r.lg, spec, remote.OpenOptions{
		Endpoint:     r.o.endpoint,
		AccessToken:  remote.Secret(r.o.accessToken),
		RefreshToken: remote.Secret(r.o.refreshToken),
		CAFile:       r.o.caFile,
		OnSkip:       r.onSkip("remote"),
		// StateDir stays empty: logins live in the token folder `tandem login` writes to, not with the state.
	})
}

// labelled gives a stand-in remote the name of the real one in reports.
type labelled struct {
	remote.Remote
	label string
}

func (l *labelled) String() string { return l.label }

// rootLockWait is how long a pass waits for another tandem process's pass on the same local folder to end
// before it stops, as for the state database's lock.
const rootLockWait = time.Second

// lockRoot takes the local root's lock (.tandem/lock): two processes with different state databases (a daemon
// with its own state_dir and a `tandem once`) must not run passes on one folder at once.
func lockRoot(local string) (func() error, error) {
	rel, err := localdir.LockRoot(local, rootLockWait)
	var le *localdir.LockedError
	if errors.As(err, &le) {
		return nil, fmt.Errorf("sync root %s is %w (pid %s)", local, state.ErrInUse, le.PID)
	}
	return rel, err
}

// newState remembers what of a pair's state did not exist before a start, so that a failed start can remove
// what it created.
type newState struct{ dir, db string }

func freshState(dir, pair string) newState {
	var n newState
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		n.dir = dir
	}
	db := filepath.Join(dir, pair+".db")
	if _, err := os.Lstat(db); errors.Is(err, fs.ErrNotExist) {
		n.db = db
	}
	return n
}

// undo removes the database and the state dir if this start created them (the dir only while empty).
func (n newState) undo() {
	if n.db != "" {
		os.Remove(n.db)
	}
	if n.dir != "" {
		os.Remove(n.dir)
	}
}

// stateDirError says why the state dir cannot be created, in the user's terms.
func stateDirError(dir string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("state dir %s is not a folder (a file is in the way): move the file or give another --state-dir: %w", dir, err)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return fmt.Errorf("state dir %s cannot be created (%w): a read-only or immutable parent folder "+
			"(lsattr -d), or one owned by another user; fix it or give another --state-dir (state_dir in the config)", dir, err)
	}
	return fmt.Errorf("state dir %s: %w", dir, err)
}

// stateOpenError adds the real cause to a state database that cannot be opened for a reason other than its
// content (those are state.ErrCorrupt and ErrNewerSchema, which name --resync themselves).
func stateOpenError(path string, err error) error {
	if errors.Is(err, state.ErrCorrupt) || errors.Is(err, state.ErrNewerSchema) || errors.Is(err, state.ErrInUse) {
		return err
	}
	if fi, serr := os.Lstat(path); serr == nil && fi.IsDir() {
		return fmt.Errorf("%s is a folder, not a state database: move it aside (tandem never removes it) or give "+
			"another --state-dir (state_dir in the config); without it this pair starts over with a merge that deletes nothing: %w", path, err)
	}
	switch {
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EROFS):
		return fmt.Errorf("the state database %s cannot be written (%w): the file or its folder is immutable "+
			"(lsattr; chattr -i removes the attribute) or on a read-only mount; fix it or give another --state-dir (state_dir in the config)", path, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("the state database %s cannot be written (%w): the file or its folder belongs to "+
			"another user or lacks write permission; fix it or give another --state-dir (state_dir in the config)", path, err)
	}
	return err
}

// onceHint adds what `tandem once` should be run with to a safety stop (the engine states the facts only; the
// daemon gives its own advice).
func onceHint(err error) error {
	switch {
	case errors.Is(err, engine.ErrBigDelete):
		return fmt.Errorf("%w; if that is what you want, run again with --allow-deletes", err)
	case errors.Is(err, engine.ErrSafetyStop) && errors.Is(err, remote.ErrRootMissing):
		return fmt.Errorf("%w; if this is a new start, run \"tandem once --resync\"", err)
	}
	return err
}
