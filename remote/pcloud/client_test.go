package pcloud

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/pcloud/emulator"
)

func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{'p', 'c', seed}).Read(b)
	return b
}

func sha1Hex(b []byte) string {
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}

func mustPut(t testing.TB, r remote.Remote, p string, data []byte, pre remote.Precondition) remote.Entry {
	t.Helper()
	e, err := r.Put(context.Background(), remote.Path(p), bytes.NewReader(data), int64(len(data)), time.Unix(1700000000, 0), pre)
	if err != nil {
		t.Fatalf("Put %s: %v", p, err)
	}
	return e
}

func readAllOf(t testing.TB, r remote.Remote, p string) ([]byte, error) {
	t.Helper()
	rc, _, err := r.Open(context.Background(), remote.Path(p))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// countOps counts requests of one API method in the emulator's log.
func countOps(run *emulator.Running, op string) int {
	n := 0
	for _, e := range run.Log() {
		if e.Op == op {
			n++
		}
	}
	return n
}

// checkNoDuplicates fails on any "name (k)" sibling: a retried create must never make one.
func checkNoDuplicates(t *testing.T, run *emulator.Running) {
	t.Helper()
	for p := range run.Snapshot() {
		if strings.Contains(p, " (") {
			t.Errorf("duplicate from a retried create: %s", p)
		}
	}
}

func TestChunkedUploadRoundTrip(t *testing.T) {
	t.Parallel()
	run, r, _ := pair(t, emulator.Options{}, Options{ChunkThreshold: 1 << 20, ChunkSize: 3 << 20})
	data := randomBytes(40<<20, 1)
	e := mustPut(t, r, "big.bin", data, remote.Precondition{Absent: true})
	if e.Size != int64(len(data)) || e.Hash.Hex != sha1Hex(data) {
		t.Fatalf("Put entry %+v, want size %d sha1 %s", e, len(data), sha1Hex(data))
	}
	if n := countOps(run, "upload_write"); n != 14 {
		t.Errorf("upload_write calls = %d, want 14 parts of 3 MiB", n)
	}
	if countOps(run, "uploadfile") != 0 {
		t.Error("a file above the threshold went through uploadfile")
	}
	got, err := readAllOf(t, r, "big.bin")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %d bytes, err %v", len(got), err)
	}
	if s := run.Snapshot()["/Sync/big.bin"]; s.SHA1 != sha1Hex(data) || s.Modified.Unix() != 1700000000 {
		t.Errorf("stored %+v", s)
	}
	// An overwrite with the current Rev through the chunked path keeps the precondition.
	_, err = r.Put(context.Background(), "big.bin", bytes.NewReader(data[:2<<20]), 2<<20, time.Now(), remote.Precondition{Rev: "1"})
	if !errors.Is(err, remote.ErrConflict) {
		t.Errorf("chunked Put with a stale Rev: %v", err)
	}
}

func TestChunkedUpload300MiB(t *testing.T) {
	if testing.Short() {
		t.Skip("300 MiB upload: skipped with -short")
	}
	t.Parallel()
	_, r, _ := pair(t, emulator.Options{}, Options{})
	const size = 300 << 20
	src := &patternReader{left: size}
	h := sha1.New()
	start := time.Now()
	e, err := r.Put(context.Background(), "huge.bin", io.TeeReader(src, h), size, time.Now(), remote.Precondition{Absent: true})
	if err != nil {
		t.Fatalf("Put 300 MiB: %v", err)
	}
	want := hex.EncodeToString(h.Sum(nil))
	if e.Size != size || e.Hash.Hex != want {
		t.Fatalf("entry %+v, want sha1 %s", e, want)
	}
	t.Logf("300 MiB up in %v", time.Since(start))
	rc, _, err := r.Open(context.Background(), "huge.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if n, err := io.Copy(io.Discard, rc); err != nil || n != size {
		t.Fatalf("read back %d bytes: %v", n, err)
	}
}

// patternReader yields a cheap non-repeating stream without holding it in memory.
type patternReader struct {
	left int64
	x    uint64
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	n := min(int64(len(b)), p.left)
	for i := range b[:n] {
		p.x = p.x*6364136223846793005 + 1442695040888963407
		b[i] = byte(p.x >> 56)
	}
	p.left -= n
	return int(n), nil
}

