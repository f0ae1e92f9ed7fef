package tokenstore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zalando/go-keyring"
)

type tok struct{ Access, Refresh string }

// The keyring backend against go-keyring's in-process fake: a login moves into the keyring and back without
// being lost, refreshes save where the login lives, the file never holds the token while it is in the keyring.
func TestKeyringBackend(t *testing.T) {
	keyring.MockInit()
	t.Cleanup(func() { keyring.MockInitWithError(errors.New("keyring: not in this test")) })
	kr := OSKeyring()
	if store, why, err := Resolve(ModeAuto, kr); err != nil || store != ModeKeyring {
		t.Fatalf("auto with a keyring that answers: %s %s %v", store, why, err)
	}
	p := File(filepath.Join(t.TempDir(), "tokens"), "vboxx", "work")
	if err := Save(p, tok{"a1", "r1"}); err != nil {
		t.Fatal(err)
	}
	if w, _ := Where(p); w != ModeFile {
		t.Fatalf("a new login without a stub is a file: %q", w)
	}
	if err := Move(p, ModeKeyring, kr); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(p)
	if strings.Contains(string(raw), "a1") || strings.Contains(string(raw), "r1") {
		t.Fatalf("the stub holds the token: %s", raw)
	}
	if w, _ := Where(p); w != ModeKeyring {
		t.Fatalf("where: %q", w)
	}
	var got tok
	if err := Load(p, &got); err != nil || got.Access != "a1" {
		t.Fatalf("load from the keyring: %+v %v", got, err)
	}
	// A refresh saves into the keyring, the stub stays.
	if err := Save(p, tok{"a2", "r2"}); err != nil {
		t.Fatal(err)
	}
	if raw2, _ := os.ReadFile(p); string(raw2) != string(raw) {
		t.Fatalf("a save rewrote the stub: %s", raw2)
	}
	if s, err := keyring.Get(keyringService, p); err != nil || !strings.Contains(s, "a2") {
		t.Fatalf("keyring entry after the refresh: %q %v", s, err)
	}
	// And back to a file: the latest token, the keyring entry gone.
	if err := Move(p, ModeFile, kr); err != nil {
		t.Fatal(err)
	}
	if err := Load(p, &got); err != nil || got.Access != "a2" || got.Refresh != "r2" {
		t.Fatalf("after the move back: %+v %v", got, err)
	}
	if _, err := keyring.Get(keyringService, p); !errors.Is(err, keyring.ErrNotFound) {
		t.Fatalf("the keyring entry must go: %v", err)
	}
	// A new login straight into the keyring never writes the token to disk.
	q := File(filepath.Dir(p), "pcloud", "")
	if err := PrepareKeyring(q); err != nil {
		t.Fatal(err)
	}
	if err := Load(q, &got); !errors.Is(err, ErrNoLogin) {
		t.Fatalf("a stub without its entry is no login: %v", err)
	}
	if err := Save(q, tok{"secret-access", ""}); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(q); strings.Contains(string(raw), "secret-access") {
		t.Fatalf("the token went to disk: %s", raw)
	}
	if err := Delete(q, kr); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.Get(keyringService, q); !errors.Is(err, keyring.ErrNotFound) {
		t.Fatalf("delete leaves the keyring entry: %v", err)
	}
	if _, err := os.Stat(q); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("delete leaves the stub: %v", err)
	}
}

// No keyring (a headless machine: no session bus): auto falls back to files, keyring is a clear error, and a
// move that cannot happen keeps the login where it is.
func TestKeyringAbsent(t *testing.T) {
	keyring.MockInitWithError(errors.New("org.freedesktop.DBus.Error.ServiceUnknown"))
	kr := OSKeyring()
	store, why, err := Resolve(ModeAuto, kr)
	if err != nil || store != ModeFile || !strings.Contains(why, "does not answer") {
		t.Fatalf("auto without a keyring: %s %q %v", store, why, err)
	}
	if _, _, err := Resolve(ModeKeyring, kr); err == nil || !strings.Contains(err.Error(), "token_store: file") {
		t.Fatalf("keyring without one must say what to do: %v", err)
	}
	if _, _, err := Resolve("vault", kr); err == nil {
		t.Fatal("an unknown mode must be refused")
	}
	p := File(t.TempDir(), "pcloud", "")
	if err := Save(p, tok{"a1", ""}); err != nil {
		t.Fatal(err)
	}
	if err := Move(p, ModeKeyring, kr); !errors.Is(err, ErrKeyring) {
		t.Fatalf("move into an absent keyring: %v", err)
	}
	var got tok
	if err := Load(p, &got); err != nil || got.Access != "a1" {
		t.Fatalf("the login must stay in its file: %+v %v", got, err)
	}
}
