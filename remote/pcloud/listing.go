package pcloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/tandemsync/tandem/remote/internal/httpx"
)

// listfolder runs one listfolder request and decodes its answer as a stream: a recursive listing of a big
// subtree is hundreds of MiB of JSON (§6.6 4c), so the body is never held whole and never capped; only the
// fields tandem uses are kept (a listed item's unknown fields, media extras and the like, are skipped as they
// pass). A body that breaks off or is malformed is retried like a lost answer.
func (c *Client) listfolder(ctx context.Context, q url.Values) (*metaAnswer, error) {
	var out *metaAnswer
	err := c.api.Do(ctx, "pcloud listfolder", true, func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, c.methodURL("listfolder", q), nil)
	}, func(resp *http.Response) error {
		st, m, err := decodeListing(resp.Body)
		if err != nil {
			return httpx.Retry(fmt.Errorf("pcloud listfolder: %w", err), 0)
		}
		if st.Result != 0 {
			return apiError("listfolder", &st)
		}
		out = &metaAnswer{status: st, Metadata: m}
		return nil
	})
	return out, err
}

// decodeListing reads {"result": n, "error": s, "metadata": {...}} token by token.
func decodeListing(r io.Reader) (status, *meta, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var st status
	var m *meta
	if err := expectDelim(dec, '{'); err != nil {
		return st, nil, err
	}
	for dec.More() {
		key, err := objectKey(dec)
		if err != nil {
			return st, nil, err
		}
		switch key {
		case "result":
			err = dec.Decode(&st.Result)
		case "error":
			err = dec.Decode(&st.Error)
		case "metadata":
			m, err = decodeMeta(dec, 0)
		default:
			err = skipValue(dec)
		}
		if err != nil {
			return st, nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return st, nil, err
	}
	return st, m, nil
}

// maxListingDepth bounds nesting (pCloud itself fails past ~40 levels; a hostile answer must not exhaust the
// stack).
const maxListingDepth = 1000

// decodeMeta reads one metadata object, its contents recursively.
func decodeMeta(dec *json.Decoder, depth int) (*meta, error) {
	if depth > maxListingDepth {
		return nil, errors.New("listing nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil // null
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("metadata: want an object, got %v", tok)
	}
	m := &meta{}
	for dec.More() {
		key, err := objectKey(dec)
		if err != nil {
			return nil, err
		}
		switch key {
		case "name":
			err = dec.Decode(&m.Name)
		case "isfolder":
			err = dec.Decode(&m.IsFolder)
		case "folderid":
			err = dec.Decode(&m.FolderID)
		case "fileid":
			err = dec.Decode(&m.FileID)
		case "parentfolderid":
			if depth == 0 {
				err = dec.Decode(&m.ParentFolderID)
			} else {
				// A listed item's parent is the folder it is listed in (tree.setListing): not kept, 16 bytes
				// an item saved on big listings.
				err = skipValue(dec)
			}
		case "size":
			err = dec.Decode(&m.Size)
		case "hash":
			err = dec.Decode(&m.Hash)
		case "created":
			err = dec.Decode(&m.Created)
		case "modified":
			err = dec.Decode(&m.Modified)
		case "isdeleted":
			err = dec.Decode(&m.IsDeleted)
		case "deletedfileid":
			err = dec.Decode(&m.DeletedFileID)
		case "contents":
			m.Contents, err = decodeContents(dec, depth)
		default:
			err = skipValue(dec)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, err
	}
	return m, nil
}

func decodeContents(dec *json.Decoder, depth int) ([]*meta, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, fmt.Errorf("contents: want an array, got %v", tok)
	}
	out := []*meta{}
	for dec.More() {
		k, err := decodeMeta(dec, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	if err := expectDelim(dec, ']'); err != nil {
		return nil, err
	}
	return out, nil
}

func objectKey(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	key, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("want an object key, got %v", tok)
	}
	return key, nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("want %q, got %v", want, tok)
	}
	return nil
}

// skipValue reads past one value of any kind without keeping it.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}
