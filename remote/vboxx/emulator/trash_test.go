package emulator

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"
)

// TestTrashKeepsContent: a deleted file's last revision stays, and GET /trash hashes it.
func TestTrashKeepsContent(t *testing.T) {
	r := Start(t, Options{})
	if _, err := r.Emu.WriteFile("/gone.txt", []byte("a version tandem deleted")); err != nil {
		t.Fatal(err)
	}
	if err := r.Emu.Remove("/gone.txt"); err != nil {
		t.Fatal(err)
	}
	sums, err := r.Emu.Kit().Trash()
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256([]byte("a version tandem deleted"))
	if !slices.Contains(sums, hex.EncodeToString(want[:])) {
		t.Fatalf("trash holds %v, not the deleted file's content", sums)
	}
}
