package cli

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/tandemsync/tandem/cmd/tandem/internal/config"
	"github.com/tandemsync/tandem/remote"
)

// tandemDirs are tandem's own folders: the state dir in use (databases, pid files, the daemon's socket and log),
// the config dir (the config file) and the token dir (logins). A sync root may hold them (a local root of $HOME
// holds all three): they are never synced, on either side, wherever they sit. Unknown defaults are left out.
func tandemDirs(stateDir, configDir string) []string {
	dirs := []string{stateDir, configDir}
	if p, err := config.DefaultPath(); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	// The token store's default (remote/internal/tokenstore.DefaultDir): $XDG_CONFIG_HOME/tandem/tokens or
	// ~/.config/tandem/tokens.
	base := os.Getenv("XDG_CONFIG_HOME")
	if base == "" {
		if home, err := os.UserHomeDir(); err == nil {
			base = filepath.Join(home, ".config")
		}
	}
	if base != "" {
		dirs = append(dirs, filepath.Join(base, "tandem", "tokens"))
	}
	return dirs
}

// ownPaths are the paths below the given roots (the local folder, a dir: remote's folder) that are tandem's own
// folders, as sync paths. Both the written and the resolved (symlink-free) form of each folder and root count.
func ownPaths(roots []string, dirs []string) []remote.Path {
	var out []remote.Path
	seen := map[remote.Path]bool{}
	forms := func(p string) []string {
		if p == "" {
			return nil
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil
		}
		fs := []string{filepath.Clean(abs)}
		if r, err := filepath.EvalSymlinks(abs); err == nil && r != fs[0] {
			fs = append(fs, r)
		}
		return fs
	}
	for _, root := range roots {
		for _, rf := range forms(root) {
			for _, d := range dirs {
				for _, df := range forms(d) {
					rel, err := filepath.Rel(rf, df)
					if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
						continue
					}
					p, err := remote.ParsePath(filepath.ToSlash(rel))
					if err != nil || seen[p] {
						continue
					}
					seen[p] = true
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// skipOwn wraps a pair's ignore rule so that tandem's own folders (ownPaths) and what is in them are ignored too.
func skipOwn(ignored func(remote.Path, bool) bool, own []remote.Path) func(remote.Path, bool) bool {
	if len(own) == 0 {
		return ignored
	}
	return func(p remote.Path, dir bool) bool {
		for _, o := range own {
			if p == o || p.Within(o) {
				return true
			}
		}
		return ignored(p, dir)
	}
}
