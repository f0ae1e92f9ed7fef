// Package tokenstore keeps login tokens in files that only their owner can read: created with mode 0600 from
// the first byte (never chmod after writing), in a 0700 folder, replaced by temp + fsync + rename so a crash
// leaves the old or the new token, never an empty file; a file others can read is refused, with the fix.
package tokenstore

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/tandemsync/tandem/engine/failpoint"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/zalando/go-keyring"
)

// ErrNoLogin: there is no token file yet.
var ErrNoLogin = errors.New("not logged in")

// DefaultDir is $XDG_CONFIG_HOME/tandem/tokens or ~/.config/tandem/tokens.
func DefaultDir() (string, error) {
	base := os.Getenv("XDG_CONFIG_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find the home folder: %w", err)
		}
		base = filepath.Join(home, ".config")
	}
	return filepath.Join(base, "tandem", "tokens"), nil
}

// File is the token file of one provider account in dir.
func File(dir, provider, account string) string {
	name := provider
	if account != "" {
		name += "-" + account
	}
	return filepath.Join(dir, name+".json")
}

// Save writes v as JSON to path atomically with mode 0600, or into the OS keyring when path holds a keyring
// stub (the login lives there: keyring.go).
func Save(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if old, err := readOwn(path); err == nil {
		if svc, user, ok := readStub(old); ok {
			if err := OSKeyring().Set(svc, user, string(data)); err != nil {
				return fmt.Errorf("%w: save the login of %s: %v", ErrKeyring, path, err)
			}
			return nil
		}
	}
	return writeFile(path, data)
}

// writeFile replaces path with data: a 0600 temp file, fsynced, renamed, and the folder fsynced.
func writeFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(dir, ".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("save token: %w", err)
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = failpoint.Hit("tokenstore.save.beforeRename")
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("save token %s: %w", path, werr)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// readOwn reads the token file at path. A missing file wraps ErrNoLogin; a file readable by group or others
// is refused.
func readOwn(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no token file %s", ErrNoLogin, path)
	}
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("token file %s is readable by others (mode %04o); run: chmod 600 %s",
			path, fi.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	return data, nil
}

// Load reads path into v, from the OS keyring when path is a keyring stub. A missing file, or a stub whose
// keyring entry is gone, wraps ErrNoLogin; a file readable by group or others is refused.
func Load(path string, v any) error {
	data, err := readOwn(path)
	if err != nil {
		return err
	}
	if svc, user, ok := readStub(data); ok {
		secret, err := OSKeyring().Get(svc, user)
		if errors.Is(err, keyring.ErrNotFound) {
			return fmt.Errorf("%w: the OS keyring has no entry for %s", ErrNoLogin, path)
		}
		if err != nil {
			return fmt.Errorf("%w: read the login of %s: %v (unlock the keyring, or log in again)", ErrKeyring, path, err)
		}
		data = []byte(secret)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("token file %s is damaged (%v): log in again", path, err)
	}
	return nil
}