func TestLongPollWakesOnChange(t *testing.T) {
	t.Parallel()
	_, r, other := pair(t, emulator.Options{DiffBlockTimeout: 30 * time.Second}, Options{})
	cur, err := r.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	type res struct {
		b   remote.Batch
		err error
		at  time.Time
	}
	done := make(chan res, 1)
	ctx, cancel := context.WithTimeout(remote.WithLongPoll(context.Background()), 20*time.Second)
	defer cancel()
	go func() {
		b, err := r.Changes(ctx, cur)
		done <- res{b, err, time.Now()}
	}()
	time.Sleep(300 * time.Millisecond) // let the poll block first: the point is waking a blocked request
	changed := time.Now()
	mustPut(t, other, "x.txt", []byte("x"), remote.Precondition{})
	got := <-done
	if got.err != nil {
		t.Fatal(got.err)
	}
	if d := got.at.Sub(changed); d > time.Second {
		t.Errorf("long poll woke %v after the change", d)
	}
	if len(got.b.Changes) != 1 || got.b.Changes[0].Entry.Path != "x.txt" {
		t.Errorf("changes %+v", got.b.Changes)
	}
	// Without WithLongPoll, Changes answers at once.
	start := time.Now()
	b, err := r.Changes(context.Background(), got.b.Next)
	if err != nil || len(b.Changes) != 0 || time.Since(start) > 2*time.Second {
		t.Errorf("non-blocking Changes: %+v %v after %v", b, err, time.Since(start))
	}
}

