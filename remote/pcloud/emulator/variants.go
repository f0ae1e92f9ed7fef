package emulator

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Variants: where pCloud's documentation is silent or ambiguous, the emulator offers each plausible reading. The
// zero Options give the LEAST HELPFUL reading for a client (see each Variant's doc); a variant switches to
// another one. `tandem emulate pcloud --variant NAME[,NAME]` and Options.Variants take the same names.

// Variant is one named reading.
type Variant struct {
	Name string
	Doc  string
}

// Variant names.
const (
	// VariantResetOnCompaction: a diffid older than a compaction is answered with a `reset` event (or
	// Options.TooOldResult). Default: compaction keeps every surviving event's diffid and sends NO signal, so a
	// client with an old cursor silently misses deletes (the docs say history older than ~6 months is compacted
	// and document no signal).
	VariantResetOnCompaction = "reset-on-compaction"
	// VariantKeepCancelling: events that cancel each other inside one reply (an item created and deleted) are
	// kept. Default: they are dropped, as the docs say, so a reply may be shorter than `limit` with more to come.
	VariantKeepCancelling = "keep-cancelling"
	// VariantNewFileID: overwriting a file by upload gives a NEW fileid, and the event and reply carry the old one
	// as `deletedfileid`. Default: the fileid is kept (documented, 2014 spec).
	VariantNewFileID = "new-fileid"
	// VariantFoldBackslash: the server stores a full-width backslash U+FF3C as `\` (rclone's note, unverified).
	// Default: names are stored as sent.
	VariantFoldBackslash = "fold-backslash"
	// VariantEU: the EU region (sha1 + sha256 digests, no md5). Default: the US region (sha1 + md5).
	VariantEU = "eu"
	// VariantListLimit: a recursive listfolder of more than 1,000 items answers 5000 (pCloud does past an
	// unpublished size). Default: no limit (besides the root's 1101).
	VariantListLimit = "list-limit"
	// VariantFatListing: every listed item carries ~4 KiB of extra fields, so a listing of 100,000 items is a
	// JSON answer of several hundred MiB. Default: plain metadata.
	VariantFatListing = "fat-listing"
	// VariantRootRecursive: a recursive listfolder of folder 0 is served (before April 2026; rclone 1.60 needs
	// it). Default: refused with 1101, as today's service does.
	VariantRootRecursive = "root-recursive"
	// VariantStatGone: `stat` of a file in the trash answers 2009. Default: it answers the file's metadata with
	// `isdeleted: true` (the field the docs define for deleted items; what stat does for them is not documented).
	VariantStatGone = "stat-gone"
	// VariantHTTPErrorStatus: error answers come with an HTTP error status (400, 401, 403, 404, 429, 500) and the
	// {result, error} body. Default: HTTP 200, as every public trace shows (rclone decodes non-2xx bodies too,
	// so a status is plausible as well).
	VariantHTTPErrorStatus = "http-error-status"
	// VariantTrash: trash_list and trash_restore work with an OAuth token, and a restore brings the item back (to
	// its old folder, or the root when that is gone; "name (2)" on a clash) with create events. Default: the trash
	// methods answer 1000 to OAuth tokens (re-tested 2026). Under both, trashed files keep their bytes (pCloud
	// documents a trash with a retention period); the admin endpoint's GET /trash hashes them for tests.
	VariantTrash = "trash"
)

// Variants lists every variant, for --help.
var Variants = []Variant{
	{VariantResetOnCompaction, "an old cursor gets a `reset` event after compaction (default: compaction sends no signal, diffids kept)"},
	{VariantKeepCancelling, "events that cancel each other in one diff reply are kept (default: dropped, short pages)"},
	{VariantNewFileID, "an overwrite makes a new fileid with deletedfileid (default: the fileid is kept)"},
	{VariantFoldBackslash, "names with U+FF3C are stored with a plain backslash (default: stored as sent)"},
	{VariantEU, "EU region: sha1+sha256, no md5 (default: US, sha1+md5)"},
	{VariantListLimit, "recursive listfolder of more than 1,000 items answers 5000 (default: no limit)"},
	{VariantFatListing, "~4 KiB of extra fields per listed item: huge listing answers (default: plain)"},
	{VariantRootRecursive, "recursive listfolder of the account root is served (default: 1101)"},
	{VariantStatGone, "stat of a trashed file answers 2009 (default: its metadata with isdeleted)"},
	{VariantTrash, "trash_list/trash_restore accept OAuth, keep content, restore with create events (default: 1000)"},
	{VariantHTTPErrorStatus, "errors come with HTTP 400/401/403/404/429/500 and the JSON body (default: HTTP 200)"},
}

// VariantNames is the list of names, sorted.
func VariantNames() []string {
	out := make([]string, 0, len(Variants))
	for _, v := range Variants {
		out = append(out, v.Name)
	}
	sort.Strings(out)
	return out
}

// ParseVariants checks names (each may itself be a comma list) and returns the set. An unknown name is an
// error that lists the known ones.
func ParseVariants(names []string) (map[string]bool, error) {
	known := map[string]bool{}
	for _, v := range Variants {
		known[v.Name] = true
	}
	out := map[string]bool{}
	for _, n := range names {
		for _, s := range strings.Split(n, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if !known[s] {
				return nil, fmt.Errorf("unknown pcloud variant %q: want one of %s", s, strings.Join(VariantNames(), ", "))
			}
			out[s] = true
		}
	}
	return out, nil
}

