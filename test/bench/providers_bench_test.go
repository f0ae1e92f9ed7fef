package bench

// Provider figures for issues 3, 4 and 5: first-sync throughput to the pCloud emulator on loopback beside
// `rclone copy` of the same data to the same emulator, Verizon's first sync and no-change pass, and the cost
// (time and requests) of a vBoxx pass on a 10,000-file root with no change and with one change.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/vboxx"
	"github.com/tandemsync/tandem/test/testenv"
)

// makeSmall writes n files of 1 KiB in folders of 100 and returns the bytes written.
func makeSmall(b *testing.B, root string, n int) int64 {
	b.Helper()
	old := time.Now().Add(-time.Hour)
	for i := range n {
		p := filepath.Join(root, fmt.Sprintf("folder%03d", i/100), fmt.Sprintf("file%05d.dat", i))
		testenv.WriteRandom(b, p, 1024, uint64(i)+1)
		if err := os.Chtimes(p, old, old); err != nil {
			b.Fatal(err)
		}
	}
	return int64(n) * 1024
}

// providerOnce runs `tandem once --json` against an emulator and returns its document and duration.
func providerOnce(b *testing.B, env []string, args ...string) (testenv.Doc, time.Duration) {
	b.Helper()
	start := time.Now()
	r := testenv.RunWith(b, bin, testenv.RunOpts{Env: env}, append([]string{"once", "--json"}, args...)...)
	took := time.Since(start)
	if r.Code != 0 {
		b.Fatalf("%s", r)
	}
	return r.JSON(b), took
}

// rcloneCopy copies src to the pCloud emulator with rclone's own pCloud backend (HTTPS, the emulator's CA).
func rcloneCopy(b *testing.B, emu *testenv.Emulator, src, dst string) time.Duration {
	b.Helper()
	rc, err := exec.LookPath("rclone")
	if err != nil {
		b.Log("rclone is not installed: the rclone half is skipped (apt-get install rclone)")
		return 0
	}
	cmd := exec.Command(rc, "copy", src, "emu:"+dst, "--ca-cert", emu.CAFile, "--transfers", "4", "--checkers", "8")
	cmd.Env = append(os.Environ(), "RCLONE_CONFIG_EMU_TYPE=pcloud",
		`RCLONE_CONFIG_EMU_TOKEN={"access_token":"`+emu.AccessToken+`","token_type":"bearer","expiry":"0001-01-01T00:00:00Z"}`,
		"RCLONE_CONFIG_EMU_HOSTNAME="+emu.Host, "RCLONE_CONFIG=/dev/null")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		b.Fatalf("rclone copy: %v\n%s", err, out)
	}
	return took
}

func report(b *testing.B, who string, files int, bytes int64, took time.Duration) {
	b.Helper()
	if took == 0 {
		return
	}
	s := took.Seconds()
	b.ReportMetric(float64(files)/s, who+"-files/s")
	b.ReportMetric(float64(bytes)/s/1e6, who+"-MB/s")
	b.Logf("%s: %d files, %.1f MB in %s: %.0f files/s, %.1f MB/s", who, files, float64(bytes)/1e6,
		took.Round(time.Millisecond), float64(files)/s, float64(bytes)/s/1e6)
}

func pcloudArgs(emu *testenv.Emulator, sd, local, remote string) []string {
	return []string{"--state-dir", sd, "--endpoint", emu.Endpoint, "--access-token", emu.AccessToken, local,
		"pcloud:" + remote}
}

// BenchmarkPCloudFirstSync10k: 10,000 files of 1 KiB to the pCloud emulator, tandem once beside rclone copy.
func BenchmarkPCloudFirstSync10k(b *testing.B) {
	l := b.TempDir()
	bytes := makeSmall(b, l, 10_000)
	emu := testenv.StartEmulator(b, bin, "pcloud", "--allow-root-recursive")
	b.ResetTimer()
	for i := range b.N {
		d, took := providerOnce(b, nil, pcloudArgs(emu, b.TempDir(), l, fmt.Sprintf("/Tandem%d", i))...)
		if d.Totals["uploaded"] != 10_000 {
			b.Fatalf("uploaded %d files", d.Totals["uploaded"])
		}
		report(b, "tandem", 10_000, bytes, took)
		report(b, "rclone", 10_000, bytes, rcloneCopy(b, emu, l, fmt.Sprintf("/Rclone%d", i)))
	}
}