func TestServerMovesArriveWithFrom(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	run, r, other := pair(t, emulator.Options{}, Options{})
	if _, err := other.Mkdir(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	mustPut(t, other, "d/f.txt", []byte("f"), remote.Precondition{})
	mustPut(t, other, "a.txt", []byte("a"), remote.Precondition{})
	if _, err := other.Mkdir(ctx, "e"); err != nil {
		t.Fatal(err)
	}
	cur, err := r.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Move(ctx, "a.txt", "e/b.txt", remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Move(ctx, "d", "e/d2", remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	// A fresh client (a new process) decodes the cursor instead of reusing its in-memory tree.
	fresh := newClient(t, run, "/Sync", Options{})
	b, err := fresh.Changes(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	want := map[remote.Path]remote.Path{"e/b.txt": "a.txt", "e/d2": "d"}
	for _, c := range b.Changes {
		if from, ok := want[c.Entry.Path]; ok {
			if c.From != from {
				t.Errorf("%s: From %q, want %q", c.Entry.Path, c.From, from)
			}
			delete(want, c.Entry.Path)
		}
	}
	if len(want) > 0 {
		t.Errorf("moves not reported: %v in %+v", want, b.Changes)
	}
	// Moving out of the root is a delete; moving in from outside is a create with contents.
	outside := newClient(t, run, "/", Options{})
	if _, err := outside.Mkdir(ctx, "Elsewhere"); err != nil {
		t.Fatal(err)
	}
	mustPut(t, outside, "Elsewhere/in.txt", []byte("in"), remote.Precondition{})
	if _, err := outside.Move(ctx, "Sync/e/b.txt", "out.txt", remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if _, err := outside.Move(ctx, "Elsewhere", "Sync/came", remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	b, err = fresh.Changes(ctx, b.Next)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range b.Changes {
		key := string(c.Entry.Path)
		if c.Deleted {
			key = "-" + key
		}
		seen[key] = true
	}
	for _, k := range []string{"-e/b.txt", "came", "came/in.txt"} {
		if !seen[k] {
			t.Errorf("missing change %s in %+v", k, b.Changes)
		}
	}
}

// raw calls the emulator's API directly, as a foreign client that creates what tandem never would.
func raw(t *testing.T, run *emulator.Running, method string, q url.Values, body []byte) {
	t.Helper()
	verb := http.MethodGet
	var rd io.Reader
	if body != nil {
		verb, rd = http.MethodPut, bytes.NewReader(body)
	}
	req, _ := http.NewRequest(verb, run.URL+"/"+method+"?"+q.Encode(), rd)
	req.Header.Set("Authorization", "Bearer "+run.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if !bytes.Contains(data, []byte(`"result":0`)) {
		t.Fatalf("%s %v: %s", method, q, data)
	}
}

func TestHostileServerNamesSkipped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	run, r, _ := pair(t, emulator.Options{}, Options{})
	cur, err := r.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hostile := []string{"..", ".", "esc\x1b[31m", "tab\there", ".tandem", ".tandem-1.part",
		strings.Repeat("n", 300)}
	for _, name := range hostile {
		raw(t, run, "uploadfile", url.Values{"path": {"/Sync"}, "filename": {name}}, []byte("evil"))
	}
	raw(t, run, "createfolder", url.Values{"path": {"/Sync/..."}}, nil) // a valid odd name, kept
	raw(t, run, "createfolder", url.Values{"path": {"/Sync/\x7fdir"}}, nil)
	raw(t, run, "uploadfile", url.Values{"path": {"/Sync/\x7fdir"}, "filename": {"inside.txt"}}, []byte("x"))
	mustPut(t, r, "ok.txt", []byte("ok"), remote.Precondition{})
	var walked []remote.Path
	skipped := 0
	if err := r.Walk(ctx, remote.Root, func(e remote.Entry) error {
		if e.Skip != "" {
			// Emitted so the engine keeps what it stored for the object, never synced; nothing below is walked.
			if _, err := remote.ParsePath(string(e.Path)); err == nil && !strings.HasPrefix(string(e.Path), ".tandem") {
				t.Errorf("skipped entry %q has a usable path", e.Path)
			}
			skipped++
			return nil
		}
		walked = append(walked, e.Path)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(walked) != 2 || walked[0] != "..." || walked[1] != "ok.txt" {
		t.Errorf("Walk reported %q, want only ... and ok.txt", walked)
	}
	if skipped != len(hostile)+1 {
		t.Errorf("Walk skipped %d entries, want %d", skipped, len(hostile)+1)
	}
	b, err := r.Changes(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range b.Changes {
		if c.Entry.Path != "..." && c.Entry.Path != "ok.txt" {
			t.Errorf("Changes reported %q", c.Entry.Path)
		}
	}
	if _, err := r.Stat(ctx, "..."); err != nil {
		t.Errorf("Stat ...: %v", err)
	}
}

func TestRevokedTokenNeedsLoginWithoutRetries(t *testing.T) {
	t.Parallel()
	run, r, _ := pair(t, emulator.Options{}, Options{})
	mustPut(t, r, "a.txt", []byte("a"), remote.Precondition{})
	for _, code := range []int{2095, 2094} {
		tok := "tok-" + hex.EncodeToString([]byte{byte(code)})
		if code == 2095 {
			run.Emu.RevokeToken(run.Token)
			tok = run.Token
		}
		c := newClient(t, run, "/Sync", Options{Token: remote.Secret(tok)})
		run.ResetLog()
		_, err := c.Stat(context.Background(), "a.txt")
		if !errors.Is(err, remote.ErrUnauthorized) {
			t.Fatalf("code %d: Stat: %v", code, err)
		}
		if strings.Contains(err.Error(), tok) {
			t.Errorf("the error shows the token: %v", err)
		}
		if n := len(run.Log()); n != 1 {
			t.Errorf("code %d: %d requests for one refused call, want 1 (no retry storm)", code, n)
		}
	}
}

func TestEURegionOffersSHA256(t *testing.T) {
	t.Parallel()
	_, r, _ := pair(t, emulator.Options{Region: emulator.RegionEU}, Options{EU: true})
	if got := r.Capabilities().Hashes; len(got) != 2 || got[1] != "sha256" {
		t.Fatalf("Hashes %v", got)
	}
	data := []byte("eu data")
	mustPut(t, r, "a.txt", data, remote.Precondition{})
	h, _, err := r.HashOf(context.Background(), "a.txt", "sha256")
	want, _, _ := remote.HashReader("sha256", bytes.NewReader(data))
	if err != nil || h != want {
		t.Fatalf("sha256 %v %v, want %v", h, err, want)
	}
	if _, _, err := r.HashOf(context.Background(), "a.txt", "md5"); err == nil {
		t.Error("md5 offered in the EU region")
	}
}
