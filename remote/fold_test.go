package remote

import (
	"strings"
	"testing"
)

// TestFoldName: a case-folding remote that keeps bytes (vBoxx) holds café in NFC and NFD side by side; only a
// remote that normalises makes them one name (the merge once folded both, and vBoxx's e2e Unicode scenario
// lost one spelling as a false collision).
func TestFoldName(t *testing.T) {
	nfc, nfd := "caf\u00e9", "cafe\u0301"
	if FoldName(Capabilities{}) != nil {
		t.Fatal("a remote that tells every name apart has no folding")
	}
	f := FoldName(Capabilities{FoldsCase: true})
	if f("Report.TXT") != f("report.txt") {
		t.Error("case folding does not join Report.TXT and report.txt")
	}
	if f(nfc) == f(nfd) {
		t.Error("a case-folding remote that keeps bytes joined NFC and NFD")
	}
	g := FoldName(Capabilities{NormalizesUnicode: true})
	if g(nfc) != g(nfd) || g("A") == g("a") {
		t.Error("a normalising remote: NFC and NFD are one name, case is not folded")
	}
	h := FoldName(Capabilities{FoldsCase: true, NormalizesUnicode: true})
	if h("CAF\u00c9") != h(nfd) {
		t.Error("a folding, normalising remote: CAFÉ and cafe\u0301 are one name")
	}
}

// TestBackslashNameMessage (issue 13 item 13): on Linux a backslash is an ordinary character; the refusal says
// why it is refused instead of calling it a path separator.
func TestBackslashNameMessage(t *testing.T) {
	err := ValidName(`a\b.txt`)
	if err == nil || !strings.Contains(err.Error(), "backslash") || strings.Contains(err.Error(), "contains a path separator") {
		t.Fatalf("ValidName(a\\b.txt) = %v", err)
	}
	if err := ValidName("a/b"); err == nil || !strings.Contains(err.Error(), "path separator") {
		t.Fatalf("ValidName(a/b) = %v", err)
	}
}