// applyVariants folds Options.Variants into the typed options they imply.
func (o *Options) applyVariants() error {
	set, err := ParseVariants(o.Variants)
	if err != nil {
		return err
	}
	o.variant = set
	if set[VariantEU] {
		o.Region = RegionEU
	}
	if set[VariantListLimit] && o.MaxRecursiveItems == 0 {
		o.MaxRecursiveItems = 1000
	}
	if set[VariantRootRecursive] {
		o.AllowRootRecursive = true
	}
	return nil
}

func (e *Emulator) is(v string) bool { return e.o.variant[v] }

// storedName is the name the server keeps for a name a client sent (VariantFoldBackslash).
func (e *Emulator) storedName(name string) string {
	if e.is(VariantFoldBackslash) {
		return strings.ReplaceAll(name, "\uFF3C", `\`)
	}
	return name
}

// dropCancelling removes the events of items created and deleted within one reply. Documented: a create and a
// delete inside one reply cancel out (the docs' example is a folder). Our reading, the least helpful one: every
// event of such an item in the reply goes, its renames and edits too. An item that exists again at the end of
// the reply (created, deleted, restored) keeps all its events: nothing cancelled it, and dropping them would
// hide an existing item from every client (a guess: the docs do not say).
func dropCancelling(sel []event) []event {
	type key struct {
		folder bool
		id     uint64
	}
	created := map[key]bool{}
	gone := map[key]bool{} // the item's last event in the reply so far is a delete
	for _, ev := range sel {
		if ev.Node == nil {
			continue
		}
		k := key{ev.Node.Folder, ev.Node.ID}
		switch ev.Event {
		case "createfolder", "createfile":
			created[k] = true
			gone[k] = false
		case "deletefolder", "deletefile":
			gone[k] = true
		default:
			gone[k] = false
		}
	}
	cancelled := map[key]bool{}
	for k := range created {
		if gone[k] {
			cancelled[k] = true
		}
	}
	if len(cancelled) == 0 {
		return sel
	}
	out := make([]event, 0, len(sel))
	for _, ev := range sel {
		if ev.Node != nil && cancelled[key{ev.Node.Folder, ev.Node.ID}] {
			continue
		}
		out = append(out, ev)
	}
	return out
}

// errorStatus is the HTTP status of an error answer under VariantHTTPErrorStatus.
func errorStatus(code int) int {
	switch {
	case code == 1000 || code == 2000 || code == 2094 || code == 2095:
		return 401
	case code == 2003:
		return 403
	case code == 2005 || code == 2009 || code == 2002:
		return 404
	case code >= 4000 && code < 5000:
		return 429
	case code >= 5000 && code < 6000:
		return 500
	}
	return 400
}

// trashVariant serves trash_list and trash_restore for VariantTrash (trash_clear and trash_restorepath: 2003).
func (c *call) trashVariant() (any, error) {
	e := c.e
	e.mu.Lock()
	defer e.mu.Unlock()
	switch strings.TrimPrefix(c.r.URL.Path, "/") {
	case "trash_list":
		var items []*metaOut
		for _, all := range []map[uint64]*node{e.folders, e.files} {
			for _, n := range all {
				if n.Deleted && !e.trashedParent(n) {
					m := c.meta(n)
					orig := n.Parent
					m.OrigParentFolderID = &orig
					items = append(items, m)
				}
			}
		}
		sort.Slice(items, func(i, j int) bool { return items[i].ID < items[j].ID })
		root := c.meta(e.folders[0])
		root.Contents = &items
		return ok("metadata", root), nil
	case "trash_restore":
		var n *node
		if v := c.p.Get("fileid"); v != "" {
			id, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fail(1018)
			}
			n = e.files[id]
		} else if v := c.p.Get("folderid"); v != "" {
			id, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fail(1017)
			}
			n = e.folders[id]
		}
		if n == nil || !n.Deleted {
			return nil, fail(2009)
		}
		ch := &change{}
		e.restore(ch, n, e.clk.Now().Unix())
		return c.commitMeta(ch, n)
	}
	return nil, fail(2003)
}

// trashedParent: n's folder is in the trash too (n is listed inside it, not at the trash's top).
func (e *Emulator) trashedParent(n *node) bool {
	p := e.folders[n.Parent]
	return p != nil && p.Deleted
}

// restore brings n (and, for a folder, what was trashed inside it) back, with create events, parents first.
func (e *Emulator) restore(ch *change, n *node, now int64) {
	if p := e.folders[n.Parent]; p == nil || p.Deleted {
		n.Parent = 0
	}
	base, ext := splitExt(n.Name)
	for k := 2; (n.Folder && e.childFolder(n.Parent, n.Name) != nil) || (!n.Folder && e.childFile(n.Parent, n.Name) != nil); k++ {
		n.Name = fmt.Sprintf("%s (%d)%s", base, k, ext)
	}
	n.Deleted = false
	e.link(n)
	e.touchParent(ch, n.Parent, now)
	ch.put(n)
	kind := "createfile"
	if n.Folder {
		kind = "createfolder"
	} else {
		e.used += n.Size
	}
	e.appendEvent(ch, kind, n, 0)
	if !n.Folder {
		return
	}
	for _, all := range []map[uint64]*node{e.folders, e.files} {
		for _, k := range all {
			if k.Deleted && k.Parent == n.ID {
				e.restore(ch, k, now)
			}
		}
	}
}
