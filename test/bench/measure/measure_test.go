package measure

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const statusText = `Name:	tandem
State:	S (sleeping)
VmPeak:	 1262252 kB
VmHWM:	  312340 kB
VmRSS:	  301212 kB
RssAnon:	   10240 kB
RssFile:	  290972 kB
RssShmem:	       0 kB
Threads:	7
`

func TestParseStatus(t *testing.T) {
	s, err := ParseStatus([]byte(statusText))
	if err != nil {
		t.Fatal(err)
	}
	if s.Anon != 10240 || s.File != 290972 || s.RSS != 301212 || s.HWM != 312340 || !s.ok {
		t.Errorf("parsed %+v", s)
	}
	// A zombie's status has no memory lines: not a sample of zeros.
	if s, err := ParseStatus([]byte("Name:\ttandem\nState:\tZ (zombie)\n")); err != nil || s.ok {
		t.Errorf("zombie status: %+v, %v", s, err)
	}
	if _, err := ParseStatus([]byte("RssAnon:\t12 MB\n")); err == nil {
		t.Error("a unit other than kB was accepted")
	}
}

// TestRunSamplesChildMemory runs this test binary as a child that holds 64 MiB of heap until its stdin closes,
// which happens once a sample has seen that memory: the peak must be the child's, not this process's.
func TestRunSamplesChildMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("samples /proc")
	}
	if os.Getenv("MEASURE_CHILD") == "1" {
		b := make([]byte, 64<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		_, _ = io.Copy(io.Discard, os.Stdin)
		runtime.KeepAlive(b)
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestRunSamplesChildMemory$")
	cmd.Env = append(os.Environ(), "MEASURE_CHILD=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	// Only a broken sampler gets near this: it never sees the memory, so the child waits for the kill.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u, err := run(ctx, cmd, 5*time.Millisecond, func(s Status) {
		if s.Anon >= 64<<10 {
			once.Do(func() { stdin.Close() })
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if u.PeakAnon < 64<<10 || u.PeakFile <= 0 || u.PeakRSS < u.PeakAnon || u.HWM < u.PeakRSS || u.Samples == 0 {
		t.Errorf("usage %+v: want RssAnon >= 65536 KiB and the other peaks consistent", u)
	}
	if u.Wall <= 0 {
		t.Errorf("wall %v", u.Wall)
	}
}

func TestReplaceSection(t *testing.T) {
	other := "# peers\n\nhand-written notes\n"
	doc, err := ReplaceSection(other, "big", "## big\n\nrun 1\n")
	if err != nil {
		t.Fatal(err)
	}
	want := other + "\n" + BeginMarker("big") + "\n## big\n\nrun 1\n" + EndMarker("big") + "\n"
	if doc != want {
		t.Fatalf("appended:\n%s\nwant:\n%s", doc, want)
	}
	doc += "\n## after\n\nkept\n"
	doc2, err := ReplaceSection(doc, "big", "## big\n\nrun 2\n")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(doc2, "run 1") || !strings.Contains(doc2, "run 2") ||
		!strings.HasPrefix(doc2, other) || !strings.HasSuffix(doc2, "\n## after\n\nkept\n") {
		t.Fatalf("replaced:\n%s", doc2)
	}
	// Another command's section is left alone.
	doc3, err := ReplaceSection(doc2, "peers", "table")
	if err != nil || !strings.Contains(doc3, "run 2") || !strings.HasSuffix(doc3, EndMarker("peers")+"\n") {
		t.Fatalf("second section: %v\n%s", err, doc3)
	}
	if _, err := ReplaceSection(BeginMarker("big")+"\nno end\n", "big", "x"); err == nil {
		t.Error("a missing end marker was not reported")
	}
	if _, err := ReplaceSection(doc2+doc2, "big", "x"); err == nil {
		t.Error("duplicated markers were not reported")
	}
	// WriteSection creates the file.
	p := filepath.Join(t.TempDir(), "results.md")
	if err := WriteSection(p, "big", "## big\n"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != BeginMarker("big")+"\n## big\n"+EndMarker("big")+"\n" {
		t.Errorf("new file:\n%s", b)
	}
}
