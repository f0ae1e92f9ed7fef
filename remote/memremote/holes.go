package memremote

import (
	"context"

	"github.com/tandemsync/tandem/remote"
)

// FeedHoles is a Mem whose change feed has holes: a change to or from a path in Hide is never reported, as
// pCloud's diff leaves out a create and a delete that fall into one reply and some Verizon delta readings name
// no old path. Everything else (listing, reads, writes) is the Mem's. For tests of what repairs such holes:
// the engine's look at its own unconfirmed writes and the timed complete listing. Hide is read without a lock:
// change it only while no pass runs.
type FeedHoles struct {
	*Mem
	Hide map[remote.Path]bool
}

// Changes is the Mem's feed without the hidden paths.
func (h *FeedHoles) Changes(ctx context.Context, cur remote.Cursor) (remote.Batch, error) {
	b, err := h.Mem.Changes(ctx, cur)
	out := b.Changes[:0:0]
	for _, c := range b.Changes {
		if !h.Hide[c.Entry.Path] && (c.From == "" || !h.Hide[c.From]) {
			out = append(out, c)
		}
	}
	b.Changes = out
	return b, err
}
