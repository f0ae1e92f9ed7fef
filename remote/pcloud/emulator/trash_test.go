package emulator

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"
)

// TestTrashKeepsContent: a deleted file's bytes stay in the trash (the torture's ledger looks for versions tandem
// deleted on the remote there), under the default reading too, and GET /trash hashes them.
func TestTrashKeepsContent(t *testing.T) {
	r := Start(t, Options{})
	a := newAPI(t, r)
	up := a.put(0, "gone.txt", []byte("a version tandem deleted"))
	var rep tReply
	a.must("deletefile", &rep, "fileid", u(up.FileIDs[0]))
	sums, err := r.Kit().Trash()
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256([]byte("a version tandem deleted"))
	if !slices.Contains(sums, hex.EncodeToString(want[:])) {
		t.Fatalf("trash holds %v, not the deleted file's content", sums)
	}
}
