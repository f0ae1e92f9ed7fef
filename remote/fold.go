package remote

import (
	"strings"

	"golang.org/x/text/unicode/norm"
)

// FoldName returns how a side with these capabilities compares names: names with the same fold are one
// object there (FoldsCase: "Report.txt" and "report.txt"; NormalizesUnicode: NFC "é" and NFD "e\u0301").
// nil when the side tells every name apart.
func FoldName(c Capabilities) func(string) string {
	if !c.FoldsCase && !c.NormalizesUnicode {
		return nil
	}
	return func(name string) string {
		if c.NormalizesUnicode {
			// Only a remote that normalises makes NFC and NFD spellings one name; a case-folding remote that
			// keeps the bytes (vBoxx) holds café and cafe\u0301 side by side.
			name = norm.NFC.String(name)
		}
		if c.FoldsCase {
			name = strings.ToLower(name)
		}
		return name
	}
}
