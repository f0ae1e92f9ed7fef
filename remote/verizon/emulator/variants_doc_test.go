package emulator

import (
	"slices"
	"testing"
)

// TestVariantDocsListEveryVariant keeps the --help list and the variant table in step.
func TestVariantDocsListEveryVariant(t *testing.T) {
	var names []string
	for _, v := range VariantDocs {
		names = append(names, v.Name)
	}
	if !slices.Equal(names, Variants()) {
		t.Fatalf("VariantDocs lists %v, the topics %v", names, Variants())
	}
}
