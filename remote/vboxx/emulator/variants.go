package emulator

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Variants are the readings of the API reference the emulator can take where the reference is silent or
// ambiguous (its section 11, "open questions"; listed in ../PROVIDER.md). The default of each is the least helpful reading a real server
// could plausibly have, so a client that works against the default emulator does not lean on a guess; a variant
// switches to the other reading, so the client is also tested against the helpful one.
var Variants = map[string]string{
	// Documented: upload answers 409 name_conflict when the name exists. `overwrite` is not in the reference.
	"overwrite": "honour overwrite=true on upload (a new revision of the existing file); default: the field is " +
		"ignored and an existing name answers 409 name_conflict, as documented",
	// RFC 7578 forbids filename* in form-data; many server stacks ignore it.
	"filename-star": "also read the upload's file name from an RFC 2231 filename*= parameter; default: only a " +
		"plain filename= is read (a part with only filename* is no file: 400 no_file_received)",
	// Many WSGI/CGI stacks refuse or misread request bodies without a length.
	"chunked": "accept upload bodies sent with Transfer-Encoding: chunked; default: 411 without a Content-Length",
	// Permissions exist on roots, folders and files (documented); which ones a user holds is the account's.
	"readonly-root": "the sync root lacks FILE_WRITE: every change through the API answers 403 forbidden " +
		"(a fresh data folder gets /welcome.txt, written by the administrator)",
	"readonly-folder": "a fresh data folder gets /Read-only/welcome.txt; the folder lacks FILE_WRITE, so changes " +
		"inside it answer 403 forbidden",
	// The unit of max_file_size is left blank in the reference.
	"max-size-mb": "company_policy.max_file_size is reported in MB (2^20 bytes); default: in bytes",
	// Name uniqueness: documented as case-insensitive by the project's reading.
	"case-sensitive": "names are unique case-sensitively (README.txt and readme.txt can live side by side); " +
		"default: case-insensitively",
	// The name rule (invalid_name) is a project decision, not the reference's.
	"slash-names": "names may contain / and \\ (another client or the web interface made them); default: " +
		"invalid_name",
	// The reference prints a body for 304; HTTP forbids one.
	"not-modified-body": "304 answers carry the reference's body {\"status\": \"not_modified\"} (Go's server cannot " +
		"send a body on 304 and keep the connection, so such an answer closes it); default: 304 without a body",
	// modified_since's filter time is not documented.
	"since-modified": "modified_since filters on each file's own `modified` (a desktop agent can keep an old " +
		"time, so such files never appear); default: on the time the server stored the revision",
}

// VariantNames lists the variants, sorted.
func VariantNames() []string {
	out := make([]string, 0, len(Variants))
	for k := range Variants {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// variants is the parsed Options.Variants.
type variants struct {
	overwrite, filenameStar, chunked, readonlyRoot, readonlyFolder, maxSizeMB, caseSensitive, slashNames,
	sinceModified, notModifiedBody bool
}

// ParseVariants checks names (each may also be a comma-separated list) against Variants.
func ParseVariants(names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		for _, v := range strings.Split(n, ",") {
			v = strings.TrimSpace(v)
			if v == "" || v == "default" {
				continue
			}
			if _, ok := Variants[v]; !ok {
				return nil, fmt.Errorf("vboxx emulator: unknown variant %q (known: %s)", v,
					strings.Join(VariantNames(), ", "))
			}
			if !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out, nil
}

func parseVariants(names []string) (variants, error) {
	list, err := ParseVariants(names)
	if err != nil {
		return variants{}, err
	}
	var v variants
	for _, n := range list {
		switch n {
		case "overwrite":
			v.overwrite = true
		case "filename-star":
			v.filenameStar = true
		case "chunked":
			v.chunked = true
		case "readonly-root":
			v.readonlyRoot = true
		case "readonly-folder":
			v.readonlyFolder = true
		case "max-size-mb":
			v.maxSizeMB = true
		case "case-sensitive":
			v.caseSensitive = true
		case "slash-names":
			v.slashNames = true
		case "since-modified":
			v.sinceModified = true
		case "not-modified-body":
			v.notModifiedBody = true
		}
	}
	return v, nil
}
