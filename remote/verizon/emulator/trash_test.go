package emulator

import (
	"slices"
	"testing"
)

// TestTrashKeepsContent: a deleted file's blob stays while it is in the trash, and GET /trash hashes it.
func TestTrashKeepsContent(t *testing.T) {
	a := newAPI(t, Options{})
	a.want(201, "POST", "/fops/createfolder", map[string]string{"path": "/VZMOBILE", "name": "t"}, nil)
	a.upload("/VZMOBILE/t", "gone.txt", []byte("a version tandem deleted"), "", 0)
	a.want(200, "DELETE", "/fops/delete?path=/VZMOBILE/t/gone.txt", nil, nil)
	sums, err := a.r.Emu.Kit().Trash()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(sums, sum([]byte("a version tandem deleted"))) {
		t.Fatalf("trash holds %v, not the deleted file's content", sums)
	}
}
