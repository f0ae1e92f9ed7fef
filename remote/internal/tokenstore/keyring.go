package tokenstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/zalando/go-keyring"
)

// Tokens can live in the OS keyring (Secret Service on Linux, Keychain on macOS, Credential Manager on Windows)
// through github.com/zalando/go-keyring. The token file then stays, mode 0600, as a stub that names the keyring
// entry: every reader still finds a login by its file (Load, Save and Lock keep their paths), a refresh saves
// into wherever the login lives, and moving between the stores is rewriting one stub.

// Token store modes, the config's token_store.
const (
	ModeAuto    = "auto"    // the keyring if it answers, else files
	ModeKeyring = "keyring" // the keyring or an error
	ModeFile    = "file"    // 0600 files
)

// ErrKeyring: the OS keyring did not answer (no session bus, locked, refused).
var ErrKeyring = errors.New("the OS keyring does not answer")

// keyringService is the service name of every tandem entry; the entry's user is the token file's path.
const keyringService = "tandem"

// Keyring is the part of go-keyring tandem uses; tests put in-process fakes behind it (go-keyring's MockInit).
type Keyring interface {
	Get(service, user string) (string, error)
	Set(service, user, secret string) error
	Delete(service, user string) error
}

type osKeyring struct{}

func (osKeyring) Get(s, u string) (string, error) { return keyring.Get(s, u) }
func (osKeyring) Set(s, u, v string) error        { return keyring.Set(s, u, v) }
func (osKeyring) Delete(s, u string) error        { return keyring.Delete(s, u) }

// FakeKeyringEnv names a folder that stands in for the OS keyring, one file per entry. It exists for the
// end-to-end tests, which run the binary on machines without a keyring; never set it otherwise.
const FakeKeyringEnv = "TANDEM_TEST_KEYRING_DIR"

type dirKeyring string

func (d dirKeyring) file(s, u string) string {
	return filepath.Join(string(d), s+"-"+strings.NewReplacer("/", "%", "\\", "%", ":", "%").Replace(u))
}
func (d dirKeyring) Get(s, u string) (string, error) {
	b, err := os.ReadFile(d.file(s, u))
	if errors.Is(err, fs.ErrNotExist) {
		return "", keyring.ErrNotFound
	}
	return string(b), err
}
func (d dirKeyring) Set(s, u, v string) error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return err
	}
	return os.WriteFile(d.file(s, u), []byte(v), 0o600)
}
func (d dirKeyring) Delete(s, u string) error {
	err := os.Remove(d.file(s, u))
	if errors.Is(err, fs.ErrNotExist) {
		return keyring.ErrNotFound
	}
	return err
}

// OSKeyring is the keyring this process uses: the OS's, or the tests' stand-in (FakeKeyringEnv).
func OSKeyring() Keyring {
	if d := os.Getenv(FakeKeyringEnv); d != "" {
		return dirKeyring(d)
	}
	return osKeyring{}
}

// Probe tells whether kr answers: a lookup of an entry that does not exist must say "not found".
func Probe(kr Keyring) error {
	_, err := kr.Get(keyringService, "probe")
	if err == nil || errors.Is(err, keyring.ErrNotFound) {
		return nil
	}
	return fmt.Errorf("%w: %v", ErrKeyring, err)
}

// Resolve picks the store for mode: for auto, the keyring if it answers, else files (why says so).
func Resolve(mode string, kr Keyring) (store, why string, err error) {
	switch mode {
	case ModeFile:
		return ModeFile, "token_store: file", nil
	case ModeKeyring:
		if err := Probe(kr); err != nil {
			return "", "", fmt.Errorf("token_store: keyring: %w; use token_store: file (or auto) on a machine without one", err)
		}
		return ModeKeyring, "token_store: keyring", nil
	case ModeAuto, "":
		if err := Probe(kr); err != nil {
			return ModeFile, "auto: " + err.Error(), nil
		}
		return ModeKeyring, "auto: the OS keyring answers", nil
	}
	return "", "", fmt.Errorf("token_store %q: want auto, keyring or file", mode)
}

// stub is what a token file holds while its token is in the keyring.
type stub struct {
	Keyring *struct {
		Service string `json:"service"`
		User    string `json:"user"`
	} `json:"tandem_keyring,omitempty"`
}

func readStub(data []byte) (service, user string, ok bool) {
	var s stub
	if json.Unmarshal(data, &s) != nil || s.Keyring == nil {
		return "", "", false
	}
	return s.Keyring.Service, s.Keyring.User, true
}

func stubFor(path string) stub {
	s := stub{Keyring: &struct {
		Service string `json:"service"`
		User    string `json:"user"`
	}{keyringService, path}}
	return s
}

// Where reports the store the login at path is in: "keyring", "file", or "" when there is none.
func Where(path string) (string, error) {
	data, err := readOwn(path)
	if errors.Is(err, ErrNoLogin) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if _, _, ok := readStub(data); ok {
		return ModeKeyring, nil
	}
	return ModeFile, nil
}

// Move puts the login at path into store (ModeFile or ModeKeyring), keeping it: the token is written to its new
// place before the old one is removed, so a failure part way leaves it where it was (or in both).
func Move(path, store string, kr Keyring) error {
	data, err := readOwn(path)
	if err != nil {
		return err
	}
	svc, user, inKeyring := readStub(data)
	switch {
	case store == ModeKeyring && !inKeyring:
		if err := kr.Set(keyringService, path, string(data)); err != nil {
			return fmt.Errorf("%w: store %s: %v", ErrKeyring, path, err)
		}
		return writeFile(path, mustJSON(stubFor(path)))
	case store == ModeFile && inKeyring:
		secret, err := kr.Get(svc, user)
		if err != nil {
			return fmt.Errorf("%w: read the login of %s: %v", ErrKeyring, path, err)
		}
		if err := writeFile(path, []byte(secret)); err != nil {
			return err
		}
		if err := kr.Delete(svc, user); err != nil && !errors.Is(err, keyring.ErrNotFound) {
			return fmt.Errorf("%w: the login of %s is in its file now, but its keyring entry stays: %v", ErrKeyring, path, err)
		}
	}
	return nil
}

// PrepareKeyring makes a new login at path go straight to the keyring: a stub written before the login saves
// its token (Save writes into the keyring wherever a stub is), so the token never touches the disk.
func PrepareKeyring(path string) error {
	if w, err := Where(path); err != nil || w != "" {
		return err
	}
	return writeFile(path, mustJSON(stubFor(path)))
}

// Delete removes the login at path from its store, the keyring entry first. A missing login is not an error.
func Delete(path string, kr Keyring) error {
	data, err := readOwn(path)
	if errors.Is(err, ErrNoLogin) {
		return nil
	}
	if err != nil {
		return err
	}
	if svc, user, ok := readStub(data); ok {
		if err := kr.Delete(svc, user); err != nil && !errors.Is(err, keyring.ErrNotFound) {
			return fmt.Errorf("%w: delete the login of %s: %v", ErrKeyring, path, err)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete token file: %w", err)
	}
	return nil
}

// Logins lists the token files in dir.
func Logins(dir string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	return m, nil
}

func mustJSON(v any) []byte {
	b, _ := json.MarshalIndent(v, "", "  ")
	return b
}
