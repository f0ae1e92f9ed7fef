package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/cmd/tandem/internal/config"
	"github.com/tandemsync/tandem/remote/tokens"
)

// tokenStore is where logins go: flag (--token-store), else the config file's token_store, else auto.
func tokenStore(configFlag, flag string) (store, why string, err error) {
	mode := flag
	if mode == "" {
		if path, err := configPath(configFlag); err == nil {
			if c, err := config.Load(path, true); err == nil && c != nil {
				mode = c.TokenStore
			}
		}
	}
	store, why, err = tokens.Resolve(mode)
	if err != nil {
		return "", "", usagef("%v", err)
	}
	return store, why, nil
}

// loginStore runs login with its token going to store: straight into the keyring when there is no login yet
// (a stub first, so the token never touches the disk), else saved where the old one was and then moved.
func loginStore(w io.Writer, path, store, why string, login func() error) error {
	had, err := tokens.Where(path)
	if err != nil {
		return err
	}
	if had == "" {
		if err := tokens.Prepare(path, store); err != nil {
			return err
		}
	}
	if err := login(); err != nil {
		if had == "" {
			if left, _ := tokens.Where(path); left == tokens.Keyring {
				_ = tokens.Delete(path) // the stub made for a login that did not happen
			}
		}
		return err
	}
	if err := tokens.Move(path, store); err != nil {
		return fmt.Errorf("the login worked but could not be moved to the %s store (it stays where it was): %w", store, err)
	}
	if store == tokens.Keyring {
		fmt.Fprintf(w, "login stored in the OS keyring (%s)\n", why)
	} else {
		fmt.Fprintf(w, "login stored in %s, mode 0600 (%s)\n", path, why)
	}
	return nil
}

// settleLogins moves every login in the default token folder to store: `tandem run` does it at start, so that
// a change of token_store keeps the logins. A login that cannot move stays where it is (logged).
func settleLogins(lg *zap.Logger, store string) {
	dir, err := tokens.DefaultDir()
	if err != nil {
		return
	}
	all, err := tokens.All(dir)
	if err != nil {
		return
	}
	for _, p := range all {
		if err := tokens.Move(p, store); err != nil {
			lvl := lg.Warn
			if errors.Is(err, os.ErrPermission) {
				lvl = lg.Error
			}
			lvl("a login stays in its store", zap.String("file", p), zap.String("want", store), zap.Error(err))
		}
	}
}

func tokenStoreName(store string) string {
	if store == tokens.Keyring {
		return "in the OS keyring"
	}
	return "in 0600 files"
}
