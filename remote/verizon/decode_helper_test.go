package verizon

import (
	"github.com/tandemsync/tandem/remote"
)

// listingOf decodes a fullview body below /VZMOBILE/t (kept apart so the item-5 test can run against older
// decoders by changing only this adapter).
func listingOf(body string) (map[remote.Path]remote.Entry, error) {
	l, err := decodeFullview([]byte(body), "/VZMOBILE/t")
	if err != nil {
		return nil, err
	}
	return l.entries, nil
}
