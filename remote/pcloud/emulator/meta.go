package emulator

import (
	"strconv"
	"strings"
)

// metaOut is pCloud's metadata object (§4.1). Pointers keep 0 values (folderid 0 of the root) while leaving
// out fields that do not apply to the item's kind.
type metaOut struct {
	Name           string      `json:"name"`
	Path           string      `json:"path,omitempty"`
	Created        any         `json:"created"`
	Modified       any         `json:"modified"`
	IsMine         bool        `json:"ismine"`
	Thumb          bool        `json:"thumb"`
	ID             string      `json:"id"`
	IsShared       bool        `json:"isshared"`
	Icon           string      `json:"icon"`
	IsFolder       bool        `json:"isfolder"`
	ParentFolderID *uint64     `json:"parentfolderid,omitempty"`
	FolderID       *uint64     `json:"folderid,omitempty"`
	FileID         *uint64     `json:"fileid,omitempty"`
	Size           *int64      `json:"size,omitempty"`
	Hash           *uint64     `json:"hash,omitempty"`
	ContentType    string      `json:"contenttype,omitempty"`
	Category       *int        `json:"category,omitempty"`
	Comments       int         `json:"comments"`
	IsDeleted      bool        `json:"isdeleted,omitempty"`
	DeletedFileID  uint64      `json:"deletedfileid,omitempty"`
	Contents       *[]*metaOut `json:"contents,omitempty"`
	// Padding: VariantFatListing's ~4 KiB of fields a client does not know (pCloud sends media extras, comments,
	// ...): listing answers become hundreds of MiB for big trees.
	Padding string `json:"x_padding,omitempty"`
	// OrigParentFolderID: trash listings only, where the item lived.
	OrigParentFolderID *uint64 `json:"origparentfolderid,omitempty"`
}

func (c *call) meta(n *node) *metaOut {
	m := &metaOut{Name: n.Name, Created: c.t(n.Created), Modified: c.t(n.Modified), IsMine: true,
		IsFolder: n.Folder, IsDeleted: n.Deleted}
	if !(n.Folder && n.ID == 0) {
		parent := n.Parent
		m.ParentFolderID = &parent
	}
	id := n.ID
	if n.Folder {
		m.ID, m.FolderID, m.Icon = "d"+strconv.FormatUint(id, 10), &id, "folder"
		return m
	}
	size, hash := n.Size, n.Hash
	icon, cat := classify(n.ContentType)
	m.ID, m.FileID, m.Size, m.Hash, m.ContentType, m.Icon, m.Category =
		"f"+strconv.FormatUint(id, 10), &id, &size, &hash, n.ContentType, icon, &cat
	m.Thumb = cat == 1 || cat == 2
	m.DeletedFileID = n.replaced
	return m
}

// classify maps a content type to pCloud's icon and category (0 uncategorized, 1 image, 2 video, 3 audio,
// 4 document, 5 archive).
func classify(ct string) (string, int) {
	switch {
	case strings.HasPrefix(ct, "image/"):
		return "image", 1
	case strings.HasPrefix(ct, "video/"):
		return "video", 2
	case strings.HasPrefix(ct, "audio/"):
		return "audio", 3
	case strings.HasPrefix(ct, "text/"), ct == "application/pdf", strings.Contains(ct, "document"),
		strings.Contains(ct, "msword"):
		return "document", 4
	case strings.Contains(ct, "zip"), strings.Contains(ct, "tar"), strings.Contains(ct, "rar"),
		strings.Contains(ct, "7z"):
		return "archive", 5
	}
	return "file", 0
}

// validName applies pCloud's name rule (§4.3): UTF-8 shorter than 1024 bytes, no NUL, '/' or '\'.
func validName(s string) bool {
	return s != "" && len(s) < 1024 && !strings.ContainsAny(s, "\x00/\\")
}
