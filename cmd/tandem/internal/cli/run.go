package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/kardianos/service"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/tandemsync/tandem/cmd/tandem/internal/config"
	"github.com/tandemsync/tandem/cmd/tandem/internal/daemon"
	"github.com/tandemsync/tandem/remote/tokens"
	"github.com/tandemsync/tandem/state"
)

type runOpts struct {
	config  string
	service bool
	verbose bool
}

func newRunCmd(app *App) *cobra.Command {
	var o runOpts
	c := &cobra.Command{
		Use:   "run",
		Short: "Run the daemon in the foreground: keep every configured pair in sync",
		Long: `Run the daemon in the foreground for every pair in the config file, until SIGTERM or Ctrl-C.

Each pair is watched on both sides (a "dir:" remote's folder is watched like the local one; cloud remotes
are followed through their change feed) and synced within moments of a change, plus a full pass every
hour as a safety net, and a complete listing of a cloud remote every day (remote_relist_interval) for
changes its feed never reported. Passes of one pair never overlap; pairs are independent.

SIGTERM or SIGINT stops within 5 seconds: transfers in flight are cancelled and leave only temp files that
the next start removes. SIGHUP re-reads the config file: pairs added, removed or changed restart, the
others keep running, and full_scan_interval and remote_relist_interval apply at once; state_dir, log_file
and metrics_addr need a restart (the log says so). "tandem status" shows what it is doing.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(c *cobra.Command, args []string) error {
			return runDaemon(c.Context(), app, o)
		},
	}
	c.Flags().StringVar(&o.config, "config", "", "config file (default ~/.config/tandem/config.yaml)")
	c.Flags().BoolVar(&o.service, "service", false, "run under the OS service manager: JSON log to the rotated log file")
	c.Flags().BoolVarP(&o.verbose, "verbose", "v", false, "log every file (debug level)")
	_ = c.Flags().MarkHidden("service")
	return c
}

// configPath is --config or the default path.
func configPath(flag string) (string, error) {
	if flag != "" {
		return filepath.Abs(flag)
	}
	return config.DefaultPath()
}

// loadConfig reads and validates the config file; every problem is listed.
func loadConfig(app *App, path string, missingOK bool) (*config.Config, error) {
	c, err := config.Load(path, missingOK)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no config file at %s: add a pair with \"tandem add <local-dir> <remote>\"", path)
	}
	if c == nil {
		return nil, err
	}
	if verr := c.Validate(validateOptions(app.Registry)); verr != nil || err != nil {
		return nil, errors.Join(err, verr)
	}
	return c, nil
}

// stateDirOf is the config's state dir, or the default one.
func stateDirOf(c *config.Config) (string, error) {
	if c != nil && c.StateDir != "" {
		return config.ExpandHome(c.StateDir)
	}
	return state.DefaultDir()
}

// clientFor returns a status client for the daemon that the config file at --config (or the default) runs.
func clientFor(app *App, flag string) (*daemon.Client, *config.Config, string, error) {
	path, err := configPath(flag)
	if err != nil {
		return nil, nil, "", err
	}
	c, err := config.Load(path, true)
	if err != nil {
		return nil, nil, "", err
	}
	sd, err := stateDirOf(c)
	if err != nil {
		return nil, nil, "", err
	}
	return daemon.NewClient(sd), c, sd, nil
}

func runDaemon(ctx context.Context, app *App, o runOpts) error {
	path, err := configPath(o.config)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(app, path, false)
	if err != nil {
		return err
	}
	sd, err := stateDirOf(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(sd, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	lo := daemon.LogOptions{Console: app.Stderr, Debug: o.verbose}
	if cfg.LogFile != "" || o.service {
		lo.File = filepath.Join(sd, "tandem.log")
		if cfg.LogFile != "" {
			if lo.File, err = config.ExpandHome(cfg.LogFile); err != nil {
				return err
			}
		}
	}
	lg, closeLog, err := daemon.NewLogger(lo)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	defer closeLog()
	store, why, err := tokens.Resolve(cfg.TokenStore)
	if err != nil {
		return err
	}
	settleLogins(lg, store)
	d, err := daemon.New(daemon.Options{
		Config:        cfg,
		ConfigPath:    path,
		StateDir:      sd,
		Open:          daemonOpener(app, sd, filepath.Dir(path)),
		Logger:        lg,
		Version:       Version,
		TokenStore:    store,
		TokenStoreWhy: why,
	})
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // ends with rctx, which Run outlives only by returning
		for {
			select {
			case <-rctx.Done():
				return
			case <-hup:
				c, err := loadConfig(app, path, false)
				if err != nil {
					lg.Error("SIGHUP: the config file has problems; keeping the running configuration", zap.Error(err))
					continue
				}
				d.Reload(c)
			}
		}
	}()
	if !o.service || service.Interactive() {
		return d.Run(rctx)
	}
	prog := &daemon.Program{Run: d.Run}
	svc, err := service.New(prog, serviceConfig(path, false))
	if err != nil {
		return err
	}
	if err := svc.Run(); err != nil {
		return err
	}
	return prog.Err()
}
