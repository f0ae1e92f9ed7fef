package emulator

import (
	"fmt"
	"sort"
	"strings"
)

// Variants: where Verizon's documentation is silent or ambiguous, the emulator offers each plausible reading.
// Every topic has a default, the least helpful reading for a client; Options.Variants (`tandem emulate verizon
// --variant NAME[,NAME]`) picks another. The client must be correct, or stop safely with a clear message, under
// every one of them. PROVIDER.md in the parent folder lists them with what the client does under each.
//
// Documented behaviour is not a variant: single-use refresh tokens, the exact registered redirect URL, the
// intent's documented parameters (path, name, size, checksum, chunk), a per-request checksum of the body.

// Variant names, grouped by topic. The first of each topic is the default.
const (
	// OAuth redirect_uri (§3.1, doc: must equal the registered Callback URL exactly).
	VariantRedirectRegistered = "redirect-registered" // default, documented: only the registered URL
	VariantRedirectLoopback   = "redirect-loopback"   // any http loopback URL is accepted too

	// Refresh tokens (§3.2, doc: single use).
	VariantRefreshSingleUse = "refresh-single-use" // default, documented: a refresh token dies when used
	VariantRefreshGrace     = "refresh-grace"      // the old one lives until the new pair is first used

	// safe/version/modificationDate on the upload intent (§9.1: not documented).
	VariantIntentIgnore  = "intent-ignore"  // default: ignored; a file is replaced, modificationDate = upload time
	VariantIntentEnforce = "intent-enforce" // safe/version checked (409), modificationDate stored
	VariantIntentReject  = "intent-reject"  // any undocumented intent parameter is a 400

	// The target of /fops/move (§10.3: the SDK's wording fits a folder or a full path).
	VariantMoveTargetFolder = "move-target-folder" // default: target is the destination folder, the name stays
	VariantMoveTargetPath   = "move-target-path"   // target is the full new path

	// createfolder override=modify on a taken name (§10.1: the option list is not recoverable).
	VariantMkdirModifyRenames  = "mkdir-modify-renames"  // default: a new folder "name (1)" is made
	VariantMkdirModifyExisting = "mkdir-modify-existing" // the existing folder is answered

	// The checksum on each chunk of a chunked upload (§9.2: "of this request's body" is documented; the SDK's
	// single checksum parameter leaves room for the other reading).
	VariantChunkChecksumEach  = "chunk-checksum-each"  // default, documented: each chunk's own SHA-256
	VariantChunkChecksumWhole = "chunk-checksum-whole" // the whole file's SHA-256 on every chunk

	// What a fullview delta says after a move (§7: the docs say only "added, changed or deleted").
	VariantDeltaMoveNone    = "delta-move-none"    // default: nothing in deleted; the new paths in file/folder
	VariantDeltaMoveFolder  = "delta-move-folder"  // only the topmost moved path in deleted
	VariantDeltaMoveSubtree = "delta-move-subtree" // the moved item and every path below it in deleted
)

// variantTopics lists each topic's readings, default first.
var variantTopics = [][]string{
	{VariantRedirectRegistered, VariantRedirectLoopback},
	{VariantRefreshSingleUse, VariantRefreshGrace},
	{VariantIntentIgnore, VariantIntentEnforce, VariantIntentReject},
	{VariantMoveTargetFolder, VariantMoveTargetPath},
	{VariantMkdirModifyRenames, VariantMkdirModifyExisting},
	{VariantChunkChecksumEach, VariantChunkChecksumWhole},
	{VariantDeltaMoveNone, VariantDeltaMoveFolder, VariantDeltaMoveSubtree},
}

// Variants lists every variant name, defaults included, in topic order.
func Variants() []string {
	var out []string
	for _, t := range variantTopics {
		out = append(out, t...)
	}
	return out
}

// NonDefaultVariants lists the readings a test matrix adds to the defaults.
func NonDefaultVariants() []string {
	var out []string
	for _, t := range variantTopics {
		out = append(out, t[1:]...)
	}
	return out
}

// variants is the reading chosen per topic, keyed by the topic's default name.
type variants map[string]string

func parseVariants(names []string) (variants, error) {
	v := variants{}
	for _, t := range variantTopics {
		v[t[0]] = t[0]
	}
	for _, raw := range names {
		for _, name := range strings.Split(raw, ",") {
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			found := false
			for _, t := range variantTopics {
				for _, r := range t {
					if r == name {
						v[t[0]], found = r, true
					}
				}
			}
			if !found {
				all := Variants()
				sort.Strings(all)
				return nil, fmt.Errorf("unknown verizon variant %q: want one of %s", name, strings.Join(all, ", "))
			}
		}
	}
	return v, nil
}

// is reports whether reading name is in force.
func (v variants) is(name string) bool {
	for _, t := range variantTopics {
		for _, r := range t {
			if r == name {
				return v[t[0]] == name
			}
		}
	}
	return false
}

// Variant is one reading with a line saying what it means (tandem emulate --help lists them).
type Variant struct{ Name, Doc string }

// VariantDocs lists every reading in topic order, the default of each topic first, with what it means.
var VariantDocs = []Variant{
	{VariantRedirectRegistered, "default, documented: only the registered callback URL is accepted"},
	{VariantRedirectLoopback, "any http loopback callback URL is accepted too"},
	{VariantRefreshSingleUse, "default, documented: a refresh token dies when it is used"},
	{VariantRefreshGrace, "the old refresh token lives until the new pair is first used"},
	{VariantIntentIgnore, "default: safe/version/modificationDate on the upload intent are ignored"},
	{VariantIntentEnforce, "safe/version are checked (409) and modificationDate is stored"},
	{VariantIntentReject, "any undocumented intent parameter is refused with 400"},
	{VariantMoveTargetFolder, "default: a move's target is the destination folder, the name stays"},
	{VariantMoveTargetPath, "a move's target is the full new path"},
	{VariantMkdirModifyRenames, "default: createfolder override=modify on a taken name makes \"name (1)\""},
	{VariantMkdirModifyExisting, "createfolder override=modify on a taken name answers the existing folder"},
	{VariantChunkChecksumEach, "default, documented: each chunk carries its own SHA-256"},
	{VariantChunkChecksumWhole, "each chunk carries the whole file's SHA-256"},
	{VariantDeltaMoveNone, "default: after a move the delta lists nothing deleted, only the new paths"},
	{VariantDeltaMoveFolder, "after a move the delta lists only the moved item as deleted"},
	{VariantDeltaMoveSubtree, "after a move the delta lists the moved item and every path below it as deleted"},
}