// BenchmarkPCloudFirstSync1GiB: one 1 GiB file to the pCloud emulator, tandem once beside rclone copy.
func BenchmarkPCloudFirstSync1GiB(b *testing.B) {
	l := b.TempDir()
	testenv.WriteRandom(b, filepath.Join(l, "one.bin"), 1<<30, 3)
	emu := testenv.StartEmulator(b, bin, "pcloud", "--allow-root-recursive")
	b.ResetTimer()
	for i := range b.N {
		_, took := providerOnce(b, nil, pcloudArgs(emu, b.TempDir(), l, fmt.Sprintf("/Tandem%d", i))...)
		report(b, "tandem", 1, 1<<30, took)
		report(b, "rclone", 1, 1<<30, rcloneCopy(b, emu, l, fmt.Sprintf("/Rclone%d", i)))
	}
}

// BenchmarkVerizonFirstSyncAndNoChange10k: the first sync of 10,000 files to the Verizon emulator, then a
// pass that finds nothing to do (the fullview etag answers 412).
func BenchmarkVerizonFirstSyncAndNoChange10k(b *testing.B) {
	l := b.TempDir()
	bytes := makeSmall(b, l, 10_000)
	emu := testenv.StartEmulator(b, bin, "verizon")
	b.ResetTimer()
	for i := range b.N {
		sd := b.TempDir()
		args := []string{"--state-dir", sd, "--endpoint", emu.Endpoint, "--access-token", emu.AccessToken,
			"--refresh-token", emu.RefreshToken, "--ca-file", emu.CAFile, l, fmt.Sprintf("verizon:/VZMOBILE/Sync%d", i)}
		d, took := providerOnce(b, nil, args...)
		if d.Totals["uploaded"] != 10_000 {
			b.Fatalf("uploaded %d files", d.Totals["uploaded"])
		}
		report(b, "first-sync", 10_000, bytes, took)
		emu.ClearLog(b)
		d, took = providerOnce(b, nil, args...)
		if len(d.Done) != 0 {
			b.Fatalf("the no-change pass did %d actions", len(d.Done))
		}
		reportPass(b, "no-change", took, emu.Log(b))
	}
}

func reportPass(b *testing.B, what string, took time.Duration, log []testenv.LogEntry) {
	b.Helper()
	b.ReportMetric(float64(took.Milliseconds()), what+"-ms")
	b.ReportMetric(float64(len(log)), what+"-requests")
	b.Logf("%s pass: %s, %d requests %v", what, took.Round(time.Millisecond), len(log), testenv.OpCounts(log))
}

// BenchmarkVBoxxPoll10k: a pass on a synced 10,000-file vBoxx root with no change, then with one file changed
// by another client: the time and the requests (the folder-hash protocol answers 304 for unchanged folders).
func BenchmarkVBoxxPoll10k(b *testing.B) {
	l := b.TempDir()
	makeSmall(b, l, 10_000)
	emu := testenv.StartEmulator(b, bin, "vboxx")
	xdg, client := b.TempDir(), b.TempDir()
	for _, dir := range []string{filepath.Join(xdg, "tandem", "tokens"), client} {
		r := testenv.RunWith(b, bin, testenv.RunOpts{Stdin: emu.Password + "\n"}, "login", "vboxx", "--username",
			emu.Username, "--password-stdin", "--endpoint", emu.Endpoint, "--ca-file", emu.CAFile, "--token-dir", dir)
		if r.Code != 0 {
			b.Fatalf("%s", r)
		}
	}
	env := []string{"XDG_CONFIG_HOME=" + xdg}
	sd := b.TempDir()
	args := []string{"--state-dir", sd, "--ca-file", emu.CAFile, l, "vboxx:/"}
	start := time.Now()
	if d, _ := providerOnce(b, env, args...); d.Totals["uploaded"] != 10_000 {
		b.Fatalf("uploaded %d files", d.Totals["uploaded"])
	}
	b.Logf("first sync of 10,000 files: %s", time.Since(start).Round(time.Millisecond))
	providerOnce(b, env, args...) // settles the first sync's own echoes
	b.ResetTimer()
	for i := range b.N {
		emu.ClearLog(b)
		d, took := providerOnce(b, env, args...)
		if len(d.Done) != 0 {
			b.Fatalf("the no-change pass did %+v", d.Done)
		}
		reportPass(b, "no-change", took, emu.Log(b))

		ctx := context.Background()
		r, err := vboxx.Open(ctx, nil, "/", remote.OpenOptions{CAFile: emu.CAFile, StateDir: client})
		if err != nil {
			b.Fatal(err)
		}
		data := fmt.Sprintf("changed in the cloud, round %d", i)
		if _, err := r.Put(ctx, "folder042/file04242.dat", strings.NewReader(data), int64(len(data)), time.Now(),
			remote.Precondition{}); err != nil {
			b.Fatal(err)
		}
		r.Close()
		emu.ClearLog(b)
		d, took = providerOnce(b, env, args...)
		if d.Totals["downloaded"] != 1 || len(d.Done) != 1 {
			b.Fatalf("the one-change pass did %+v", d.Done)
		}
		reportPass(b, "one-change", took, emu.Log(b))
	}
}
