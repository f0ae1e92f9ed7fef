package tokenstore

import (
	"fmt"
	"os"
	"path/filepath"
)

// Lock takes an exclusive lock that serialises the refreshes of one token file across processes (`tandem run`
// and `tandem once` sharing a login): a provider whose refresh tokens are single-use must re-read the file under
// the lock and refresh only if nobody else has. The lock is on a companion file (path + ".lock", mode 0600), so
// the token file itself can still be replaced atomically by Save. It blocks until the lock is free; the returned
// function releases it. The lock dies with the process, so a crash never leaves it held.
func Lock(path string) (unlock func(), err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("token lock: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = unlockFile(f)
		f.Close()
	}, nil
}
