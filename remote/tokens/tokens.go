// Package tokens is what the command line needs of the login store (remote/internal/tokenstore, which the
// providers use): choosing between the OS keyring and 0600 files, moving logins between them, deleting them.
package tokens

import (
	"github.com/tandemsync/tandem/remote/internal/tokenstore"
)

// Store modes: the config's token_store.
const (
	Auto    = tokenstore.ModeAuto
	Keyring = tokenstore.ModeKeyring
	File    = tokenstore.ModeFile
)

// ErrKeyring: the OS keyring did not answer.
var ErrKeyring = tokenstore.ErrKeyring

// Keyring is the OS keyring, or the end-to-end tests' stand-in (TANDEM_TEST_KEYRING_DIR).
func OSKeyring() tokenstore.Keyring { return tokenstore.OSKeyring() }

// Resolve picks the store for mode ("" is auto) and says why.
func Resolve(mode string) (store, why string, err error) {
	return tokenstore.Resolve(mode, tokenstore.OSKeyring())
}

// DefaultDir is where logins live unless --token-dir says otherwise.
func DefaultDir() (string, error) { return tokenstore.DefaultDir() }

// Path is the token file of provider's account in dir ("" = DefaultDir).
func Path(dir, provider, account string) (string, error) {
	if dir == "" {
		d, err := tokenstore.DefaultDir()
		if err != nil {
			return "", err
		}
		dir = d
	}
	return tokenstore.File(dir, provider, account), nil
}

// Where is the store the login at path is in ("" when there is none).
func Where(path string) (string, error) { return tokenstore.Where(path) }

// Move puts the login at path into store, keeping it.
func Move(path, store string) error { return tokenstore.Move(path, store, tokenstore.OSKeyring()) }

// Prepare makes the next save of a login at path go straight into store.
func Prepare(path, store string) error {
	if store != Keyring {
		return nil
	}
	return tokenstore.PrepareKeyring(path)
}

// Delete removes the login at path from its store.
func Delete(path string) error { return tokenstore.Delete(path, tokenstore.OSKeyring()) }

// All lists the token files in dir.
func All(dir string) ([]string, error) { return tokenstore.Logins(dir) }
