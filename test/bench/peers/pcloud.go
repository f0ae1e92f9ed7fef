package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tandemsync/tandem/remote/emulate"
	pcloudemu "github.com/tandemsync/tandem/remote/pcloud/emulator"
)

// pcloudFolder is the folder of the emulated account every tool writes to.
const pcloudFolder = "/bench"

// pcloudEmu is a pCloud emulator served by this process on 127.0.0.1 (HTTPS with its own CA), one fresh account
// per first sync. Both tools reach it over HTTPS: tandem with --endpoint and --ca-file, rclone through its pcloud
// backend's `hostname` option and --ca-cert, as remote/pcloud/emulator/rclone_test.go does.
type pcloudEmu struct {
	srv        *emulate.Server
	emu        *pcloudemu.Emulator
	bytesLimit int64 // pcloudBytesLimit (the test lowers it)
}

func startPCloud(ctx context.Context, data string) (*pcloudEmu, error) {
	if err := os.RemoveAll(data); err != nil {
		return nil, err
	}
	// rclone 1.60 lists recursively from the account root, which today's pCloud (and the emulator's default)
	// refuses; tandem never lists the root, so the option changes nothing for it.
	srv, err := emulate.Start(ctx, nil, "pcloud", emulate.Options{Data: data, AllowRootRecursive: true})
	if err != nil {
		return nil, fmt.Errorf("pCloud emulator: %w", err)
	}
	if srv.PCloud() == nil {
		srv.Close()
		return nil, errors.New("pCloud emulator: the server runs no pCloud emulator")
	}
	return &pcloudEmu{srv: srv, emu: srv.PCloud(), bytesLimit: pcloudBytesLimit}, nil
}

func (p *pcloudEmu) close() error { return p.srv.Close() }

// tandemCmd: `tandem once` from src to the emulator's folder; the login is the emulator's token on the command
// line, and XDG_CONFIG_HOME points into state so that no stored login of the user's is read.
func (p *pcloudEmu) tandemCmd(tandem, src, state string) *exec.Cmd {
	i := p.srv.Info
	c := exec.Command(tandem, "once", "--state-dir", state, "--endpoint", i.HTTPSURL, "--ca-file", i.CAFile,
		"--access-token", i.AccessToken, src, "pcloud:"+pcloudFolder)
	c.Env = append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(state, "xdg"))
	return c
}

// rcloneCopyCmd: `rclone copy` from src to the emulator's folder, the remote defined by environment variables.
func (p *pcloudEmu) rcloneCopyCmd(src, state string) *exec.Cmd {
	i := p.srv.Info
	tok, _ := json.Marshal(map[string]string{"access_token": i.AccessToken, "token_type": "bearer", "expiry": "0001-01-01T00:00:00Z"})
	c := exec.Command("rclone", "copy", src, "emu:"+strings.TrimPrefix(pcloudFolder, "/"), "--exclude", "/.tandem/**",
		"--config", filepath.Join(state, "rclone.conf"), "--ca-cert", i.CAFile)
	c.Env = append(os.Environ(), "RCLONE_CONFIG_EMU_TYPE=pcloud", "RCLONE_CONFIG_EMU_HOSTNAME="+i.Host,
		"RCLONE_CONFIG_EMU_TOKEN="+string(tok))
	return c
}

// pcloudBytesLimit: files up to this size are read back from the emulator and compared byte for byte; larger
// ones by the SHA-1 the emulator computed from the bytes it stored (reading 256 MiB blobs whole would double
// this process's memory for no better check).
const pcloudBytesLimit = 64 << 20

// check compares the emulator's account with src: the same folders and files under pcloudFolder (tandem's
// .tandem folder left out) and nothing anywhere else, the same sizes, and the same bytes.
func (p *pcloudEmu) check(src string) error {
	want, err := listAll(src)
	if err != nil {
		return err
	}
	snap := p.emu.Snapshot()
	var got []string
	for k, e := range snap {
		if k == pcloudFolder && e.Folder {
			continue
		}
		rel, ok := strings.CutPrefix(k, pcloudFolder+"/")
		if !ok {
			return fmt.Errorf("%s is outside %s in the account", k, pcloudFolder)
		}
		if e.Folder {
			rel += "/"
		}
		got = append(got, rel)
	}
	slices.Sort(got)
	if !slices.Equal(want, got) {
		return listDiff(want, got)
	}
	for _, rel := range want {
		if strings.HasSuffix(rel, "/") {
			continue
		}
		local := filepath.Join(src, filepath.FromSlash(rel))
		e := snap[pcloudFolder+"/"+rel]
		fi, err := os.Stat(local)
		if err != nil {
			return err
		}
		if fi.Size() != e.Size {
			return fmt.Errorf("%s: %d bytes, the emulator holds %d", rel, fi.Size(), e.Size)
		}
		if e.Size > p.bytesLimit {
			sum, err := sha1File(local)
			if err != nil {
				return err
			}
			if sum != e.SHA1 {
				return fmt.Errorf("%s: SHA-1 %s, the emulator's %s", rel, sum, e.SHA1)
			}
			continue
		}
		remote, err := p.emu.ReadFile(pcloudFolder + "/" + rel)
		if err != nil {
			return err
		}
		l, err := os.ReadFile(local)
		if err != nil {
			return err
		}
		if !bytes.Equal(l, remote) {
			return fmt.Errorf("%s: contents differ", rel)
		}
	}
	return nil
}

// listDiff names the first entry one listing has and the other lacks.
func listDiff(want, got []string) error {
	for _, p := range want {
		if _, ok := slices.BinarySearch(got, p); !ok {
			return fmt.Errorf("%s is missing", p)
		}
	}
	for _, p := range got {
		if _, ok := slices.BinarySearch(want, p); !ok {
			return fmt.Errorf("%s is extra", p)
		}
	}
	return errors.New("the listings differ")
}

func sha1File(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha1.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
